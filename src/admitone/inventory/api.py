"""HTTP of the hot path: availability, seat states and holds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from admitone.core.deps import StateDep
from admitone.core.errors import NotFound, problems
from admitone.core.idempotency import IdempotencyKeyHeader, make_key
from admitone.core.params import IdPath, TokenPath
from admitone.inventory import repository as repo
from admitone.inventory import service
from admitone.inventory.schemas import AvailabilityOut, HoldCreate, HoldOut, SeatMapOut
from admitone.outbox.repository import EventStream

router = APIRouter(tags=["Holds and availability"])


@router.get(
    "/events/{event_id}/availability",
    name="get_availability",
    response_model=AvailabilityOut,
    responses=problems(404),
)
async def get_availability(state: StateDep, event_id: IdPath) -> AvailabilityOut:
    """How many tickets of each type, quota and section could be held right now."""
    async with state.db.read() as conn:
        return await service.availability(conn, event_id, state.clock.now())


@router.get(
    "/events/{event_id}/seats", name="get_seat_map", response_model=SeatMapOut, responses=problems(404)
)
async def get_seat_map(state: StateDep, event_id: IdPath) -> SeatMapOut:
    """Every seat of the event with its coordinates and its state: free, held or sold."""
    async with state.db.read() as conn:
        return await service.seat_map(conn, event_id, state.clock.now())


@router.post(
    "/events/{event_id}/holds",
    name="create_hold",
    status_code=201,
    response_model=HoldOut,
    responses=problems(404, 409, 503),
)
async def create_hold(
    state: StateDep, event_id: IdPath, body: HoldCreate, idempotency_key: IdempotencyKeyHeader = None
) -> HoldOut | Response:
    """Holds tickets or seats for a few minutes, all or nothing.

    Ask for general-admission tickets by type, specific seats, or the best adjacent seats of a section.
    A 409 names what is no longer available. Keep the returned ``id``: it turns the hold into an order.
    """
    key = make_key(idempotency_key, f"hold:{event_id}", body)
    result = await state.engine.hold(event_id, body, key)
    if isinstance(result, bytes):
        # Already serialized by the engine (a HoldOut document): skip FastAPI's validation pass.
        return Response(result, status_code=201, media_type="application/json")
    return result


@router.get("/holds/{hold_id}", name="get_hold", response_model=HoldOut, responses=problems(404))
async def get_hold(state: StateDep, hold_id: TokenPath) -> HoldOut:
    """A hold by its token; ``expires_at`` tells how long it lasts."""
    async with state.db.read() as conn:
        hold = await service.read_hold(conn, hold_id)
    if hold.status in ("active", "ordered") and hold.expires_at and hold.expires_at <= state.clock.now():
        hold.status = "expired"
    return hold


@router.delete(
    "/holds/{hold_id}", name="release_hold", response_model=HoldOut, responses=problems(404, 409, 410)
)
async def release_hold(state: StateDep, hold_id: TokenPath) -> HoldOut:
    """Gives the held tickets back before the hold expires."""
    async with state.db.read() as conn:
        hold = await repo.get_hold(conn, hold_id)
    if hold is None:
        raise NotFound("No hold with this token.")
    async with state.db.write() as conn:
        stream = await EventStream.lock(conn, hold.event_id)
        out = await service.release_hold(conn, stream, hold_id, state.clock.now())
        await stream.flush()
    return out
