"""Schema migrations (Alembic), run by ``admitone migrate``, the demo, and the test suite."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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
