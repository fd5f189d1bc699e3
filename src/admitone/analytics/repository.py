"""All SQL of analytics: the projection's writes, its reads, and the event lookups it caches."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.analytics.models import (
    COUNTERS,
    analytics_events,
    analytics_minutes,
    analytics_order_lines,
    analytics_quotas,
    analytics_seats,
    analytics_ticket_types,
)
from admitone.events.models import events, quotas, seats, sections, ticket_type_quotas, ticket_types


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    return sqlite.insert(table) if conn.dialect.name == "sqlite" else postgresql.insert(table)


# -- lookups ---------------------------------------------------------------------------------------------


@dataclass
class TicketTypeInfo:
    id: int
    name: str
    kind: str
    category: str | None
    quota_ids: tuple[int, ...]


@dataclass
class EventInfo:
    """What analytics needs to know about an event that does not change during a sale."""

    event_id: int
    organizer_id: int
    name: str
    currency: str
    venue_id: int | None
    ticket_types: dict[int, TicketTypeInfo] = field(default_factory=dict)
    quotas: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (name, capacity)
    sections: dict[int, str] = field(default_factory=dict)  # in seat-map order
    seat_section: dict[int, int] = field(default_factory=dict)
    section_categories: dict[int, Counter[str]] = field(default_factory=dict)  # seats per category


async def load_event_info(conn: AsyncConnection, event_id: int) -> EventInfo | None:
    row = (await conn.execute(sa.select(events).where(events.c.id == event_id))).first()
    if row is None:
        return None
    info = EventInfo(event_id, row.organizer_id, row.name, row.currency, row.venue_id)
    links: dict[int, list[int]] = {}
    for link in await conn.execute(
        sa.select(ticket_type_quotas)
        .join(ticket_types, ticket_types.c.id == ticket_type_quotas.c.ticket_type_id)
        .where(ticket_types.c.event_id == event_id)
    ):
        links.setdefault(link.ticket_type_id, []).append(link.quota_id)
    for tt in await conn.execute(
        sa.select(ticket_types).where(ticket_types.c.event_id == event_id).order_by(ticket_types.c.id)
    ):
        info.ticket_types[tt.id] = TicketTypeInfo(
            tt.id, tt.name, tt.kind, tt.category, tuple(sorted(links.get(tt.id, [])))
        )
    for q in await conn.execute(sa.select(quotas).where(quotas.c.event_id == event_id).order_by(quotas.c.id)):
        info.quotas[q.id] = (q.name, q.capacity)
    if row.venue_id is not None:
        for s in await conn.execute(
            sa.select(sections.c.id, sections.c.name)
            .where(sections.c.venue_id == row.venue_id)
            .order_by(sections.c.ordinal, sections.c.id)
        ):
            info.sections[s.id] = s.name
            info.section_categories[s.id] = Counter()
        for seat in await conn.execute(
            sa.select(seats.c.id, seats.c.section_id, seats.c.category).where(
                seats.c.venue_id == row.venue_id
            )
        ):
            info.seat_section[seat.id] = seat.section_id
            info.section_categories.setdefault(seat.section_id, Counter())[seat.category] += 1
    return info


# -- projection writes -----------------------------------------------------------------------------------


def _bump(table: sa.Table, stmt: Any, deltas: Mapping[str, int]) -> dict[str, Any]:
    return {name: table.c[name] + stmt.excluded[name] for name in deltas}


async def bump_event(
    conn: AsyncConnection,
    info: EventInfo,
    deltas: Mapping[str, int],
    now: dt.datetime,
    last_paid_at: dt.datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "event_id": info.event_id,
        "organizer_id": info.organizer_id,
        "currency": info.currency,
        "updated_at": now,
        **deltas,
    }
    update: dict[str, Any] = {}
    if last_paid_at is not None:
        values["last_paid_at"] = update["last_paid_at"] = last_paid_at
    stmt = _insert(conn, analytics_events).values(values)
    update.update(_bump(analytics_events, stmt, deltas), updated_at=now)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["event_id"], set_=update))


async def bump_minute(
    conn: AsyncConnection, event_id: int, bucket: dt.datetime, deltas: Mapping[str, int]
) -> None:
    stmt = _insert(conn, analytics_minutes).values(event_id=event_id, bucket=bucket, **deltas)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["event_id", "bucket"], set_=_bump(analytics_minutes, stmt, deltas)
        )
    )


async def set_quotas(conn: AsyncConnection, event_id: int, states: list[dict[str, int]]) -> None:
    stmt = _insert(conn, analytics_quotas)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["quota_id"],
            set_={"capacity": stmt.excluded.capacity, "held": stmt.excluded.held, "sold": stmt.excluded.sold},
        ),
        [{"event_id": event_id, **s} for s in states],
    )


async def set_seats(
    conn: AsyncConnection, event_id: int, free: list[int], taken: list[tuple[int, int, str]]
) -> None:
    """Removes seats that became free; records ``(seat_id, section_id, state)`` of held or sold ones."""
    if free:
        await conn.execute(
            sa.delete(analytics_seats).where(
                analytics_seats.c.event_id == event_id, analytics_seats.c.seat_id.in_(free)
            )
        )
    if taken:
        stmt = _insert(conn, analytics_seats)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["event_id", "seat_id"], set_={"state": stmt.excluded.state}
            ),
            [{"event_id": event_id, "seat_id": s, "section_id": sec, "state": st} for s, sec, st in taken],
        )


async def bump_ticket_type(conn: AsyncConnection, event_id: int, ticket_type_id: int, delta: int) -> None:
    stmt = _insert(conn, analytics_ticket_types).values(
        ticket_type_id=ticket_type_id, event_id=event_id, sold=delta
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["ticket_type_id"], set_=_bump(analytics_ticket_types, stmt, {"sold": delta})
        )
    )


async def bump_order_line(
    conn: AsyncConnection, event_id: int, order_id: str, ticket_type_id: int, delta: int
) -> None:
    stmt = _insert(conn, analytics_order_lines).values(
        order_id=order_id, ticket_type_id=ticket_type_id, event_id=event_id, quantity=delta
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["order_id", "ticket_type_id"],
            set_=_bump(analytics_order_lines, stmt, {"quantity": delta}),
        )
    )


async def order_lines(conn: AsyncConnection, order_id: str) -> list[tuple[int, int]]:
    rows = await conn.execute(
        sa.select(analytics_order_lines.c.ticket_type_id, analytics_order_lines.c.quantity).where(
            analytics_order_lines.c.order_id == order_id
        )
    )
    return [(r.ticket_type_id, r.quantity) for r in rows]


# -- reads -----------------------------------------------------------------------------------------------


def counters_of(row: Any) -> dict[str, int]:
    if row is None:
        return dict.fromkeys(COUNTERS, 0)
    m = row._mapping
    return {name: int(m[name] or 0) for name in COUNTERS}


async def event_totals(conn: AsyncConnection, event_id: int) -> sa.Row[Any] | None:
    return (
        await conn.execute(sa.select(analytics_events).where(analytics_events.c.event_id == event_id))
    ).first()


async def quota_states(conn: AsyncConnection, event_id: int) -> dict[int, tuple[int, int, int]]:
    rows = await conn.execute(sa.select(analytics_quotas).where(analytics_quotas.c.event_id == event_id))
    return {r.quota_id: (r.capacity, r.held, r.sold) for r in rows}


async def seat_counts(conn: AsyncConnection, event_id: int) -> dict[tuple[int, str], int]:
    """Held and sold seats per section: ``{(section_id, state): count}``."""
    rows = await conn.execute(
        sa.select(analytics_seats.c.section_id, analytics_seats.c.state, sa.func.count())
        .where(analytics_seats.c.event_id == event_id)
        .group_by(analytics_seats.c.section_id, analytics_seats.c.state)
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def ticket_types_sold(conn: AsyncConnection, event_id: int) -> dict[int, int]:
    rows = await conn.execute(
        sa.select(analytics_ticket_types.c.ticket_type_id, analytics_ticket_types.c.sold).where(
            analytics_ticket_types.c.event_id == event_id
        )
    )
    return {r.ticket_type_id: int(r.sold) for r in rows}


async def minutes(
    conn: AsyncConnection, event_id: int, since: dt.datetime, until: dt.datetime
) -> list[sa.Row[Any]]:
    rows = await conn.execute(
        sa.select(analytics_minutes)
        .where(
            analytics_minutes.c.event_id == event_id,
            analytics_minutes.c.bucket >= since,
            analytics_minutes.c.bucket < until,
        )
        .order_by(analytics_minutes.c.bucket)
    )
    return list(rows)


async def tickets_issued_since(conn: AsyncConnection, event_id: int, since: dt.datetime) -> int:
    value = await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(analytics_minutes.c.tickets_sold), 0)).where(
            analytics_minutes.c.event_id == event_id, analytics_minutes.c.bucket >= since
        )
    )
    return int(value or 0)


async def organizer_events(conn: AsyncConnection, organizer_id: int) -> list[sa.Row[Any]]:
    """Every event of the organizer with its totals (null counters where nothing happened yet)."""
    query = (
        sa.select(
            events.c.id.label("event_id"),
            events.c.name,
            events.c.status,
            events.c.starts_at,
            events.c.currency,
            *[analytics_events.c[name] for name in COUNTERS],
        )
        .select_from(events.outerjoin(analytics_events, analytics_events.c.event_id == events.c.id))
        .where(events.c.organizer_id == organizer_id)
        .order_by(events.c.starts_at.desc(), events.c.id.desc())
    )
    return list(await conn.execute(query))
