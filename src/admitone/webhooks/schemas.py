"""API shapes of webhook endpoints and their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from admitone.chat import schemas as chat_schemas
from admitone.core.schemas import PRINTABLE, Schema
from admitone.outbox.contracts import CONTRACTS, DomainEvent

ALL_TYPES = "*"
MAX_TYPES = 50


def known_event_types() -> frozenset[str]:
    """Every domain event type an endpoint may subscribe to: the outbox contracts and the chat events."""
    chat = {
        obj.TYPE
        for obj in vars(chat_schemas).values()
        if isinstance(obj, type) and issubclass(obj, DomainEvent) and obj is not DomainEvent
    }
    return frozenset({t for t, _ in CONTRACTS} | chat)


KNOWN_TYPES = known_event_types()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not contain credentials; verify the signature instead")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("the URL has an invalid port") from exc
    return value


def _event_types(value: list[str]) -> list[str]:
    unknown = sorted({t for t in value if t != ALL_TYPES and t not in KNOWN_TYPES})
    if unknown:
        raise ValueError(
            f"unknown event types: {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_TYPES))}, or *"
        )
    if ALL_TYPES in value and len(set(value)) > 1:
        raise ValueError("* already means every type; give it alone")
    return sorted(set(value))


WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"^[\x21-\x7e]+$"),
    AfterValidator(_http_url),
]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EventTypes = Annotated[
    list[EventType], Field(min_length=1, max_length=MAX_TYPES), AfterValidator(_event_types)
]
EndpointDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500, pattern=PRINTABLE)
]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class EndpointCreate(Schema):
    url: WebhookUrl = Field(
        description="Where deliveries are POSTed: an http:// or https:// URL, at most 2000 characters.",
        examples=["https://example.com/admitone/webhooks"],
    )
    event_types: EventTypes = Field(
        description='Domain event types to receive (such as `order.paid`), or `["*"]` for all of them.',
        examples=[["order.paid", "order.refunded"]],
    )
    description: EndpointDescription = Field(
        "", description="A note for yourself, at most 500 characters.", examples=["Accounting system"]
    )
    enabled: bool = Field(True, description="A disabled endpoint receives nothing.", examples=[True])


class EndpointUpdate(Schema):
    url: WebhookUrl | None = Field(
        None, description="A new URL; pending deliveries go to it.", examples=["https://example.com/hooks"]
    )
    event_types: EventTypes | None = Field(
        None, description='New event types (replaces the list), or `["*"]`.', examples=[["order.paid"]]
    )
    description: EndpointDescription | None = Field(
        None, description="A new note.", examples=["Accounting system (production)"]
    )
    enabled: bool | None = Field(
        None,
        description="Disable to stop receiving; deliveries already queued are still sent.",
        examples=[False],
    )


class EndpointOut(BaseModel):
    id: int = Field(description="The endpoint's id.", examples=[1])
    url: str = Field(description="Where deliveries are POSTed.", examples=["https://example.com/hooks"])
    event_types: list[str] = Field(description='Subscribed types, or `["*"]`.', examples=[["order.paid"]])
    description: str = Field(description="The organizer's note.", examples=["Accounting system"])
    enabled: bool = Field(description="Whether new events are delivered to it.", examples=[True])
    created_at: dt.datetime = Field(description="When it was registered.", examples=["2026-12-01T10:00:00Z"])
    updated_at: dt.datetime = Field(description="Last change.", examples=["2026-12-01T10:00:00Z"])


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="Signs every delivery (`Admitone-Signature`). Shown only now: store it safely.",
        examples=["whsec_3q2-7wEXAMPLEb1cYwEXAMPLEl7d1gJ9cGEXAMPLEj2o"],
    )


class AttemptOut(BaseModel):
    number: int = Field(description="1 for the first attempt of the delivery.", examples=[1])
    attempted_at: dt.datetime = Field(description="When it was sent.", examples=["2026-12-01T10:00:01Z"])
    duration_ms: int = Field(description="Time until the answer or the error, in ms.", examples=[42])
    status_code: int | None = Field(description="The receiver's HTTP status; null if none.", examples=[200])
    error: str | None = Field(
        description="Why it failed: a non-2xx status, a timeout or a connection error.", examples=[None]
    )
    succeeded: bool = Field(description="Whether the receiver acknowledged it with a 2xx.", examples=[True])


class DeliveryOut(BaseModel):
    id: int = Field(description="The delivery's id.", examples=[17])
    endpoint_id: int = Field(description="The endpoint it goes to.", examples=[1])
    webhook_id: str = Field(
        description="The domain event's id, sent as `Admitone-Webhook-Id`; the same on every attempt and "
        "redelivery, so receivers deduplicate on it.",
        examples=["0b9d3c0e-4c1f-4f0e-9a59-3f2b8f8f1c2a"],
    )
    event_type: str = Field(description="The domain event type.", examples=["order.paid"])
    event_id: int = Field(description="The ticketing event it belongs to.", examples=[12])
    sequence: int = Field(description="Its position in that event's stream.", examples=[12])
    status: DeliveryStatus = Field(description="pending, succeeded or failed.", examples=["succeeded"])
    attempts: int = Field(description="Attempts made so far.", examples=[1])
    next_attempt_at: dt.datetime | None = Field(
        description="When a pending delivery is tried next.", examples=[None]
    )
    last_status_code: int | None = Field(description="Status of the last attempt.", examples=[200])
    last_error: str | None = Field(description="Error of the last attempt, if it failed.", examples=[None])
    created_at: dt.datetime = Field(description="When it was queued.", examples=["2026-12-01T10:00:00Z"])
    delivered_at: dt.datetime | None = Field(
        description="When the receiver acknowledged it.", examples=["2026-12-01T10:00:01Z"]
    )


class DeliveryDetail(DeliveryOut):
    attempts_log: list[AttemptOut] = Field(
        description="Every attempt, oldest first.",
        examples=[
            [
                {
                    "number": 1,
                    "attempted_at": "2026-12-01T10:00:01Z",
                    "duration_ms": 42,
                    "status_code": 200,
                    "error": None,
                    "succeeded": True,
                }
            ]
        ],
    )
    body: dict[str, object] = Field(
        description="The envelope sent as the request body.",
        examples=[{"id": "0b9d3c0e-4c1f-4f0e-9a59-3f2b8f8f1c2a", "type": "order.paid", "payload": {}}],
    )
