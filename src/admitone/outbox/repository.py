"""Writing domain events to the outbox, numbered per event, in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import utcnow
from admitone.core.errors import NotFound
from admitone.events.models import event_streams
from admitone.outbox.contracts import DomainEvent, Envelope
from admitone.outbox.models import outbox


@dataclass
class EventStream:
    """The event's write lock for the current transaction, and the numbering of its domain events.

    ``lock`` updates the event's stream row first thing in the transaction: on PostgreSQL that is a row
    lock held to commit, on SQLite the database write lock. Every writer of an event's inventory takes it,
    so their checks and changes never interleave, on one process or many.
    """

    conn: AsyncConnection
    event_id: int
    last_seq: int
    pending: list[DomainEvent] = field(default_factory=list)

    @classmethod
    async def lock(cls, conn: AsyncConnection, event_id: int) -> EventStream:
        result = await conn.execute(
            sa.update(event_streams)
            .where(event_streams.c.event_id == event_id)
            .values(last_seq=event_streams.c.last_seq)
            .returning(event_streams.c.last_seq)
        )
        last = result.scalar_one_or_none()
        if last is None:
            raise NotFound(f"Event {event_id} does not exist.")
        return cls(conn, event_id, int(last))

    def emit(self, event: DomainEvent) -> None:
        self.pending.append(event)

    async def flush(self) -> list[Envelope]:
        """Write the pending events with consecutive sequence numbers; returns their envelopes."""
        if not self.pending:
            return []
        now = utcnow()
        rows: list[dict[str, Any]] = []
        envelopes: list[Envelope] = []
        for event in self.pending:
            self.last_seq += 1
            payload = event.model_dump(mode="json")
            env = Envelope(
                id=str(uuid.uuid4()),
                type=event.TYPE,
                version=event.VERSION,
                aggregate_type="event",
                aggregate_id=self.event_id,
                sequence=self.last_seq,
                occurred_at=now,
                payload=payload,
            )
            envelopes.append(env)
            rows.append(
                {
                    "event_uuid": env.id,
                    "type": env.type,
                    "version": env.version,
                    "aggregate_type": "event",
                    "aggregate_id": self.event_id,
                    "sequence": env.sequence,
                    "occurred_at": now,
                    "payload": payload,
                }
            )
        await self.conn.execute(sa.insert(outbox), rows)
        await self.conn.execute(
            sa.update(event_streams)
            .where(event_streams.c.event_id == self.event_id)
            .values(last_seq=self.last_seq)
        )
        self.pending.clear()
        return envelopes
