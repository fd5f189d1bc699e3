"""API shapes of orders, payments and tickets."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from admitone.core.schemas import Name, Schema

OrderStatus = Literal["pending_payment", "paid", "expired", "cancelled", "refunded"]
HoldToken = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class OrderCreate(Schema):
    hold_id: HoldToken = Field(description="The hold token returned when the hold was placed.")
    buyer_name: Name
    buyer_email: EmailStr = Field(max_length=320)
    payment_provider: Literal["free", "test"] = Field(
        "test",
        description="'free' for a zero total; 'test' confirms asynchronously through a signed webhook.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "hold_id": "hold_Zx3...",
                    "buyer_name": "Ada Lovelace",
                    "buyer_email": "ada@example.com",
                    "payment_provider": "test",
                }
            ]
        }
    }


class OrderLineOut(BaseModel):
    ticket_type_id: int
    seat_id: int | None
    description: str
    quantity: int
    unit_price_minor: int


class NextAction(BaseModel):
    type: Literal["test_checkout"]
    url: str = Field(
        description="POST here to complete (or fail) the test payment; the result arrives by webhook."
    )


class PaymentOut(BaseModel):
    id: str
    provider: str
    status: str
    amount_minor: int
    currency: str
    next_action: NextAction | None = None


class TicketOut(BaseModel):
    id: int
    code: str = Field(description="Unguessable ticket code; it is what the door scans.")
    ticket_type_id: int
    ticket_type: str
    seat_id: int | None
    seat_label: str | None
    status: str
    qr_payload: str = Field(
        description="What the ticket's QR code carries: the event, the ticket and its code, signed by this "
        "server (`AT1.<event id>.<ticket id>.<code>.<signature>`). The door verifies it offline.",
        examples=["AT1.12.345.Zq3v9dK2mX8pL4rT7wYbN1cE.q1bJ0mZ8a9Xv2cT5rL7wQg"],
    )


class OrderOut(BaseModel):
    id: str
    event_id: int
    status: OrderStatus
    buyer_name: str
    buyer_email: str
    total_minor: int
    currency: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="Unpaid orders expire at this time.")
    paid_at: dt.datetime | None
    lines: list[OrderLineOut]
    payment: PaymentOut | None
    tickets: list[TicketOut]


class CreatedOrder(OrderOut):
    access_token: str = Field(description="Shown once: send it as X-Order-Token to read or cancel the order.")


class TestCheckout(Schema):
    outcome: Literal["succeeded", "failed"] = "succeeded"


class PaymentWebhook(BaseModel):
    """What a payment provider posts to the webhook, signed with the shared secret."""

    id: str = Field(max_length=100, description="The provider's id of this notification.")
    type: Literal["payment.succeeded", "payment.failed"]
    payment_id: str = Field(max_length=40)
    amount_minor: int = Field(ge=0, le=2**31 - 1)
    currency: str = Field(max_length=3)


class WebhookAck(BaseModel):
    received: bool
    order_status: OrderStatus | None = None
    note: str | None = None
