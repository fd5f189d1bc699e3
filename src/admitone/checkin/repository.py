"""All SQL of check-in: finding a scanned ticket, marking it used (once), counting who is in."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.events.models import events, seats, ticket_types
from admitone.orders.models import tickets

_TICKET = (
    sa.select(
        tickets.c.id,
        tickets.c.code,
        tickets.c.order_id,
        tickets.c.event_id,
        tickets.c.ticket_type_id,
        tickets.c.seat_id,
        tickets.c.status,
        tickets.c.checked_in_at,
        tickets.c.checked_in_by,
        ticket_types.c.name.label("ticket_type"),
        seats.c.label.label("seat_label"),
    )
    .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
    .outerjoin(seats, seats.c.id == tickets.c.seat_id)
)


async def ticket_by_id(conn: AsyncConnection, ticket_id: int) -> Any:
    return (await conn.execute(_TICKET.where(tickets.c.id == ticket_id))).first()


async def ticket_by_code(conn: AsyncConnection, code: str) -> Any:
    return (await conn.execute(_TICKET.where(tickets.c.code == code))).first()


async def event_owner_and_name(conn: AsyncConnection, event_id: int) -> Any:
    return (
        await conn.execute(sa.select(events.c.organizer_id, events.c.name).where(events.c.id == event_id))
    ).first()


async def mark_checked_in(conn: AsyncConnection, ticket_id: int, now: dt.datetime, scanner: str) -> bool:
    """Marks a valid, unused ticket used; False when another scan (or a refund) came first."""
    result = await conn.execute(
        sa.update(tickets)
        .where(
            tickets.c.id == ticket_id,
            tickets.c.checked_in_at.is_(None),
            tickets.c.status == "valid",
        )
        .values(checked_in_at=now, checked_in_by=scanner)
    )
    return result.rowcount == 1


async def counts(conn: AsyncConnection, event_id: int) -> tuple[int, int]:
    """``(checked in, total)`` over the event's valid tickets."""
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(tickets.c.checked_in_at),
                sa.func.count(),
            ).where(tickets.c.event_id == event_id, tickets.c.status == "valid")
        )
    ).one()
    return int(row[0]), int(row[1])
