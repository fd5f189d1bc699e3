"""E-mail rules: which domain events become e-mails, and what organizers may do with them. Never commits."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.errors import Conflict, NotFound
from admitone.events import service as events_service
from admitone.mail import repository as repo
from admitone.mail.schemas import EmailOut

log = logging.getLogger(__name__)

ORDER_CONFIRMATION = "order_confirmation"


async def record_confirmation(conn: AsyncConnection, dialect: str, order_id: str, now: dt.datetime) -> bool:
    """Records the confirmation of a paid order, once per order; True when it is new."""
    order = await repo.get_order(conn, order_id)
    if order is None:
        log.warning("order %s of an order.paid event does not exist; no confirmation", order_id)
        return False
    return await repo.insert_job(
        conn,
        dialect,
        {
            "kind": ORDER_CONFIRMATION,
            "order_id": order_id,
            "event_id": order.event_id,
            "organizer_id": order.organizer_id,
            "recipient": order.buyer_email,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


def email_out(row: object) -> EmailOut:
    return EmailOut.model_validate(row, from_attributes=True)


async def list_emails(
    conn: AsyncConnection,
    organizer_id: int,
    event_id: int,
    status: str | None,
    limit: int,
    offset: int,
) -> list[EmailOut]:
    await events_service.own_event(conn, organizer_id, event_id)
    rows = await repo.jobs_of_event(conn, organizer_id, event_id, status, limit, offset)
    return [email_out(r) for r in rows]


async def resend(
    conn: AsyncConnection, organizer_id: int, event_id: int, email_id: int, now: dt.datetime
) -> EmailOut:
    """Puts a failed (or still pending) e-mail back in line at once, with a fresh set of attempts."""
    await events_service.own_event(conn, organizer_id, event_id)
    job = await repo.get_job(conn, email_id)
    if job is None or job.organizer_id != organizer_id or job.event_id != event_id:
        raise NotFound(f"No e-mail {email_id} belongs to event {event_id}.")
    if job.status == "sent":
        raise Conflict(f"E-mail {email_id} was already sent (its Message-ID is {job.message_id}).")
    if job.status == "sending":
        raise Conflict(f"E-mail {email_id} is being sent right now.")
    if job.status == "skipped":
        raise Conflict(f"E-mail {email_id} was skipped: its order is no longer paid.")
    row = await repo.requeue(conn, email_id, now)
    if row is None:
        raise Conflict(f"E-mail {email_id} changed while it was being resent; read it again.")
    return email_out(row)
