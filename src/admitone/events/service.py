"""Rules for venues, events, ticket types and quotas. Never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.errors import Conflict, InvalidRequest, NotFound
from admitone.events import repository as repo
from admitone.events.schemas import (
    EventCreate,
    EventOut,
    EventSummary,
    EventUpdate,
    QuotaCreate,
    QuotaOut,
    SeatOut,
    SectionOut,
    TicketTypeCreate,
    TicketTypeOut,
    VenueCreate,
    VenueOut,
)
from admitone.inventory import repository as inventory_repo

TRANSITIONS = {
    "draft": {"on_sale", "cancelled"},
    "on_sale": {"ended", "cancelled"},
    "ended": set(),
    "cancelled": set(),
}


async def create_venue(
    conn: AsyncConnection,
    organizer_id: int,
    venue: VenueCreate,
    now: dt.datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> VenueOut:
    venue_id = await repo.insert_venue(conn, organizer_id, venue, now, on_progress)
    return await read_venue(conn, organizer_id, venue_id)


async def _own_venue(conn: AsyncConnection, organizer_id: int, venue_id: int) -> Any:
    row = await repo.get_venue(conn, venue_id)
    if row is None or row.organizer_id != organizer_id:
        # Another organizer's venue is reported exactly like a missing one.
        raise NotFound(f"No venue {venue_id} belongs to your organizer.")
    return row


async def read_venue(conn: AsyncConnection, organizer_id: int, venue_id: int) -> VenueOut:
    row = await _own_venue(conn, organizer_id, venue_id)
    counts = await repo.section_counts(conn, venue_id)
    return VenueOut(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        seat_count=sum(c.seat_count for c in counts),
        sections=[SectionOut(id=c.id, name=c.name, seat_count=c.seat_count) for c in counts],
    )


async def list_venues(conn: AsyncConnection, organizer_id: int) -> list[VenueOut]:
    return [await read_venue(conn, organizer_id, v.id) for v in await repo.list_venues(conn, organizer_id)]


async def venue_seats(conn: AsyncConnection, organizer_id: int, venue_id: int) -> list[SeatOut]:
    await _own_venue(conn, organizer_id, venue_id)
    return [
        SeatOut(
            id=s.id,
            section_id=s.section_id,
            section=s.section,
            row=s.row_label,
            number=s.number,
            label=s.label,
            x=s.x,
            y=s.y,
            category=s.category,
        )
        for s in await repo.venue_seats(conn, venue_id)
    ]


async def create_event(
    conn: AsyncConnection, organizer_id: int, data: EventCreate, now: dt.datetime
) -> EventOut:
    if data.venue_id is not None:
        await _own_venue(conn, organizer_id, data.venue_id)
    if await repo.slug_taken(conn, data.slug):
        raise Conflict(f"The slug '{data.slug}' is taken; choose another.")
    event_id = await repo.insert_event(
        conn,
        {
            "organizer_id": organizer_id,
            "venue_id": data.venue_id,
            "name": data.name,
            "slug": data.slug,
            "description": data.description,
            "starts_at": data.starts_at,
            "timezone": data.timezone,
            "sales_open_at": data.sales_open_at,
            "sales_close_at": data.sales_close_at,
            "status": data.status,
            "currency": data.currency,
            "created_at": now,
        },
    )
    return await read_event(conn, event_id)


async def own_event(conn: AsyncConnection, organizer_id: int, event_id: int) -> Any:
    row = await repo.get_event(conn, event_id)
    if row is None or row.organizer_id != organizer_id:
        raise NotFound(f"No event {event_id} belongs to your organizer.")
    return row


async def update_event(
    conn: AsyncConnection, organizer_id: int, event_id: int, data: EventUpdate
) -> EventOut:
    row = await own_event(conn, organizer_id, event_id)
    values = data.model_dump(exclude_unset=True, exclude_none=True)
    status = values.get("status")
    if status and status != row.status and status not in TRANSITIONS[row.status]:
        allowed = ", ".join(sorted(TRANSITIONS[row.status])) or "nothing"
        raise Conflict(
            f"An event that is {row.status.replace('_', ' ')} can move to {allowed}, not to {status}."
        )
    opens = values.get("sales_open_at", row.sales_open_at)
    closes = values.get("sales_close_at", row.sales_close_at)
    if opens and closes and closes <= opens:
        raise InvalidRequest("sales_close_at must be after sales_open_at.")
    if values:
        await repo.update_event(conn, event_id, values)
    return await read_event(conn, event_id)


async def read_event(conn: AsyncConnection, event_id: int) -> EventOut:
    row = await repo.get_event(conn, event_id)
    if row is None:
        raise NotFound(f"No event {event_id}.")
    types = await inventory_repo.load_ticket_types(conn, event_id)
    return EventOut(
        id=row.id,
        name=row.name,
        slug=row.slug,
        description=row.description,
        venue_id=row.venue_id,
        starts_at=row.starts_at,
        timezone=row.timezone,
        sales_open_at=row.sales_open_at,
        sales_close_at=row.sales_close_at,
        status=row.status,
        currency=row.currency,
        ticket_types=[
            TicketTypeOut(
                id=t.id,
                name=t.name,
                kind=t.kind,
                category=t.category,
                price_minor=t.price_minor,
                currency=t.currency,
                min_per_order=t.min_per_order,
                max_per_order=t.max_per_order,
                quota_ids=list(t.quota_ids),
            )
            for t in sorted(types.values(), key=lambda t: t.id)
        ],
    )


def summary(row: Any) -> EventSummary:
    return EventSummary(
        id=row.id,
        name=row.name,
        slug=row.slug,
        starts_at=row.starts_at,
        timezone=row.timezone,
        status=row.status,
        seated=row.venue_id is not None,
    )


async def create_quota(
    conn: AsyncConnection, organizer_id: int, event_id: int, data: QuotaCreate
) -> QuotaOut:
    await own_event(conn, organizer_id, event_id)
    quota_id = await repo.insert_quota(conn, event_id, data.name, data.capacity)
    return QuotaOut(
        id=quota_id, name=data.name, capacity=data.capacity, held=0, sold=0, available=data.capacity
    )


async def list_quotas(
    conn: AsyncConnection, organizer_id: int, event_id: int, now: dt.datetime
) -> list[QuotaOut]:
    """Quota use as buyers see it: holds past their deadline count as free even before the sweep."""
    await own_event(conn, organizer_id, event_id)
    lapsed = await inventory_repo.expired_usage(conn, event_id, now)
    return [
        QuotaOut(
            id=q.id,
            name=q.name,
            capacity=q.capacity,
            held=q.held - lapsed.get(q.id, 0),
            sold=q.sold,
            available=q.capacity - q.held + lapsed.get(q.id, 0) - q.sold,
        )
        for q in await repo.event_quotas(conn, event_id)
    ]


async def create_ticket_type(
    conn: AsyncConnection, organizer_id: int, event_id: int, data: TicketTypeCreate, now: dt.datetime
) -> TicketTypeOut:
    event = await own_event(conn, organizer_id, event_id)
    own_quotas = {q.id for q in await repo.event_quotas(conn, event_id)}
    foreign = [q for q in data.quota_ids if q not in own_quotas]
    if foreign:
        raise InvalidRequest(f"Quotas {foreign} do not belong to event {event_id}.")
    if data.kind == "seated":
        if event.venue_id is None:
            raise InvalidRequest("Seated ticket types need an event with a venue seat map.")
        existing = await inventory_repo.load_ticket_types(conn, event_id)
        if any(t.kind == "seated" and t.category == data.category for t in existing.values()):
            raise Conflict(f"Category '{data.category}' already has a seated ticket type in this event.")
    values = {
        "event_id": event_id,
        "name": data.name,
        "kind": data.kind,
        "category": data.category,
        "price_minor": data.price_minor,
        "currency": event.currency,
        "min_per_order": data.min_per_order,
        "max_per_order": data.max_per_order,
        "created_at": now,
    }
    tt_id = await repo.insert_ticket_type(conn, values, data.quota_ids)
    return TicketTypeOut(
        id=tt_id,
        name=data.name,
        kind=data.kind,
        category=data.category,
        price_minor=data.price_minor,
        currency=event.currency,
        min_per_order=data.min_per_order,
        max_per_order=data.max_per_order,
        quota_ids=data.quota_ids,
    )
