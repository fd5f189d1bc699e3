"""The migrations build exactly the schema the code declares, on each database, and can be undone."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import admitone.analytics.models
import admitone.chat.models
import admitone.core.idempotency
import admitone.events.models
import admitone.inventory.models
import admitone.mail.models
import admitone.orders.models
import admitone.organizers.models
import admitone.outbox.models
import admitone.webhooks.models  # noqa: F401  (the same modules as migrations/env.py)
from admitone.core.db import Database, metadata
from admitone.core.migrate import migrate
from admitone.core.settings import Settings
from tests.conftest import SECRET, in_thread


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _diff(settings: Settings) -> list[Any]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            return await conn.run_sync(_differences)
    finally:
        await db.dispose()


async def test_migrated_schema_matches_the_models(settings: Settings) -> None:
    assert len(metadata.tables) >= 30
    assert await _diff(settings) == []


async def test_downgrade_to_the_first_revision_and_back(settings: Settings) -> None:
    in_thread(migrate_to, settings, "0001")
    diff = await _diff(settings)
    assert diff, "the first revision lacks later tables, so the schemas must differ"
    in_thread(migrate, settings)
    assert await _diff(settings) == []


async def test_lane_timestamps_become_lane_positions_and_back(settings: Settings) -> None:
    """Upgrading moves each lane to the row before its first unpublished row per event (a row published
    after a gap is published again: at least once); downgrading marks the rows up to the position."""
    in_thread(migrate_to, settings, "0008")
    done = "2026-12-01 10:00:00"
    # event 1: live published 1, 2 and 4 (3 waits), stream all five; event 2: live all, stream none
    marks = {(1, s): (done if s != 3 else None, done) for s in range(1, 6)}
    marks |= {(2, s): (done, None) for s in range(1, 4)}
    db = Database(settings)
    try:
        async with db.write() as conn:
            for (agg, seq), (published, streamed) in marks.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO outbox (event_uuid, type, version, aggregate_type, aggregate_id,"
                        " sequence, occurred_at, payload, published_at, streamed_at)"
                        " VALUES (:u, 'hold.placed', 1, 'event', :a, :s, :t, '{}', :p, :st)"
                    ).bindparams(
                        sa.bindparam("t", type_=sa.DateTime()),
                        sa.bindparam("p", type_=sa.DateTime()),
                        sa.bindparam("st", type_=sa.DateTime()),
                    ),
                    {
                        "u": f"{agg}-{seq}",
                        "a": agg,
                        "s": seq,
                        "t": _at(done),
                        "p": _at(published),
                        "st": _at(streamed),
                    },
                )
    finally:
        await db.dispose()
    in_thread(migrate, settings)
    db = Database(settings)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(sa.text("SELECT lane, aggregate_id, sequence FROM outbox_lanes"))
            ).all()
    finally:
        await db.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("live", 1, 2),
        ("live", 2, 3),
        ("stream", 1, 5),
        ("stream", 2, 0),
    ]
    in_thread(migrate_to, settings, "0008")
    db = Database(settings)
    try:
        async with db.read() as conn:
            back = (
                await conn.execute(
                    sa.text(
                        "SELECT aggregate_id, sequence, published_at IS NOT NULL, streamed_at IS NOT NULL"
                        " FROM outbox ORDER BY aggregate_id, sequence"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert [tuple(r) for r in back] == [
        (1, 1, True, True),
        (1, 2, True, True),
        (1, 3, False, True),
        (1, 4, False, True),  # published again after the upgrade: the lane stood at 2
        (1, 5, False, True),
        (2, 1, True, False),
        (2, 2, True, False),
        (2, 3, True, False),
    ]
    in_thread(migrate, settings)
    assert await _diff(settings) == []


def _at(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def migrate_to(settings: Settings, revision: str) -> None:
    from alembic import command

    from admitone.core.migrate import alembic_config

    command.downgrade(alembic_config(settings.resolved_database_url), revision)


def _journal_mode(path: Path, switch_to: str | None = None) -> Any:
    """The file's journal mode as SQLite reports it, after switching it to ``switch_to`` if given."""
    pragma = f"PRAGMA journal_mode={switch_to}" if switch_to else "PRAGMA journal_mode"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(pragma).fetchone()


def test_migrated_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The file leaves ``migrate`` in WAL mode, so that a server's first connections need not switch it
    (several new connections switching at once got "database is locked" without waiting)."""
    settings = Settings(data_dir=tmp_path, secret_key=SECRET)
    migrate(settings)
    assert _journal_mode(tmp_path / "admitone.db") == ("wal",)


async def test_many_first_connections_at_once_on_a_file_not_in_wal_mode(tmp_path: Path) -> None:
    """A file from elsewhere (a copy, an older admitone) may still use a rollback journal: the writer
    switches it while readers open beside it, and nobody fails."""
    settings = Settings(data_dir=tmp_path, secret_key=SECRET)
    in_thread(migrate, settings)
    assert _journal_mode(tmp_path / "admitone.db", "DELETE") == ("delete",)
    db = Database(settings)
    try:

        async def write(n: int) -> None:
            async with db.write() as conn:
                await conn.execute(sa.text("SELECT :n"), {"n": n})

        async def read(n: int) -> int:
            async with db.read() as conn:
                return int((await conn.execute(sa.text("SELECT :n"), {"n": n})).scalar_one())

        results = await asyncio.gather(*(read(n) for n in range(8)), *(write(n) for n in range(8)))
        assert results[:8] == list(range(8))
    finally:
        await db.dispose()
    assert _journal_mode(tmp_path / "admitone.db") == ("wal",)
