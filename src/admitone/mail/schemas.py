"""API shapes of order-confirmation e-mails, as organizers see them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

EmailStatus = Literal["pending", "sending", "sent", "failed", "skipped"]


class EmailOut(BaseModel):
    id: int = Field(description="The e-mail's id, for resending.", examples=[17])
    kind: Literal["order_confirmation"] = Field(
        description="What the e-mail is; one per order and kind.", examples=["order_confirmation"]
    )
    order_id: str = Field(description="The order it confirms.", examples=["ord_Qm9x2Lk4Tz1wRb8e"])
    recipient: str = Field(description="The buyer's address.", examples=["ada@example.com"])
    status: EmailStatus = Field(
        description="pending: waiting for its (next) attempt; sending: a sender has it now; sent: the SMTP "
        "server accepted it; failed: every attempt failed (resend it); skipped: the order was no longer "
        "paid when its turn came.",
        examples=["failed"],
    )
    attempts: int = Field(description="Attempts made so far.", examples=[8])
    next_attempt_at: dt.datetime = Field(
        description="When a pending e-mail is tried next.", examples=["2026-12-02T10:15:00Z"]
    )
    last_error: str | None = Field(
        description="Why the last attempt failed.", examples=["SMTPConnectError: Error connecting to ..."]
    )
    message_id: str | None = Field(
        description="The Message-ID header it was sent with (stable per order).",
        examples=["<order-ord_Qm9x2Lk4Tz1wRb8e@example.com>"],
    )
    created_at: dt.datetime = Field(description="When the order was paid.", examples=["2026-12-02T10:00:00Z"])
    sent_at: dt.datetime | None = Field(description="When it was sent.", examples=["2026-12-02T10:00:02Z"])


class EmailList(BaseModel):
    delivery: Literal["on", "off"] = Field(
        description="'off' when this server has no SMTP server configured (ADMITONE_SMTP_HOST): e-mails "
        "are recorded and stay pending until one is.",
        examples=["on"],
    )
    emails: list[EmailOut] = Field(
        description="Newest first.",
        examples=[
            [
                {
                    "id": 17,
                    "kind": "order_confirmation",
                    "order_id": "ord_Qm9x2Lk4Tz1wRb8e",
                    "recipient": "ada@example.com",
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": "2026-12-02T10:00:00Z",
                    "last_error": None,
                    "message_id": "<order-ord_Qm9x2Lk4Tz1wRb8e@example.com>",
                    "created_at": "2026-12-02T10:00:00Z",
                    "sent_at": "2026-12-02T10:00:02Z",
                }
            ]
        ],
    )
