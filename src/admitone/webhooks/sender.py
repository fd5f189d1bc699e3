"""Getting webhooks out: the ``webhooks`` stream consumer queues deliveries, the sender POSTs them.

The consumer runs inside the stream runner's transaction, so each domain event is queued exactly once per
endpoint (``UNIQUE (endpoint_id, event_uuid)`` on top of the runner's stored position). The sender is a
background task of every process: it claims due deliveries for a lease (on PostgreSQL with ``FOR UPDATE
SKIP LOCKED``, so several processes share the queue), sends them outside any transaction and records each
attempt. A sender that dies mid-send loses only its lease: the delivery is due again when it ends. Buyers
never wait for any of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone import __version__
from admitone.core import security
from admitone.core.db import Database, utcnow
from admitone.core.settings import Settings
from admitone.orders.payments import SIGNATURE_HEADER
from admitone.outbox.contracts import Envelope
from admitone.webhooks import repository as repo
from admitone.webhooks import service

log = logging.getLogger(__name__)

ID_HEADER = "Admitone-Webhook-Id"
TYPE_HEADER = "Admitone-Event-Type"
LEASE_MARGIN_SECONDS = 60


def build_client(settings: Settings) -> httpx.AsyncClient:
    """The sender's HTTP client: bounded time per attempt, no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": f"admitone-webhooks/{__version__}"},
        limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
    )


class WebhookConsumer:
    """The durable consumer ``webhooks``: one delivery per subscribed, enabled endpoint of the organizer."""

    name = "webhooks"

    def __init__(self, db: Database, wake: Callable[[], None]) -> None:
        self.db = db
        self.wake = wake
        self._queued = False
        # An event's organizer never changes: remembered. Endpoints are read once per batch, never cached
        # across batches (another instance may have changed them).
        self._organizers: dict[int, int | None] = {}

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        await self.handle_batch(conn, [envelope])

    async def handle_batch(self, conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        """Queues the batch's deliveries with one query per organizer and one insert, not per event."""
        mine = [e for e in envelopes if e.aggregate_type == "event"]
        unknown = {e.aggregate_id for e in mine} - self._organizers.keys()
        if unknown:
            found = await repo.organizers_of_events(conn, unknown)
            for event_id in unknown:
                self._organizers[event_id] = found.get(event_id)
        endpoints: dict[int, Sequence[Any]] = {}
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for envelope in mine:
            organizer_id = self._organizers[envelope.aggregate_id]
            if organizer_id is None:
                continue
            if organizer_id not in endpoints:
                endpoints[organizer_id] = await repo.enabled_endpoints(conn, organizer_id)
            matching = [
                e.id
                for e in endpoints[organizer_id]
                if service.subscribes(list(e.event_types), envelope.type)
            ]
            if not matching:
                continue
            body = envelope.model_dump(mode="json")
            rows.extend(
                {
                    "endpoint_id": endpoint_id,
                    "organizer_id": organizer_id,
                    "event_uuid": envelope.id,
                    "event_type": envelope.type,
                    "event_id": envelope.aggregate_id,
                    "sequence": envelope.sequence,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "round_attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for endpoint_id in matching
            )
        if rows:
            await repo.queue_deliveries(self.db, conn, rows)
            self._queued = True

    def after_commit(self, applied: Sequence[Envelope]) -> None:
        if self._queued:
            self._queued = False
            self.wake()


class WebhookSender:
    """Sends due deliveries in the background; woken by new deliveries, polling when idle."""

    def __init__(self, db: Database, settings: Settings, client: httpx.AsyncClient) -> None:
        self.db = db
        self.client = client
        self.timeout = settings.webhook_timeout_seconds
        self.poll_seconds = settings.webhook_poll_seconds
        self.batch = settings.webhook_concurrency
        self.max_attempts = settings.webhook_max_attempts
        self.base_ms = settings.webhook_backoff_base_ms
        self.cap_ms = settings.webhook_backoff_cap_ms
        # How a wait is drawn from the backoff window (full jitter); replaceable to make timing predictable.
        self.jitter: Callable[[float], float] = service.full_jitter
        self.sent = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Stops after the batch in flight, cancelling it only if it outlasts a send's timeout by 5 s: a
        cancellation inside a database call abandons the call's connection (the leases of a cancelled
        batch's deliveries make it go again later)."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=self.timeout + 5)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self.run_once()
                if claimed >= self.batch:
                    continue  # more may be due
                wait = await self._until_next_due()
            except Exception:
                log.exception("webhook sender failed; trying again in %.1f s", self.poll_seconds)
                wait = self.poll_seconds
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _until_next_due(self) -> float:
        async with self.db.read() as conn:
            due = await repo.next_due(conn)
        if due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.0, (due - utcnow()).total_seconds()))

    async def run_once(self) -> int:
        """Claims the due deliveries (at most one batch), sends them and records the outcomes."""
        claim = secrets.token_hex(8)
        now = utcnow()
        lease = now + dt.timedelta(seconds=self.timeout + LEASE_MARGIN_SECONDS)
        async with self.db.write() as conn:
            rows = await repo.claim_due(self.db, conn, now, lease, claim, self.batch)
        if rows:
            await asyncio.gather(*(self._send(row, claim) for row in rows))
        return len(rows)

    async def _send(self, row: sa.Row[Any], claim: str) -> None:
        body = orjson.dumps(row.body)
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: row.event_uuid,
            TYPE_HEADER: row.event_type,
            SIGNATURE_HEADER: security.signature_header(row.secret, body),
        }
        attempted_at = utcnow()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream("POST", row.url, content=body, headers=headers) as response:
                    status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((time.perf_counter() - started) * 1000)
        succeeded = error is None
        state = service.outcome(
            succeeded,
            row.round_attempts,
            utcnow(),
            max_attempts=self.max_attempts,
            base_ms=self.base_ms,
            cap_ms=self.cap_ms,
            jitter=self.jitter,
        )
        async with self.db.write() as conn:
            await repo.record_attempt(
                conn,
                row.id,
                claim,
                row.attempts,
                attempted_at,
                duration_ms,
                status_code,
                error[:500] if error else None,
                state,
            )
        if succeeded:
            self.sent += 1
        else:
            log.info("webhook delivery %s attempt %d failed: %s", row.id, row.attempts, error)
