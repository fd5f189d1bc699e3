"""Path parameters shared by the routers, and what shared parameter names mean."""

from typing import Annotated, Any

from fastapi import FastAPI, Path

from admitone.core.schemas import INT32_MAX

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
TokenPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


# What each shared parameter name means, said once for the whole API: the same name is the same thing on
# every operation. A parameter declared with its own description keeps it.
PARAMETER_DESCRIPTIONS = {
    "event_id": "The event's id.",
    "venue_id": "The venue's id.",
    "order_id": "The order's id (`ord_...`).",
    "hold_id": "The hold's token (`hold_...`), as returned when the hold was placed.",
    "payment_id": "The payment's id (`pay_...`), from the order's `payment.next_action.url`.",
    "ticket_id": "The ticket's id.",
    "endpoint_id": "The webhook endpoint's id.",
    "delivery_id": "The webhook delivery's id.",
    "email_id": "The e-mail's id.",
    "message_id": "The chat message's id.",
    "user_id": "The chat user's id.",
    "limit": "At most this many items in the answer.",
    "offset": "Skip this many items first (paging).",
    "status": "Only items in this state.",
    "channel": "`chat` for the buyers' messages, `announcements` for the organizer's.",
    "Admitone-Signature": "The payment provider's signature: "
    '`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.',
    "Last-Event-ID": "The `seq` of the last message received; the stream resumes after it (browsers send it "
    "when they reconnect).",
}


def describe_parameters(app: FastAPI) -> None:
    """Gives every documented parameter without a description the shared one of its name."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        for item in document.get("paths", {}).values():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    if not parameter.get("description") and parameter["name"] in PARAMETER_DESCRIPTIONS:
                        parameter["description"] = PARAMETER_DESCRIPTIONS[parameter["name"]]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
