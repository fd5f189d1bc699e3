"""Domain-event contracts: versioned Pydantic models, the payload of every outbox row.

A contract is identified by ``(TYPE, VERSION)``. A change that a consumer could trip over gets a new
version; old versions stay readable. The envelope (id, sequence, time, aggregate) lives in the outbox
columns and in :class:`Envelope`.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    event_id: int = Field(description="The ticketing event (the aggregate) this change belongs to.")


class LineV1(BaseModel):
    ticket_type_id: int
    seat_id: int | None = None
    quantity: int
    unit_price_minor: int


class HoldPlaced(DomainEvent):
    TYPE = "hold.placed"
    hold_id: str
    lines: list[LineV1]
    total_minor: int
    currency: str
    expires_at: dt.datetime


class HoldReleased(DomainEvent):
    TYPE = "hold.released"
    hold_id: str


class HoldExpired(DomainEvent):
    TYPE = "hold.expired"
    hold_id: str


class OrderPlaced(DomainEvent):
    TYPE = "order.placed"
    order_id: str
    hold_id: str
    total_minor: int
    currency: str
    payment_provider: str
    expires_at: dt.datetime | None


class OrderPaid(DomainEvent):
    TYPE = "order.paid"
    order_id: str
    total_minor: int
    currency: str
    paid_at: dt.datetime


class OrderExpired(DomainEvent):
    TYPE = "order.expired"
    order_id: str


class OrderCancelled(DomainEvent):
    TYPE = "order.cancelled"
    order_id: str
    by: Literal["buyer", "organizer"]


class OrderRefunded(DomainEvent):
    TYPE = "order.refunded"
    order_id: str
    amount_minor: int
    currency: str


class TicketIssued(DomainEvent):
    TYPE = "ticket.issued"
    ticket_id: int
    order_id: str
    ticket_type_id: int
    seat_id: int | None


class TicketCheckedIn(DomainEvent):
    """A ticket was admitted at the door (the first successful scan; retries write nothing)."""

    TYPE = "ticket.checked_in"
    ticket_id: int
    order_id: str
    ticket_type_id: int
    seat_id: int | None
    checked_in_at: dt.datetime
    scanner: str | None = Field(None, description="The scanner or gate that admitted the ticket.")


class QuotaStateV1(BaseModel):
    quota_id: int
    capacity: int
    held: int
    sold: int
    available: int


class SeatStateV1(BaseModel):
    seat_id: int
    state: Literal["free", "held", "sold"]


class InventoryChanged(DomainEvent):
    """The event's availability after a change: quotas touched and seats whose state changed."""

    TYPE = "inventory.changed"
    quotas: list[QuotaStateV1]
    seats: list[SeatStateV1]


CONTRACTS: dict[tuple[str, int], type[DomainEvent]] = {
    (c.TYPE, c.VERSION): c
    for c in (
        HoldPlaced,
        HoldReleased,
        HoldExpired,
        OrderPlaced,
        OrderPaid,
        OrderExpired,
        OrderCancelled,
        OrderRefunded,
        TicketIssued,
        TicketCheckedIn,
        InventoryChanged,
    )
}


class Envelope(BaseModel):
    """A domain event as it leaves the outbox."""

    id: str = Field(description="Unique id of this domain event (UUID); consumers deduplicate on it.")
    type: str
    version: int
    aggregate_type: str
    aggregate_id: int
    sequence: int = Field(description="Position in the aggregate's stream, gap-free from 1.")
    occurred_at: dt.datetime
    payload: dict[str, object]
