"""Order-confirmation e-mails, delivered to a real SMTP server (aiosmtpd) on 127.0.0.1.

QR codes in the received messages are decoded with a real QR decoder (zxing-cpp) and verified with the
server's ticket key, as a door scanner would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import io
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
import zxingcpp
from aiosmtpd.controller import Controller
from PIL import Image

from admitone.checkin.tokens import ticket_signing_key, verify_ticket
from admitone.core.clock import ManualClock
from admitone.core.db import Database
from admitone.core.settings import Settings
from admitone.mail import repository as mail_repo
from admitone.mail.message import format_money, format_when
from admitone.mail.sender import MailSender
from tests.conftest import SECRET, running
from tests.harness import Harness, small_venue
from tests.support import free_port

SENDER = "Tickets <tickets@admitone.test>"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepted."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [m for _, m in self.received]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    async def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None


@asynccontextmanager
async def smtp_server(port: int | None = None, *, start: bool = True) -> AsyncIterator[SmtpServer]:
    server = SmtpServer(port)
    if start:
        await server.start()
    try:
        yield server
    finally:
        await server.stop()


def with_smtp(settings: Settings, port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_from": SENDER,
        "smtp_timeout_seconds": 5,
        "mail_poll_seconds": 0.2,
        "mail_retry_base_seconds": 30,
        **extra,
    }
    return settings.model_copy(update=values)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "") -> None:
    """Waits (bounded) until ``check`` holds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def received(inbox: Inbox, n: int, within: float = 15.0) -> None:
    async def enough() -> bool:
        return inbox.count >= n

    await eventually(enough, within, f"{n} e-mails (got {inbox.count})")


async def jobs(h: Harness) -> list[Any]:
    return await h.rows(
        "SELECT order_id, status, attempts, last_error, message_id FROM mail_jobs ORDER BY id"
    )


async def seated_show(h: Harness, auth: dict[str, str], name: str) -> tuple[int, list[int]]:
    venue = await h.ok(
        "POST", "/api/v1/organizer/venues", 201, json=small_venue(rows=2, per_row=5), headers=auth
    )
    event_id = await h.event(auth, venue["id"], name=name, timezone="Europe/Berlin")
    for category, price in (("A", 4250), ("B", 1999)):
        await h.ok(
            "POST",
            f"/api/v1/organizer/events/{event_id}/ticket-types",
            201,
            headers=auth,
            json={"name": f"Seat {category}", "kind": "seated", "category": category, "price_minor": price},
        )
    seats = await h.ok("GET", f"/api/v1/organizer/venues/{venue['id']}/seats", headers=auth)
    return event_id, [s["id"] for s in seats]


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    return str(results[0].text)


async def test_paid_order_gets_one_confirmation_with_a_verifiable_qr_code_per_ticket(
    settings: Settings,
) -> None:
    async with smtp_server() as smtp, running(with_smtp(settings, smtp.port)) as h:
        auth = await h.organizer()
        event_id, seats = await seated_show(h, auth, "<b>Rock & Roll</b> Night")
        buyer = '<img src=x onerror="alert(1)"> Ada & "Bob"'
        order = await h.sell(
            event_id, {"seat_ids": [seats[0], seats[9]]}, email="ada@example.com", name=buyer
        )
        await h.settle()
        await received(smtp.inbox, 1)
        await h.settle()
        await h.state.mail.run_once()  # type: ignore[union-attr]
        await asyncio.sleep(0.3)

        assert smtp.inbox.count == 1, "exactly one confirmation per paid order"
        rcpt, msg = smtp.inbox.received[0]
        assert rcpt == ["ada@example.com"]
        assert msg["To"].addresses[0].addr_spec == "ada@example.com"
        assert msg["Message-ID"] == f"<order-{order['id']}@admitone.test>"
        assert msg["From"].addresses[0].addr_spec == "tickets@admitone.test"
        assert "Rock & Roll" in msg["Subject"]
        assert msg.get_content_type() == "multipart/alternative"
        plain, related = list(msg.iter_parts())
        assert plain.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        html_part, *images = list(related.iter_parts())
        assert html_part.get_content_type() == "text/html"
        text = plain.get_content()
        html = html_part.get_content()

        # The summary: event, local date with its zone, venue, lines, total, link to the order page.
        event = await h.ok("GET", f"/api/v1/organizer/events/{event_id}", headers=auth)
        when = format_when(dt.datetime.fromisoformat(event["starts_at"]), "Europe/Berlin")
        assert when.endswith("(Europe/Berlin)")
        assert when in text and when in html
        assert "Test Hall" in text and "Test Hall" in html
        total = format_money(order["total_minor"], order["currency"])
        assert order["total_minor"] == 4250 + 1999
        assert total == "EUR 62.49"
        assert total in text and total in html
        for line in ("1 x Seat A, seat Main A-1  EUR 42.50", "1 x Seat B, seat Main B-5  EUR 19.99"):
            assert line in text
        assert "Seat A, seat Main A-1" in html and "Seat B, seat Main B-5" in html
        # The link carries the order's access token in the fragment: it opens the order in any browser.
        link = f"http://test/orders/{order['id']}#token={order['access_token']}"
        assert link in text
        assert f'href="{link}"' in html

        # Everything typed by the buyer or the organizer is escaped in the HTML.
        assert "<img src=x" not in html and "<b>Rock" not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Ada &amp; &quot;Bob&quot;" in html
        assert "&lt;b&gt;Rock &amp; Roll&lt;/b&gt; Night" in html

        # One inline PNG per ticket, referenced from the HTML, whose decoded content is a genuine ticket.
        assert len(images) == len(order["tickets"]) == 2
        key = ticket_signing_key(SECRET)
        by_id = {t["id"]: t for t in order["tickets"]}
        seen = set()
        for image in images:
            assert image.get_content_type() == "image/png"
            assert image.get_content_disposition() == "inline"
            cid = image["Content-ID"].strip("<>")
            assert f'src="cid:{cid}"' in html
            payload = decode_qr(image.get_content())
            claim = verify_ticket(key, payload)
            assert claim is not None, payload
            assert claim.event_id == event_id
            assert claim.code == by_id[claim.ticket_id]["code"]
            assert payload == by_id[claim.ticket_id]["qr_payload"]
            seen.add(claim.ticket_id)
        assert seen == set(by_id)

        [job] = await jobs(h)
        assert (job.order_id, job.status, job.attempts) == (order["id"], "sent", 1)
        assert job.message_id == msg["Message-ID"]

        # The organizer sees it; another organizer does not see the event at all.
        listed = await h.ok("GET", f"/api/v1/organizer/events/{event_id}/emails?status=sent", headers=auth)
        assert listed["delivery"] == "on"
        assert [(e["order_id"], e["status"]) for e in listed["emails"]] == [(order["id"], "sent")]
        assert listed["emails"][0]["message_id"] == msg["Message-ID"]
        other = await h.organizer("Other")
        response = await h.client.get(f"/api/v1/organizer/events/{event_id}/emails", headers=other)
        assert response.status_code == 404
        # A sent e-mail is not sent twice.
        email_id = listed["emails"][0]["id"]
        response = await h.client.post(
            f"/api/v1/organizer/events/{event_id}/emails/{email_id}/resend", headers=auth
        )
        assert response.status_code == 409, response.text


async def test_smtp_down_the_confirmation_is_retried_and_sent_when_it_is_back(settings: Settings) -> None:
    port = free_port()
    async with (
        smtp_server(port, start=False) as smtp,
        running(with_smtp(settings, port), ManualClock()) as h,
    ):
        auth = await h.organizer()
        ga = await h.ga_event(auth, price=1500)
        order = await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]})
        await h.settle()

        async def tried() -> bool:
            rows = await jobs(h)
            return bool(rows) and rows[0].attempts >= 1 and rows[0].status == "pending"

        await eventually(tried, what="a first, failed attempt")
        [job] = await jobs(h)
        assert job.last_error and "SMTP" in job.last_error, job.last_error
        assert job.status == "pending"

        await smtp.start()
        # Not before its backoff has passed...
        await h.state.mail.run_once()  # type: ignore[union-attr]
        assert smtp.inbox.count == 0
        assert (await jobs(h))[0].attempts == 1
        # ... then at once.
        h.clock.advance(31)
        h.state.mail.notify()  # type: ignore[union-attr]
        await received(smtp.inbox, 1)
        msg = smtp.inbox.messages()[0]
        assert msg["Message-ID"] == f"<order-{order['id']}@admitone.test>"
        assert len([p for p in msg.walk() if p.get_content_type() == "image/png"]) == 3

        async def sent() -> bool:
            return (await jobs(h))[0].status == "sent"

        await eventually(sent, what="the job marked sent")
        [job] = await jobs(h)
        assert job.attempts == 2 and job.last_error is None


async def test_failed_after_the_last_attempt_is_listed_and_can_be_resent(settings: Settings) -> None:
    port = free_port()
    async with (
        smtp_server(port, start=False) as smtp,
        running(with_smtp(settings, port, mail_max_attempts=2), ManualClock()) as h,
    ):
        auth = await h.organizer()
        ga = await h.ga_event(auth)
        order = await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
        await h.settle()
        mail = h.state.mail
        assert mail is not None
        await mail.stop()  # drive the sender by hand from here
        await mail.run_once()
        h.clock.advance(31)
        await mail.run_once()
        [job] = await jobs(h)
        assert (job.status, job.attempts) == ("failed", 2)

        url = f"/api/v1/organizer/events/{ga.event_id}/emails"
        failed = await h.ok("GET", url, params={"status": "failed"}, headers=auth)
        assert [e["order_id"] for e in failed["emails"]] == [order["id"]]
        assert failed["emails"][0]["last_error"]
        assert (await h.ok("GET", url, params={"status": "sent"}, headers=auth))["emails"] == []
        email_id = failed["emails"][0]["id"]

        # Another organizer cannot resend it; a read-only key may not.
        other = await h.organizer("Other")
        response = await h.client.post(f"{url}/{email_id}/resend", headers=other)
        assert response.status_code == 404
        reader = await h.organizer("Reader", scopes=("read",))
        response = await h.client.post(f"{url}/{email_id}/resend", headers=reader)
        assert response.status_code in (403, 404)

        await smtp.start()
        resent = await h.ok("POST", f"{url}/{email_id}/resend", headers=auth)
        assert (resent["status"], resent["attempts"]) == ("pending", 0)
        await mail.run_once()
        assert smtp.inbox.count == 1
        [job] = await jobs(h)
        assert (job.status, job.attempts) == ("sent", 1)


async def test_a_claimed_job_is_not_taken_twice_until_its_lease_runs_out(settings: Settings) -> None:
    async with smtp_server() as smtp, running(with_smtp(settings, smtp.port), ManualClock()) as h:
        mail = h.state.mail
        assert mail is not None
        await mail.stop()
        auth = await h.organizer()
        ga = await h.ga_event(auth)
        await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
        await h.settle()

        # A sender claims the job and dies before it talks to SMTP.
        now = h.clock.now()
        lease = dt.timedelta(seconds=h.state.settings.mail_lease_seconds)
        async with h.state.db.write() as conn:
            claimed = await mail_repo.claim(conn, h.state.db.dialect, now, now + lease, "crashed", 10)
        assert len(claimed) == 1

        assert await mail.run_once() == 0, "a job under a live lease is left alone"
        assert smtp.inbox.count == 0
        h.clock.advance(h.state.settings.mail_lease_seconds + 1)
        assert await mail.run_once() == 1
        assert smtp.inbox.count == 1
        [job] = await jobs(h)
        assert (job.status, job.attempts) == ("sent", 2)
        # The dead sender's claim is gone: it can no longer mark the job.
        async with h.state.db.write() as conn:
            assert not await mail_repo.finish(conn, claimed[0].id, "crashed", now, status="failed")
        assert (await jobs(h))[0].status == "sent"


async def test_two_senders_at_once_send_each_confirmation_once(settings: Settings) -> None:
    async with smtp_server() as smtp, running(with_smtp(settings, smtp.port)) as h:
        mail = h.state.mail
        assert mail is not None
        await mail.stop()
        auth = await h.organizer()
        ga = await h.ga_event(auth)
        orders = [
            await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
            for _ in range(12)
        ]
        await h.settle()
        smtp.inbox.delay = 0.02
        other = MailSender(h.state.db, h.state.settings, h.clock, h.state.secret_key)
        tried = await asyncio.gather(mail.run_once(), other.run_once())
        assert sum(tried) == 12
        ids = sorted(m["Message-ID"] for m in smtp.inbox.messages())
        assert ids == sorted(f"<order-{o['id']}@admitone.test>" for o in orders)
        assert {j.status for j in await jobs(h)} == {"sent"}


async def test_a_restarted_server_sends_every_confirmation_exactly_once(stream_settings: Settings) -> None:
    """Stop the app while its sender is part-way through several orders, start it again: every order's
    confirmation arrives once (on the in-process bus and on Kafka)."""
    clock = ManualClock()
    async with smtp_server() as smtp:
        settings = with_smtp(stream_settings, smtp.port)
        async with running(settings, clock) as h:
            mail = h.state.mail
            assert mail is not None
            await mail.stop()
            auth = await h.organizer()
            ga = await h.ga_event(auth)
            orders = [
                await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]})
                for _ in range(6)
            ]
            await h.settle()
            assert len(await jobs(h)) == 6
            smtp.inbox.delay = 0.3
            mail.start()
            await received(smtp.inbox, 2)
        # The app stopped after the message in flight; the rest wait.
        first_round = smtp.inbox.count
        assert 2 <= first_round < 6
        statuses = [j.status for j in await _jobs_of(settings)]
        assert statuses.count("sent") == first_round
        assert statuses.count("pending") == 6 - first_round

        smtp.inbox.delay = 0.0
        async with running(settings, clock) as h:
            await received(smtp.inbox, 6)
            await h.settle()
            assert h.state.mail is not None
            await h.state.mail.run_once()
            await asyncio.sleep(0.5)
            assert {j.status for j in await jobs(h)} == {"sent"}
        ids = [m["Message-ID"] for m in smtp.inbox.messages()]
        assert sorted(ids) == sorted(f"<order-{o['id']}@admitone.test>" for o in orders)


async def _jobs_of(settings: Settings) -> list[Any]:
    """The jobs, read while no app is running."""
    db = Database(settings)
    try:
        async with db.read() as conn:
            return list(await conn.execute(sa.text("SELECT status FROM mail_jobs ORDER BY id")))
    finally:
        await db.dispose()


async def test_without_an_smtp_host_confirmations_wait(harness: Harness) -> None:
    h = harness
    assert h.state.settings.smtp_host is None
    auth = await h.organizer()
    ga = await h.ga_event(auth)
    order = await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    await h.settle()
    await h.settle()  # a repeated delivery records nothing new
    listed = await h.ok("GET", f"/api/v1/organizer/events/{ga.event_id}/emails", headers=auth)
    assert listed["delivery"] == "off"
    assert [(e["order_id"], e["status"], e["recipient"]) for e in listed["emails"]] == [
        (order["id"], "pending", "ada@example.com")
    ]


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (2500, "EUR", "EUR 25.00"),
        (5, "USD", "USD 0.05"),
        (123456789, "GBP", "GBP 1,234,567.89"),
        (1500, "JPY", "JPY 1,500"),
        (1234, "KWD", "KWD 1.234"),
    ],
)
def test_money_is_formatted_from_minor_units(minor: int, currency: str, text: str) -> None:
    assert format_money(minor, currency) == text


def test_start_time_is_shown_in_the_event_time_zone() -> None:
    winter = dt.datetime(2026, 12, 12, 19, 0, tzinfo=dt.UTC)
    assert format_when(winter, "Europe/Berlin") == "Saturday 12 December 2026, 20:00 CET (Europe/Berlin)"
    summer = dt.datetime(2026, 7, 4, 18, 30, tzinfo=dt.UTC)
    assert format_when(summer, "America/New_York") == "Saturday 4 July 2026, 14:30 EDT (America/New_York)"
