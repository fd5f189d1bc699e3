"""Inventory rules outside the batching writer: release, expiry, sale, refund, and the read models.

Every function that changes inventory takes the event's :class:`EventStream`, i.e. runs inside a
transaction that already holds the event's lock, and emits its domain events there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.errors import Conflict, Gone, NotFound
from admitone.events.models import events, seats, sections
from admitone.inventory import repository as repo
from admitone.inventory.allocation import QuotaInfo
from admitone.inventory.schemas import (
    AvailabilityOut,
    HoldLineOut,
    HoldOut,
    QuotaAvailability,
    SeatMapOut,
    SeatStateOut,
    SectionAvailability,
    TicketTypeAvailability,
)
from admitone.orders import repository as orders_repo
from admitone.outbox.contracts import (
    HoldExpired,
    HoldReleased,
    InventoryChanged,
    OrderExpired,
    QuotaStateV1,
    SeatStateV1,
)
from admitone.outbox.repository import EventStream

SeatStateName = Literal["free", "held", "sold"]


async def emit_inventory_changed(
    conn: AsyncConnection,
    stream: EventStream,
    quota_ids: Sequence[int],
    seat_changes: dict[int, SeatStateName],
    known: Mapping[int, QuotaInfo] | None = None,
) -> None:
    """Emits ``inventory.changed`` with the current state of ``quota_ids``; ``known`` are states the
    caller already has from this transaction (read under the event's lock or returned by the change)."""
    if not quota_ids and not seat_changes:
        return
    missing = [q for q in quota_ids if known is None or q not in known]
    states = dict(await repo.load_quotas(conn, stream.event_id, missing)) if missing else {}
    if known is not None:
        states.update((q, known[q]) for q in quota_ids if q in known)
    states = dict(sorted(states.items()))
    stream.emit(
        InventoryChanged(
            event_id=stream.event_id,
            quotas=[
                QuotaStateV1(
                    quota_id=q.id,
                    capacity=q.capacity,
                    held=q.held,
                    sold=q.sold,
                    available=q.capacity - q.held - q.sold,
                )
                for q in states.values()
            ],
            seats=[SeatStateV1(seat_id=s, state=st) for s, st in sorted(seat_changes.items())],
        )
    )


async def _release(
    conn: AsyncConnection, stream: EventStream, hold_ids: list[str], counter: str, status: str
) -> tuple[Counter[int], list[int]]:
    usage = await repo.quota_usage(conn, hold_ids)
    await repo.add_to_quotas(conn, counter, Counter({q: -n for q, n in usage.items()}))
    freed = await repo.delete_claims(conn, hold_ids)
    await repo.set_hold_state(conn, hold_ids, status, None)
    return usage, freed


async def expire_due(conn: AsyncConnection, stream: EventStream, now: dt.datetime, limit: int = 1000) -> int:
    """Releases the event's holds and unpaid orders whose deadline has passed. Returns how many."""
    due = await repo.due_holds(conn, stream.event_id, now, limit)
    if not due:
        return 0
    ids = [r.id for r in due]
    usage, freed = await _release(conn, stream, ids, "held", "expired")
    ordered = [r.id for r in due if r.status == "ordered"]
    expired_orders = await orders_repo.expire_for_holds(conn, ordered, now) if ordered else []
    for row in due:
        if row.status == "active":
            stream.emit(HoldExpired(event_id=stream.event_id, hold_id=row.id))
    for order_id in expired_orders:
        stream.emit(OrderExpired(event_id=stream.event_id, order_id=order_id))
    await emit_inventory_changed(conn, stream, list(usage), dict.fromkeys(freed, "free"))
    return len(due)


async def release_hold(conn: AsyncConnection, stream: EventStream, hold_id: str, now: dt.datetime) -> HoldOut:
    """The buyer gives a hold back early."""
    hold = await live_hold(conn, hold_id, now)
    if hold.status != "active":
        raise Conflict(f"Hold {hold_id} belongs to an order now; cancel the order instead.")
    usage, freed = await _release(conn, stream, [hold_id], "held", "released")
    stream.emit(HoldReleased(event_id=stream.event_id, hold_id=hold_id))
    await emit_inventory_changed(conn, stream, list(usage), dict.fromkeys(freed, "free"))
    return await read_hold(conn, hold_id)


async def live_hold(conn: AsyncConnection, hold_id: str, now: dt.datetime) -> Any:
    """The hold, refusing holds that ended or whose deadline has passed."""
    hold = await repo.get_hold(conn, hold_id)
    if hold is None:
        raise NotFound("No hold with this token.")
    if hold.status in ("released", "expired") or (
        hold.status in repo.LIVE_HOLD and hold.expires_at is not None and hold.expires_at <= now
    ):
        raise Gone(f"Hold {hold_id} has expired or was released; its seats and tickets are back on sale.")
    return hold


async def reserve_for_order(
    conn: AsyncConnection, stream: EventStream, hold_id: str, until: dt.datetime | None
) -> None:
    """An active hold becomes an order's reservation, with the order's payment deadline."""
    await repo.set_hold_state(conn, [hold_id], "ordered", until)


async def sell(conn: AsyncConnection, stream: EventStream, hold_id: str) -> None:
    usage = await repo.quota_usage(conn, [hold_id])
    await repo.move_held_to_sold(conn, usage)
    sold = await repo.set_hold_state(conn, [hold_id], "sold", None, claim_state="sold")
    await emit_inventory_changed(conn, stream, list(usage), dict.fromkeys(sold, "sold"))


async def return_to_sale(conn: AsyncConnection, stream: EventStream, hold_id: str, *, was_sold: bool) -> None:
    usage, freed = await _release(conn, stream, [hold_id], "sold" if was_sold else "held", "released")
    await emit_inventory_changed(conn, stream, list(usage), dict.fromkeys(freed, "free"))


async def read_hold(conn: AsyncConnection, hold_id: str) -> HoldOut:
    hold = await repo.get_hold(conn, hold_id)
    if hold is None:
        raise NotFound("No hold with this token.")
    lines = await repo.lines_of(conn, [hold_id])
    return HoldOut(
        id=hold.id,
        event_id=hold.event_id,
        status=hold.status,
        expires_at=hold.expires_at,
        total_minor=hold.total_minor,
        currency=hold.currency,
        lines=[
            HoldLineOut(
                ticket_type_id=ln.ticket_type_id,
                ticket_type=ln.ticket_type,
                seat_id=ln.seat_id,
                seat_label=ln.seat_label,
                quantity=ln.quantity,
                unit_price_minor=ln.unit_price_minor,
            )
            for ln in lines
        ],
    )


def _taken(state: tuple[str, dt.datetime | None], now: dt.datetime) -> SeatStateName:
    kind, expires = state
    if kind == "sold":
        return "sold"
    return "free" if expires is not None and expires <= now else "held"


async def public_event(conn: AsyncConnection, event_id: int) -> Any:
    row = (await conn.execute(sa.select(events).where(events.c.id == event_id))).first()
    if row is None or row.status == "draft":
        raise NotFound(f"Event {event_id} does not exist or is not published.")
    return row


async def availability(conn: AsyncConnection, event_id: int, now: dt.datetime) -> AvailabilityOut:
    """What could be held right now; holds past their deadline already count as free."""
    event = await public_event(conn, event_id)
    quota_rows = await repo.load_quotas(conn, event_id)
    lapsed = await repo.expired_usage(conn, event_id, now)
    free_by_quota = {q.id: q.capacity - q.sold - (q.held - lapsed.get(q.id, 0)) for q in quota_rows.values()}
    types = await repo.load_ticket_types(conn, event_id)
    section_out: list[SectionAvailability] = []
    free_by_category: Counter[str] = Counter()
    if event.venue_id is not None:
        claims = await repo.claimed_seats(conn, event_id)
        seat_rows = await conn.execute(
            sa.select(seats.c.id, seats.c.section_id, seats.c.category).where(
                seats.c.venue_id == event.venue_id
            )
        )
        per_section: dict[int, list[int]] = {}
        for s in seat_rows:
            free = s.id not in claims or _taken(claims[s.id], now) == "free"
            counts = per_section.setdefault(s.section_id, [0, 0])
            counts[0] += 1
            counts[1] += int(free)
            if free:
                free_by_category[s.category] += 1
        names = await conn.execute(
            sa.select(sections.c.id, sections.c.name)
            .where(sections.c.venue_id == event.venue_id)
            .order_by(sections.c.ordinal)
        )
        section_out = [
            SectionAvailability(
                section_id=r.id,
                name=r.name,
                seats=per_section.get(r.id, [0, 0])[0],
                available=per_section.get(r.id, [0, 0])[1],
            )
            for r in names
        ]
    tt_out = []
    for tt in sorted(types.values(), key=lambda t: t.id):
        if tt.kind == "seated":
            left = free_by_category.get(tt.category or "", 0)
            left = min([left, *(free_by_quota.get(q, 0) for q in tt.quota_ids)])
        else:
            left = min((free_by_quota.get(q, 0) for q in tt.quota_ids), default=0)
        tt_out.append(
            TicketTypeAvailability(
                ticket_type_id=tt.id,
                name=tt.name,
                kind=tt.kind,
                price_minor=tt.price_minor,
                currency=tt.currency,
                available=max(left, 0),
            )
        )
    return AvailabilityOut(
        event_id=event_id,
        as_of=now,
        ticket_types=tt_out,
        quotas=[
            QuotaAvailability(
                quota_id=q.id,
                name=q.name,
                capacity=q.capacity,
                held=q.held - lapsed.get(q.id, 0),
                sold=q.sold,
                available=free_by_quota[q.id],
            )
            for q in quota_rows.values()
        ],
        sections=section_out,
    )


async def seat_map(conn: AsyncConnection, event_id: int, now: dt.datetime) -> SeatMapOut:
    event = await public_event(conn, event_id)
    if event.venue_id is None:
        raise NotFound(f"Event {event_id} is general admission only; it has no seat map.")
    claims = await repo.claimed_seats(conn, event_id)
    rows = await conn.execute(sa.select(seats).where(seats.c.venue_id == event.venue_id).order_by(seats.c.id))
    return SeatMapOut(
        event_id=event_id,
        venue_id=event.venue_id,
        as_of=now,
        seats=[
            SeatStateOut(
                id=s.id,
                label=s.label,
                section_id=s.section_id,
                row=s.row_label,
                number=s.number,
                x=s.x,
                y=s.y,
                category=s.category,
                state=_taken(claims[s.id], now) if s.id in claims else "free",
            )
            for s in rows
        ],
    )
