"""All SQL of orders, payments and tickets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.events.models import seats, ticket_types
from admitone.orders.models import order_lines, orders, payments, tickets


async def expire_for_holds(conn: AsyncConnection, hold_ids: Sequence[str], now: dt.datetime) -> list[str]:
    rows = await conn.execute(
        sa.update(orders)
        .where(orders.c.hold_id.in_(list(hold_ids)), orders.c.status == "pending_payment")
        .values(status="expired", closed_at=now)
        .returning(orders.c.id)
    )
    ids = [r.id for r in rows]
    if ids:
        await conn.execute(
            sa.update(payments)
            .where(payments.c.order_id.in_(ids), payments.c.status == "pending")
            .values(status="cancelled", updated_at=now)
        )
    return ids


async def insert_order(conn: AsyncConnection, values: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    await conn.execute(sa.insert(orders).values(values))
    await conn.execute(sa.insert(order_lines), lines)


async def get_order(conn: AsyncConnection, order_id: str) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(orders).where(orders.c.id == order_id))).first()


async def order_of_hold(conn: AsyncConnection, hold_id: str) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(orders).where(orders.c.hold_id == hold_id))).first()


async def set_order(conn: AsyncConnection, order_id: str, **values: Any) -> None:
    await conn.execute(sa.update(orders).where(orders.c.id == order_id).values(values))


async def lines_of(conn: AsyncConnection, order_id: str) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(
            sa.select(order_lines).where(order_lines.c.order_id == order_id).order_by(order_lines.c.id)
        )
    )


async def insert_payment(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(sa.insert(payments).values(values))


async def get_payment(conn: AsyncConnection, payment_id: str) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(payments).where(payments.c.id == payment_id))).first()


async def payment_of(conn: AsyncConnection, order_id: str) -> sa.Row[Any] | None:
    return (
        await conn.execute(
            sa.select(payments).where(payments.c.order_id == order_id).order_by(payments.c.created_at.desc())
        )
    ).first()


async def set_payment(conn: AsyncConnection, payment_id: str, status: str, now: dt.datetime) -> None:
    await conn.execute(
        sa.update(payments).where(payments.c.id == payment_id).values(status=status, updated_at=now)
    )


async def insert_tickets(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    result = await conn.execute(
        sa.insert(tickets).returning(tickets.c.id, sort_by_parameter_order=True), rows
    )
    return [r.id for r in result]


async def tickets_of(conn: AsyncConnection, order_id: str) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(
            sa.select(tickets, ticket_types.c.name.label("ticket_type"), seats.c.label.label("seat_label"))
            .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
            .outerjoin(seats, seats.c.id == tickets.c.seat_id)
            .where(tickets.c.order_id == order_id)
            .order_by(tickets.c.id)
        )
    )


async def void_tickets(conn: AsyncConnection, order_id: str) -> None:
    await conn.execute(sa.update(tickets).where(tickets.c.order_id == order_id).values(status="void"))


async def orders_of_event(
    conn: AsyncConnection, organizer_id: int, event_id: int, status: str | None, limit: int, offset: int
) -> list[sa.Row[Any]]:
    query = sa.select(orders).where(orders.c.organizer_id == organizer_id, orders.c.event_id == event_id)
    if status:
        query = query.where(orders.c.status == status)
    return list(
        await conn.execute(
            query.order_by(orders.c.created_at.desc(), orders.c.id).limit(limit).offset(offset)
        )
    )
