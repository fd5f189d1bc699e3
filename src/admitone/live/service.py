"""Builds the live hub's snapshot loader; other domains add their part of the snapshot (chat, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.live import repository as repo
from admitone.live.hub import SnapshotLoader
from admitone.live.repository import Snapshot

SnapshotPart = Callable[[AsyncConnection, int], Awaitable[dict[str, Any]]]


def snapshot_loader(db: Database, clock: Clock, parts: list[SnapshotPart]) -> SnapshotLoader:
    async def load(event_id: int) -> Snapshot | None:
        async with db.snapshot() as conn:
            if not await repo.published_event(conn, event_id):
                return None
            snap = await repo.load_snapshot(conn, event_id, clock.now())
            for part in parts:
                snap.extra.update(await part(conn, event_id))
            return snap

    return load
