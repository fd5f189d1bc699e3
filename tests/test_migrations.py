"""The migrations build exactly the schema the code declares, on each database, and can be undone."""

from __future__ import annotations

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
from tests.conftest import in_thread


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


def migrate_to(settings: Settings, revision: str) -> None:
    from alembic import command

    from admitone.core.migrate import alembic_config

    command.downgrade(alembic_config(settings.resolved_database_url), revision)
