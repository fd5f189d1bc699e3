"""Schema migrations (Alembic), run by ``admitone migrate``, the demo, and the test suite."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from admitone.core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrades the configured database. Blocking: call it from a thread inside an event loop."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), revision)
    if settings.is_sqlite:
        database = make_url(settings.resolved_database_url).database
        if database and database != ":memory:":
            _use_wal(Path(database))


def _use_wal(path: Path) -> None:
    """Puts the file in WAL mode once, before any server opens it (the mode is stored in the file)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
