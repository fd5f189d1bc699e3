"""HTTP for webhooks: the organizer registers endpoints and watches (and repeats) their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from admitone.core.db import utcnow
from admitone.core.deps import StateDep
from admitone.core.errors import problems
from admitone.core.idempotency import IdempotencyKeyHeader, make_key, run_idempotent
from admitone.core.params import IdPath
from admitone.organizers.auth import CurrentCaller, WriteCaller
from admitone.webhooks import service
from admitone.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
)

router = APIRouter(prefix="/organizer", tags=["Organizer: webhooks"], responses=problems(401, 403))

Limit = Annotated[int, Query(ge=1, le=500, description="Most deliveries to return.")]
BeforeId = Annotated[
    int | None, Query(ge=1, le=2**63 - 1, description="Only deliveries older than this id (the next page).")
]
DeliveryIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
StatusFilter = Annotated[DeliveryStatus | None, Query(description="Only deliveries in this state.")]


@router.post(
    "/webhooks",
    name="create_webhook_endpoint",
    status_code=201,
    response_model=EndpointWithSecret,
)
async def create_webhook_endpoint(
    state: StateDep, caller: WriteCaller, body: EndpointCreate, idempotency_key: IdempotencyKeyHeader = None
) -> EndpointWithSecret | JSONResponse:
    """Registers an endpoint for domain events of all your events.

    The answer holds the signing `secret`; it is shown only here (and on rotation), so store it.
    """
    key = make_key(idempotency_key, f"webhook:{caller.organizer_id}", body)
    return await run_idempotent(
        state.db,
        key,
        201,
        lambda conn: service.create_endpoint(conn, caller.organizer_id, body, state.clock.now()),
    )


@router.get("/webhooks", name="list_webhook_endpoints", response_model=list[EndpointOut])
async def list_webhook_endpoints(state: StateDep, caller: CurrentCaller) -> list[EndpointOut]:
    """Your webhook endpoints (without their secrets)."""
    async with state.db.read() as conn:
        return await service.list_endpoints(conn, caller.organizer_id)


@router.get(
    "/webhook-deliveries/failed",
    name="list_failed_webhook_deliveries",
    response_model=list[DeliveryOut],
)
async def list_failed_webhook_deliveries(
    state: StateDep, caller: CurrentCaller, limit: Limit = 100, before_id: BeforeId = None
) -> list[DeliveryOut]:
    """Deliveries of all your endpoints that gave up after the last retry, newest first."""
    async with state.db.read() as conn:
        return await service.list_deliveries(conn, caller.organizer_id, None, "failed", limit, before_id)


@router.get(
    "/webhooks/{endpoint_id}",
    name="get_webhook_endpoint",
    response_model=EndpointOut,
    responses=problems(404),
)
async def get_webhook_endpoint(state: StateDep, caller: CurrentCaller, endpoint_id: IdPath) -> EndpointOut:
    """One of your webhook endpoints (its signing secret is shown only when created or rotated)."""
    async with state.db.read() as conn:
        return await service.read_endpoint(conn, caller.organizer_id, endpoint_id)


@router.patch(
    "/webhooks/{endpoint_id}",
    name="update_webhook_endpoint",
    response_model=EndpointOut,
    responses=problems(404),
)
async def update_webhook_endpoint(
    state: StateDep, caller: WriteCaller, endpoint_id: IdPath, body: EndpointUpdate
) -> EndpointOut:
    """Changes the URL, the event types, the note, or enables and disables the endpoint."""
    async with state.db.write() as conn:
        return await service.update_endpoint(conn, caller.organizer_id, endpoint_id, body, state.clock.now())


@router.delete(
    "/webhooks/{endpoint_id}",
    name="delete_webhook_endpoint",
    status_code=204,
    response_class=Response,
    responses=problems(404),
)
async def delete_webhook_endpoint(state: StateDep, caller: WriteCaller, endpoint_id: IdPath) -> Response:
    """Deletes the endpoint with its delivery history; queued deliveries are not sent."""
    async with state.db.write() as conn:
        await service.delete_endpoint(conn, caller.organizer_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    name="rotate_webhook_secret",
    response_model=EndpointWithSecret,
    responses=problems(404),
)
async def rotate_webhook_secret(
    state: StateDep, caller: WriteCaller, endpoint_id: IdPath
) -> EndpointWithSecret:
    """Replaces the signing secret. Attempts from now on are signed with the new one only."""
    async with state.db.write() as conn:
        return await service.rotate_secret(conn, caller.organizer_id, endpoint_id, state.clock.now())


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    name="list_webhook_deliveries",
    response_model=list[DeliveryOut],
    responses=problems(404),
)
async def list_webhook_deliveries(
    state: StateDep,
    caller: CurrentCaller,
    endpoint_id: IdPath,
    status: StatusFilter = None,
    limit: Limit = 100,
    before_id: BeforeId = None,
) -> list[DeliveryOut]:
    """The endpoint's deliveries, newest first."""
    async with state.db.read() as conn:
        return await service.list_deliveries(conn, caller.organizer_id, endpoint_id, status, limit, before_id)


@router.get(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}",
    name="get_webhook_delivery",
    response_model=DeliveryDetail,
    responses=problems(404),
)
async def get_webhook_delivery(
    state: StateDep, caller: CurrentCaller, endpoint_id: IdPath, delivery_id: DeliveryIdPath
) -> DeliveryDetail:
    """A delivery with the body sent and every attempt."""
    async with state.db.read() as conn:
        return await service.read_delivery(conn, caller.organizer_id, endpoint_id, delivery_id)


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    name="redeliver_webhook",
    status_code=202,
    response_model=DeliveryOut,
    responses=problems(404),
)
async def redeliver_webhook(
    state: StateDep, caller: WriteCaller, endpoint_id: IdPath, delivery_id: DeliveryIdPath
) -> DeliveryOut:
    """Queues another attempt now (with a new round of retries), also for a delivery that succeeded.

    The receiver sees the same `Admitone-Webhook-Id` again.
    """
    async with state.db.write() as conn:
        out = await service.redeliver(conn, caller.organizer_id, endpoint_id, delivery_id, utcnow())
    if state.webhooks is not None:
        state.webhooks.notify()
    return out
