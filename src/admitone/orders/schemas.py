"""API shapes of orders, payments and tickets."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from admitone.core.schemas import Name, Schema

OrderStatus = Literal["pending_payment", "paid", "expired", "cancelled", "refunded"]
ORDER_ID = "ord_Qm9x2Lk4Tz1wRb8e"
ACCESS_TOKEN = "xW3k9Lq2Rz8mN4vB7cT1pY6dKf0sHj5a"
ORDER_EXAMPLE: dict[str, Any] = {
    "id": ORDER_ID,
    "event_id": 12,
    "status": "pending_payment",
    "buyer_name": "Ada Lovelace",
    "buyer_email": "ada@example.com",
    "total_minor": 9000,
    "currency": "EUR",
    "created_at": "2026-04-01T08:01:12Z",
    "expires_at": "2026-04-01T08:16:12Z",
    "paid_at": None,
    "lines": [
        {
            "ticket_type_id": 21,
            "seat_id": None,
            "description": "Standing",
            "quantity": 2,
            "unit_price_minor": 4500,
        }
    ],
    "payment": {
        "id": "pay_R2d9Xq7LmB4kPz1c",
        "provider": "test",
        "status": "pending",
        "amount_minor": 9000,
        "currency": "EUR",
        "next_action": {
            "type": "test_checkout",
            "url": "https://tickets.example.com/api/v1/payments/test/pay_R2d9Xq7LmB4kPz1c/checkout",
        },
    },
    "tickets": [],
}
HoldToken = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class OrderCreate(Schema):
    hold_id: HoldToken = Field(description="The hold token returned when the hold was placed.")
    buyer_name: Name = Field(
        description="Name of the buyer, printed on the tickets.", examples=["Ada Lovelace"]
    )
    buyer_email: EmailStr = Field(
        max_length=320,
        description="Where the confirmation and tickets are sent.",
        examples=["ada@example.com"],
    )
    payment_provider: Literal["free", "test"] = Field(
        "test",
        description="'free' for a zero total; 'test' confirms asynchronously through a signed webhook.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "hold_id": "hold_3kP9xQ2mLr7vTz8wNc4bYd1fHs6gJa0e",
                    "buyer_name": "Ada Lovelace",
                    "buyer_email": "ada@example.com",
                    "payment_provider": "test",
                }
            ]
        }
    }


class OrderLineOut(BaseModel):
    ticket_type_id: int = Field(description="The ticket type bought.", examples=[21])
    seat_id: int | None = Field(
        description="The seat, for a seated ticket; null for admission.", examples=[None]
    )
    description: str = Field(description="What the line is, for receipts.", examples=["Standing"])
    quantity: int = Field(description="Number of tickets on the line.", examples=[2])
    unit_price_minor: int = Field(description="Price of one ticket in minor units (cents).", examples=[4500])


class NextAction(BaseModel):
    type: Literal["test_checkout"] = Field(
        description="What the client does next: `test_checkout` posts to `url`.", examples=["test_checkout"]
    )
    url: str = Field(
        description="POST here to complete (or fail) the test payment; the result arrives by webhook.",
        examples=["https://tickets.example.com/api/v1/payments/test/pay_R2d9Xq7LmB4kPz1c/checkout"],
    )


class PaymentOut(BaseModel):
    id: str = Field(description="The payment's id.", examples=["pay_R2d9Xq7LmB4kPz1c"])
    provider: str = Field(description="Payment provider: `free` or `test`.", examples=["test"])
    status: str = Field(description="pending, succeeded or failed.", examples=["pending"])
    amount_minor: int = Field(description="Amount in minor units (cents).", examples=[9000])
    currency: str = Field(description="ISO 4217 currency.", examples=["EUR"])
    next_action: NextAction | None = Field(
        None, description="What the client must do to complete the payment; null when nothing."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "pay_R2d9Xq7LmB4kPz1c",
                    "provider": "test",
                    "status": "pending",
                    "amount_minor": 9000,
                    "currency": "EUR",
                    "next_action": {
                        "type": "test_checkout",
                        "url": "https://tickets.example.com/api/v1/payments/test/pay_R2d9Xq7LmB4kPz1c/checkout",
                    },
                }
            ]
        }
    }


class TicketOut(BaseModel):
    id: int = Field(description="The ticket's id.", examples=[345])
    code: str = Field(
        description="Unguessable ticket code; it is what the door scans.",
        examples=["Zq3v9dK2mX8pL4rT7wYbN1cE"],
    )
    ticket_type_id: int = Field(description="The ticket type.", examples=[21])
    ticket_type: str = Field(description="Name of the ticket type.", examples=["Standing"])
    seat_id: int | None = Field(description="The seat, for a seated ticket.", examples=[None])
    seat_label: str | None = Field(
        description="Printed label of the seat, for a seated ticket.", examples=[None]
    )
    status: str = Field(description="valid, refunded or cancelled.", examples=["valid"])
    qr_payload: str = Field(
        description="What the ticket's QR code carries: the event, the ticket and its code, signed by this "
        "server (`AT1.<event id>.<ticket id>.<code>.<signature>`). The door verifies it offline.",
        examples=["AT1.12.345.Zq3v9dK2mX8pL4rT7wYbN1cE.q1bJ0mZ8a9Xv2cT5rL7wQg"],
    )


class OrderOut(BaseModel):
    id: str = Field(description="The order's id.", examples=[ORDER_ID])
    event_id: int = Field(description="The event the tickets are for.", examples=[12])
    status: OrderStatus = Field(
        description="pending_payment, paid, expired, cancelled or refunded.", examples=["pending_payment"]
    )
    buyer_name: str = Field(description="Name of the buyer.", examples=["Ada Lovelace"])
    buyer_email: str = Field(description="E-mail address of the buyer.", examples=["ada@example.com"])
    total_minor: int = Field(description="Total in minor units (cents).", examples=[9000])
    currency: str = Field(description="ISO 4217 currency of the total.", examples=["EUR"])
    created_at: dt.datetime = Field(description="When the order was placed (UTC, RFC 3339).")
    expires_at: dt.datetime | None = Field(
        description="Unpaid orders expire at this time (UTC); null once paid or closed."
    )
    paid_at: dt.datetime | None = Field(description="When the payment succeeded (UTC); null until then.")
    lines: list[OrderLineOut] = Field(description="What was bought.")
    payment: PaymentOut | None = Field(description="The payment; null for a free order.")
    tickets: list[TicketOut] = Field(description="Issued tickets; empty until the order is paid.")

    model_config = {"json_schema_extra": {"examples": [ORDER_EXAMPLE]}}


class CreatedOrder(OrderOut):
    access_token: str = Field(
        description="Shown once: send it as X-Order-Token to read or cancel the order.",
        examples=[ACCESS_TOKEN],
    )

    model_config = {"json_schema_extra": {"examples": [{**ORDER_EXAMPLE, "access_token": ACCESS_TOKEN}]}}


class TestCheckout(Schema):
    outcome: Literal["succeeded", "failed"] = Field(
        "succeeded", description="How the test payment ends.", examples=["succeeded"]
    )


class PaymentWebhook(BaseModel):
    """What a payment provider posts to the webhook, signed with the shared secret."""

    id: str = Field(max_length=100, description="The provider's id of this notification.")
    type: Literal["payment.succeeded", "payment.failed"]
    payment_id: str = Field(max_length=40)
    amount_minor: int = Field(ge=0, le=2**31 - 1)
    currency: str = Field(max_length=3)


class WebhookAck(BaseModel):
    received: bool = Field(description="The notification was verified and recorded.", examples=[True])
    order_status: OrderStatus | None = Field(
        None, description="The order's status after the notification.", examples=["paid"]
    )
    note: str | None = Field(None, description="Why nothing changed, if so.", examples=[None])
