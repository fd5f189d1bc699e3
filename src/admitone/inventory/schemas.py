"""API shapes of holds, availability and seat states."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from admitone.core.schemas import Id, Schema, ShortText


class TicketRequest(Schema):
    ticket_type_id: Id
    quantity: Annotated[int, Field(ge=1, le=1000)]


class BestAvailableRequest(Schema):
    quantity: Annotated[int, Field(ge=1, le=50, description="Adjacent seats wanted, in one row.")]
    section_id: Id | None = Field(None, description="Limit the search to one section.")
    category: ShortText | None = Field(None, description="Limit the search to one price category.")


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
                {"tickets": [{"ticket_type_id": 1, "quantity": 2}]},
                {"seat_ids": [101, 102]},
                {"best_available": {"quantity": 4, "section_id": 2}},
            ]
        }
    }


class HoldLineOut(BaseModel):
    ticket_type_id: int
    ticket_type: str
    seat_id: int | None
    seat_label: str | None
    quantity: int
    unit_price_minor: int


HoldStatus = Literal["active", "ordered", "sold", "released", "expired"]


class HoldOut(BaseModel):
    id: str = Field(description="The hold token. Keep it secret: it is what turns the hold into an order.")
    event_id: int
    status: HoldStatus
    expires_at: dt.datetime | None
    total_minor: int
    currency: str
    lines: list[HoldLineOut]


class TicketTypeAvailability(BaseModel):
    ticket_type_id: int
    name: str
    kind: str
    price_minor: int
    currency: str
    available: int = Field(description="How many could be held right now.")


class QuotaAvailability(BaseModel):
    quota_id: int
    name: str
    capacity: int
    held: int
    sold: int
    available: int


class SectionAvailability(BaseModel):
    section_id: int
    name: str
    seats: int
    available: int


class AvailabilityOut(BaseModel):
    event_id: int
    as_of: dt.datetime
    ticket_types: list[TicketTypeAvailability]
    quotas: list[QuotaAvailability]
    sections: list[SectionAvailability]


SeatState = Literal["free", "held", "sold"]


class SeatStateOut(BaseModel):
    id: int
    label: str
    section_id: int
    row: str
    number: int
    x: float
    y: float
    category: str
    state: SeatState


class SeatMapOut(BaseModel):
    event_id: int
    venue_id: int
    as_of: dt.datetime
    seats: list[SeatStateOut]
