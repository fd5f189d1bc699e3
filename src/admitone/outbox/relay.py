"""The outbox relay: publishes committed domain events, in order per event, then marks them published.

Delivery is at least once: a crash between publishing and marking publishes the batch again, and consumers
deduplicate by event id (or by the event's sequence). Several processes may run a relay; on PostgreSQL a
transaction-level advisory lock lets one batch run at a time, so one event's stream is never published out
of order. (Within one event, outbox ids grow in commit order: its writers hold the event's lock to commit.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import sqlalchemy as sa

from admitone.core.db import Database, utcnow
from admitone.outbox.contracts import Envelope
from admitone.outbox.models import outbox

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 0x61646D31  # "adm1"


class Publisher(Protocol):
    async def publish(self, envelopes: list[Envelope]) -> None: ...


def envelope_of(row: sa.Row[object]) -> Envelope:
    m = row._mapping
    # Rows were validated when they were written; skip validating them again on the hot path.
    return Envelope.model_construct(
        id=m["event_uuid"],
        type=m["type"],
        version=m["version"],
        aggregate_type=m["aggregate_type"],
        aggregate_id=m["aggregate_id"],
        sequence=m["sequence"],
        occurred_at=m["occurred_at"],
        payload=m["payload"],
    )


class OutboxRelay:
    def __init__(
        self, db: Database, publisher: Publisher, batch: int = 1000, idle_seconds: float = 1.0
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published = 0

    def notify(self) -> None:
        """Something was committed: publish soon."""
        self._wake.set()

    async def run_once(self) -> int | None:
        """Publishes one batch. Returns how many, or None when another relay holds the lock."""
        async with self.db.write() as conn:
            if self.db.dialect == "postgresql":
                got = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)))
                if not got:
                    return None
            rows = (
                await conn.execute(
                    sa.select(outbox)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch)
                )
            ).all()
            if not rows:
                return 0
            await self.publisher.publish([envelope_of(r) for r in rows])
            await conn.execute(
                sa.update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(published_at=utcnow())
            )
        self.published += len(rows)
        return len(rows)

    async def drain(self) -> None:
        """Publishes until nothing is waiting (tests and shutdown)."""
        while True:
            n = await self.run_once()
            if n is None:
                await asyncio.sleep(0.02)
            elif n < self.batch:
                return

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def _loop(self) -> None:
        # The flag, not only cancellation, ends the loop: a cancellation that lands inside a database
        # driver call can come back as an ordinary error.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.drain()
            except Exception:
                if self._stopping:
                    return
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
