"""All SQL of venues, seat maps, events, ticket types and quotas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.events.models import (
    event_streams,
    events,
    quotas,
    seats,
    sections,
    ticket_type_quotas,
    ticket_types,
    venues,
)
from admitone.events.schemas import VenueCreate

SEAT_INSERT_CHUNK = 2000


async def insert_venue(
    conn: AsyncConnection,
    organizer_id: int,
    venue: VenueCreate,
    now: dt.datetime,
    on_progress: Any = None,
) -> int:
    venue_id = int(
        (
            await conn.execute(
                sa.insert(venues)
                .values(organizer_id=organizer_id, name=venue.name, created_at=now)
                .returning(venues.c.id)
            )
        ).scalar_one()
    )
    total = sum(len(r.seats) for s in venue.sections for r in s.rows)
    done = 0
    pending: list[dict[str, Any]] = []
    for ordinal, section in enumerate(venue.sections):
        section_id = int(
            (
                await conn.execute(
                    sa.insert(sections)
                    .values(venue_id=venue_id, name=section.name, ordinal=ordinal)
                    .returning(sections.c.id)
                )
            ).scalar_one()
        )
        for row_ordinal, row in enumerate(section.rows):
            for seat in row.seats:
                pending.append(
                    {
                        "venue_id": venue_id,
                        "section_id": section_id,
                        "row_label": row.label,
                        "row_ordinal": row_ordinal,
                        "number": seat.number,
                        "label": seat.label or f"{section.name} {row.label}-{seat.number}",
                        "x": seat.x,
                        "y": seat.y,
                        "category": seat.category,
                    }
                )
                if len(pending) >= SEAT_INSERT_CHUNK:
                    await conn.execute(sa.insert(seats), pending)
                    done += len(pending)
                    pending = []
                    if on_progress:
                        on_progress(done, total)
    if pending:
        await conn.execute(sa.insert(seats), pending)
        done += len(pending)
    if on_progress:
        on_progress(done, total)
    return venue_id


async def get_venue(conn: AsyncConnection, venue_id: int) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(venues).where(venues.c.id == venue_id))).first()


async def list_venues(conn: AsyncConnection, organizer_id: int) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(
            sa.select(venues).where(venues.c.organizer_id == organizer_id).order_by(venues.c.id)
        )
    )


async def section_counts(conn: AsyncConnection, venue_id: int) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(
            sa.select(sections.c.id, sections.c.name, sa.func.count(seats.c.id).label("seat_count"))
            .outerjoin(seats, seats.c.section_id == sections.c.id)
            .where(sections.c.venue_id == venue_id)
            .group_by(sections.c.id, sections.c.name, sections.c.ordinal)
            .order_by(sections.c.ordinal)
        )
    )


async def venue_seats(conn: AsyncConnection, venue_id: int) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(
            sa.select(seats, sections.c.name.label("section"))
            .join(sections, sections.c.id == seats.c.section_id)
            .where(seats.c.venue_id == venue_id)
            .order_by(seats.c.id)
        )
    )


async def insert_event(conn: AsyncConnection, values: dict[str, Any]) -> int:
    event_id = int((await conn.execute(sa.insert(events).values(values).returning(events.c.id))).scalar_one())
    await conn.execute(sa.insert(event_streams).values(event_id=event_id, last_seq=0))
    return event_id


async def slug_taken(conn: AsyncConnection, slug: str) -> bool:
    return (await conn.execute(sa.select(events.c.id).where(events.c.slug == slug))).first() is not None


async def get_event(conn: AsyncConnection, event_id: int) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(events).where(events.c.id == event_id))).first()


async def update_event(conn: AsyncConnection, event_id: int, values: dict[str, Any]) -> None:
    await conn.execute(sa.update(events).where(events.c.id == event_id).values(values))
    await config_changed(conn, event_id)


async def config_changed(conn: AsyncConnection, event_id: int) -> None:
    """The event, its ticket types or their quota links changed in this transaction: hold writers that
    cached them (``inventory/engine.py``) reload them on their next batch."""
    await conn.execute(
        sa.update(event_streams)
        .where(event_streams.c.event_id == event_id)
        .values(config_version=event_streams.c.config_version + 1)
    )


async def list_events(
    conn: AsyncConnection,
    *,
    organizer_id: int | None = None,
    published_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[sa.Row[Any]]:
    query = sa.select(events)
    if organizer_id is not None:
        query = query.where(events.c.organizer_id == organizer_id)
    if published_only:
        query = query.where(events.c.status != "draft")
    return list(
        await conn.execute(query.order_by(events.c.starts_at, events.c.id).limit(limit).offset(offset))
    )


async def insert_quota(conn: AsyncConnection, event_id: int, name: str, capacity: int) -> int:
    return int(
        (
            await conn.execute(
                sa.insert(quotas)
                .values(event_id=event_id, name=name, capacity=capacity, held=0, sold=0)
                .returning(quotas.c.id)
            )
        ).scalar_one()
    )


async def set_quota_capacity(conn: AsyncConnection, quota_id: int, capacity: int) -> bool:
    result = await conn.execute(
        sa.update(quotas)
        .where(quotas.c.id == quota_id, quotas.c.held + quotas.c.sold <= capacity)
        .values(capacity=capacity)
    )
    return result.rowcount == 1


async def event_quotas(conn: AsyncConnection, event_id: int) -> list[sa.Row[Any]]:
    return list(
        await conn.execute(sa.select(quotas).where(quotas.c.event_id == event_id).order_by(quotas.c.id))
    )


async def insert_ticket_type(conn: AsyncConnection, values: dict[str, Any], quota_ids: list[int]) -> int:
    tt_id = int(
        (await conn.execute(sa.insert(ticket_types).values(values).returning(ticket_types.c.id))).scalar_one()
    )
    if quota_ids:
        await conn.execute(
            sa.insert(ticket_type_quotas), [{"ticket_type_id": tt_id, "quota_id": q} for q in quota_ids]
        )
    await config_changed(conn, int(values["event_id"]))
    return tt_id
