"""The outbox relay: publishes committed domain events, in order per event, then records how far it got.

The outbox has two lanes, each with its own relay and its own positions in ``outbox_lanes``: the live lane
feeds this deployment's live hubs; the stream lane feeds the durable consumers, through the in-process bus
or through Kafka when it is configured. Seat maps never wait for a consumer, and a broker outage stops only
the stream lane: the API keeps selling, seat maps keep moving, and the stream drains in order when the
broker is back.

A lane's position in an event is the last sequence it published there. An event's sequences are gap-free
and commit in order (its writers hold the event's stream row lock to commit), so the rows after the
position are exactly the ones waiting, and publishing a batch moves one small row per event instead of
marking every outbox row it published.

Delivery is at least once: a crash between publishing and recording publishes the batch again, and
consumers deduplicate by event id (or by the event's sequence). Several processes may run a relay; on
PostgreSQL a transaction-level advisory lock lets one batch run at a time, so one event's stream is never
published out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import Database, unnested_arrays, utcnow
from admitone.events.models import event_streams
from admitone.outbox.contracts import Envelope
from admitone.outbox.models import outbox, outbox_lanes

log = logging.getLogger(__name__)

LIVE_LANE = "live"
STREAM_LANE = "stream"
RELAY_LOCK_KEY = 0x61646D31  # "adm1": the live lane
STREAM_LOCK_KEY = 0x61646D32  # "adm2": the stream lane
LOCK_KEYS = {LIVE_LANE: RELAY_LOCK_KEY, STREAM_LANE: STREAM_LOCK_KEY}
STOP_GRACE_SECONDS = 30.0  # how long stop() lets the batch in flight finish before cancelling it


# What a relay reads of a row: the envelope, with the payload as JSON text (parsed with orjson).
PENDING_COLUMNS = (
    outbox.c.id,
    outbox.c.event_uuid,
    outbox.c.type,
    outbox.c.version,
    outbox.c.aggregate_type,
    outbox.c.aggregate_id,
    outbox.c.sequence,
    outbox.c.occurred_at,
    sa.cast(outbox.c.payload, sa.Text).label("payload"),
)


_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)


def pending_envelopes(rows: Sequence[Any]) -> list[Envelope]:
    """Envelopes of rows read with ``PENDING_COLUMNS``; the relay's hot path (a backlog is millions).

    Equal to ``envelope_of`` (a test checks it), about three times cheaper per row: the columns are taken
    by position and the model is filled the way ``model_construct`` fills it, minus its per-field loop.
    """
    out: list[Envelope] = []
    append = out.append
    new = Envelope.__new__
    setattr_ = object.__setattr__
    loads = orjson.loads
    for _id, uuid, type_, version, agg_type, agg_id, sequence, occurred_at, payload in rows:
        env = new(Envelope)
        setattr_(
            env,
            "__dict__",
            {
                "id": uuid,
                "type": type_,
                "version": version,
                "aggregate_type": agg_type,
                "aggregate_id": agg_id,
                "sequence": sequence,
                "occurred_at": occurred_at,
                "payload": loads(payload) if isinstance(payload, str) else payload,
            },
        )
        setattr_(env, "__pydantic_fields_set__", set(_ENVELOPE_FIELDS))
        setattr_(env, "__pydantic_extra__", None)
        setattr_(env, "__pydantic_private__", None)
        append(env)
    return out


class Publisher(Protocol):
    async def publish(self, envelopes: list[Envelope]) -> None: ...


def envelope_of(row: sa.Row[object]) -> Envelope:
    m = row._mapping
    payload = m["payload"]
    if isinstance(payload, str):  # the relay reads it as text and parses it with orjson (faster)
        payload = orjson.loads(payload)
    # Rows were validated when they were written; skip validating them again on the hot path.
    return Envelope.model_construct(
        id=m["event_uuid"],
        type=m["type"],
        version=m["version"],
        aggregate_type=m["aggregate_type"],
        aggregate_id=m["aggregate_id"],
        sequence=m["sequence"],
        occurred_at=m["occurred_at"],
        payload=payload,
    )


# How many waiting events one batch may cover: on SQLite one compound SELECT term each (SQLite allows 500).
SQLITE_EVENTS_PER_BATCH = 100


def _streams_with_lane(lane: sa.ColumnElement[str]) -> sa.Join:
    """Every event's stream with the lane's position in it (none yet: NULL, which counts as 0)."""
    position = sa.and_(
        outbox_lanes.c.lane == lane,
        outbox_lanes.c.aggregate_type == "event",
        outbox_lanes.c.aggregate_id == event_streams.c.event_id,
    )
    return event_streams.outerjoin(outbox_lanes, position)


@functools.cache
def waiting_statement() -> sa.Select[tuple[int, int, int]]:
    """The events with rows waiting in the lane ``:lane``: id, where the lane stands (``done``) and how
    many rows wait (``behind``), the events the lane served least recently first (never served: first of
    all), at most ``:events``."""
    done = sa.func.coalesce(outbox_lanes.c.sequence, 0)
    return (
        sa.select(
            event_streams.c.event_id.label("aggregate_id"),
            done.label("done"),
            (event_streams.c.last_seq - done).label("behind"),
        )
        .select_from(_streams_with_lane(sa.bindparam("lane", type_=sa.String)))
        .where(event_streams.c.last_seq > done)
        .order_by(outbox_lanes.c.updated_at.asc().nulls_first(), event_streams.c.event_id)
        .limit(sa.bindparam("events", type_=sa.Integer))
    )


def shares(waiting: Sequence[Any], batch: int) -> list[tuple[int, int, int]]:
    """What a batch of ``batch`` rows takes of each waiting event (rows of :func:`waiting_statement`):
    (event id, position, rows), in the order given, each event as much as the batch has room for.

    Taking in turns by event, rather than the batch's lowest ids over all events, makes a batch read
    exactly the rows it publishes: with the lowest ids, each of 50 events' ranges had to be read up to a
    full batch to find them (a 1,000,000-row drain ran at half the speed). Within one event the rows are
    taken in sequence order from the position, which is all the order the stream promises.
    """
    out: list[tuple[int, int, int]] = []
    left = batch
    for aggregate_id, done, behind in waiting:
        if left <= 0:
            break
        take = min(int(behind), left)
        out.append((int(aggregate_id), int(done), take))
        left -= take
    return out


@functools.cache
def rows_statement() -> sa.Select[tuple[object, ...]]:
    """PostgreSQL: the rows of the events' shares, given as parallel arrays (``:agg_ids``, ``:dones``,
    ``:takes``), in id order. Each share is a range of ``uq_outbox_stream_position`` read in sequence order
    with a limit (a LATERAL subquery), never a walk of the outbox past the rows already done."""
    share = unnested_arrays(
        "share",
        aggregate_id=(sa.Integer(), "agg_ids"),
        done=(sa.BigInteger(), "dones"),
        take=(sa.BigInteger(), "takes"),
    )
    rows = (
        sa.select(*PENDING_COLUMNS)
        .where(
            outbox.c.aggregate_type == "event",
            outbox.c.aggregate_id == share.c.aggregate_id,
            outbox.c.sequence > share.c.done,
            outbox.c.sequence <= share.c.done + share.c.take,
        )
        .order_by(outbox.c.sequence)
        .limit(share.c.take)
        .lateral("batch_rows")
    )
    return sa.select(*rows.c).select_from(share.join(rows, sa.true())).order_by(rows.c.id)


def ranges_statement(taken: Sequence[tuple[int, int, int]]) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """SQLite: the rows of the events' shares (:func:`shares`), in id order.

    One SELECT per event, each a range of ``uq_outbox_stream_position``: given a join, SQLite's planner
    prefers to walk the outbox and look each row's event up, which reads every row already done.
    """
    parts = [
        sa.select(*PENDING_COLUMNS).where(
            outbox.c.aggregate_type == "event",
            outbox.c.aggregate_id == aggregate_id,
            outbox.c.sequence > done,
            outbox.c.sequence <= done + take,
        )
        for aggregate_id, done, take in taken
    ]
    if len(parts) == 1:
        return parts[0].order_by(outbox.c.id)
    return sa.union_all(*parts).order_by(sa.literal_column("id"))


def events_per_batch(dialect: str, batch: int) -> int:
    """How many waiting events one batch of ``batch`` rows may cover."""
    return min(batch, SQLITE_EVENTS_PER_BATCH) if dialect == "sqlite" else batch


@dataclass
class PendingBatch:
    """What a lane publishes next: the rows (read with ``PENDING_COLUMNS``, in id order), where the lane
    will stand in each event once they are published, and whether more events were waiting than one batch
    may cover (then a short batch does not mean the lane is drained)."""

    rows: list[sa.Row[Any]]
    positions: dict[int, int]
    more: bool


async def pending_batch(conn: AsyncConnection, dialect: str, lane: str, batch: int) -> PendingBatch:
    """The next rows of ``lane``, at most ``batch``: each waiting event's rows from where the lane stands,
    up to the event's last committed sequence."""
    limit = events_per_batch(dialect, batch)
    waiting = (await conn.execute(waiting_statement(), {"lane": lane, "events": limit})).all()
    taken = shares(waiting, batch)
    if not taken:
        return PendingBatch([], {}, more=False)
    # The rows up to the stream heads just read are committed: a later snapshot sees them too.
    if dialect == "postgresql":
        agg_ids, dones, takes = (list(column) for column in zip(*taken, strict=True))
        params = {"agg_ids": agg_ids, "dones": dones, "takes": takes}
        rows: list[sa.Row[Any]] = list((await conn.execute(rows_statement(), params)).all())
    else:
        rows = list((await conn.execute(ranges_statement(taken))).all())
    if len(rows) < sum(take for _, _, take in taken):
        # Sequences are gap-free, so rows are missing only if someone deleted them from the outbox. They
        # cannot come back: the lane moves past them (waiting would stop the event's stream for good).
        found = {(row.aggregate_id, row.sequence) for row in rows}
        missing = [
            f"event {agg} sequence {seq}"
            for agg, done, take in taken
            for seq in range(done + 1, done + take + 1)
            if (agg, seq) not in found
        ]
        log.error(
            "%d outbox rows are missing (deleted?); the %s lane moves past them: %s",
            len(missing),
            lane,
            ", ".join(missing[:10]),
        )
    positions = {agg: done + take for agg, done, take in taken}
    return PendingBatch(rows, positions, more=len(waiting) == limit)


@functools.cache
def record_statement(dialect: str) -> sa.Insert:
    """Moves a lane (``:lane``) in one event (``:aggregate_id``) to ``:sequence``, never backwards; built
    once per dialect and run with one parameter set per event (:func:`record_positions`)."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = insert(outbox_lanes).values(
        lane=sa.bindparam("lane", type_=sa.String),
        aggregate_type="event",
        aggregate_id=sa.bindparam("aggregate_id", type_=sa.Integer),
        sequence=sa.bindparam("sequence", type_=sa.BigInteger),
        updated_at=sa.bindparam("updated_at", type_=outbox_lanes.c.updated_at.type),
    )
    excluded = stmt.excluded
    upsert: sa.Insert = stmt.on_conflict_do_update(
        index_elements=["lane", "aggregate_type", "aggregate_id"],
        set_={"sequence": excluded.sequence, "updated_at": excluded.updated_at},
        where=outbox_lanes.c.sequence < excluded.sequence,
    )
    return upsert


async def record_positions(conn: AsyncConnection, dialect: str, lane: str, positions: dict[int, int]) -> None:
    """Moves ``lane`` to ``positions`` (event id -> sequence) in the caller's transaction."""
    now = utcnow()
    params = [
        {"lane": lane, "aggregate_id": agg, "sequence": seq, "updated_at": now}
        for agg, seq in positions.items()
    ]
    await conn.execute(record_statement(dialect), params)


def backlog_statement(lane: str) -> sa.Select[tuple[int]]:
    """How many rows wait in ``lane``, over all events."""
    done = sa.func.coalesce(outbox_lanes.c.sequence, 0)
    return sa.select(sa.func.coalesce(sa.func.sum(event_streams.c.last_seq - done), 0)).select_from(
        _streams_with_lane(sa.literal(lane))
    )


async def backlog(db: Database, lane: str) -> int:
    """How many domain events wait in ``lane`` (``live`` or ``stream``)."""
    async with db.read() as conn:
        return int(await conn.scalar(backlog_statement(lane)) or 0)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        batch: int = 1000,
        idle_seconds: float = 1.0,
        *,
        lane: str = LIVE_LANE,
        lock_key: int | None = None,
        name: str = "outbox-relay",
    ) -> None:
        if lane not in LOCK_KEYS:
            raise ValueError(f"unknown outbox lane {lane!r}; the lanes are {', '.join(LOCK_KEYS)}")
        self.db = db
        self.publisher = publisher
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.lane = lane
        self.lock_key = LOCK_KEYS[lane] if lock_key is None else lock_key
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._more = False  # the last batch left waiting events it had no room for
        self.published = 0

    def notify(self) -> None:
        """Something was committed: publish soon."""
        self._wake.set()

    async def _pending(self, conn: AsyncConnection) -> PendingBatch:
        pending = await pending_batch(conn, self.db.dialect, self.lane, self.batch)
        self._more = pending.more
        return pending

    async def _record(self, conn: AsyncConnection, pending: PendingBatch) -> None:
        await record_positions(conn, self.db.dialect, self.lane, pending.positions)

    async def run_once(self) -> int | None:
        """Publishes one batch. Returns how many, or None when another relay holds the lock."""
        if self.db.dialect == "sqlite":
            return await self._run_once_sqlite()
        async with self.db.write() as conn:
            got = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(self.lock_key)))
            if not got:
                return None
            pending = await self._pending(conn)
            if not pending.positions:
                return 0
            envelopes = pending_envelopes(pending.rows)
            # The positions are written while the broker acknowledges the batch: both are round trips to
            # other processes. They count only if the transaction commits, which it does only after
            # publish() returned; if publish() raises, they are rolled back with it.
            marking = asyncio.ensure_future(self._record(conn, pending))
            try:
                await self.publisher.publish(envelopes)
            finally:
                await asyncio.wait([marking])
            await marking
        self.published += len(envelopes)
        return len(envelopes)

    async def _run_once_sqlite(self) -> int:
        # SQLite has one writer connection, and durable consumers need it while the batch is being
        # published: read, publish, then record the positions, without holding the write lock in between.
        # One relay per lane runs in a process; a crash before the positions are recorded publishes the
        # batch again.
        async with self.db.read() as conn:
            pending = await self._pending(conn)
        if not pending.positions:
            return 0
        await self.publisher.publish(pending_envelopes(pending.rows))
        async with self.db.write() as conn:
            await self._record(conn, pending)
        self.published += len(pending.rows)
        return len(pending.rows)

    async def drain(self, *, until_stopped: bool = False) -> None:
        """Publishes until nothing is waiting (tests and shutdown); the loop also stops when asked to."""
        while not (until_stopped and self._stopping):
            n = await self.run_once()
            if n is None:
                await asyncio.sleep(0.02)
            elif n < self.batch and not self._more:
                return

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=self.name)

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
                await self.drain(until_stopped=True)
            except Exception:
                if self._stopping:
                    return
                log.exception("%s failed; retrying", self.name)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Stops after the batch in flight.

        The loop is asked to stop and given ``STOP_GRACE_SECONDS`` to finish its batch; only then is it
        cancelled. A cancellation inside a batch's transaction, while its marking statement is still
        running on the connection, could leave that transaction open on the server with its locks held.
        """
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=STOP_GRACE_SECONDS)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
