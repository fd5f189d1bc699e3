"""The rules of webhooks: endpoints of an organizer, which events go where, retries and their backoff."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.errors import NotFound
from admitone.webhooks import repository as repo
from admitone.webhooks.schemas import (
    ALL_TYPES,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
)

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def endpoint_out(row: sa.Row[Any]) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def with_secret(row: sa.Row[Any]) -> EndpointWithSecret:
    return EndpointWithSecret(**endpoint_out(row).model_dump(), secret=row.secret)


async def own_endpoint(conn: AsyncConnection, organizer_id: int, endpoint_id: int) -> sa.Row[Any]:
    row: sa.Row[Any] | None = await repo.get_endpoint(conn, organizer_id, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id} belongs to your organizer.")
    return row


async def create_endpoint(
    conn: AsyncConnection, organizer_id: int, data: EndpointCreate, now: dt.datetime
) -> EndpointWithSecret:
    row = await repo.insert_endpoint(
        conn,
        {
            "organizer_id": organizer_id,
            "url": data.url,
            "event_types": data.event_types,
            "description": data.description,
            "enabled": data.enabled,
            "secret": new_secret(),
            "created_at": now,
            "updated_at": now,
        },
    )
    return with_secret(row)


async def list_endpoints(conn: AsyncConnection, organizer_id: int) -> list[EndpointOut]:
    return [endpoint_out(r) for r in await repo.list_endpoints(conn, organizer_id)]


async def read_endpoint(conn: AsyncConnection, organizer_id: int, endpoint_id: int) -> EndpointOut:
    return endpoint_out(await own_endpoint(conn, organizer_id, endpoint_id))


async def update_endpoint(
    conn: AsyncConnection, organizer_id: int, endpoint_id: int, data: EndpointUpdate, now: dt.datetime
) -> EndpointOut:
    await own_endpoint(conn, organizer_id, endpoint_id)
    values = data.model_dump(exclude_unset=True, exclude_none=True)
    values["updated_at"] = now
    return endpoint_out(await repo.update_endpoint(conn, endpoint_id, values))


async def rotate_secret(
    conn: AsyncConnection, organizer_id: int, endpoint_id: int, now: dt.datetime
) -> EndpointWithSecret:
    """A new secret, used from the next attempt on; the old one stops working at once."""
    await own_endpoint(conn, organizer_id, endpoint_id)
    return with_secret(
        await repo.update_endpoint(conn, endpoint_id, {"secret": new_secret(), "updated_at": now})
    )


async def delete_endpoint(conn: AsyncConnection, organizer_id: int, endpoint_id: int) -> None:
    """Deletes the endpoint with its deliveries and their attempts."""
    await own_endpoint(conn, organizer_id, endpoint_id)
    await repo.delete_endpoint(conn, endpoint_id)


def subscribes(event_types: list[str], event_type: str) -> bool:
    return ALL_TYPES in event_types or event_type in event_types


# -- retries -------------------------------------------------------------------------------------------


def backoff_window(attempt: int, base_ms: int, cap_ms: int) -> float:
    """The longest wait after the ``attempt``-th failed attempt, in seconds: base * 2^(attempt-1), capped."""
    exponent = min(max(attempt - 1, 0), 62)
    return float(min(cap_ms, base_ms * 2**exponent)) / 1000


def full_jitter(window: float) -> float:
    """A wait drawn uniformly from [0, window] ("full jitter"): failed senders do not retry in step."""
    return random.uniform(0, window)


def outcome(
    succeeded: bool,
    round_attempts: int,
    now: dt.datetime,
    *,
    max_attempts: int,
    base_ms: int,
    cap_ms: int,
    jitter: Callable[[float], float] = full_jitter,
) -> dict[str, Any]:
    """The delivery's new state after an attempt: delivered, failed for good, or due again later."""
    if succeeded:
        return {"status": "succeeded", "delivered_at": now, "next_attempt_at": None}
    if round_attempts >= max_attempts:
        return {"status": "failed", "next_attempt_at": None}
    wait = jitter(backoff_window(round_attempts, base_ms, cap_ms))
    return {"status": "pending", "next_attempt_at": now + dt.timedelta(seconds=wait)}


# -- deliveries ----------------------------------------------------------------------------------------


def delivery_out(row: sa.Row[Any]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        webhook_id=row.event_uuid,
        event_type=row.event_type,
        event_id=row.event_id,
        sequence=row.sequence,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


async def list_deliveries(
    conn: AsyncConnection,
    organizer_id: int,
    endpoint_id: int | None,
    status: DeliveryStatus | None,
    limit: int,
    before_id: int | None,
) -> list[DeliveryOut]:
    if endpoint_id is not None:
        await own_endpoint(conn, organizer_id, endpoint_id)
    rows = await repo.list_deliveries(conn, organizer_id, endpoint_id, status, limit, before_id)
    return [delivery_out(r) for r in rows]


async def _own_delivery(
    conn: AsyncConnection, organizer_id: int, endpoint_id: int, delivery_id: int
) -> sa.Row[Any]:
    row: sa.Row[Any] | None = await repo.get_delivery(conn, organizer_id, endpoint_id, delivery_id)
    if row is None:
        raise NotFound(
            f"No delivery {delivery_id} of webhook endpoint {endpoint_id} belongs to your organizer."
        )
    return row


async def read_delivery(
    conn: AsyncConnection, organizer_id: int, endpoint_id: int, delivery_id: int
) -> DeliveryDetail:
    row = await _own_delivery(conn, organizer_id, endpoint_id, delivery_id)
    attempts = [
        AttemptOut(
            number=a.number,
            attempted_at=a.attempted_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            succeeded=a.succeeded,
        )
        for a in await repo.attempts_of(conn, delivery_id)
    ]
    return DeliveryDetail(**delivery_out(row).model_dump(), attempts_log=attempts, body=dict(row.body))


async def redeliver(
    conn: AsyncConnection, organizer_id: int, endpoint_id: int, delivery_id: int, now: dt.datetime
) -> DeliveryOut:
    """Queues another attempt now, whatever the delivery's state, with a new round of retries. The
    receiver gets the same ``Admitone-Webhook-Id`` again."""
    await _own_delivery(conn, organizer_id, endpoint_id, delivery_id)
    return delivery_out(await repo.requeue(conn, delivery_id, now))
