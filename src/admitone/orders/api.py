"""HTTP for orders: checkout, the buyer's order page, payment webhooks and the organizer's order desk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core import security
from admitone.core.deps import AppState, StateDep
from admitone.core.errors import Conflict, InvalidRequest, NotFound, Unauthorized, problems
from admitone.core.idempotency import IdempotencyKeyHeader, make_key, run_idempotent
from admitone.core.params import IdPath, TokenPath
from admitone.events import service as events_service
from admitone.orders import repository as repo
from admitone.orders import service
from admitone.orders.payments import SIGNATURE_HEADER, webhook_secret
from admitone.orders.schemas import (
    CreatedOrder,
    OrderCreate,
    OrderOut,
    OrderStatus,
    PaymentWebhook,
    TestCheckout,
    WebhookAck,
)
from admitone.organizers.auth import CurrentCaller, WriteCaller
from admitone.outbox.repository import EventStream

router = APIRouter(tags=["Orders"])
payments_router = APIRouter(tags=["Payments"])
organizer = APIRouter(prefix="/organizer", tags=["Organizer: orders"], responses=problems(401, 403))

T = TypeVar("T", bound=BaseModel)
OrderToken = Annotated[
    str | None, Header(alias="X-Order-Token", max_length=100, description="The order's access token.")
]


def on_event(
    event_of: Callable[[AsyncConnection], Awaitable[int]],
    work: Callable[[AsyncConnection, EventStream], Awaitable[T]],
) -> Callable[[AsyncConnection], Awaitable[T]]:
    """Runs ``work`` holding the lock of the event it concerns, then writes its domain events."""

    async def run(conn: AsyncConnection) -> T:
        stream = await EventStream.lock(conn, await event_of(conn))
        result = await work(conn, stream)
        await stream.flush()
        return result

    return run


@router.post(
    "/orders",
    name="create_order",
    status_code=201,
    response_model=CreatedOrder,
    responses=problems(404, 409, 410),
)
async def create_order(
    state: StateDep, body: OrderCreate, idempotency_key: IdempotencyKeyHeader = None
) -> CreatedOrder | JSONResponse:
    """Turns a hold into an order awaiting payment.

    With the ``test`` provider, complete the payment at ``payment.next_action.url``; the order becomes
    paid, and its tickets appear, when the provider's signed webhook arrives.
    """
    key = make_key(idempotency_key, "order", body)
    now = state.clock.now()
    ttl = dt.timedelta(seconds=state.settings.order_ttl_seconds)
    return await run_idempotent(
        state.db,
        key,
        201,
        on_event(
            lambda conn: service.event_of_hold(conn, body.hold_id),
            lambda conn, stream: service.place_order(
                conn, stream, body, state.payments, now, ttl, state.ticket_key, state.secret_key
            ),
        ),
    )


async def _buyer_order(state: AppState, order_id: str, token: str | None) -> None:
    async with state.db.read() as conn:
        order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    service.check_token(order, token)


@router.get("/orders/{order_id}", name="get_order", response_model=OrderOut, responses=problems(403, 404))
async def get_order(state: StateDep, order_id: TokenPath, token: OrderToken = None) -> OrderOut:
    """The order with its payment state and, once paid, its tickets."""
    await _buyer_order(state, order_id, token)
    async with state.db.read() as conn:
        return await service.read_order(conn, order_id, state.ticket_key)


@router.post(
    "/orders/{order_id}/cancel",
    name="cancel_order",
    response_model=OrderOut,
    responses=problems(403, 404, 409, 410),
)
async def cancel_order(state: StateDep, order_id: TokenPath, token: OrderToken = None) -> OrderOut:
    """Cancels an unpaid order; its tickets go back on sale."""
    await _buyer_order(state, order_id, token)
    async with state.db.write() as conn:
        return await on_event(
            lambda c: service.event_of_order(c, order_id),
            lambda c, stream: service.cancel(
                c, stream, order_id, "buyer", state.clock.now(), state.ticket_key
            ),
        )(conn)


@payments_router.post(
    "/payments/test/{payment_id}/checkout",
    name="complete_test_payment",
    status_code=202,
    responses=problems(404, 409),
)
async def complete_test_payment(state: StateDep, payment_id: TokenPath, body: TestCheckout) -> dict[str, str]:
    """The test provider's checkout: like entering a card. The outcome arrives later by webhook."""
    async with state.db.read() as conn:
        payment = await repo.get_payment(conn, payment_id)
        order = await repo.get_order(conn, payment.order_id) if payment else None
    if payment is None or order is None or payment.provider != "test":
        raise NotFound(f"No test payment {payment_id}.")
    if order.status != "pending_payment" or payment.status not in ("pending", "failed"):
        raise Conflict(
            f"Payment {payment_id} cannot be completed: the order is {order.status.replace('_', ' ')}."
        )
    state.payments.test.complete(payment_id, payment.amount_minor, payment.currency, body.outcome)
    return {"status": "processing", "detail": "The provider will confirm the payment by webhook."}


@payments_router.post(
    "/payments/test/webhook",
    name="test_payment_webhook",
    response_model=WebhookAck,
    responses=problems(401, 404),
)
async def receive_test_payment_webhook(
    state: StateDep,
    request: Request,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, max_length=300)] = None,
) -> WebhookAck:
    """Where the test provider reports payment outcomes, signed with HMAC-SHA256 over timestamp and body."""
    raw = await request.body()
    if not security.verify_signature(webhook_secret(state.secret_key), signature, raw):
        raise Unauthorized("The webhook signature is missing, wrong or too old.")
    try:
        note = PaymentWebhook.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequest(
            f"The webhook body is not a payment notification: {exc.errors()[0]['msg']}"
        ) from exc
    async with state.db.read() as conn:
        payment = await repo.get_payment(conn, note.payment_id)
    if payment is None:
        raise NotFound(f"No payment {note.payment_id}.")
    async with state.db.write() as conn:
        return await on_event(
            lambda c: service.event_of_order(c, payment.order_id),
            lambda c, stream: service.handle_payment_webhook(c, stream, note, state.clock.now()),
        )(conn)


async def _own_order(state: AppState, organizer_id: int, order_id: str) -> None:
    async with state.db.read() as conn:
        order = await repo.get_order(conn, order_id)
    if order is None or order.organizer_id != organizer_id:
        raise NotFound(f"No order {order_id} belongs to your organizer.")


@organizer.get(
    "/events/{event_id}/orders",
    name="list_event_orders",
    response_model=list[OrderOut],
    responses=problems(404),
)
async def list_event_orders(
    state: StateDep,
    caller: CurrentCaller,
    event_id: IdPath,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[OrderOut]:
    """Orders of one of your events, newest first, optionally of one status; paged by limit and offset."""
    async with state.db.read() as conn:
        await events_service.own_event(conn, caller.organizer_id, event_id)
        rows = await repo.orders_of_event(conn, caller.organizer_id, event_id, status, limit, offset)
        return [await service.read_order(conn, r.id, state.ticket_key) for r in rows]


@organizer.get(
    "/orders/{order_id}", name="organizer_get_order", response_model=OrderOut, responses=problems(404)
)
async def organizer_get_order(state: StateDep, caller: CurrentCaller, order_id: TokenPath) -> OrderOut:
    """One order of your events, with its lines, payment and tickets."""
    await _own_order(state, caller.organizer_id, order_id)
    async with state.db.read() as conn:
        return await service.read_order(conn, order_id, state.ticket_key)


@organizer.post(
    "/orders/{order_id}/cancel",
    name="organizer_cancel_order",
    response_model=OrderOut,
    responses=problems(404, 409, 410),
)
async def organizer_cancel_order(state: StateDep, caller: WriteCaller, order_id: TokenPath) -> OrderOut:
    """Cancels an unpaid order."""
    await _own_order(state, caller.organizer_id, order_id)
    async with state.db.write() as conn:
        return await on_event(
            lambda c: service.event_of_order(c, order_id),
            lambda c, stream: service.cancel(
                c, stream, order_id, "organizer", state.clock.now(), state.ticket_key
            ),
        )(conn)


@organizer.post(
    "/orders/{order_id}/refund", name="refund_order", response_model=OrderOut, responses=problems(404, 409)
)
async def refund_order(state: StateDep, caller: WriteCaller, order_id: TokenPath) -> OrderOut:
    """Refunds a paid order: tickets become void and go back on sale."""
    await _own_order(state, caller.organizer_id, order_id)
    async with state.db.write() as conn:
        return await on_event(
            lambda c: service.event_of_order(c, order_id),
            lambda c, stream: service.refund(c, stream, order_id, state.clock.now(), state.ticket_key),
        )(conn)
