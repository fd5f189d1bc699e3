"""API shapes of holds, availability and seat states."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from admitone.core.schemas import Id, Schema, ShortText


class TicketRequest(Schema):
    ticket_type_id: Id = Field(description="The general-admission ticket type to hold.", examples=[21])
    quantity: Annotated[int, Field(ge=1, le=1000)] = Field(
        description="How many tickets of that type.", examples=[2]
    )


class BestAvailableRequest(Schema):
    quantity: Annotated[int, Field(ge=1, le=50, description="Adjacent seats wanted, in one row.")] = Field(
        examples=[4]
    )
    section_id: Id | None = Field(None, description="Limit the search to one section.", examples=[7])
    category: ShortText | None = Field(
        None, description="Limit the search to one price category.", examples=["A"]
    )


class HoldCreate(Schema):
    """What to hold. Any combination is allowed; the hold is all-or-nothing."""

    tickets: list[TicketRequest] = Field(
        default_factory=list, max_length=20, description="General-admission tickets by type."
    )
    seat_ids: list[Id] = Field(default_factory=list, max_length=100, description="Specific seats.")
    best_available: BestAvailableRequest | None = Field(None, description="The best N adjacent seats.")

    @model_validator(mode="after")
    def _check(self) -> HoldCreate:
        if not self.tickets and not self.seat_ids and self.best_available is None:
            raise ValueError("ask for tickets, seat_ids or best_available")
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat_ids repeat")
        types = [t.ticket_type_id for t in self.tickets]
        if len(set(types)) != len(types):
            raise ValueError("a ticket type appears twice in tickets; add the quantities up")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"tickets": [{"ticket_type_id": 21, "quantity": 2}]},
                {"seat_ids": [801, 802]},
                {"best_available": {"quantity": 4, "section_id": 7}},
            ]
        }
    }


class HoldLineOut(BaseModel):
    ticket_type_id: int = Field(description="The ticket type held.", examples=[21])
    ticket_type: str = Field(description="Name of the ticket type.", examples=["Standing"])
    seat_id: int | None = Field(
        description="The seat, for a seated ticket; null for admission.", examples=[None]
    )
    seat_label: str | None = Field(
        description="Printed label of the seat, for a seated ticket.", examples=[None]
    )
    quantity: int = Field(description="Number of tickets on the line.", examples=[2])
    unit_price_minor: int = Field(description="Price of one ticket in minor units (cents).", examples=[4500])


HoldStatus = Literal["active", "ordered", "sold", "released", "expired"]


class HoldOut(BaseModel):
    id: str = Field(
        description="The hold token. Keep it secret: it is what turns the hold into an order.",
        examples=["hold_3kP9xQ2mLr7vTz8wNc4bYd1fHs6gJa0e"],
    )
    event_id: int = Field(description="The event held from.", examples=[12])
    status: HoldStatus = Field(description="active, ordered, sold, released or expired.", examples=["active"])
    expires_at: dt.datetime | None = Field(
        description="An active hold lapses at this time (UTC, RFC 3339).", examples=["2026-04-01T08:10:00Z"]
    )
    total_minor: int = Field(description="Total in minor units (cents).", examples=[9000])
    currency: str = Field(description="ISO 4217 currency of the total.", examples=["EUR"])
    lines: list[HoldLineOut] = Field(description="What is held.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "hold_3kP9xQ2mLr7vTz8wNc4bYd1fHs6gJa0e",
                    "event_id": 12,
                    "status": "active",
                    "expires_at": "2026-04-01T08:10:00Z",
                    "total_minor": 9000,
                    "currency": "EUR",
                    "lines": [
                        {
                            "ticket_type_id": 21,
                            "ticket_type": "Standing",
                            "seat_id": None,
                            "seat_label": None,
                            "quantity": 2,
                            "unit_price_minor": 4500,
                        }
                    ],
                }
            ]
        }
    }


class TicketTypeAvailability(BaseModel):
    ticket_type_id: int = Field(description="The ticket type.", examples=[21])
    name: str = Field(description="Name of the ticket type.", examples=["Standing"])
    kind: str = Field(
        description="`admission` (counted by quotas) or `seated` (one per seat).", examples=["admission"]
    )
    price_minor: int = Field(description="Price of one ticket in minor units (cents).", examples=[4500])
    currency: str = Field(description="ISO 4217 currency of the price.", examples=["EUR"])
    available: int = Field(description="How many could be held right now.", examples=[260])


class QuotaAvailability(BaseModel):
    quota_id: int = Field(description="The quota.", examples=[9])
    name: str = Field(description="Name of the quota.", examples=["Standing floor"])
    capacity: int = Field(description="Tickets that may be sold or held at once.", examples=[1500])
    held: int = Field(description="Tickets in active holds and unpaid orders.", examples=[40])
    sold: int = Field(description="Tickets paid for.", examples=[1200])
    available: int = Field(description="Tickets left: capacity minus held minus sold.", examples=[260])


class SectionAvailability(BaseModel):
    section_id: int = Field(description="The seating section.", examples=[7])
    name: str = Field(description="Name of the section.", examples=["Stalls"])
    seats: int = Field(description="Seats in the section.", examples=[420])
    available: int = Field(description="Seats neither held nor sold.", examples=[37])


class AvailabilityOut(BaseModel):
    event_id: int = Field(description="The event.", examples=[12])
    as_of: dt.datetime = Field(
        description="When these numbers were read (UTC, RFC 3339); they change quickly during an on-sale.",
        examples=["2026-04-01T08:01:00Z"],
    )
    ticket_types: list[TicketTypeAvailability] = Field(description="What is left per ticket type.")
    quotas: list[QuotaAvailability] = Field(description="What is left per quota (general admission).")
    sections: list[SectionAvailability] = Field(description="What is left per seating section.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "event_id": 12,
                    "as_of": "2026-04-01T08:01:00Z",
                    "ticket_types": [
                        {
                            "ticket_type_id": 21,
                            "name": "Standing",
                            "kind": "admission",
                            "price_minor": 4500,
                            "currency": "EUR",
                            "available": 260,
                        }
                    ],
                    "quotas": [
                        {
                            "quota_id": 9,
                            "name": "Standing floor",
                            "capacity": 1500,
                            "held": 40,
                            "sold": 1200,
                            "available": 260,
                        }
                    ],
                    "sections": [{"section_id": 7, "name": "Stalls", "seats": 420, "available": 37}],
                }
            ]
        }
    }


SeatState = Literal["free", "held", "sold"]


class SeatStateOut(BaseModel):
    id: int = Field(description="The seat's id; holds of specific seats name it.", examples=[801])
    label: str = Field(description="Printed label of the seat.", examples=["Stalls A-3"])
    section_id: int = Field(description="The section the seat is in.", examples=[7])
    row: str = Field(description="Row label.", examples=["A"])
    number: int = Field(description="Position in the row; neighbours differ by 1.", examples=[3])
    x: float = Field(description="Horizontal position for drawing.", examples=[2.0])
    y: float = Field(description="Vertical position for drawing.", examples=[0.0])
    category: str = Field(description="Price category of the seat.", examples=["A"])
    state: SeatState = Field(description="free, held or sold.", examples=["free"])


class SeatMapOut(BaseModel):
    event_id: int = Field(description="The event.", examples=[12])
    venue_id: int = Field(description="The venue whose seat map it is.", examples=[5])
    as_of: dt.datetime = Field(
        description="When the states were read (UTC, RFC 3339); follow changes on the live socket.",
        examples=["2026-04-01T08:01:00Z"],
    )
    seats: list[SeatStateOut] = Field(description="Every seat of the venue with its state for this event.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "event_id": 12,
                    "venue_id": 5,
                    "as_of": "2026-04-01T08:01:00Z",
                    "seats": [
                        {
                            "id": 801,
                            "label": "Stalls A-3",
                            "section_id": 7,
                            "row": "A",
                            "number": 3,
                            "x": 2.0,
                            "y": 0.0,
                            "category": "A",
                            "state": "free",
                        }
                    ],
                }
            ]
        }
    }
