"""API shapes of venues, seat maps, events, ticket types and quotas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from admitone.core.schemas import (
    Coordinate,
    Count,
    Currency,
    Description,
    Id,
    Money,
    Name,
    Schema,
    ShortText,
    Slug,
)

MAX_SEATS_PER_VENUE = 100_000


class SeatIn(Schema):
    number: Annotated[
        int, Field(ge=1, le=100_000, description="Position in the row; neighbours differ by 1.")
    ]
    x: Coordinate = Field(description="Horizontal position for drawing.")
    y: Coordinate = Field(description="Vertical position for drawing.")
    category: ShortText = Field(description="Price category; a seated ticket type prices each category.")
    label: ShortText | None = Field(None, description="Printed label; default '<section> <row>-<number>'.")

    model_config = {"json_schema_extra": {"examples": [{"number": 1, "x": 10, "y": 20, "category": "A"}]}}


class RowIn(Schema):
    label: ShortText = Field(description="Row label, e.g. 'A' or '12'.")
    seats: list[SeatIn] = Field(min_length=1, max_length=1000, description="The row's seats; numbers unique.")

    model_config = {
        "json_schema_extra": {
            "examples": [{"label": "A", "seats": [{"number": 1, "x": 0, "y": 0, "category": "A"}]}]
        }
    }

    @field_validator("seats")
    @classmethod
    def _unique_numbers(cls, seats: list[SeatIn]) -> list[SeatIn]:
        numbers = [s.number for s in seats]
        if len(set(numbers)) != len(numbers):
            dup = sorted({n for n in numbers if numbers.count(n) > 1})
            raise ValueError(f"seat numbers repeat in the row: {dup[:10]}")
        return seats


class SectionIn(Schema):
    name: ShortText = Field(description="Section name, unique in the venue.", examples=["Stalls"])
    rows: list[RowIn] = Field(min_length=1, max_length=1000, description="The section's rows; labels unique.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Stalls",
                    "rows": [{"label": "A", "seats": [{"number": 1, "x": 0, "y": 0, "category": "A"}]}],
                }
            ]
        }
    }

    @field_validator("rows")
    @classmethod
    def _unique_rows(cls, rows: list[RowIn]) -> list[RowIn]:
        labels = [r.label for r in rows]
        if len(set(labels)) != len(labels):
            raise ValueError("row labels repeat in the section")
        return rows


class VenueCreate(Schema):
    """A venue with its seat map (sections of rows of seats). A venue without seats sells only GA."""

    name: Name = Field(description="Name of the venue.", examples=["Town Hall"])
    sections: list[SectionIn] = Field(
        default_factory=list, max_length=500, description="The seat map; empty for a general-admission venue."
    )

    @model_validator(mode="after")
    def _check(self) -> VenueCreate:
        names = [s.name for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError("section names repeat")
        total = sum(len(r.seats) for s in self.sections for r in s.rows)
        if total > MAX_SEATS_PER_VENUE:
            raise ValueError(f"a venue holds at most {MAX_SEATS_PER_VENUE} seats, this one {total}")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Town Hall",
                    "sections": [
                        {
                            "name": "Stalls",
                            "rows": [
                                {
                                    "label": "A",
                                    "seats": [
                                        {"number": 1, "x": 0, "y": 0, "category": "A"},
                                        {"number": 2, "x": 1, "y": 0, "category": "A"},
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    }


class SeatOut(BaseModel):
    id: int = Field(description="The seat's id; holds of specific seats name it.", examples=[801])
    section_id: int = Field(description="Id of the section the seat is in.", examples=[7])
    section: str = Field(description="Name of the section.", examples=["Stalls"])
    row: str = Field(description="Row label.", examples=["A"])
    number: int = Field(description="Position in the row; neighbours differ by 1.", examples=[3])
    label: str = Field(description="Printed label of the seat.", examples=["Stalls A-3"])
    x: float = Field(description="Horizontal position for drawing.", examples=[2.0])
    y: float = Field(description="Vertical position for drawing.", examples=[0.0])
    category: str = Field(description="Price category of the seat.", examples=["A"])


class SectionOut(BaseModel):
    id: int = Field(description="The section's id.", examples=[7])
    name: str = Field(description="Name of the section.", examples=["Stalls"])
    seat_count: int = Field(description="Number of seats in the section.", examples=[420])


class VenueOut(BaseModel):
    id: int = Field(description="The venue's id; events name it as `venue_id`.", examples=[5])
    name: str = Field(description="Name of the venue.", examples=["Town Hall"])
    seat_count: int = Field(description="Number of seats; 0 for a general-admission venue.", examples=[420])
    sections: list[SectionOut] = Field(description="Sections of the seat map.")
    created_at: dt.datetime = Field(description="When the venue was created (UTC, RFC 3339).")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 5,
                    "name": "Town Hall",
                    "seat_count": 420,
                    "sections": [{"id": 7, "name": "Stalls", "seat_count": 420}],
                    "created_at": "2026-03-01T09:00:00Z",
                }
            ]
        }
    }


EventStatus = Literal["draft", "on_sale", "cancelled", "ended"]
_ZONES = frozenset(available_timezones())


class EventCreate(Schema):
    name: Name = Field(description="Name of the event as buyers see it.", examples=["Spring Tour: Berlin"])
    slug: Slug = Field(description="URL name, unique across the server.", examples=["spring-tour-berlin"])
    description: Description = Field(
        "", description="Free text shown on the event page.", examples=["The spring tour's only Berlin date."]
    )
    venue_id: Id | None = Field(
        None,
        description="Seated events need a venue with a seat map; omit for general admission.",
        examples=[5],
    )
    starts_at: AwareDatetime = Field(
        description="Start, RFC 3339 with its UTC offset.", examples=["2026-06-12T18:00:00Z"]
    )
    timezone: ShortText = Field(
        "UTC", description="IANA time zone of the venue, e.g. Europe/Berlin.", examples=["Europe/Berlin"]
    )
    sales_open_at: AwareDatetime | None = Field(
        None, description="Holds are refused before this time (RFC 3339).", examples=["2026-04-01T08:00:00Z"]
    )
    sales_close_at: AwareDatetime | None = Field(
        None, description="Holds are refused after this time (RFC 3339).", examples=["2026-06-12T17:00:00Z"]
    )
    currency: Currency = Field(
        "EUR", description="ISO 4217 currency of every price of the event.", examples=["EUR"]
    )
    status: Literal["draft", "on_sale"] = Field(
        "draft", description="'on_sale' publishes it to buyers.", examples=["on_sale"]
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in _ZONES:
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as Europe/Berlin")
        return value

    @model_validator(mode="after")
    def _window(self) -> EventCreate:
        if self.sales_open_at and self.sales_close_at and self.sales_close_at <= self.sales_open_at:
            raise ValueError("sales_close_at must be after sales_open_at")
        for when in (self.starts_at, self.sales_open_at, self.sales_close_at):
            if when is not None and not (1970 <= when.year <= 9998):
                raise ValueError("dates must lie between 1970 and 9998")
        return self


class EventUpdate(Schema):
    """Only the fields sent are changed."""

    name: Name | None = Field(None, description="New name of the event.", examples=["Spring Tour: Berlin"])
    description: Description | None = Field(
        None, description="New free text of the event page.", examples=["Extra date added."]
    )
    status: EventStatus | None = Field(
        None, description="draft -> on_sale -> ended; any -> cancelled.", examples=["on_sale"]
    )
    sales_open_at: AwareDatetime | None = Field(
        None, description="New start of sales (RFC 3339).", examples=["2026-04-01T08:00:00Z"]
    )
    sales_close_at: AwareDatetime | None = Field(
        None, description="New end of sales (RFC 3339).", examples=["2026-06-12T17:00:00Z"]
    )

    @model_validator(mode="after")
    def _dates(self) -> EventUpdate:
        for when in (self.sales_open_at, self.sales_close_at):
            if when is not None and not (1970 <= when.year <= 9998):
                raise ValueError("dates must lie between 1970 and 9998")
        return self


class QuotaCreate(Schema):
    name: Name = Field(description="Name of the quota, for organizers.", examples=["Standing floor"])
    capacity: Count = Field(
        description="Tickets that may be sold or held at once across its ticket types.", examples=[1500]
    )


class QuotaOut(BaseModel):
    id: int = Field(
        description="The quota's id; admission ticket types name it in `quota_ids`.", examples=[9]
    )
    name: str = Field(description="Name of the quota.", examples=["Standing floor"])
    capacity: int = Field(description="Tickets that may be sold or held at once.", examples=[1500])
    held: int = Field(description="Tickets in active holds and unpaid orders.", examples=[40])
    sold: int = Field(description="Tickets paid for.", examples=[1200])
    available: int = Field(description="Tickets left: capacity minus held minus sold.", examples=[260])


class TicketTypeCreate(Schema):
    name: Name = Field(description="Name of the ticket type as buyers see it.", examples=["Standing"])
    kind: Literal["admission", "seated"] = Field(
        "admission",
        description="admission: general admission counted by quotas; seated: one per seat.",
        examples=["admission"],
    )
    category: ShortText | None = Field(
        None, description="seated: the seat category this type prices.", examples=["A"]
    )
    price_minor: Money = Field(
        description="Price of one ticket in minor units (cents) of the event's currency.", examples=[4500]
    )
    min_per_order: Annotated[int, Field(ge=1, le=1000)] = Field(
        1, description="Fewest tickets of this type in one hold.", examples=[1]
    )
    max_per_order: Annotated[int, Field(ge=1, le=1000)] = Field(
        10, description="Most tickets of this type in one hold.", examples=[6]
    )
    quota_ids: list[Id] = Field(
        default_factory=list,
        max_length=10,
        description="admission: at least one; a ticket needs room in every quota it belongs to.",
        examples=[[9]],
    )

    @model_validator(mode="after")
    def _check(self) -> TicketTypeCreate:
        if self.min_per_order > self.max_per_order:
            raise ValueError("min_per_order must not exceed max_per_order")
        if self.kind == "admission" and not self.quota_ids:
            raise ValueError("an admission ticket type needs at least one quota")
        if self.kind == "seated" and not self.category:
            raise ValueError("a seated ticket type needs the seat category it prices")
        if len(set(self.quota_ids)) != len(self.quota_ids):
            raise ValueError("quota_ids repeat")
        return self


class TicketTypeOut(BaseModel):
    id: int = Field(description="The ticket type's id; holds name it.", examples=[21])
    name: str = Field(description="Name of the ticket type.", examples=["Standing"])
    kind: str = Field(
        description="`admission` (counted by quotas) or `seated` (one per seat).", examples=["admission"]
    )
    category: str | None = Field(
        description="For seated types: the seat category it prices.", examples=[None]
    )
    price_minor: int = Field(description="Price of one ticket in minor units (cents).", examples=[4500])
    currency: str = Field(description="ISO 4217 currency of the price.", examples=["EUR"])
    min_per_order: int = Field(description="Fewest tickets of this type in one hold.", examples=[1])
    max_per_order: int = Field(description="Most tickets of this type in one hold.", examples=[6])
    quota_ids: list[int] = Field(description="Quotas a ticket of this type counts against.", examples=[[9]])


class EventOut(BaseModel):
    id: int = Field(description="The event's id.", examples=[12])
    name: str = Field(description="Name of the event.", examples=["Spring Tour: Berlin"])
    slug: str = Field(description="URL name, unique across the server.", examples=["spring-tour-berlin"])
    description: str = Field(
        description="Free text of the event page.", examples=["The spring tour's only Berlin date."]
    )
    venue_id: int | None = Field(description="The venue; null for general admission only.", examples=[5])
    starts_at: dt.datetime = Field(description="Start (UTC, RFC 3339).", examples=["2026-06-12T18:00:00Z"])
    timezone: str = Field(
        description="IANA time zone of the venue, for local display.", examples=["Europe/Berlin"]
    )
    sales_open_at: dt.datetime | None = Field(
        description="Holds are refused before this time (UTC); null: no limit.",
        examples=["2026-04-01T08:00:00Z"],
    )
    sales_close_at: dt.datetime | None = Field(
        description="Holds are refused after this time (UTC); null: no limit.",
        examples=["2026-06-12T17:00:00Z"],
    )
    status: EventStatus = Field(description="draft, on_sale, cancelled or ended.", examples=["on_sale"])
    currency: str = Field(description="ISO 4217 currency of every price of the event.", examples=["EUR"])
    ticket_types: list[TicketTypeOut] = Field(description="What can be bought.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 12,
                    "name": "Spring Tour: Berlin",
                    "slug": "spring-tour-berlin",
                    "description": "The spring tour's only Berlin date.",
                    "venue_id": 5,
                    "starts_at": "2026-06-12T18:00:00Z",
                    "timezone": "Europe/Berlin",
                    "sales_open_at": "2026-04-01T08:00:00Z",
                    "sales_close_at": "2026-06-12T17:00:00Z",
                    "status": "on_sale",
                    "currency": "EUR",
                    "ticket_types": [
                        {
                            "id": 21,
                            "name": "Standing",
                            "kind": "admission",
                            "category": None,
                            "price_minor": 4500,
                            "currency": "EUR",
                            "min_per_order": 1,
                            "max_per_order": 6,
                            "quota_ids": [9],
                        }
                    ],
                }
            ]
        }
    }


class EventSummary(BaseModel):
    id: int = Field(description="The event's id.", examples=[12])
    name: str = Field(description="Name of the event.", examples=["Spring Tour: Berlin"])
    slug: str = Field(description="URL name, unique across the server.", examples=["spring-tour-berlin"])
    starts_at: dt.datetime = Field(description="Start (UTC, RFC 3339).", examples=["2026-06-12T18:00:00Z"])
    timezone: str = Field(description="IANA time zone of the venue.", examples=["Europe/Berlin"])
    status: EventStatus = Field(description="draft, on_sale, cancelled or ended.", examples=["on_sale"])
    seated: bool = Field(description="Whether the event sells specific seats.", examples=[True])
