"""The order confirmation as an e-mail: plain text and HTML alternatives, one inline QR code per ticket.

Everything here is pure and CPU-bound (QR codes are drawn here): call :func:`build_confirmation` off the
event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno

# ISO 4217 currencies whose minor unit is not the cent.
_EXPONENTS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class Ticket:
    ticket_id: int
    label: str
    payload: str  # the signed content of its QR code


@dataclass(frozen=True)
class Confirmation:
    order_id: str
    buyer_name: str
    recipient: str
    event_name: str
    starts_at: dt.datetime
    timezone: str
    venue_name: str | None
    lines: list[Line]
    total_minor: int
    currency: str
    tickets: list[Ticket]
    order_url: str
    sender: str


def format_money(amount_minor: int, currency: str) -> str:
    """``2500, "EUR"`` -> ``"EUR 25.00"``; knows currencies without cents (JPY) or with mills (KWD)."""
    exponent = _EXPONENTS.get(currency.upper(), 2)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10**exponent)
    whole = f"{units:,}"
    return f"{currency} {sign}{whole}.{minor:0{exponent}d}" if exponent else f"{currency} {sign}{whole}"


def format_when(starts_at: dt.datetime, timezone: str) -> str:
    """The local start time with its zone: ``"Saturday 12 December 2026, 20:00 CET (Europe/Berlin)"``."""
    try:
        zone: dt.tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, timezone = dt.UTC, "UTC"
    local = starts_at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()} ({timezone})"


def domain_of(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id(order_id: str, sender: str) -> str:
    """Stable per order, so that a receiving system can recognise a repeated delivery."""
    return f"<order-{order_id}@{domain_of(sender)}>"


def qr_png(payload: str) -> bytes:
    qr = segno.make(payload, error="m", micro=False)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=6, border=4)
    return out.getvalue()


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _text(c: Confirmation, when: str) -> str:
    rows = [
        f"Hello {c.buyer_name},",
        "",
        f"thank you for your order {c.order_id}. Your tickets for {c.event_name} are below.",
        "",
        f"When:  {when}",
    ]
    if c.venue_name:
        rows.append(f"Where: {c.venue_name}")
    rows += ["", "Your order:"]
    for line in c.lines:
        total = format_money(line.quantity * line.unit_price_minor, c.currency)
        rows.append(f"  {line.quantity} x {line.description}  {total}")
    rows += [f"  Total: {format_money(c.total_minor, c.currency)}", "", "Tickets:"]
    rows += [f"  {t.label}" for t in c.tickets]
    rows += [
        "",
        "Each ticket's QR code is in the HTML version of this e-mail; show it at the door.",
        f"Your order online: {c.order_url}",
        "",
    ]
    return "\n".join(rows)


def _html(c: Confirmation, when: str, cids: list[str]) -> str:
    e = html.escape
    lines = "".join(
        f"<tr><td>{line.quantity} &times; {e(line.description)}</td>"
        f'<td style="text-align:right">{e(format_money(line.quantity * line.unit_price_minor, c.currency))}'
        "</td></tr>"
        for line in c.lines
    )
    tickets = "".join(
        f'<div style="margin:16px 0"><p style="margin:0 0 4px">{e(t.label)}</p>'
        f'<img src="cid:{e(cid)}" width="240" height="240" alt="QR code of the ticket {e(t.label)}"></div>'
        for t, cid in zip(c.tickets, cids, strict=True)
    )
    venue = f"<p><strong>Where:</strong> {e(c.venue_name)}</p>" if c.venue_name else ""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{e(c.event_name)}</title></head>"
        '<body style="font-family:sans-serif;max-width:600px">'
        f"<p>Hello {e(c.buyer_name)},</p>"
        f"<p>thank you for your order <code>{e(c.order_id)}</code>. "
        f"Your tickets for <strong>{e(c.event_name)}</strong> are below.</p>"
        f"<p><strong>When:</strong> {e(when)}</p>{venue}"
        f'<table style="border-collapse:collapse;width:100%">{lines}'
        f'<tr><td><strong>Total</strong></td><td style="text-align:right"><strong>'
        f"{e(format_money(c.total_minor, c.currency))}</strong></td></tr></table>"
        f"<h2>Your tickets</h2>{tickets}"
        f'<p>Show each QR code at the door. <a href="{e(c.order_url)}">Your order online</a>.</p>'
        "</body></html>"
    )


def build_confirmation(c: Confirmation, now: dt.datetime) -> EmailMessage:
    """The whole message. CPU-bound (draws the QR codes): run it in a thread."""
    when = format_when(c.starts_at, c.timezone)
    domain = domain_of(c.sender)
    msg = EmailMessage()
    msg["Subject"] = _one_line(f"Your tickets for {c.event_name}")
    msg["From"] = c.sender
    msg["To"] = Address(display_name=_one_line(c.buyer_name), addr_spec=c.recipient)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(c.order_id, c.sender)
    msg["Auto-Submitted"] = "auto-generated"
    cids = [f"ticket-{t.ticket_id}.{c.order_id}@{domain}" for t in c.tickets]
    msg.set_content(_text(c, when))
    msg.add_alternative(_html(c, when, cids), subtype="html")
    html_part = list(msg.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    for ticket, cid in zip(c.tickets, cids, strict=True):
        html_part.add_related(
            qr_png(ticket.payload),
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=f"ticket-{ticket.ticket_id}.png",
            disposition="inline",
        )
    return msg
