"""Writing domain events to the outbox, numbered per event, in the caller's transaction."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import OUTBOX_ROWS, OUTBOX_WRITTEN, insert_from_document, insert_many, json_rows, utcnow
from admitone.core.errors import NotFound
from admitone.events.models import event_streams
from admitone.outbox.contracts import DomainEvent
from admitone.outbox.models import outbox

# The columns of the rows ``EventStream`` writes, in order.
OUTBOX_COLUMNS = (
    "event_uuid",
    "type",
    "version",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "occurred_at",
    "payload",
)


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
    pending: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    config_version: int = 0
    extra: tuple[Any, ...] = ()

    @classmethod
    async def lock(cls, conn: AsyncConnection, event_id: int, *extra: sa.ColumnElement[Any]) -> EventStream:
        """Locks the event's stream row. ``extra`` are expressions evaluated in the same statement (their
        values land in ``extra``), to spare the caller round trips while it holds the lock. They see the
        database as of the statement's start, which may be before the lock was granted."""
        result = await conn.execute(
            sa.update(event_streams)
            .where(event_streams.c.event_id == event_id)
            .values(last_seq=event_streams.c.last_seq)
            .returning(event_streams.c.last_seq, event_streams.c.config_version, *extra)
        )
        row = result.first()
        if row is None:
            raise NotFound(f"Event {event_id} does not exist.")
        return cls(conn, event_id, int(row[0]), config_version=int(row[1]), extra=tuple(row[2:]))

    def emit(self, event: DomainEvent) -> None:
        self.pending.append((event.TYPE, event.VERSION, event.model_dump(mode="json")))

    def emit_payload(self, type_: str, version: int, payload: dict[str, Any]) -> None:
        """Like ``emit`` with the event's JSON payload already built (the hold writer's hot path); the
        caller guarantees it is what the event's contract model would dump (its tests check that)."""
        self.pending.append((type_, version, payload))

    async def flush(self) -> int:
        """Write the pending events with consecutive sequence numbers; returns how many were written."""
        rows = self._take_pending()
        if not rows:
            return 0
        await insert_many(self.conn, outbox, rows)
        await self.conn.execute(_advance(), self._advance_parameters())
        return len(rows)

    def flush_parameters(self) -> dict[str, Any]:
        """PostgreSQL: what :meth:`flush` does, as the parameters of :func:`flush_writes`, which the caller
        runs with its own writes (``core.db.together``) in this transaction. Needs pending events."""
        rows = self._take_pending()
        if not rows:
            raise ValueError("no pending domain events to write")
        if tuple(rows[0]) != OUTBOX_COLUMNS:  # the statement of ``flush_writes`` names them
            raise AssertionError(f"outbox rows have the columns {tuple(rows[0])}, not {OUTBOX_COLUMNS}")
        return {"outbox_rows": json_rows(outbox, rows), **self._advance_parameters()}

    def _take_pending(self) -> list[dict[str, Any]]:
        if not self.pending:
            return []
        now = utcnow()
        rows: list[dict[str, Any]] = []
        seq = self.last_seq
        event_id = self.event_id
        for type_, version, payload in self.pending:
            seq += 1
            rows.append(
                {
                    "event_uuid": str(uuid.uuid4()),
                    "type": type_,
                    "version": version,
                    "aggregate_type": "event",
                    "aggregate_id": event_id,
                    "sequence": seq,
                    "occurred_at": now,
                    "payload": payload,
                }
            )
        self.last_seq = seq
        self.pending.clear()
        self.conn.info[OUTBOX_WRITTEN] = True  # the relays are woken when this transaction commits
        self.conn.info.setdefault(OUTBOX_ROWS, []).extend(rows)  # and this process's live hub is given them
        return rows

    def _advance_parameters(self) -> dict[str, Any]:
        return {"outbox_event_id": self.event_id, "outbox_last_seq": self.last_seq}


@functools.cache
def flush_writes() -> tuple[sa.Insert, sa.Update]:
    """PostgreSQL: the statements of :meth:`EventStream.flush`, built once, taking the named parameters
    of :meth:`EventStream.flush_parameters`."""
    return insert_from_document(outbox, OUTBOX_COLUMNS, "outbox_rows"), _advance()


@functools.cache
def _advance() -> sa.Update:
    """Moves the event's stream to the last sequence written (``EventStream._advance_parameters``)."""
    return (
        sa.update(event_streams)
        .where(event_streams.c.event_id == sa.bindparam("outbox_event_id"))
        .values(last_seq=sa.bindparam("outbox_last_seq"))
    )
