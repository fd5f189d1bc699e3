"""Analytics rules: the projection of each domain event, and the numbers read back from it."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.analytics import repository as repo
from admitone.analytics.models import COUNTERS
from admitone.analytics.repository import EventInfo
from admitone.analytics.schemas import (
    Conversion,
    Counters,
    CurrencyTotal,
    EventAnalytics,
    EventRow,
    History,
    MinutePoint,
    OrganizerAnalytics,
    SellThrough,
)
from admitone.core.errors import InvalidRequest, NotFound
from admitone.outbox.contracts import Envelope

RATE_WINDOW = dt.timedelta(minutes=5)
RECENT_MINUTES = 30
MAX_POINTS = {"minute": 3 * 24 * 60, "hour": 366 * 24}
STEP = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1)}

# domain event type -> counter it bumps by one
COUNTED = {
    "hold.placed": "holds_placed",
    "hold.released": "holds_released",
    "hold.expired": "holds_expired",
    "order.placed": "orders_placed",
    "order.expired": "orders_expired",
    "order.cancelled": "orders_cancelled",
    "chat.message_posted": "chat_messages",
    "ticket.checked_in": "check_ins",
}


def floor(at: dt.datetime, bucket: Literal["minute", "hour"] = "minute") -> dt.datetime:
    at = at.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return at.replace(minute=0) if bucket == "hour" else at


class Lookups:
    """Per-event facts (organizer, names, seat sections, capacities), loaded once and kept in memory.

    They do not change during a sale; a ticket type, quota or seat not in the cached copy (added after it
    was loaded) makes it load again, and so does age (a renamed ticket type shows within a minute).
    """

    def __init__(self, max_age_seconds: float = 60.0) -> None:
        self._events: dict[int, tuple[float, EventInfo]] = {}
        self.max_age = max_age_seconds
        self.loads = 0

    async def get(
        self,
        conn: AsyncConnection,
        event_id: int,
        *,
        ticket_types: tuple[int, ...] = (),
        quotas: tuple[int, ...] = (),
        seats: tuple[int, ...] = (),
    ) -> EventInfo | None:
        cached = self._events.get(event_id)
        info = cached[1] if cached is not None else None
        if (
            info is None
            or time.monotonic() - cached[0] > self.max_age  # type: ignore[index]
            or any(t not in info.ticket_types for t in ticket_types)
            or any(q not in info.quotas for q in quotas)
            or any(s not in info.seat_section for s in seats)
        ):
            info = await repo.load_event_info(conn, event_id)
            self.loads += 1
            if info is None:
                self._events.pop(event_id, None)
                return None
            self._events[event_id] = (time.monotonic(), info)
        return info

    def forget(self, event_id: int) -> None:
        self._events.pop(event_id, None)


# -- the projection --------------------------------------------------------------------------------------


async def project(conn: AsyncConnection, lookups: Lookups, env: Envelope) -> None:
    """Applies one domain event to the analytics tables (inside the consumer runner's transaction)."""
    if env.aggregate_type != "event":
        return
    event_id = env.aggregate_id
    p = env.payload
    deltas: Counter[str] = Counter()
    last_paid_at: dt.datetime | None = None
    if env.type in COUNTED:
        deltas[COUNTED[env.type]] += 1
    elif env.type == "order.paid":
        deltas["orders_paid"] += 1
        deltas["revenue_minor"] += int(p["total_minor"])  # type: ignore[call-overload]
        last_paid_at = dt.datetime.fromisoformat(str(p["paid_at"]))
    elif env.type == "ticket.issued":
        tt = int(p["ticket_type_id"])  # type: ignore[call-overload]
        deltas["tickets_sold"] += 1
        await repo.bump_ticket_type(conn, event_id, tt, 1)
        await repo.bump_order_line(conn, event_id, str(p["order_id"]), tt, 1)
    elif env.type == "order.refunded":
        deltas["orders_refunded"] += 1
        deltas["refunded_minor"] += int(p["amount_minor"])  # type: ignore[call-overload]
        for tt, quantity in await repo.order_lines(conn, str(p["order_id"])):
            deltas["tickets_refunded"] += quantity
            await repo.bump_ticket_type(conn, event_id, tt, -quantity)
    elif env.type == "inventory.changed":
        await _inventory(conn, lookups, event_id, env)
        return
    else:
        return
    info = await lookups.get(conn, event_id)
    if info is None:
        return
    minute = dict(deltas)
    totals = dict(deltas)
    if "tickets_refunded" in deltas:
        totals["tickets_sold"] = -deltas["tickets_refunded"]
    await repo.bump_event(conn, info, totals, env.occurred_at, last_paid_at)
    await repo.bump_minute(conn, event_id, floor(env.occurred_at), minute)


async def _inventory(conn: AsyncConnection, lookups: Lookups, event_id: int, env: Envelope) -> None:
    quotas = {int(q["quota_id"]): dict(q) for q in env.payload.get("quotas", [])}  # type: ignore[attr-defined]
    seats = {int(s["seat_id"]): str(s["state"]) for s in env.payload.get("seats", [])}  # type: ignore[attr-defined]
    await _write_availability(conn, lookups, event_id, quotas, seats)


async def _write_availability(
    conn: AsyncConnection,
    lookups: Lookups,
    event_id: int,
    quotas: dict[int, dict[str, object]],
    seats: dict[int, str],
) -> None:
    if quotas:
        await repo.set_quotas(
            conn,
            event_id,
            [
                {k: int(q[k]) for k in ("quota_id", "capacity", "held", "sold")}  # type: ignore[call-overload]
                for q in quotas.values()
            ],
        )
    if seats:
        info = await lookups.get(conn, event_id, seats=tuple(seats))
        sections = info.seat_section if info is not None else {}
        free = [seat for seat, state in seats.items() if state == "free"]
        taken = [(seat, sections.get(seat, 0), state) for seat, state in seats.items() if state != "free"]
        await repo.set_seats(conn, event_id, free, taken)


async def project_batch(conn: AsyncConnection, lookups: Lookups, envelopes: Sequence[Envelope]) -> None:
    """Applies a batch of new domain events with a few statements per ticketing event, not per event.

    During an on-sale almost every domain event is a hold, an order or an availability change: their
    counters are summed per ticketing event and minute, and availability states are merged (the later state
    of a quota or seat wins, as if applied one by one), then written once. Ticket issues and refunds, which
    read what earlier events wrote, keep the one-by-one path, in order.
    """
    totals: dict[int, Counter[str]] = {}
    minutes: dict[tuple[int, dt.datetime], Counter[str]] = {}
    last_at: dict[int, dt.datetime] = {}
    last_paid: dict[int, dt.datetime] = {}
    quotas: dict[int, dict[int, dict[str, object]]] = {}
    seats: dict[int, dict[int, str]] = {}
    for env in envelopes:
        if env.aggregate_type != "event":
            continue
        event_id = env.aggregate_id
        p = env.payload
        if env.type in COUNTED or env.type == "order.paid":
            deltas = totals.setdefault(event_id, Counter())
            minute = minutes.setdefault((event_id, floor(env.occurred_at)), Counter())
            if env.type == "order.paid":
                revenue = int(p["total_minor"])  # type: ignore[call-overload]
                for c in (deltas, minute):
                    c["orders_paid"] += 1
                    c["revenue_minor"] += revenue
                last_paid[event_id] = dt.datetime.fromisoformat(str(p["paid_at"]))
            else:
                deltas[COUNTED[env.type]] += 1
                minute[COUNTED[env.type]] += 1
            last_at[event_id] = max(last_at.get(event_id, env.occurred_at), env.occurred_at)
        elif env.type == "inventory.changed":
            for q in p.get("quotas", []):  # type: ignore[attr-defined]
                quotas.setdefault(event_id, {})[int(q["quota_id"])] = dict(q)
            for st in p.get("seats", []):  # type: ignore[attr-defined]
                seats.setdefault(event_id, {})[int(st["seat_id"])] = str(st["state"])
        else:
            await project(conn, lookups, env)
    for event_id, deltas in totals.items():
        info = await lookups.get(conn, event_id)
        if info is None:
            continue
        await repo.bump_event(conn, info, deltas, last_at[event_id], last_paid.get(event_id))
    for (event_id, bucket), deltas in minutes.items():
        if event_id in totals and await lookups.get(conn, event_id) is not None:
            await repo.bump_minute(conn, event_id, bucket, deltas)
    for event_id in sorted(set(quotas) | set(seats)):
        await _write_availability(conn, lookups, event_id, quotas.get(event_id, {}), seats.get(event_id, {}))


# -- the numbers -----------------------------------------------------------------------------------------


def _ratio(a: int, b: int | None) -> float | None:
    return round(a / b, 4) if b else None


def _points(
    rows: list[object], since: dt.datetime, until: dt.datetime, bucket: Literal["minute", "hour"]
) -> list[MinutePoint]:
    sums: dict[dt.datetime, Counter[str]] = {}
    for row in rows:
        at = floor(row.bucket, bucket)  # type: ignore[attr-defined]
        sums.setdefault(at, Counter()).update(repo.counters_of(row))
    points = []
    at = since
    while at < until:
        c = sums.get(at)
        points.append(
            MinutePoint(bucket_start=at, counters=Counters(**{n: (c[n] if c else 0) for n in COUNTERS}))
        )
        at += STEP[bucket]
    return points


async def summary(conn: AsyncConnection, lookups: Lookups, event_id: int, now: dt.datetime) -> EventAnalytics:
    info = await lookups.get(conn, event_id)
    if info is None:
        raise NotFound(f"No event {event_id}.")
    row = await repo.event_totals(conn, event_id)
    totals = Counters(**repo.counters_of(row))
    quota_states = await repo.quota_states(conn, event_id)
    seat_counts = await repo.seat_counts(conn, event_id)
    tt_sold = await repo.ticket_types_sold(conn, event_id)
    if any(t not in info.ticket_types for t in tt_sold) or any(q not in info.quotas for q in quota_states):
        info = await lookups.get(conn, event_id, ticket_types=tuple(tt_sold), quotas=tuple(quota_states))
        assert info is not None

    def quota(qid: int) -> tuple[int, int, int]:
        return quota_states.get(qid, (info.quotas[qid][1] if qid in info.quotas else 0, 0, 0))

    seated_categories = {t.category for t in info.ticket_types.values() if t.kind == "seated"}
    # Quotas that limit admission tickets only are inventory of their own; quotas on seated ticket types
    # only limit seats, which are counted as seats.
    seated_quotas = {q for t in info.ticket_types.values() if t.kind == "seated" for q in t.quota_ids}
    admission_quotas = sorted(
        {q for t in info.ticket_types.values() if t.kind != "seated" for q in t.quota_ids} - seated_quotas
    )

    quotas_out = []
    for qid, (name, _capacity) in info.quotas.items():
        capacity, held, sold = quota(qid)
        quotas_out.append(
            SellThrough(
                id=qid,
                name=name,
                capacity=capacity,
                sold=sold,
                held=held,
                sell_through=_ratio(sold, capacity),
            )
        )
    sections_out = []
    for sid, name in info.sections.items():
        categories = info.section_categories.get(sid, Counter())
        capacity = sum(n for cat, n in categories.items() if cat in seated_categories)
        sold = seat_counts.get((sid, "sold"), 0)
        sections_out.append(
            SellThrough(
                id=sid,
                name=name,
                capacity=capacity,
                sold=sold,
                held=seat_counts.get((sid, "held"), 0),
                sell_through=_ratio(sold, capacity),
            )
        )
    category_seats: Counter[str] = Counter()
    for categories in info.section_categories.values():
        category_seats.update(categories)
    types_out = []
    for t in info.ticket_types.values():
        if t.kind == "seated":
            capacity_of: int | None = category_seats.get(t.category or "", 0)
            if t.quota_ids:
                capacity_of = min([capacity_of or 0, *(quota(q)[0] for q in t.quota_ids)])
        else:
            capacity_of = min((quota(q)[0] for q in t.quota_ids), default=None)
        sold = tt_sold.get(t.id, 0)
        types_out.append(
            SellThrough(
                id=t.id,
                name=t.name,
                capacity=capacity_of,
                sold=sold,
                held=None,
                sell_through=_ratio(sold, capacity_of),
            )
        )

    seat_capacity = sum(category_seats[c] for c in seated_categories if c)
    capacity = seat_capacity + sum(quota(q)[0] for q in admission_quotas)
    held_seats = sum(n for (_sid, state), n in seat_counts.items() if state == "held")
    active_holds = held_seats + sum(quota(q)[1] for q in admission_quotas)
    remaining = max(capacity - totals.tickets_sold, 0)

    recent_since = floor(now) - dt.timedelta(minutes=RECENT_MINUTES - 1)
    recent_rows = await repo.minutes(conn, event_id, recent_since, floor(now) + STEP["minute"])
    window_start = now - RATE_WINDOW
    in_window = sum(int(r.tickets_sold) for r in recent_rows if r.bucket + STEP["minute"] > window_start)
    rate = in_window / (RATE_WINDOW.total_seconds() / 60)
    return EventAnalytics(
        event_id=event_id,
        event_name=info.name,
        currency=info.currency,
        generated_at=now,
        totals=totals,
        net_revenue_minor=totals.revenue_minor - totals.refunded_minor,
        active_holds=active_holds,
        capacity=capacity,
        remaining=remaining,
        conversion=Conversion(
            orders_per_hold=_ratio(totals.orders_placed, totals.holds_placed),
            paid_per_hold=_ratio(totals.orders_paid, totals.holds_placed),
        ),
        tickets_per_minute=round(rate, 3),
        sell_out_seconds=round(remaining / rate * 60, 1) if rate > 0 else None,
        last_paid_at=row.last_paid_at if row is not None else None,
        ticket_types=types_out,
        quotas=quotas_out,
        sections=sections_out,
        recent=_points(list(recent_rows), recent_since, floor(now) + STEP["minute"], "minute"),
    )


async def history(
    conn: AsyncConnection,
    lookups: Lookups,
    event_id: int,
    bucket: Literal["minute", "hour"],
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
) -> History:
    info = await lookups.get(conn, event_id)
    if info is None:
        raise NotFound(f"No event {event_id}.")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(f"'{name}' needs a time zone, e.g. 2026-12-02T19:30:00Z.")
        if value is not None and not 1970 <= value.astimezone(dt.UTC).year <= 2999:
            raise InvalidRequest(f"'{name}' must be between the years 1970 and 2999.")
    end = floor(until or now, bucket)
    if until is not None and end < until:
        end += STEP[bucket]  # the bucket that contains `until` is included
    elif until is None:
        end += STEP[bucket]
    start = (
        floor(since, bucket) if since is not None else end - STEP[bucket] * (60 if bucket == "minute" else 24)
    )
    if start >= end:
        raise InvalidRequest("'since' must be before 'until'.")
    count = (end - start) // STEP[bucket]
    if count > MAX_POINTS[bucket]:
        raise InvalidRequest(
            f"At most {MAX_POINTS[bucket]} {bucket} buckets per request; asked for {count}. "
            "Narrow the range or use a larger bucket."
        )
    rows = await repo.minutes(conn, event_id, start, end)
    return History(
        event_id=event_id,
        currency=info.currency,
        bucket=bucket,
        since=start,
        until=end,
        points=_points(list(rows), start, end, bucket),
    )


async def organizer(conn: AsyncConnection, organizer_id: int, now: dt.datetime) -> OrganizerAnalytics:
    rows = await repo.organizer_events(conn, organizer_id)
    total: Counter[str] = Counter()
    money: dict[str, Counter[str]] = {}
    out = []
    for r in rows:
        counts = repo.counters_of(r)
        total.update(counts)
        money.setdefault(r.currency, Counter()).update(
            {"revenue_minor": counts["revenue_minor"], "refunded_minor": counts["refunded_minor"]}
        )
        out.append(
            EventRow(
                event_id=r.event_id,
                name=r.name,
                status=r.status,
                starts_at=r.starts_at,
                currency=r.currency,
                totals=Counters(**counts),
            )
        )
    return OrganizerAnalytics(
        organizer_id=organizer_id,
        generated_at=now,
        totals=Counters(**{n: total[n] for n in COUNTERS}),
        revenue=[
            CurrencyTotal(
                currency=cur,
                revenue_minor=m["revenue_minor"],
                refunded_minor=m["refunded_minor"],
                net_revenue_minor=m["revenue_minor"] - m["refunded_minor"],
            )
            for cur, m in sorted(money.items())
            if m["revenue_minor"] or m["refunded_minor"]
        ],
        events=out,
    )
