"""The ``analytics`` durable consumer of the event stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.analytics import service
from admitone.analytics.service import Lookups
from admitone.outbox.contracts import Envelope


class AnalyticsConsumer:
    """Projects domain events into the analytics tables; after each commit tells the live dashboards."""

    name = "analytics"

    def __init__(self, lookups: Lookups, on_change: Callable[[set[int]], None] | None = None) -> None:
        self.lookups = lookups
        self.on_change = on_change

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        await service.project(conn, self.lookups, envelope)

    async def handle_batch(self, conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        await service.project_batch(conn, self.lookups, envelopes)

    def after_commit(self, applied: Sequence[Envelope]) -> None:
        if self.on_change is not None:
            self.on_change({e.aggregate_id for e in applied if e.aggregate_type == "event"})
