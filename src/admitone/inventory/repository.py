"""All SQL of the inventory: holds, their lines, seat claims and quota counters."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import insert_from_document, insert_many, json_rows, together, unnested_arrays
from admitone.events.models import events, quotas, seats, sections, ticket_type_quotas, ticket_types
from admitone.inventory.allocation import (
    EventInfo,
    HoldDraft,
    QuotaInfo,
    SeatInfo,
    TicketTypeInfo,
    VenueLayout,
)
from admitone.inventory.models import hold_lines, holds, seat_claims
from admitone.outbox.repository import EventStream, flush_writes

LIVE_HOLD = ("active", "ordered")


class InventoryConflict(Exception):
    """The database refused a change the allocator thought safe; the batch is retried one by one."""


async def load_event(conn: AsyncConnection, event_id: int) -> EventInfo | None:
    row = (
        await conn.execute(
            sa.select(
                events.c.id,
                events.c.status,
                events.c.venue_id,
                events.c.currency,
                events.c.sales_open_at,
                events.c.sales_close_at,
            ).where(events.c.id == event_id)
        )
    ).first()
    if row is None:
        return None
    return EventInfo(row.id, row.status, row.venue_id, row.currency, row.sales_open_at, row.sales_close_at)


async def load_ticket_types(conn: AsyncConnection, event_id: int) -> dict[int, TicketTypeInfo]:
    rows = (await conn.execute(sa.select(ticket_types).where(ticket_types.c.event_id == event_id))).all()
    links = await quota_ids_for_types(conn, [r.id for r in rows])
    return {
        r.id: TicketTypeInfo(
            r.id,
            r.name,
            r.kind,
            r.category,
            r.price_minor,
            r.currency,
            r.min_per_order,
            r.max_per_order,
            tuple(links.get(r.id, ())),
        )
        for r in rows
    }


async def quota_ids_for_types(conn: AsyncConnection, type_ids: Sequence[int]) -> dict[int, list[int]]:
    if not type_ids:
        return {}
    rows = await conn.execute(
        sa.select(ticket_type_quotas).where(ticket_type_quotas.c.ticket_type_id.in_(type_ids))
    )
    out: dict[int, list[int]] = {}
    for r in rows:
        out.setdefault(r.ticket_type_id, []).append(r.quota_id)
    return out


async def load_quotas(
    conn: AsyncConnection, event_id: int, ids: Iterable[int] | None = None
) -> dict[int, QuotaInfo]:
    query = sa.select(quotas).where(quotas.c.event_id == event_id)
    if ids is not None:
        query = query.where(quotas.c.id.in_(list(ids)))
    rows = await conn.execute(query.order_by(quotas.c.id))
    return {r.id: QuotaInfo(r.id, r.name, r.capacity, r.held, r.sold) for r in rows}


async def load_layout(conn: AsyncConnection, venue_id: int) -> VenueLayout:
    section_rows = await conn.execute(
        sa.select(sections.c.id, sections.c.name, sections.c.ordinal).where(sections.c.venue_id == venue_id)
    )
    section_map = {r.id: (r.name, r.ordinal) for r in section_rows}
    seat_rows = await conn.execute(sa.select(seats).where(seats.c.venue_id == venue_id))
    infos = [
        SeatInfo(
            r.id,
            r.section_id,
            section_map[r.section_id][0],
            r.row_label,
            r.row_ordinal,
            r.number,
            r.label,
            r.category,
            r.x,
        )
        for r in seat_rows
    ]
    return VenueLayout.build(venue_id, infos, section_map)


async def claimed_seats(
    conn: AsyncConnection, event_id: int, seat_ids: Collection[int] | None = None
) -> dict[int, tuple[str, dt.datetime | None]]:
    """Claims of the event (all, or of the given seats) as seat id -> (state, expires_at)."""
    query = sa.select(seat_claims.c.seat_id, seat_claims.c.state, seat_claims.c.expires_at).where(
        seat_claims.c.event_id == event_id
    )
    if seat_ids is not None:
        if not seat_ids:
            return {}
        query = query.where(seat_claims.c.seat_id.in_(list(seat_ids)))
    return {r.seat_id: (r.state, r.expires_at) for r in await conn.execute(query)}


def hold_rows(
    drafts: Sequence[HoldDraft],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of new holds: holds, hold lines, seat claims."""
    hold_rows = [
        {
            "id": d.id,
            "event_id": d.event_id,
            "status": "active",
            "created_at": d.created_at,
            "expires_at": d.expires_at,
            "total_minor": d.total_minor,
            "currency": d.currency,
        }
        for d in drafts
    ]
    line_rows = [
        {
            "hold_id": d.id,
            "ticket_type_id": line.ticket_type.id,
            "seat_id": line.seat.id if line.seat else None,
            "quantity": line.quantity,
            "unit_price_minor": line.ticket_type.price_minor,
        }
        for d in drafts
        for line in d.lines
    ]
    claim_rows = [
        {
            "event_id": d.event_id,
            "seat_id": line.seat.id,
            "hold_id": d.id,
            "state": "held",
            "expires_at": d.expires_at,
        }
        for d in drafts
        for line in d.lines
        if line.seat is not None
    ]
    return hold_rows, line_rows, claim_rows


async def insert_holds(conn: AsyncConnection, drafts: Sequence[HoldDraft]) -> None:
    held, lines, claims = hold_rows(drafts)
    await insert_many(conn, holds, held)
    await insert_many(conn, hold_lines, lines)
    if claims:
        await insert_many(conn, seat_claims, claims)


async def place_holds_together(
    conn: AsyncConnection,
    drafts: Sequence[HoldDraft],
    deltas: Counter[int],
    stream: EventStream,
) -> None:
    """PostgreSQL: what ``insert_holds``, ``add_to_quotas(conn, "held", deltas)`` and ``stream.flush()``
    (the batch's outbox rows) do, in one statement.

    The quota counters take the same conditional update; if one refuses, the statement still ran, so
    :class:`InventoryConflict` is raised and the caller's transaction rolls everything back.
    """
    held, lines, claims = hold_rows(drafts)
    changes = sorted((q, d) for q, d in deltas.items() if d > 0)
    parameters: dict[str, Any] = {
        "holds_rows": json_rows(holds, held),
        "lines_rows": json_rows(hold_lines, lines),
        "delta_quota_ids": [q for q, _ in changes],
        "delta_amounts": [d for _, d in changes],
        **stream.flush_parameters(),
    }
    if claims:
        parameters["claims_rows"] = json_rows(seat_claims, claims)
    statement = _place_statement(tuple(held[0]), tuple(lines[0]), tuple(claims[0]) if claims else None)
    updated = (await conn.execute(statement, parameters)).scalar_one()
    if updated != len(changes):
        raise InventoryConflict(f"{len(changes) - updated} of the quotas {[q for q, _ in changes]} refused")


@functools.cache
def _place_statement(
    hold_columns: tuple[str, ...], line_columns: tuple[str, ...], claim_columns: tuple[str, ...] | None
) -> sa.Select[Any]:
    """The statement of :func:`place_holds_together` for rows with these columns, built once per shape
    (general admission only, or with seat claims); everything that varies is a named parameter."""
    writes: list[sa.UpdateBase] = [
        insert_from_document(holds, hold_columns, "holds_rows"),
        insert_from_document(hold_lines, line_columns, "lines_rows"),
    ]
    if claim_columns is not None:
        writes.append(insert_from_document(seat_claims, claim_columns, "claims_rows"))
    writes.extend(flush_writes())
    given = unnested_arrays(
        "delta",
        quota_id=(quotas.c.id.type, "delta_quota_ids"),
        amount=(quotas.c.held.type, "delta_amounts"),
    )
    counted = (
        sa.update(quotas)
        .where(
            quotas.c.id == given.c.quota_id,
            quotas.c.held + quotas.c.sold + given.c.amount <= quotas.c.capacity,
        )
        .values(held=quotas.c.held + given.c.amount)
        .returning(quotas.c.id)
        .cte("counted")
    )
    return together(writes, sa.select(sa.func.count()).select_from(counted))


async def add_to_quotas(conn: AsyncConnection, column: str, deltas: Counter[int]) -> dict[int, QuotaInfo]:
    """Adds ``deltas`` to the ``held`` or ``sold`` counter, refusing to pass capacity or go below zero.

    Returns the changed quotas as they are after the change (quotas with a zero delta are left out)."""
    col = quotas.c[column]
    changed: dict[int, QuotaInfo] = {}
    for quota_id, delta in sorted(deltas.items()):
        if delta == 0:
            continue
        query = sa.update(quotas).where(quotas.c.id == quota_id).values({column: col + delta})
        if delta > 0:
            query = query.where(quotas.c.held + quotas.c.sold + delta <= quotas.c.capacity)
        else:
            query = query.where(col + delta >= 0)
        row = (
            await conn.execute(
                query.returning(quotas.c.id, quotas.c.name, quotas.c.capacity, quotas.c.held, quotas.c.sold)
            )
        ).first()
        if row is None:
            raise InventoryConflict(f"quota {quota_id} refused {column} {delta:+d}")
        changed[quota_id] = QuotaInfo(row[0], row[1], row[2], row[3], row[4])
    return changed


def due_exists(event_id: int, now: dt.datetime) -> sa.Exists:
    """Whether the event has holds (or unpaid orders' holds) whose deadline has passed."""
    return sa.exists().where(
        holds.c.event_id == event_id, holds.c.status.in_(LIVE_HOLD), holds.c.expires_at <= now
    )


async def move_held_to_sold(conn: AsyncConnection, deltas: Counter[int]) -> None:
    for quota_id, n in sorted(deltas.items()):
        result = await conn.execute(
            sa.update(quotas)
            .where(quotas.c.id == quota_id, quotas.c.held >= n)
            .values(held=quotas.c.held - n, sold=quotas.c.sold + n)
        )
        if result.rowcount != 1:
            raise InventoryConflict(f"quota {quota_id} has fewer than {n} held")


async def due_holds(conn: AsyncConnection, event_id: int, now: dt.datetime, limit: int) -> list[Any]:
    rows = await conn.execute(
        sa.select(holds.c.id, holds.c.status)
        .where(holds.c.event_id == event_id, holds.c.status.in_(LIVE_HOLD), holds.c.expires_at <= now)
        .order_by(holds.c.expires_at)
        .limit(limit)
    )
    return list(rows.all())


async def events_with_due_holds(conn: AsyncConnection, now: dt.datetime, limit: int) -> list[int]:
    rows = await conn.execute(
        sa.select(holds.c.event_id)
        .where(holds.c.status.in_(LIVE_HOLD), holds.c.expires_at <= now)
        .group_by(holds.c.event_id)
        .limit(limit)
    )
    return [r.event_id for r in rows]


async def get_hold(conn: AsyncConnection, hold_id: str) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(holds).where(holds.c.id == hold_id))).first()


async def lines_of(conn: AsyncConnection, hold_ids: Sequence[str]) -> list[sa.Row[Any]]:
    rows = await conn.execute(
        sa.select(hold_lines, ticket_types.c.name.label("ticket_type"), seats.c.label.label("seat_label"))
        .join(ticket_types, ticket_types.c.id == hold_lines.c.ticket_type_id)
        .outerjoin(seats, seats.c.id == hold_lines.c.seat_id)
        .where(hold_lines.c.hold_id.in_(list(hold_ids)))
        .order_by(hold_lines.c.id)
    )
    return list(rows)


async def quota_usage(conn: AsyncConnection, hold_ids: Sequence[str]) -> Counter[int]:
    """How much of each quota the given holds use."""
    rows = await conn.execute(
        sa.select(ticket_type_quotas.c.quota_id, sa.func.sum(hold_lines.c.quantity).label("n"))
        .join(ticket_type_quotas, ticket_type_quotas.c.ticket_type_id == hold_lines.c.ticket_type_id)
        .where(hold_lines.c.hold_id.in_(list(hold_ids)))
        .group_by(ticket_type_quotas.c.quota_id)
    )
    return Counter({r.quota_id: int(r.n) for r in rows})


async def delete_claims(conn: AsyncConnection, hold_ids: Sequence[str]) -> list[int]:
    rows = await conn.execute(
        sa.delete(seat_claims)
        .where(seat_claims.c.hold_id.in_(list(hold_ids)))
        .returning(seat_claims.c.seat_id)
    )
    return [r.seat_id for r in rows]


async def set_hold_state(
    conn: AsyncConnection,
    hold_ids: Sequence[str],
    status: str,
    expires_at: dt.datetime | None,
    *,
    claim_state: str | None = None,
) -> list[int]:
    """Moves holds to ``status`` with a new deadline; their claims follow. Returns the seats touched."""
    await conn.execute(
        sa.update(holds).where(holds.c.id.in_(list(hold_ids))).values(status=status, expires_at=expires_at)
    )
    values: dict[str, Any] = {"expires_at": expires_at}
    if claim_state:
        values["state"] = claim_state
    rows = await conn.execute(
        sa.update(seat_claims)
        .where(seat_claims.c.hold_id.in_(list(hold_ids)))
        .values(values)
        .returning(seat_claims.c.seat_id)
    )
    return [r.seat_id for r in rows]


async def expired_usage(conn: AsyncConnection, event_id: int, now: dt.datetime) -> Counter[int]:
    """Quota use of holds past their deadline that the sweeper has not released yet."""
    rows = await conn.execute(
        sa.select(ticket_type_quotas.c.quota_id, sa.func.sum(hold_lines.c.quantity).label("n"))
        .select_from(holds)
        .join(hold_lines, hold_lines.c.hold_id == holds.c.id)
        .join(ticket_type_quotas, ticket_type_quotas.c.ticket_type_id == hold_lines.c.ticket_type_id)
        .where(holds.c.event_id == event_id, holds.c.status.in_(LIVE_HOLD), holds.c.expires_at <= now)
        .group_by(ticket_type_quotas.c.quota_id)
    )
    return Counter({r.quota_id: int(r.n) for r in rows})
