"""The batching hold writer.

Per event, one asyncio task (``ADMITONE_BATCH_WRITERS`` on PostgreSQL) takes every hold request waiting in
the event's queue, allocates them in one transaction under the event's lock and commits once. Each waiter
gets its own answer. The event and its ticket types are cached between batches and reloaded when the
event's configuration version moves; on PostgreSQL the batch's writes go as one statement. The database stays
the arbiter: seat claims have a primary key per (event, seat), quota counters a CHECK and conditional
updates, so a second process (or a bug here) can never oversell; it would only make a batch fail, after
which its requests are retried one transaction each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, IntegrityError

from admitone.core import idempotency as idem
from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.core.errors import Conflict, DomainError, IdempotencyMismatch, NotFound, Unavailable
from admitone.core.settings import Settings
from admitone.inventory import repository as repo
from admitone.inventory import service
from admitone.inventory.allocation import Allocator, EventInfo, HoldDraft, TicketTypeInfo, VenueLayout
from admitone.inventory.schemas import HoldCreate
from admitone.outbox.contracts import HoldPlaced
from admitone.outbox.repository import EventStream

log = logging.getLogger(__name__)

QUEUE_LIMIT = 20_000
IDLE_SECONDS = 30.0
SWEEP_PER_BATCH = 500

_datetime_json = TypeAdapter(dt.datetime).dump_python


def hold_documents(draft: HoldDraft, expires_at: str) -> tuple[bytes, dict[str, Any]]:
    """The new hold as the JSON body of its 201 (a ``HoldOut``) and the payload of its ``hold.placed``.

    Built as plain dicts and serialized with orjson: per hold this is the largest cost of the batch
    after the database, and both documents are checked against their models in the tests.
    ``expires_at`` is the time as the models serialize it (the same for every hold of a batch).
    """
    lines = draft.lines
    out = {
        "id": draft.id,
        "event_id": draft.event_id,
        "status": "active",
        "expires_at": expires_at,
        "total_minor": draft.total_minor,
        "currency": draft.currency,
        "lines": [
            {
                "ticket_type_id": ln.ticket_type.id,
                "ticket_type": ln.ticket_type.name,
                "seat_id": ln.seat.id if ln.seat else None,
                "seat_label": ln.seat.label if ln.seat else None,
                "quantity": ln.quantity,
                "unit_price_minor": ln.ticket_type.price_minor,
            }
            for ln in lines
        ],
    }
    placed = {
        "event_id": draft.event_id,
        "hold_id": draft.id,
        "lines": [
            {
                "ticket_type_id": ln.ticket_type.id,
                "seat_id": ln.seat.id if ln.seat else None,
                "quantity": ln.quantity,
                "unit_price_minor": ln.ticket_type.price_minor,
            }
            for ln in lines
        ],
        "total_minor": draft.total_minor,
        "currency": draft.currency,
        "expires_at": expires_at,
    }
    return orjson.dumps(out), placed


@dataclass
class _Pending:
    request: HoldCreate
    key: idem.IdempotencyKey | None
    future: asyncio.Future[bytes | JSONResponse]


def _keep(batch: list[_Pending]) -> None:
    """A batch retried one request at a time takes nobody else in."""


class _EventWriter:
    def __init__(self, engine: InventoryEngine, event_id: int) -> None:
        self.engine = engine
        self.event_id = event_id
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.tasks = [
            asyncio.create_task(self._run(), name=f"hold-writer-{event_id}-{n}")
            for n in range(engine.writers_per_event)
        ]

    async def _run(self) -> None:
        while not self.engine.closing:
            try:
                first = await asyncio.wait_for(self.queue.get(), IDLE_SECONDS)
            except TimeoutError:
                if self.queue.empty():
                    self.engine._retire(self)
                    return
                continue
            if self.engine.linger > 0:
                # Requests of the same wave are still being parsed: let them join this batch rather than
                # wait for the whole next one.
                await asyncio.sleep(self.engine.linger)
            batch = [first]
            self._top_up(batch)
            try:
                await self._process(batch)
            except Exception as exc:  # never let one bad batch stop the writer
                log.exception("hold batch for event %s failed", self.event_id)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)

    def _top_up(self, batch: list[_Pending]) -> None:
        """Adds the requests waiting now, up to the batch limit."""
        while len(batch) < self.engine.batch_max and not self.queue.empty():
            batch.append(self.queue.get_nowait())

    async def _process(self, batch: list[_Pending], top_up: bool = True) -> None:
        try:
            results = await self.engine._write_batch(self.event_id, batch, self._top_up if top_up else _keep)
        except DomainError as exc:  # the event itself is gone
            results = [exc] * len(batch)
        except (IntegrityError, repo.InventoryConflict, DBAPIError) as exc:
            if len(batch) > 1:
                log.warning(
                    "batch of %d for event %s refused (%s); retrying one by one",
                    len(batch),
                    self.event_id,
                    exc,
                )
                for pending in batch:
                    await self._process([pending], top_up=False)
                return
            results = [Conflict("The inventory changed while your request was processed; please retry.")]
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)


class InventoryEngine:
    """Entry point of the hot path; one per process, created in the app lifespan."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.ttl = dt.timedelta(seconds=settings.hold_ttl_seconds)
        self.batch_max = settings.batch_max
        self.linger = settings.batch_linger_ms / 1000
        # Batches of one event in flight at once. They still take the event's lock one after the other,
        # but the next one waits for it in the database, not behind this process's event loop. SQLite has
        # one writer connection: one.
        self.writers_per_event = 1 if db.dialect == "sqlite" else settings.batch_writers
        self._writers: dict[int, _EventWriter] = {}
        self.closing = False
        self._layouts: dict[int, VenueLayout] = {}
        self._configs: dict[int, tuple[int, EventInfo, dict[int, TicketTypeInfo]]] = {}
        self.batches = 0
        self.batched_requests = 0

    async def hold(
        self, event_id: int, request: HoldCreate, key: idem.IdempotencyKey | None = None
    ) -> bytes | JSONResponse:
        """Holds, all or nothing: the 201 body (``HoldOut`` as JSON) or an idempotent replay."""
        if self.closing:
            raise Unavailable("The server is shutting down; retry on another instance.")
        writer = self._writers.get(event_id)
        if writer is None:
            writer = self._writers[event_id] = _EventWriter(self, event_id)
        if writer.queue.qsize() >= QUEUE_LIMIT:
            raise Unavailable("Too many hold requests are waiting for this event; retry in a second.")
        future: asyncio.Future[bytes | JSONResponse] = asyncio.get_running_loop().create_future()
        writer.queue.put_nowait(_Pending(request, key, future))
        # A caller that goes away cancels only its future; the writer skips futures already done.
        return await future

    def _retire(self, writer: _EventWriter) -> None:
        if self._writers.get(writer.event_id) is writer:
            del self._writers[writer.event_id]
            self._configs.pop(writer.event_id, None)

    async def close(self) -> None:
        self.closing = True
        writers = list(self._writers.values())
        self._writers.clear()
        tasks = [task for writer in writers for task in writer.tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _layout(self, conn: Any, venue_id: int) -> VenueLayout:
        layout = self._layouts.get(venue_id)
        if layout is None:
            layout = self._layouts[venue_id] = await repo.load_layout(conn, venue_id)
        return layout

    async def _config(self, conn: Any, stream: EventStream) -> tuple[EventInfo, dict[int, TicketTypeInfo]]:
        """The event and its ticket types, cached while the event's configuration version stays the same
        (every change to them moves it in the changing transaction, see ``events/repository.py``)."""
        cached = self._configs.get(stream.event_id)
        if cached is not None and cached[0] == stream.config_version:
            return cached[1], cached[2]
        event = await repo.load_event(conn, stream.event_id)
        if event is None:
            raise NotFound(f"Event {stream.event_id} does not exist.")
        types = await repo.load_ticket_types(conn, stream.event_id)
        self._configs[stream.event_id] = (stream.config_version, event, types)
        return event, types

    async def _write_batch(
        self, event_id: int, batch: list[_Pending], top_up: Callable[[list[_Pending]], None]
    ) -> list[bytes | JSONResponse | DomainError]:
        now = self.clock.now()
        results: list[bytes | JSONResponse | DomainError] = []
        async with self.db.write() as conn:
            # One statement takes the lock, reads the configuration's version and whether any hold is due.
            stream = await EventStream.lock(conn, event_id, repo.due_exists(event_id, now))
            if stream.extra[0]:
                await service.expire_due(conn, stream, now, SWEEP_PER_BATCH)
            event, types = await self._config(conn, stream)
            layout = await self._layout(conn, event.venue_id) if event.venue_id is not None else None
            quotas = await repo.load_quotas(conn, event_id)
            top_up(batch)
            wanted: set[int] | None = {s for p in batch for s in p.request.seat_ids}
            if any(p.request.best_available is not None for p in batch):
                wanted = None  # best-available searches need the whole map
            # Claims past their deadline that the sweep above did not reach still count as taken.
            taken = set(await repo.claimed_seats(conn, event_id, wanted)) if layout is not None else set()
            keys = [p.key for p in batch if p.key is not None]
            existing = await idem.stored(conn, keys)
            allocator = Allocator(event, types, quotas, layout, taken, now, self.ttl)
            drafts: list[tuple[HoldDraft, _Pending]] = []
            payloads: list[dict[str, Any]] = []
            expires_at: str = _datetime_json(now + self.ttl, mode="json")
            first_with_key: dict[str, int] = {}
            for index, pending in enumerate(batch):
                key = pending.key
                try:
                    if key is not None and key.key in existing:
                        results.append(idem.check_match(existing[key.key], key))
                        continue
                    if key is not None and key.key in first_with_key:
                        first = batch[first_with_key[key.key]].key
                        if first is None or first.fingerprint != key.fingerprint:
                            raise IdempotencyMismatch(
                                f"Idempotency-Key '{key.key}' was already used with a different request; "
                                "use a new key."
                            )
                        out = results[first_with_key[key.key]]
                        assert isinstance(out, bytes)
                        results.append(idem.replay_response(201, orjson.loads(out)))
                        continue
                    draft = allocator.allocate(pending.request)
                except DomainError as exc:
                    results.append(exc)
                    continue
                if key is not None:
                    first_with_key[key.key] = index
                drafts.append((draft, pending))
                body, placed = hold_documents(draft, expires_at)
                results.append(body)
                payloads.append(placed)
            if drafts:
                await idem.record_many(
                    conn,
                    [
                        (pending.key, 201, orjson.loads(body))
                        for pending, body in zip(batch, results, strict=True)
                        if pending.key is not None and isinstance(body, bytes)
                    ],
                )
                for placed in payloads:
                    stream.emit_payload(HoldPlaced.TYPE, HoldPlaced.VERSION, placed)
                delta = allocator.quota_delta
                seat_states: dict[int, service.SeatStateName] = dict.fromkeys(allocator.seats_claimed, "held")
                if self.db.dialect == "postgresql":
                    # The counters as they will be: read under the lock, plus what this batch adds (the
                    # statement below refuses the whole batch if the database disagrees).
                    after = {
                        q: dataclasses.replace(quotas[q], held=quotas[q].held + n)
                        for q, n in delta.items()
                        if q in quotas
                    }
                    await service.emit_inventory_changed(
                        conn, stream, list(delta), seat_states, known={**quotas, **after}
                    )
                    await repo.place_holds_together(conn, [d for d, _ in drafts], delta, stream)
                else:
                    await repo.insert_holds(conn, [d for d, _ in drafts])
                    changed = await repo.add_to_quotas(conn, "held", delta)
                    await service.emit_inventory_changed(
                        conn, stream, list(delta), seat_states, known={**quotas, **changed}
                    )
            await stream.flush()
        self.batches += 1
        self.batched_requests += len(batch)
        return results
