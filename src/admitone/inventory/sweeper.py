"""Background release of holds and unpaid orders whose deadline has passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.inventory import repository as repo
from admitone.inventory import service
from admitone.outbox.repository import EventStream

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, db: Database, clock: Clock, interval: float) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def run_once(self, batch: int = 1000) -> int:
        """Expires what is due now, one transaction per event; returns how many holds ended."""
        now = self.clock.now()
        async with self.db.read() as conn:
            event_ids = await repo.events_with_due_holds(conn, now, 100)
        expired = 0
        for event_id in event_ids:
            async with self.db.write() as conn:
                stream = await EventStream.lock(conn, event_id)
                expired += await service.expire_due(conn, stream, now, batch)
                await stream.flush()
        return expired

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="hold-sweeper")

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                if self._stopping:
                    return
                log.exception("sweeping expired holds failed; trying again in %.1fs", self.interval)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
