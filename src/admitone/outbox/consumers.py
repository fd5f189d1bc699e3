"""Durable consumers of the event stream: each keeps its own position and applies every event once.

A consumer (analytics, webhooks, e-mail, ...) implements :class:`StreamConsumer`. The
:class:`ConsumerRunner` applies batches to it in one transaction per batch: it skips every event whose
sequence the consumer has already applied for that aggregate and records the new positions in
``consumer_positions`` in the same transaction as the consumer's own writes. Delivery from the bus is at
least once (a relay or a broker may hand the same events over again); the effect is exactly once.

Where the batches come from depends on the bus: in the embedded default the relay hands them over in
process (:class:`admitone.outbox.bus.InProcessBus`, durable subscription); with Kafka every consumer reads
the topic in its own consumer group. The runner is the same in both cases.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import Database, utcnow
from admitone.outbox.contracts import Envelope
from admitone.outbox.models import consumer_positions

log = logging.getLogger(__name__)


class StreamConsumer(Protocol):
    """What a durable consumer provides. ``name`` is its stored identity: never rename a deployed one."""

    name: str

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        """Applies one new event inside the runner's transaction. Never commits."""
        ...

    def after_commit(self, applied: Sequence[Envelope]) -> None:
        """Called after the batch's transaction committed (wake a sender, push a live update)."""
        ...


class BatchConsumer(StreamConsumer, Protocol):
    """A consumer that can apply a batch's new events at once (fewer statements on the hot path)."""

    async def handle_batch(self, conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        """Applies the batch's new events, given in order, inside the runner's transaction."""
        ...


class ConsumerRunner:
    """Applies batches of envelopes to one consumer, each event once, in the order given."""

    def __init__(self, db: Database, consumer: StreamConsumer) -> None:
        self.db = db
        self.consumer = consumer
        self.applied = 0
        self.skipped = 0

    @property
    def name(self) -> str:
        return self.consumer.name

    async def apply(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Applies the new events of a batch in one transaction; returns the ones applied."""
        if not envelopes:
            return []
        name = self.consumer.name
        keys = sorted({(e.aggregate_type, e.aggregate_id) for e in envelopes})
        applied: list[Envelope] = []
        async with self.db.write() as conn:
            positions = await self._lock_positions(conn, keys)
            for env in envelopes:
                key = (env.aggregate_type, env.aggregate_id)
                last = positions.get(key, 0)
                if env.sequence <= last:
                    self.skipped += 1
                    continue
                if env.sequence > last + 1 and last > 0:
                    log.debug("%s: %s %s jumps from %d to %d", name, *key, last, env.sequence)
                positions[key] = env.sequence
                applied.append(env)
            handle_batch = getattr(self.consumer, "handle_batch", None)
            if handle_batch is not None:
                if applied:
                    await handle_batch(conn, applied)
            else:
                for env in applied:
                    await self.consumer.handle(conn, env)
            if applied:
                now = utcnow()
                changed = {(e.aggregate_type, e.aggregate_id) for e in applied}
                for aggregate_type, aggregate_id in sorted(changed):
                    await conn.execute(
                        sa.update(consumer_positions)
                        .where(
                            consumer_positions.c.consumer == name,
                            consumer_positions.c.aggregate_type == aggregate_type,
                            consumer_positions.c.aggregate_id == aggregate_id,
                        )
                        .values(sequence=positions[(aggregate_type, aggregate_id)], updated_at=now)
                    )
        self.applied += len(applied)
        if applied:
            self.consumer.after_commit(applied)
        return applied

    async def _lock_positions(
        self, conn: AsyncConnection, keys: list[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Reads (and on PostgreSQL row-locks) the consumer's positions for the batch's aggregates.

        Missing rows are created first, so two runners of the same consumer (a Kafka rebalance, two
        instances) queue on the same rows instead of both applying an event.
        """
        name = self.consumer.name
        now = utcnow()
        await conn.execute(
            self.db.insert(consumer_positions)
            .values(
                [
                    {
                        "consumer": name,
                        "aggregate_type": t,
                        "aggregate_id": i,
                        "sequence": 0,
                        "updated_at": now,
                    }
                    for t, i in keys
                ]
            )
            .on_conflict_do_nothing()
        )
        query = sa.select(
            consumer_positions.c.aggregate_type,
            consumer_positions.c.aggregate_id,
            consumer_positions.c.sequence,
        ).where(
            consumer_positions.c.consumer == name,
            sa.tuple_(consumer_positions.c.aggregate_type, consumer_positions.c.aggregate_id).in_(keys),
        )
        if self.db.dialect == "postgresql":
            query = query.order_by(consumer_positions.c.aggregate_type, consumer_positions.c.aggregate_id)
            query = query.with_for_update()
        rows = (await conn.execute(query)).all()
        return {(r.aggregate_type, r.aggregate_id): int(r.sequence) for r in rows}


async def position(db: Database, consumer: str, aggregate_type: str, aggregate_id: int) -> int:
    """The last sequence ``consumer`` applied for an aggregate (0: none)."""
    return (await positions(db, consumer, aggregate_type, [aggregate_id])).get(aggregate_id, 0)


async def positions(
    db: Database, consumer: str, aggregate_type: str, aggregate_ids: Sequence[int]
) -> dict[int, int]:
    """The last sequence ``consumer`` applied for each of some aggregates (missing: none yet)."""
    if not aggregate_ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(consumer_positions.c.aggregate_id, consumer_positions.c.sequence).where(
                consumer_positions.c.consumer == consumer,
                consumer_positions.c.aggregate_type == aggregate_type,
                consumer_positions.c.aggregate_id.in_(list(aggregate_ids)),
            )
        )
        return {int(r[0]): int(r[1]) for r in rows}
