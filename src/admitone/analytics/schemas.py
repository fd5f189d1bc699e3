"""Response shapes of the analytics API and of the live dashboard socket."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

EXAMPLE_TIME = "2026-12-02T19:30:00Z"
EXAMPLE_COUNTERS = {
    "tickets_sold": 120,
    "tickets_refunded": 2,
    "revenue_minor": 300000,
    "refunded_minor": 5000,
    "holds_placed": 150,
    "holds_released": 3,
    "holds_expired": 20,
    "orders_placed": 70,
    "orders_paid": 60,
    "orders_cancelled": 4,
    "orders_refunded": 1,
    "orders_expired": 5,
    "chat_messages": 42,
    "check_ins": 0,
}


def F(description: str, example: Any) -> Any:
    return Field(description=description, examples=[example])


class Counters(BaseModel):
    """Activity counts. In totals ``tickets_sold`` is what is sold now (refunds taken out); in a time
    bucket it is the tickets issued during that bucket."""

    tickets_sold: int = F("Tickets sold (issued and not refunded; per bucket: issued in it).", 120)
    tickets_refunded: int = F("Tickets taken back by refunds.", 2)
    revenue_minor: int = F("Money taken by paid orders, in minor units (before refunds).", 300000)
    refunded_minor: int = F("Money given back by refunds, in minor units.", 5000)
    holds_placed: int = F("Holds placed.", 150)
    holds_released: int = F("Holds released by the buyer.", 3)
    holds_expired: int = F("Holds that lapsed without an order.", 20)
    orders_placed: int = F("Orders placed (from a hold).", 70)
    orders_paid: int = F("Orders paid.", 60)
    orders_cancelled: int = F("Unpaid orders cancelled by the buyer or the organizer.", 4)
    orders_refunded: int = F("Paid orders refunded.", 1)
    orders_expired: int = F("Unpaid orders that lapsed.", 5)
    chat_messages: int = F("Chat messages and announcements posted.", 42)
    check_ins: int = F("Tickets admitted at the door.", 0)


class Conversion(BaseModel):
    orders_per_hold: float | None = F("Orders placed / holds placed; null before the first hold.", 0.47)
    paid_per_hold: float | None = F("Orders paid / holds placed; null before the first hold.", 0.4)


class SellThrough(BaseModel):
    """Capacity against what is sold and held, for one ticket type, quota or section."""

    id: int = F("Id of the ticket type, quota or section.", 7)
    name: str = F("Its name.", "Floor")
    capacity: int | None = F("How many can be sold; null when nothing limits it.", 300)
    sold: int = F("Sold now.", 120)
    held: int | None = F("Held now (not known per ticket type: null there).", 8)
    sell_through: float | None = F("sold / capacity, 0 to 1; null without a capacity.", 0.4)


class MinutePoint(BaseModel):
    bucket_start: dt.datetime = F("Start of the time bucket (UTC).", EXAMPLE_TIME)
    counters: Counters = F("Activity in the bucket.", EXAMPLE_COUNTERS)


class EventAnalytics(BaseModel):
    """Everything the dashboard shows for one event, as of ``generated_at``."""

    event_id: int = F("The event.", 12)
    event_name: str = F("Its name.", "Spring Tour: Berlin")
    currency: str = F("The event's currency (ISO 4217).", "EUR")
    generated_at: dt.datetime = F("When these numbers were read.", EXAMPLE_TIME)
    totals: Counters = F("Totals since sales began.", EXAMPLE_COUNTERS)
    net_revenue_minor: int = F("revenue_minor - refunded_minor.", 295000)
    active_holds: int = F("Tickets held right now (quotas' held counts plus held seats).", 8)
    capacity: int = F("Tickets the event can sell (sellable seats plus admission quotas).", 300)
    remaining: int = F("capacity - tickets sold.", 180)
    conversion: Conversion = F("Hold-to-order conversion.", {"orders_per_hold": 0.47, "paid_per_hold": 0.4})
    tickets_per_minute: float = F("Tickets issued per minute over the last 5 minutes.", 12.4)
    sell_out_seconds: float | None = F(
        "Seconds until sold out at that rate: remaining / rate; null when the rate is 0.", 870.9
    )
    last_paid_at: dt.datetime | None = F("When the latest order was paid.", EXAMPLE_TIME)
    ticket_types: list[SellThrough] = F("Sell-through per ticket type.", [])
    quotas: list[SellThrough] = F("Sell-through per quota.", [])
    sections: list[SellThrough] = F("Sell-through per seating section.", [])
    recent: list[MinutePoint] = F("The last 30 minutes, one point per minute, oldest first.", [])


class LiveMessage(BaseModel):
    """A message on the live analytics socket: the full summary, sent on connect and after changes."""

    type: Literal["summary"] = F("Always `summary`.", "summary")
    summary: EventAnalytics = F("The event's numbers now.", {"event_id": 12, "tickets_per_minute": 12.4})


class History(BaseModel):
    event_id: int = F("The event.", 12)
    currency: str = F("The event's currency (ISO 4217).", "EUR")
    bucket: Literal["minute", "hour"] = F("Size of each bucket.", "minute")
    since: dt.datetime = F("Start of the first bucket (UTC).", EXAMPLE_TIME)
    until: dt.datetime = F("End of the range (exclusive, UTC).", EXAMPLE_TIME)
    points: list[MinutePoint] = F("One point per bucket, oldest first; empty buckets are zeros.", [])


class EventRow(BaseModel):
    event_id: int = F("The event.", 12)
    name: str = F("Its name.", "Spring Tour: Berlin")
    status: str = F("Its status.", "on_sale")
    starts_at: dt.datetime = F("When it starts.", EXAMPLE_TIME)
    currency: str = F("Its currency.", "EUR")
    totals: Counters = F("Its totals.", EXAMPLE_COUNTERS)


class CurrencyTotal(BaseModel):
    currency: str = F("ISO 4217 currency.", "EUR")
    revenue_minor: int = F("Money taken, minor units.", 300000)
    refunded_minor: int = F("Money refunded, minor units.", 5000)
    net_revenue_minor: int = F("revenue - refunds.", 295000)


class OrganizerAnalytics(BaseModel):
    organizer_id: int = F("The organizer.", 3)
    generated_at: dt.datetime = F("When these numbers were read.", EXAMPLE_TIME)
    totals: Counters = F("Totals across all its events (money: see `revenue`).", EXAMPLE_COUNTERS)
    revenue: list[CurrencyTotal] = F("Money per currency.", [])
    events: list[EventRow] = F("One row per event, newest first.", [])
