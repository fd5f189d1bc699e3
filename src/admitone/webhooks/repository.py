"""All SQL of webhooks: endpoints, the delivery queue and attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import Database
from admitone.events.models import events
from admitone.webhooks.models import webhook_attempts, webhook_deliveries, webhook_endpoints

E = webhook_endpoints.c
D = webhook_deliveries.c
A = webhook_attempts.c


# -- endpoints -----------------------------------------------------------------------------------------


async def insert_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    row = (
        await conn.execute(sa.insert(webhook_endpoints).values(**values).returning(webhook_endpoints))
    ).one()
    return row


async def get_endpoint(conn: AsyncConnection, organizer_id: int, endpoint_id: int) -> Any:
    query = sa.select(webhook_endpoints).where(E.id == endpoint_id, E.organizer_id == organizer_id)
    return (await conn.execute(query)).one_or_none()


async def list_endpoints(conn: AsyncConnection, organizer_id: int) -> Sequence[Any]:
    query = sa.select(webhook_endpoints).where(E.organizer_id == organizer_id).order_by(E.id)
    return (await conn.execute(query)).all()


async def update_endpoint(conn: AsyncConnection, endpoint_id: int, values: dict[str, Any]) -> Any:
    query = (
        sa.update(webhook_endpoints).where(E.id == endpoint_id).values(**values).returning(webhook_endpoints)
    )
    return (await conn.execute(query)).one()


async def delete_endpoint(conn: AsyncConnection, endpoint_id: int) -> None:
    deliveries = sa.select(D.id).where(D.endpoint_id == endpoint_id).scalar_subquery()
    await conn.execute(sa.delete(webhook_attempts).where(A.delivery_id.in_(deliveries)))
    await conn.execute(sa.delete(webhook_deliveries).where(D.endpoint_id == endpoint_id))
    await conn.execute(sa.delete(webhook_endpoints).where(E.id == endpoint_id))


# -- the consumer --------------------------------------------------------------------------------------


async def organizers_of_events(conn: AsyncConnection, event_ids: Iterable[int]) -> dict[int, int]:
    query = sa.select(events.c.id, events.c.organizer_id).where(events.c.id.in_(sorted(event_ids)))
    return {int(r.id): int(r.organizer_id) for r in (await conn.execute(query)).all()}


async def enabled_endpoints(conn: AsyncConnection, organizer_id: int) -> Sequence[Any]:
    query = sa.select(E.id, E.event_types).where(E.organizer_id == organizer_id, E.enabled.is_(True))
    return (await conn.execute(query)).all()


async def queue_deliveries(db: Database, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Inserts deliveries; one that exists already (same endpoint and event) is left alone."""
    if rows:
        await conn.execute(db.insert(webhook_deliveries).values(rows).on_conflict_do_nothing())


# -- the sender ----------------------------------------------------------------------------------------


async def claim_due(
    db: Database, conn: AsyncConnection, now: dt.datetime, lease_until: dt.datetime, claim: str, limit: int
) -> Sequence[Any]:
    """Takes up to ``limit`` due deliveries for this sender until ``lease_until``; returns them with their
    endpoint's URL and secret.

    On PostgreSQL the due rows are locked with ``SKIP LOCKED``, so several senders take different ones. On
    SQLite the write transaction is already exclusive.
    """
    due = (
        sa.select(D.id)
        .where(D.status == "pending", D.next_attempt_at <= now)
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
    )
    if db.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    await conn.execute(
        sa.update(webhook_deliveries)
        .where(D.id.in_(ids))
        .values(
            next_attempt_at=lease_until,
            claim=claim,
            attempts=D.attempts + 1,
            round_attempts=D.round_attempts + 1,
        )
    )
    query = (
        sa.select(D.id, D.event_uuid, D.event_type, D.body, D.attempts, D.round_attempts, E.url, E.secret)
        .join(webhook_endpoints, E.id == D.endpoint_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    )
    return (await conn.execute(query)).all()


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: int,
    claim: str,
    number: int,
    attempted_at: dt.datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    delivery: dict[str, Any],
) -> bool:
    """Records an attempt and, if this sender still holds the delivery, its outcome; returns whether it
    still held it (a redelivery requested meanwhile takes the delivery over)."""
    updated = await conn.execute(
        sa.update(webhook_deliveries)
        .where(D.id == delivery_id, D.claim == claim)
        .values(claim=None, last_status_code=status_code, last_error=error, **delivery)
    )
    held = updated.rowcount > 0
    if not held and await conn.scalar(sa.select(D.id).where(D.id == delivery_id)) is None:
        return False  # deleted with its endpoint meanwhile
    await conn.execute(
        sa.insert(webhook_attempts).values(
            delivery_id=delivery_id,
            number=number,
            attempted_at=attempted_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
            succeeded=delivery.get("status") == "succeeded",
        )
    )
    return held


async def next_due(conn: AsyncConnection) -> dt.datetime | None:
    value: dt.datetime | None = await conn.scalar(
        sa.select(sa.func.min(D.next_attempt_at)).where(D.status == "pending")
    )
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


# -- deliveries for the API ----------------------------------------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    organizer_id: int,
    endpoint_id: int | None,
    status: str | None,
    limit: int,
    before_id: int | None,
) -> Sequence[Any]:
    query = sa.select(webhook_deliveries).where(D.organizer_id == organizer_id)
    if endpoint_id is not None:
        query = query.where(D.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(D.status == status)
    if before_id is not None:
        query = query.where(D.id < before_id)
    return (await conn.execute(query.order_by(D.id.desc()).limit(limit))).all()


async def get_delivery(conn: AsyncConnection, organizer_id: int, endpoint_id: int, delivery_id: int) -> Any:
    query = sa.select(webhook_deliveries).where(
        D.id == delivery_id, D.endpoint_id == endpoint_id, D.organizer_id == organizer_id
    )
    return (await conn.execute(query)).one_or_none()


async def attempts_of(conn: AsyncConnection, delivery_id: int) -> Sequence[Any]:
    query = sa.select(webhook_attempts).where(A.delivery_id == delivery_id).order_by(A.id)
    return (await conn.execute(query)).all()


async def requeue(conn: AsyncConnection, delivery_id: int, now: dt.datetime) -> Any:
    """Queues a delivery for an attempt now, with a new round of retries."""
    query = (
        sa.update(webhook_deliveries)
        .where(D.id == delivery_id)
        .values(status="pending", next_attempt_at=now, round_attempts=0, claim=None)
        .returning(webhook_deliveries)
    )
    return (await conn.execute(query)).one()
