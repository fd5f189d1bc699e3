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
    seats: list[SeatIn] = Field(min_length=1, max_length=1000)

    @field_validator("seats")
    @classmethod
    def _unique_numbers(cls, seats: list[SeatIn]) -> list[SeatIn]:
        numbers = [s.number for s in seats]
        if len(set(numbers)) != len(numbers):
            dup = sorted({n for n in numbers if numbers.count(n) > 1})
            raise ValueError(f"seat numbers repeat in the row: {dup[:10]}")
        return seats


class SectionIn(Schema):
    name: ShortText
    rows: list[RowIn] = Field(min_length=1, max_length=1000)

    @field_validator("rows")
    @classmethod
    def _unique_rows(cls, rows: list[RowIn]) -> list[RowIn]:
        labels = [r.label for r in rows]
        if len(set(labels)) != len(labels):
            raise ValueError("row labels repeat in the section")
        return rows


class VenueCreate(Schema):
    """A venue with its seat map (sections of rows of seats). A venue without seats sells only GA."""

    name: Name
    sections: list[SectionIn] = Field(default_factory=list, max_length=500)

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
    id: int
    section_id: int
    section: str
    row: str
    number: int
    label: str
    x: float
    y: float
    category: str


class SectionOut(BaseModel):
    id: int
    name: str
    seat_count: int


class VenueOut(BaseModel):
    id: int
    name: str
    seat_count: int
    sections: list[SectionOut]
    created_at: dt.datetime


EventStatus = Literal["draft", "on_sale", "cancelled", "ended"]
_ZONES = frozenset(available_timezones())


class EventCreate(Schema):
    name: Name
    slug: Slug = Field(description="URL name, unique across the server.", examples=["spring-tour-berlin"])
    description: Description = ""
    venue_id: Id | None = Field(None, description="Seated events need a venue with a seat map.")
    starts_at: AwareDatetime = Field(description="Start, with its UTC offset.")
    timezone: ShortText = Field("UTC", description="IANA time zone of the venue, e.g. Europe/Berlin.")
    sales_open_at: AwareDatetime | None = Field(None, description="Holds are refused before this time.")
    sales_close_at: AwareDatetime | None = Field(None, description="Holds are refused after this time.")
    currency: Currency = "EUR"
    status: Literal["draft", "on_sale"] = Field("draft", description="'on_sale' publishes it to buyers.")

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
    name: Name | None = None
    description: Description | None = None
    status: EventStatus | None = Field(None, description="draft -> on_sale -> ended; any -> cancelled.")
    sales_open_at: AwareDatetime | None = None
    sales_close_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _dates(self) -> EventUpdate:
        for when in (self.sales_open_at, self.sales_close_at):
            if when is not None and not (1970 <= when.year <= 9998):
                raise ValueError("dates must lie between 1970 and 9998")
        return self


class QuotaCreate(Schema):
    name: Name
    capacity: Count = Field(description="Tickets that may be sold or held at once across its ticket types.")


class QuotaOut(BaseModel):
    id: int
    name: str
    capacity: int
    held: int
    sold: int
    available: int


class TicketTypeCreate(Schema):
    name: Name
    kind: Literal["admission", "seated"] = Field(
        "admission", description="admission: general admission counted by quotas; seated: one per seat."
    )
    category: ShortText | None = Field(None, description="seated: the seat category this type prices.")
    price_minor: Money
    min_per_order: Annotated[int, Field(ge=1, le=1000)] = 1
    max_per_order: Annotated[int, Field(ge=1, le=1000)] = 10
    quota_ids: list[Id] = Field(
        default_factory=list,
        max_length=10,
        description="admission: at least one; a ticket needs room in every quota it belongs to.",
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
    id: int
    name: str
    kind: str
    category: str | None
    price_minor: int
    currency: str
    min_per_order: int
    max_per_order: int
    quota_ids: list[int]


class EventOut(BaseModel):
    id: int
    name: str
    slug: str
    description: str
    venue_id: int | None
    starts_at: dt.datetime
    timezone: str
    sales_open_at: dt.datetime | None
    sales_close_at: dt.datetime | None
    status: EventStatus
    currency: str
    ticket_types: list[TicketTypeOut]


class EventSummary(BaseModel):
    id: int
    name: str
    slug: str
    starts_at: dt.datetime
    timezone: str
    status: EventStatus
    seated: bool
