"""The analytics resources of one process, built in the app lifespan."""

from __future__ import annotations

from admitone.analytics import service
from admitone.analytics.consumer import AnalyticsConsumer
from admitone.analytics.live import AnalyticsBroadcaster
from admitone.analytics.schemas import EventAnalytics, LiveMessage
from admitone.analytics.service import Lookups
from admitone.core.db import Database, utcnow
from admitone.core.errors import NotFound
from admitone.core.settings import Settings
from admitone.outbox.consumers import positions


class Analytics:
    """The lookup cache, the stream consumer and the live broadcaster, wired together."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.lookups = Lookups()
        self.broadcaster = AnalyticsBroadcaster(
            self.summary_text,
            interval=settings.analytics_push_ms / 1000,
            queue_size=settings.analytics_queue_size,
            redis_url=settings.redis_url,
            # The consumer runs in another process and no Redis tells this one: watch its positions.
            positions=self._positions if settings.stream_worker and not settings.redis_url else None,
        )
        self.consumer = AnalyticsConsumer(self.lookups, self.broadcaster.changed)

    async def _positions(self, event_ids: list[int]) -> dict[int, int]:
        return await positions(self.db, AnalyticsConsumer.name, "event", event_ids)

    async def summary(self, event_id: int) -> EventAnalytics:
        # Times of the projection are the domain events' times (wall clock), so "now" is too.
        async with self.db.snapshot() as conn:
            return await service.summary(conn, self.lookups, event_id, utcnow())

    async def summary_text(self, event_id: int) -> str | None:
        try:
            summary = await self.summary(event_id)
        except NotFound:
            return None
        return LiveMessage(type="summary", summary=summary).model_dump_json()

    def start(self) -> None:
        self.broadcaster.start()

    async def stop(self) -> None:
        await self.broadcaster.stop()
