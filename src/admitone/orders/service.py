"""Order rules: from hold to order, payment, tickets, cancellation and refund. Never commits."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.checkin.tokens import sign_ticket
from admitone.core import security
from admitone.core.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from admitone.events.models import events
from admitone.inventory import repository as inventory_repo
from admitone.inventory import service as inventory
from admitone.orders import repository as repo
from admitone.orders.payments import Payments
from admitone.orders.schemas import (
    CreatedOrder,
    NextAction,
    OrderCreate,
    OrderLineOut,
    OrderOut,
    PaymentOut,
    PaymentWebhook,
    TicketOut,
    WebhookAck,
)
from admitone.outbox.contracts import OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, TicketIssued
from admitone.outbox.repository import EventStream


async def event_of_hold(conn: AsyncConnection, hold_id: str) -> int:
    hold = await inventory_repo.get_hold(conn, hold_id)
    if hold is None:
        raise NotFound("No hold with this token.")
    return int(hold.event_id)


async def event_of_order(conn: AsyncConnection, order_id: str) -> int:
    order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    return int(order.event_id)


async def place_order(
    conn: AsyncConnection,
    stream: EventStream,
    data: OrderCreate,
    payments: Payments,
    now: dt.datetime,
    order_ttl: dt.timedelta,
    ticket_key: bytes,
    secret_key: str,
) -> CreatedOrder:
    hold = await inventory.live_hold(conn, data.hold_id, now)
    if hold.status != "active":
        existing = await repo.order_of_hold(conn, data.hold_id)
        raise Conflict(
            f"Hold {data.hold_id} already became order {existing.id if existing else '?'}.",
            order_id=existing.id if existing else None,
        )
    if data.payment_provider == "free" and hold.total_minor != 0:
        raise InvalidRequest("The 'free' provider only settles a total of 0; use 'test' for paid tickets.")
    if data.payment_provider == "test" and hold.total_minor == 0:
        raise InvalidRequest("This order costs nothing; use the 'free' provider.")
    organizer_id = (
        (await conn.execute(events.select().where(events.c.id == hold.event_id))).one().organizer_id
    )
    order_id = security.new_token("ord", 12)
    token = security.order_access_token(secret_key, order_id)
    deadline = now + order_ttl
    lines = await inventory_repo.lines_of(conn, [data.hold_id])
    await repo.insert_order(
        conn,
        {
            "id": order_id,
            "token_hash": security.hash_secret(token),
            "event_id": hold.event_id,
            "organizer_id": organizer_id,
            "hold_id": data.hold_id,
            "buyer_name": data.buyer_name,
            "buyer_email": str(data.buyer_email),
            "status": "pending_payment",
            "total_minor": hold.total_minor,
            "currency": hold.currency,
            "payment_provider": data.payment_provider,
            "created_at": now,
            "expires_at": deadline,
        },
        [
            {
                "order_id": order_id,
                "ticket_type_id": ln.ticket_type_id,
                "seat_id": ln.seat_id,
                "description": ln.ticket_type + (f", seat {ln.seat_label}" if ln.seat_label else ""),
                "quantity": ln.quantity,
                "unit_price_minor": ln.unit_price_minor,
            }
            for ln in lines
        ],
    )
    await inventory.reserve_for_order(conn, stream, data.hold_id, deadline)
    stream.emit(
        OrderPlaced(
            event_id=stream.event_id,
            order_id=order_id,
            hold_id=data.hold_id,
            total_minor=hold.total_minor,
            currency=hold.currency,
            payment_provider=data.payment_provider,
            expires_at=deadline,
        )
    )
    provider = payments.get(data.payment_provider)
    payment_id = security.new_token("pay", 12)
    status, _ = provider.start(payment_id, hold.total_minor)
    await repo.insert_payment(
        conn,
        {
            "id": payment_id,
            "order_id": order_id,
            "provider": provider.name,
            "amount_minor": hold.total_minor,
            "currency": hold.currency,
            "status": "pending",
            "created_at": now,
            "updated_at": now,
        },
    )
    if status == "succeeded":
        await _mark_paid(conn, stream, order_id, payment_id, now)
    out = await read_order(conn, order_id, ticket_key)
    return CreatedOrder(**out.model_dump(), access_token=token)


async def _mark_paid(
    conn: AsyncConnection, stream: EventStream, order_id: str, payment_id: str, now: dt.datetime
) -> None:
    order = await repo.get_order(conn, order_id)
    assert order is not None
    await repo.set_payment(conn, payment_id, "succeeded", now)
    await repo.set_order(conn, order_id, status="paid", paid_at=now, expires_at=None)
    await inventory.sell(conn, stream, order.hold_id)
    rows: list[dict[str, Any]] = []
    for line in await repo.lines_of(conn, order_id):
        for _ in range(line.quantity):
            rows.append(
                {
                    "code": secrets.token_urlsafe(18),
                    "order_id": order_id,
                    "event_id": order.event_id,
                    "ticket_type_id": line.ticket_type_id,
                    "seat_id": line.seat_id,
                    "status": "valid",
                    "issued_at": now,
                }
            )
    ids = await repo.insert_tickets(conn, rows)
    stream.emit(
        OrderPaid(
            event_id=stream.event_id,
            order_id=order_id,
            total_minor=order.total_minor,
            currency=order.currency,
            paid_at=now,
        )
    )
    for ticket_id, row in zip(ids, rows, strict=True):
        stream.emit(
            TicketIssued(
                event_id=stream.event_id,
                ticket_id=ticket_id,
                order_id=order_id,
                ticket_type_id=row["ticket_type_id"],
                seat_id=row["seat_id"],
            )
        )


async def handle_payment_webhook(
    conn: AsyncConnection, stream: EventStream, note: PaymentWebhook, now: dt.datetime
) -> WebhookAck:
    """Applies a provider's verdict; repeats of the same verdict are acknowledged and change nothing."""
    payment = await repo.get_payment(conn, note.payment_id)
    if payment is None:
        raise NotFound(f"No payment {note.payment_id}.")
    order = await repo.get_order(conn, payment.order_id)
    assert order is not None
    if note.amount_minor != payment.amount_minor or note.currency != payment.currency:
        raise InvalidRequest("The amount or currency does not match the payment.")
    if order.status == "paid":
        return WebhookAck(received=True, order_status="paid", note="already paid")
    if note.type == "payment.failed":
        if payment.status == "pending":
            await repo.set_payment(conn, payment.id, "failed", now)
        return WebhookAck(
            received=True, order_status=order.status, note="payment failed; the order stays unpaid"
        )
    if order.status != "pending_payment" or (order.expires_at is not None and order.expires_at <= now):
        await repo.set_payment(conn, payment.id, "refund_due", now)
        return WebhookAck(
            received=True,
            order_status=order.status,
            note="the order was no longer payable; the payment must be refunded",
        )
    await _mark_paid(conn, stream, order.id, payment.id, now)
    return WebhookAck(received=True, order_status="paid")


def check_token(order: Any, token: str | None) -> None:
    if not token or not security.same(order.token_hash, security.hash_secret(token)):
        raise Forbidden("This order needs its access token in the X-Order-Token header.")


async def cancel(
    conn: AsyncConnection,
    stream: EventStream,
    order_id: str,
    by: str,
    now: dt.datetime,
    ticket_key: bytes,
) -> OrderOut:
    order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    if order.status == "cancelled":
        return await read_order(conn, order_id, ticket_key)
    if order.status == "paid":
        raise Conflict(f"Order {order_id} is paid; an organizer can refund it instead.")
    if order.status != "pending_payment" or (order.expires_at is not None and order.expires_at <= now):
        raise Gone(f"Order {order_id} has {order.status.replace('_', ' ')}; there is nothing to cancel.")
    await inventory.return_to_sale(conn, stream, order.hold_id, was_sold=False)
    await repo.set_order(conn, order_id, status="cancelled", closed_at=now, expires_at=None)
    payment = await repo.payment_of(conn, order_id)
    if payment is not None and payment.status == "pending":
        await repo.set_payment(conn, payment.id, "cancelled", now)
    stream.emit(
        OrderCancelled(
            event_id=stream.event_id, order_id=order_id, by="organizer" if by == "organizer" else "buyer"
        )
    )
    return await read_order(conn, order_id, ticket_key)


async def refund(
    conn: AsyncConnection, stream: EventStream, order_id: str, now: dt.datetime, ticket_key: bytes
) -> OrderOut:
    order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    if order.status == "refunded":
        return await read_order(conn, order_id, ticket_key)
    if order.status != "paid":
        raise Conflict(
            f"Order {order_id} is {order.status.replace('_', ' ')}; only paid orders can be refunded."
        )
    await inventory.return_to_sale(conn, stream, order.hold_id, was_sold=True)
    await repo.void_tickets(conn, order_id)
    await repo.set_order(conn, order_id, status="refunded", closed_at=now)
    payment = await repo.payment_of(conn, order_id)
    if payment is not None:
        await repo.set_payment(conn, payment.id, "refunded", now)
    stream.emit(
        OrderRefunded(
            event_id=stream.event_id,
            order_id=order_id,
            amount_minor=order.total_minor,
            currency=order.currency,
        )
    )
    return await read_order(conn, order_id, ticket_key)


async def read_order(conn: AsyncConnection, order_id: str, ticket_key: bytes) -> OrderOut:
    """The order as its API shows it; ``ticket_key`` signs each ticket's QR payload."""
    order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    payment = await repo.payment_of(conn, order_id)
    payment_out = None
    if payment is not None:
        action = None
        if (
            payment.provider == "test"
            and payment.status in ("pending", "failed")
            and order.status == "pending_payment"
        ):
            action = NextAction(type="test_checkout", url=f"/api/v1/payments/test/{payment.id}/checkout")
        payment_out = PaymentOut(
            id=payment.id,
            provider=payment.provider,
            status=payment.status,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            next_action=action,
        )
    return OrderOut(
        id=order.id,
        event_id=order.event_id,
        status=order.status,
        buyer_name=order.buyer_name,
        buyer_email=order.buyer_email,
        total_minor=order.total_minor,
        currency=order.currency,
        created_at=order.created_at,
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        lines=[
            OrderLineOut(
                ticket_type_id=ln.ticket_type_id,
                seat_id=ln.seat_id,
                description=ln.description,
                quantity=ln.quantity,
                unit_price_minor=ln.unit_price_minor,
            )
            for ln in await repo.lines_of(conn, order_id)
        ],
        payment=payment_out,
        tickets=[
            TicketOut(
                id=t.id,
                code=t.code,
                ticket_type_id=t.ticket_type_id,
                ticket_type=t.ticket_type,
                seat_id=t.seat_id,
                seat_label=t.seat_label,
                status=t.status,
                qr_payload=sign_ticket(ticket_key, t.event_id, t.id, t.code),
            )
            for t in await repo.tickets_of(conn, order_id)
        ],
    )
