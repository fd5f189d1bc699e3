"""HTTP for venues and events: the organizer's management API and the buyer's event list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from admitone.core.deps import StateDep
from admitone.core.errors import NotFound, problems
from admitone.core.idempotency import IdempotencyKeyHeader, make_key, run_idempotent
from admitone.core.params import IdPath
from admitone.events import repository as repo
from admitone.events import service
from admitone.events.schemas import (
    EventCreate,
    EventOut,
    EventSummary,
    EventUpdate,
    QuotaCreate,
    QuotaOut,
    SeatOut,
    TicketTypeCreate,
    TicketTypeOut,
    VenueCreate,
    VenueOut,
)
from admitone.organizers.auth import CurrentCaller, WriteCaller

public = APIRouter(tags=["Events"])
organizer = APIRouter(prefix="/organizer", responses=problems(401, 403))

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@public.get("/events", name="list_events", response_model=list[EventSummary])
async def list_events(state: StateDep, limit: Limit = 100, offset: Offset = 0) -> list[EventSummary]:
    """Published events, soonest first."""
    async with state.db.read() as conn:
        rows = await repo.list_events(conn, published_only=True, limit=limit, offset=offset)
    return [service.summary(r) for r in rows]


@public.get("/events/{event_id}", name="get_event", response_model=EventOut, responses=problems(404))
async def get_event(state: StateDep, event_id: IdPath) -> EventOut:
    """An event with its ticket types."""
    async with state.db.read() as conn:
        event = await service.read_event(conn, event_id)
    if event.status == "draft":
        raise NotFound(f"No event {event_id}.")
    return event


@organizer.post(
    "/venues",
    name="create_venue",
    status_code=201,
    response_model=VenueOut,
    tags=["Organizer: venues"],
    responses=problems(409),
)
async def create_venue(
    state: StateDep, caller: WriteCaller, body: VenueCreate, idempotency_key: IdempotencyKeyHeader = None
) -> VenueOut | JSONResponse:
    """Creates a venue with its whole seat map. Seat maps cannot change once events use them."""
    key = make_key(idempotency_key, f"venue:{caller.organizer_id}", body)
    return await run_idempotent(
        state.db,
        key,
        201,
        lambda conn: service.create_venue(conn, caller.organizer_id, body, state.clock.now()),
    )


@organizer.get("/venues", name="list_venues", response_model=list[VenueOut], tags=["Organizer: venues"])
async def list_venues(state: StateDep, caller: CurrentCaller) -> list[VenueOut]:
    """Your venues, with their sections and seat counts."""
    async with state.db.read() as conn:
        return await service.list_venues(conn, caller.organizer_id)


@organizer.get(
    "/venues/{venue_id}",
    name="get_venue",
    response_model=VenueOut,
    tags=["Organizer: venues"],
    responses=problems(404),
)
async def get_venue(state: StateDep, caller: CurrentCaller, venue_id: IdPath) -> VenueOut:
    """One of your venues, with its sections and seat counts."""
    async with state.db.read() as conn:
        return await service.read_venue(conn, caller.organizer_id, venue_id)


@organizer.get(
    "/venues/{venue_id}/seats",
    name="list_venue_seats",
    response_model=list[SeatOut],
    tags=["Organizer: venues"],
    responses=problems(404),
)
async def list_venue_seats(state: StateDep, caller: CurrentCaller, venue_id: IdPath) -> list[SeatOut]:
    """Every seat of one of your venues: section, row, number, label, position and price category."""
    async with state.db.read() as conn:
        return await service.venue_seats(conn, caller.organizer_id, venue_id)


@organizer.post(
    "/events",
    name="create_event",
    status_code=201,
    response_model=EventOut,
    tags=["Organizer: events"],
    responses=problems(404, 409),
)
async def create_event(
    state: StateDep, caller: WriteCaller, body: EventCreate, idempotency_key: IdempotencyKeyHeader = None
) -> EventOut | JSONResponse:
    """Creates an event; with ``status: on_sale`` it is published at once."""
    key = make_key(idempotency_key, f"event:{caller.organizer_id}", body)
    return await run_idempotent(
        state.db,
        key,
        201,
        lambda conn: service.create_event(conn, caller.organizer_id, body, state.clock.now()),
    )


@organizer.get(
    "/events", name="organizer_list_events", response_model=list[EventSummary], tags=["Organizer: events"]
)
async def organizer_list_events(
    state: StateDep, caller: CurrentCaller, limit: Limit = 100, offset: Offset = 0
) -> list[EventSummary]:
    """All of your events, drafts included."""
    async with state.db.read() as conn:
        rows = await repo.list_events(conn, organizer_id=caller.organizer_id, limit=limit, offset=offset)
    return [service.summary(r) for r in rows]


@organizer.get(
    "/events/{event_id}",
    name="organizer_get_event",
    response_model=EventOut,
    tags=["Organizer: events"],
    responses=problems(404),
)
async def organizer_get_event(state: StateDep, caller: CurrentCaller, event_id: IdPath) -> EventOut:
    """One of your events in any status, with its ticket types."""
    async with state.db.read() as conn:
        await service.own_event(conn, caller.organizer_id, event_id)
        return await service.read_event(conn, event_id)


@organizer.patch(
    "/events/{event_id}",
    name="update_event",
    response_model=EventOut,
    tags=["Organizer: events"],
    responses=problems(404, 409),
)
async def update_event(state: StateDep, caller: WriteCaller, event_id: IdPath, body: EventUpdate) -> EventOut:
    """Renames, reschedules sales, or changes the status (``on_sale`` publishes; ``ended``; ``cancelled``)."""
    async with state.db.write() as conn:
        return await service.update_event(conn, caller.organizer_id, event_id, body)


@organizer.post(
    "/events/{event_id}/quotas",
    name="create_quota",
    status_code=201,
    response_model=QuotaOut,
    tags=["Organizer: events"],
    responses=problems(404),
)
async def create_quota(
    state: StateDep,
    caller: WriteCaller,
    event_id: IdPath,
    body: QuotaCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> QuotaOut | JSONResponse:
    """A capacity shared by the ticket types that name it."""
    key = make_key(idempotency_key, f"quota:{caller.organizer_id}:{event_id}", body)
    return await run_idempotent(
        state.db, key, 201, lambda conn: service.create_quota(conn, caller.organizer_id, event_id, body)
    )


@organizer.get(
    "/events/{event_id}/quotas",
    name="list_quotas",
    response_model=list[QuotaOut],
    tags=["Organizer: events"],
    responses=problems(404),
)
async def list_quotas(state: StateDep, caller: CurrentCaller, event_id: IdPath) -> list[QuotaOut]:
    """The quotas of one of your events, with what is held, sold and still available in each."""
    async with state.db.read() as conn:
        return await service.list_quotas(conn, caller.organizer_id, event_id, state.clock.now())


@organizer.post(
    "/events/{event_id}/ticket-types",
    name="create_ticket_type",
    status_code=201,
    response_model=TicketTypeOut,
    tags=["Organizer: events"],
    responses=problems(404, 409),
)
async def create_ticket_type(
    state: StateDep,
    caller: WriteCaller,
    event_id: IdPath,
    body: TicketTypeCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TicketTypeOut | JSONResponse:
    """General admission (counted by quotas) or seated (prices one seat category)."""
    key = make_key(idempotency_key, f"ticket-type:{caller.organizer_id}:{event_id}", body)
    return await run_idempotent(
        state.db,
        key,
        201,
        lambda conn: service.create_ticket_type(conn, caller.organizer_id, event_id, body, state.clock.now()),
    )
