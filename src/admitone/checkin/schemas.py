"""API shapes of check-in at the door."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from admitone.core.schemas import PRINTABLE, Schema, ShortText

CheckinResultKind = Literal["valid", "already_used", "invalid", "wrong_event"]
InvalidReason = Literal["malformed", "bad_signature", "unknown_ticket", "void"]
Payload = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)
]


class CheckinRequest(Schema):
    payload: Payload = Field(
        description="What the scanner read from the QR code (`AT1.<event>.<ticket>.<code>.<signature>`), "
        "or the bare ticket code typed by hand.",
        examples=["AT1.12.345.Zq3v9dK2mX8pL4rT7wYbN1cE.q1bJ0mZ8a9Xv2cT5rL7wQg"],
    )
    scanner: ShortText = Field(
        description="The scanner or gate doing the scan; the same scanner retrying within the retry window "
        "gets its earlier answer again.",
        examples=["gate-3"],
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"payload": "AT1.12.345.Zq3v9dK2mX8pL4rT7wYbN1cE.q1bJ0mZ8a9Xv2cT5rL7wQg", "scanner": "gate-3"}
            ]
        }
    }


class CheckinTicket(BaseModel):
    id: int = Field(description="The ticket's id.", examples=[345])
    order_id: str = Field(description="The order the ticket belongs to.", examples=["ord_Qm9x2Lk4Tz1wRb8e"])
    ticket_type: str = Field(description="Name of the ticket type.", examples=["Standing"])
    seat_label: str | None = Field(description="The seat, for a seated ticket.", examples=["C-10"])


class CheckinResult(BaseModel):
    result: CheckinResultKind = Field(
        description="`valid`: admit now. `already_used`: this ticket was admitted before (see "
        "`checked_in_at` and `checked_in_by`). `invalid`: forged, unknown or void (see `reason`). "
        "`wrong_event`: a genuine ticket of another event (see `ticket_event_id`).",
        examples=["valid"],
    )
    message: str = Field(description="A sentence for the door display.", examples=["Admit one: Standing."])
    reason: InvalidReason | None = Field(
        None,
        description="Why an `invalid` ticket is refused: `malformed` (neither a QR payload nor a ticket "
        "code), `bad_signature` (forged or altered), `unknown_ticket`, `void` (refunded).",
        examples=["bad_signature"],
    )
    ticket: CheckinTicket | None = Field(
        None,
        description="The ticket, when it was found.",
        examples=[
            {"id": 345, "order_id": "ord_Qm9x2Lk4Tz1wRb8e", "ticket_type": "Standing", "seat_label": None}
        ],
    )
    checked_in_at: dt.datetime | None = Field(
        None,
        description="When the ticket was admitted (for `valid` and `already_used`).",
        examples=["2026-06-12T18:31:07Z"],
    )
    checked_in_by: str | None = Field(
        None, description="The scanner that admitted the ticket.", examples=["gate-3"]
    )
    repeated: bool = Field(
        False,
        description="True when this `valid` answer repeats an earlier admission by the same scanner "
        "within the retry window (a retried request); nothing was written.",
        examples=[False],
    )
    ticket_event_id: int | None = Field(
        None,
        description="For `wrong_event`: the event the ticket is for, when it belongs to your organizer.",
        examples=[13],
    )
    ticket_event_name: str | None = Field(
        None, description="For `wrong_event`: that event's name.", examples=["Matinee"]
    )


class CheckinSummary(BaseModel):
    event_id: int = Field(description="The event.", examples=[12])
    checked_in: int = Field(description="Valid tickets admitted so far.", examples=[412])
    total: int = Field(description="Valid (issued and not refunded) tickets of the event.", examples=[1500])
    remaining: int = Field(description="Valid tickets not admitted yet.", examples=[1088])
