"""The e-mail sender: claims due jobs, builds each message and hands it to the SMTP server.

Several processes may run one. A sender claims a few due jobs in one transaction (PostgreSQL: ``FOR
UPDATE SKIP LOCKED``, so two senders never take the same job; SQLite: the write transaction runs alone),
marking them ``sending`` with a lease and its own claim token before it talks to SMTP. A job whose sender
died is taken again once its lease has run out; the first sender then can no longer mark it (its claim
token is gone). SMTP errors are retried with exponential backoff; after the last attempt the job is
``failed`` and an organizer can resend it.

Delivery is at least once: a crash after the SMTP server accepted a message and before the job was marked
sends it again after the lease. The Message-ID is the same for every delivery of an order's confirmation,
so the receiving side can recognise the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from admitone.checkin.tokens import sign_ticket, ticket_signing_key
from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.core.security import order_access_token
from admitone.core.settings import Settings
from admitone.mail import repository as repo
from admitone.mail.message import Confirmation, Line, Ticket, build_confirmation, message_id
from admitone.orders import repository as orders_repo

log = logging.getLogger(__name__)

BATCH = 10
MAX_BACKOFF_SECONDS = 3600.0


class MailSender:
    def __init__(self, db: Database, settings: Settings, clock: Clock, secret_key: str) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.key = ticket_signing_key(secret_key)
        self.secret_key = secret_key
        self.enabled = settings.smtp_host is not None
        self.sender = settings.resolved_smtp_from
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.sent = 0
        self.failed_attempts = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def notify(self) -> None:
        """New jobs were committed: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if not self.enabled:
            log.warning(
                "e-mail is off: ADMITONE_SMTP_HOST is not set. Order confirmations are recorded and "
                "stay pending until a server with an SMTP host configured sends them."
            )
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="mail-sender")

    async def stop(self) -> None:
        """Stops after the message in flight (claimed jobs not yet tried go back to pending)."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.smtp_timeout_seconds + 5)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stopping = False  # run_once may still be called by hand

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("e-mail sender: a round failed; trying again at the next poll")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.mail_poll_seconds)

    # -- work --------------------------------------------------------------------------------------

    async def run_once(self, max_rounds: int = 1000) -> int:
        """Sends every job due now; returns how many jobs it tried."""
        tried = 0
        for _ in range(max_rounds):
            if self._stopping:
                break
            token = secrets.token_hex(16)
            now = self.clock.now()
            lease_until = now + dt.timedelta(seconds=self.settings.mail_lease_seconds)
            async with self.db.read() as conn:
                if not await repo.any_due(conn, now):
                    break
            async with self.db.write() as conn:
                jobs = await repo.claim(conn, self.db.dialect, now, lease_until, token, BATCH)
            if not jobs:
                break
            for i, job in enumerate(jobs):
                if self._stopping:
                    await self._release(jobs[i:], token)
                    return tried
                await self._deliver(job, token)
                tried += 1
        return tried

    async def _release(self, jobs: Sequence[sa.Row[Any]], token: str) -> None:
        async with self.db.write() as conn:
            await repo.release(conn, [j.id for j in jobs], token, self.clock.now())

    async def _finish(self, job: sa.Row[Any], token: str, **values: Any) -> None:
        async with self.db.write() as conn:
            kept = await repo.finish(conn, job.id, token, self.clock.now(), **values)
        if not kept:
            log.warning("e-mail %d: its lease ran out before it was marked %s", job.id, values["status"])

    async def _deliver(self, job: sa.Row[Any], token: str) -> None:
        if job.attempts > self.settings.mail_max_attempts:
            # Its last attempt's sender stopped without an answer.
            await self._finish(
                job, token, status="failed", last_error=job.last_error or "the last attempt did not finish"
            )
            return
        try:
            message = await self.build(job)
        except Exception as exc:
            log.exception("e-mail %d: the message could not be built", job.id)
            await self._failed_attempt(job, token, exc, permanent=False)
            return
        if message is None:
            await self._finish(job, token, status="skipped", last_error="the order is no longer paid")
            return
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._failed_attempt(job, token, exc, permanent=True)
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._failed_attempt(job, token, exc, permanent=False)
        else:
            self.sent += 1
            await self._finish(
                job,
                token,
                status="sent",
                sent_at=self.clock.now(),
                message_id=message["Message-ID"],
                last_error=None,
            )

    async def _failed_attempt(
        self, job: sa.Row[Any], token: str, exc: BaseException, *, permanent: bool
    ) -> None:
        self.failed_attempts += 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        if permanent or job.attempts >= self.settings.mail_max_attempts:
            log.warning("e-mail %d to %s failed for good: %s", job.id, job.recipient, error)
            await self._finish(job, token, status="failed", last_error=error)
            return
        delay = min(self.settings.mail_retry_base_seconds * 2 ** (job.attempts - 1), MAX_BACKOFF_SECONDS)
        log.info("e-mail %d: attempt %d failed (%s); next in %.0f s", job.id, job.attempts, error, delay)
        await self._finish(
            job,
            token,
            status="pending",
            last_error=error,
            next_attempt_at=self.clock.now() + dt.timedelta(seconds=delay),
        )

    async def _send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.resolved_smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )

    async def build(self, job: sa.Row[Any]) -> EmailMessage | None:
        """The job's message, or None when its order is no longer paid."""
        async with self.db.read() as conn:
            order = await repo.get_order(conn, job.order_id)
            if order is None or order.status != "paid":
                return None
            event = await repo.event_with_venue(conn, order.event_id)
            lines = await orders_repo.lines_of(conn, order.id)
            tickets = await orders_repo.tickets_of(conn, order.id)
        assert event is not None
        confirmation = Confirmation(
            order_id=order.id,
            buyer_name=order.buyer_name,
            recipient=job.recipient,
            event_name=event.name,
            starts_at=event.starts_at,
            timezone=event.timezone,
            venue_name=event.venue_name,
            lines=[Line(ln.description, ln.quantity, ln.unit_price_minor) for ln in lines],
            total_minor=order.total_minor,
            currency=order.currency,
            tickets=[
                Ticket(
                    t.id,
                    t.ticket_type + (f", seat {t.seat_label}" if t.seat_label else ""),
                    sign_ticket(self.key, order.event_id, t.id, t.code),
                )
                for t in tickets
                if t.status == "valid"
            ],
            # The fragment never reaches a server; the order page reads the token from it.
            order_url=f"{self.settings.public_url}/orders/{order.id}"
            f"#token={order_access_token(self.secret_key, order.id)}",
            sender=self.sender,
        )
        return await asyncio.to_thread(build_confirmation, confirmation, self.clock.now())

    def message_id_of(self, order_id: str) -> str:
        return message_id(order_id, self.sender)
