"""Check-in rules: what a scan names, whether it admits, and admitting it exactly once. Never commits.

A scan is decided in up to three steps, cheapest first:

1. :func:`read_payload` checks the QR payload's signature (or the shape of a typed code) without the
   database; forged or garbled input is answered here.
2. :func:`inspect` reads the ticket: wrong event, unknown, void and already used are answered from it.
3. :func:`admit` marks it used with a conditional update under the event's lock and writes
   ``ticket.checked_in`` in the same transaction; of any number of concurrent scans one wins.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.checkin import repository as repo
from admitone.checkin.schemas import CheckinResult, CheckinSummary, CheckinTicket, InvalidReason
from admitone.checkin.tokens import PREFIX, verify_ticket
from admitone.events import service as events_service
from admitone.outbox.contracts import TicketCheckedIn
from admitone.outbox.repository import EventStream

# Ticket codes are ``secrets.token_urlsafe(18)``: 24 characters of the URL-safe alphabet.
_CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

_INVALID_MESSAGES: dict[InvalidReason, str] = {
    "malformed": "Not a ticket: neither a ticket QR code nor a ticket code.",
    "bad_signature": "Forged or damaged QR code: its signature does not match.",
    "unknown_ticket": "Unknown ticket: no ticket has this code.",
    "void": "Void ticket: it was refunded and admits nobody.",
}


@dataclass(frozen=True)
class Scan:
    """What a scanned payload names. ``event_id`` and ``ticket_id`` come from a signed QR payload only."""

    code: str
    ticket_id: int | None = None
    event_id: int | None = None


def invalid(reason: InvalidReason, ticket: Any = None) -> CheckinResult:
    return CheckinResult(
        result="invalid",
        reason=reason,
        message=_INVALID_MESSAGES[reason],
        ticket=_ticket_out(ticket) if ticket is not None else None,
    )


def read_payload(key: bytes, payload: str) -> Scan | CheckinResult:
    """The ticket a payload names, or the ``invalid`` answer; never touches the database."""
    text = payload.strip()
    if text.startswith(PREFIX + "."):
        claim = verify_ticket(key, text)
        if claim is None:
            return invalid("bad_signature")
        return Scan(code=claim.code, ticket_id=claim.ticket_id, event_id=claim.event_id)
    # A code typed by hand: people add spaces or dashes between groups; dashes are part of the alphabet.
    code = "".join(text.split())
    if not _CODE.match(code):
        return invalid("malformed")
    return Scan(code=code)


def _ticket_out(ticket: Any) -> CheckinTicket:
    return CheckinTicket(
        id=ticket.id, order_id=ticket.order_id, ticket_type=ticket.ticket_type, seat_label=ticket.seat_label
    )


def _admit_message(ticket: Any) -> str:
    seat = f", seat {ticket.seat_label}" if ticket.seat_label else ""
    return f"Admit one: {ticket.ticket_type}{seat}."


async def _wrong_event(conn: AsyncConnection, organizer_id: int, ticket_event_id: int) -> CheckinResult:
    other = await repo.event_owner_and_name(conn, ticket_event_id)
    if other is not None and other.organizer_id == organizer_id:
        return CheckinResult(
            result="wrong_event",
            message=f"Wrong event: this ticket is for {other.name}.",
            ticket_event_id=ticket_event_id,
            ticket_event_name=other.name,
        )
    # Another organizer's event: say no more than that.
    return CheckinResult(result="wrong_event", message="Wrong event: this ticket is for another event.")


def _used(ticket: Any, scanner: str, now: dt.datetime, retry_window: dt.timedelta) -> CheckinResult:
    at: dt.datetime = ticket.checked_in_at
    if ticket.checked_in_by == scanner and now - at <= retry_window:
        return CheckinResult(
            result="valid",
            message=_admit_message(ticket),
            ticket=_ticket_out(ticket),
            checked_in_at=at,
            checked_in_by=ticket.checked_in_by,
            repeated=True,
        )
    return CheckinResult(
        result="already_used",
        message=f"Already used: admitted at {at:%H:%M:%S} UTC by {ticket.checked_in_by}.",
        ticket=_ticket_out(ticket),
        checked_in_at=at,
        checked_in_by=ticket.checked_in_by,
    )


async def inspect(
    conn: AsyncConnection,
    organizer_id: int,
    event_id: int,
    scan: Scan,
    scanner: str,
    now: dt.datetime,
    retry_window: dt.timedelta,
) -> CheckinResult | Any:
    """The answer when the ticket's state decides it; else the ticket row, to :func:`admit`."""
    await events_service.own_event(conn, organizer_id, event_id)
    if scan.event_id is not None and scan.event_id != event_id:
        return await _wrong_event(conn, organizer_id, scan.event_id)
    if scan.ticket_id is not None:
        ticket = await repo.ticket_by_id(conn, scan.ticket_id)
        if ticket is not None and not (
            hmac.compare_digest(ticket.code, scan.code) and ticket.event_id == scan.event_id
        ):
            ticket = None  # signed with this key, but not a ticket of this database
    else:
        ticket = await repo.ticket_by_code(conn, scan.code)
    if ticket is None:
        return invalid("unknown_ticket")
    if ticket.event_id != event_id:
        return await _wrong_event(conn, organizer_id, ticket.event_id)
    if ticket.status != "valid":
        return invalid("void", ticket)
    if ticket.checked_in_at is not None:
        return _used(ticket, scanner, now, retry_window)
    return ticket


async def admit(
    conn: AsyncConnection,
    stream: EventStream,
    ticket: Any,
    scanner: str,
    now: dt.datetime,
    retry_window: dt.timedelta,
) -> CheckinResult:
    """Marks the ticket used, if no other scan came first; the caller holds the event's lock."""
    if await repo.mark_checked_in(conn, ticket.id, now, scanner):
        stream.emit(
            TicketCheckedIn(
                event_id=stream.event_id,
                ticket_id=ticket.id,
                order_id=ticket.order_id,
                ticket_type_id=ticket.ticket_type_id,
                seat_id=ticket.seat_id,
                checked_in_at=now,
                scanner=scanner,
            )
        )
        await stream.flush()
        return CheckinResult(
            result="valid",
            message=_admit_message(ticket),
            ticket=_ticket_out(ticket),
            checked_in_at=now,
            checked_in_by=scanner,
        )
    current = await repo.ticket_by_id(conn, ticket.id)
    if current is None or current.status != "valid":
        return invalid("void", current)
    return _used(current, scanner, now, retry_window)


async def summary(conn: AsyncConnection, organizer_id: int, event_id: int) -> CheckinSummary:
    await events_service.own_event(conn, organizer_id, event_id)
    checked_in, total = await repo.counts(conn, event_id)
    return CheckinSummary(event_id=event_id, checked_in=checked_in, total=total, remaining=total - checked_in)
