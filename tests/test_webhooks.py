"""Webhooks: registration, the ``webhooks`` consumer, and delivery to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from admitone.core.settings import Settings
from admitone.outbox.contracts import Envelope
from admitone.outbox.models import outbox
from admitone.outbox.relay import envelope_of
from admitone.webhooks import service
from admitone.webhooks.sender import WebhookConsumer, WebhookSender
from tests.harness import Harness

BASE_MS = 200
# A receiver on this machine answers in milliseconds; the generous limit keeps a loaded machine from turning a
# slow answer into a retry. The test of a receiver that never answers uses the short one.
TIMEOUT_S = 10.0
HANG_TIMEOUT_S = 1.5
MAX_ATTEMPTS = 4
WEBHOOKS = "/api/v1/organizer/webhooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Retries in milliseconds, so that a whole retry schedule fits in a test."""
    return settings.model_copy(
        update={
            "webhook_backoff_base_ms": BASE_MS,
            "webhook_backoff_cap_ms": 5_000,
            "webhook_max_attempts": MAX_ATTEMPTS,
            "webhook_timeout_seconds": TIMEOUT_S,
            "webhook_poll_seconds": 0.5,
        }
    )


# -- a real HTTP receiver --------------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    answered: int | str

    @property
    def webhook_id(self) -> str:
        return self.headers["admitone-webhook-id"]

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.body)
        return value


class Receiver:
    """A small HTTP/1.1 server on 127.0.0.1. ``plan`` says how to answer the next requests: a status code,
    or ``"hang"`` (answer nothing until the sender gives up); afterwards it answers ``default``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.plan: list[int | str] = []
        self.default: int = 200
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._arrived = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            for _ in range(1000):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ")[0]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                action = self.plan.pop(0) if self.plan else self.default
                assert method == "POST"
                self.requests.append(Received(time.monotonic(), headers, body, action))
                self._arrived.set()
                if action == "hang":
                    await asyncio.sleep(HANG_TIMEOUT_S * 4)
                    return
                writer.write(
                    f"HTTP/1.1 {action} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def wait_for(self, count: int, within: float = 15) -> list[Received]:
        """Waits (at most ``within`` seconds) until ``count`` requests have arrived."""
        deadline = time.monotonic() + within
        while len(self.requests) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(self.requests)} of {count} requests arrived within {within} s"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
        return self.requests


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def verify(secret: str, received: Received, tolerance: int = 300) -> bool:
    """Checks ``Admitone-Signature`` the way a receiver would, without admitone's helpers."""
    fields = dict(part.split("=", 1) for part in received.headers["admitone-signature"].split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= tolerance and hmac.compare_digest(expected, fields["v1"])


async def register(h: Harness, auth: dict[str, str], url: str, types: list[str], **extra: Any) -> Any:
    body = {"url": url, "event_types": types, "description": "test receiver", **extra}
    return await h.ok("POST", WEBHOOKS, 201, json=body, headers=auth)


async def ga_sale(h: Harness, auth: dict[str, str]) -> dict[str, Any]:
    ga = await h.ga_event(auth)
    return await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]})


async def deliveries(h: Harness, auth: dict[str, str], endpoint_id: int, **params: Any) -> list[Any]:
    out: list[Any] = await h.ok("GET", f"{WEBHOOKS}/{endpoint_id}/deliveries", params=params, headers=auth)
    return out


async def wait_status(
    h: Harness, auth: dict[str, str], endpoint_id: int, delivery_id: int, status: str, within: float = 15
) -> Any:
    """Polls a delivery (at most ``within`` seconds) until it reaches ``status``."""
    url = f"{WEBHOOKS}/{endpoint_id}/deliveries/{delivery_id}"
    deadline = time.monotonic() + within
    while True:
        delivery = await h.ok("GET", url, headers=auth)
        if delivery["status"] == status:
            return delivery
        assert time.monotonic() < deadline, f"delivery still {delivery['status']}: {delivery}"
        await asyncio.sleep(0.05)


# -- the API -----------------------------------------------------------------------------------------------


async def test_register_list_update_rotate_delete(harness: Harness) -> None:
    h = harness
    auth = await h.organizer()
    created = await register(h, auth, "https://example.com/hooks", ["order.paid", "chat.message_posted"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["event_types"] == ["chat.message_posted", "order.paid"]
    assert created["enabled"] is True

    listed = await h.ok("GET", WEBHOOKS, headers=auth)
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    got = await h.ok("GET", f"{WEBHOOKS}/{created['id']}", headers=auth)
    assert "secret" not in got and got["url"] == "https://example.com/hooks"

    updated = await h.ok(
        "PATCH", f"{WEBHOOKS}/{created['id']}", json={"enabled": False, "event_types": ["*"]}, headers=auth
    )
    assert updated["enabled"] is False and updated["event_types"] == ["*"]
    assert updated["url"] == "https://example.com/hooks"

    rotated = await h.ok("POST", f"{WEBHOOKS}/{created['id']}/rotate-secret", headers=auth)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]

    response = await h.client.delete(f"{WEBHOOKS}/{created['id']}", headers=auth)
    assert response.status_code == 204
    assert await h.ok("GET", WEBHOOKS, headers=auth) == []
    missing = await h.client.get(f"{WEBHOOKS}/{created['id']}", headers=auth)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "event_types": ["order.paid"]}, "url"),
        ({"url": "example.com/x", "event_types": ["order.paid"]}, "url"),
        ({"url": "https://user:pw@example.com/x", "event_types": ["order.paid"]}, "url"),
        ({"url": "https://example.com/x", "event_types": ["order.nope"]}, "event_types"),
        ({"url": "https://example.com/x", "event_types": []}, "event_types"),
        ({"url": "https://example.com/x", "event_types": ["*", "order.paid"]}, "event_types"),
        ({"url": "https://example.com/x", "event_types": ["order.paid"], "secret": "mine"}, "secret"),
    ],
)
async def test_registration_is_validated(harness: Harness, body: dict[str, Any], field: str) -> None:
    auth = await harness.organizer()
    response = await harness.client.post(WEBHOOKS, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert any(field in err["loc"] for err in problem["errors"]), problem
    assert await harness.ok("GET", WEBHOOKS, headers=auth) == []


async def test_unknown_type_lists_the_known_ones(harness: Harness) -> None:
    auth = await harness.organizer()
    body = {"url": "https://example.com/x", "event_types": ["order.payed"]}
    response = await harness.client.post(WEBHOOKS, json=body, headers=auth)
    assert response.status_code == 422
    assert "order.payed" in response.text and "order.paid" in response.text


async def test_read_only_key_cannot_change_endpoints(harness: Harness) -> None:
    h = harness
    writer = await h.organizer("Org")
    created = await register(h, writer, "https://example.com/hooks", ["order.paid"])
    reader = await h.organizer("Reader", scopes=("read",))
    body = {"url": "https://example.com/hooks", "event_types": ["order.paid"]}
    response = await h.client.post(WEBHOOKS, json=body, headers=reader)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    unauthenticated = await h.client.get(WEBHOOKS)
    assert unauthenticated.status_code == 401
    assert (await h.client.get(f"{WEBHOOKS}/{created['id']}")).status_code == 401


async def test_another_organizers_endpoint_answers_404(harness: Harness, receiver: Receiver) -> None:
    h = harness
    alice = await h.organizer("Alice")
    bob = await h.organizer("Bob")
    endpoint = await register(h, alice, receiver.url, ["order.paid"])
    await ga_sale(h, alice)
    await h.settle()
    (delivery,) = await deliveries(h, alice, endpoint["id"])
    base = f"{WEBHOOKS}/{endpoint['id']}"
    calls = [
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{delivery['id']}", None),
        ("POST", f"{base}/deliveries/{delivery['id']}/redeliver", None),
        ("DELETE", base, None),
    ]
    for method, url, body in calls:
        response = await h.client.request(method, url, json=body, headers=bob)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await h.ok("GET", WEBHOOKS, headers=bob) == []
    assert await h.ok("GET", "/api/v1/organizer/webhook-deliveries/failed", headers=bob) == []
    # Alice's endpoint is untouched.
    still = await h.ok("GET", base, headers=alice)
    assert still["enabled"] is True


# -- delivery ----------------------------------------------------------------------------------------------


async def test_sale_reaches_the_receiver_signed(stream_harness: Harness, receiver: Receiver) -> None:
    h = stream_harness
    auth = await h.organizer()
    paid_only = await register(h, auth, receiver.url, ["order.paid"])
    disabled = await register(h, auth, receiver.url, ["*"], enabled=False)
    order = await ga_sale(h, auth)
    await h.settle()

    (request,) = await receiver.wait_for(1)
    assert request.headers["admitone-event-type"] == "order.paid"
    assert request.headers["content-type"] == "application/json"
    assert verify(paid_only["secret"], request)
    assert not verify(disabled["secret"], request)
    envelope = request.json()
    assert envelope["id"] == request.webhook_id
    assert envelope["type"] == "order.paid"
    assert envelope["aggregate_type"] == "event"
    assert envelope["payload"]["order_id"] == order["id"]
    assert envelope["payload"]["total_minor"] == order["total_minor"]
    Envelope.model_validate(envelope)

    (delivery,) = await deliveries(h, auth, paid_only["id"])
    delivery = await wait_status(h, auth, paid_only["id"], delivery["id"], "succeeded")
    assert delivery["webhook_id"] == request.webhook_id
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["delivered_at"] is not None
    assert [a["status_code"] for a in delivery["attempts_log"]] == [200]
    assert await deliveries(h, auth, disabled["id"]) == []

    # Nothing else arrives: one event, one endpoint, one request.
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1

    # After rotation, a redelivery is signed with the new secret only; the webhook id stays the same.
    rotated = await h.ok("POST", f"{WEBHOOKS}/{paid_only['id']}/rotate-secret", headers=auth)
    await h.ok(
        "POST", f"{WEBHOOKS}/{paid_only['id']}/deliveries/{delivery['id']}/redeliver", 202, headers=auth
    )
    first, again = await receiver.wait_for(2)
    assert again.webhook_id == first.webhook_id
    assert again.body == first.body
    assert verify(rotated["secret"], again) and not verify(paid_only["secret"], again)


async def test_wildcard_endpoint_gets_every_event_once(harness: Harness, receiver: Receiver) -> None:
    h = harness
    auth = await h.organizer()
    endpoint = await register(h, auth, receiver.url, ["*"])
    await ga_sale(h, auth)
    await h.settle()
    outbox = await h.rows("SELECT event_uuid, type FROM outbox ORDER BY id")
    received = await receiver.wait_for(len(outbox))
    assert sorted(r.webhook_id for r in received) == sorted(row.event_uuid for row in outbox)
    assert {"hold.placed", "order.placed", "order.paid", "ticket.issued"} <= {row.type for row in outbox}
    assert all(verify(endpoint["secret"], r) for r in received)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == len(outbox), "an event was sent twice without a redelivery"
    assert len(await deliveries(h, auth, endpoint["id"], status="succeeded")) == len(outbox)


async def test_retries_until_acknowledged_with_growing_backoff(harness: Harness, receiver: Receiver) -> None:
    h = harness
    # Take every wait at the top of its jitter window, so that the schedule can be measured.
    assert h.state.webhooks is not None
    h.state.webhooks.jitter = lambda window: window
    h.state.webhooks.timeout = HANG_TIMEOUT_S
    auth = await h.organizer()
    endpoint = await register(h, auth, receiver.url, ["order.paid"])
    receiver.plan = [500, "hang", 503]
    await ga_sale(h, auth)
    await h.settle()

    received = await receiver.wait_for(4)
    assert [r.answered for r in received] == [500, "hang", 503, 200]
    assert len({r.webhook_id for r in received}) == 1
    assert all(verify(endpoint["secret"], r) for r in received)
    assert len({r.body for r in received}) == 1

    (delivery,) = await deliveries(h, auth, endpoint["id"])
    delivery = await wait_status(h, auth, endpoint["id"], delivery["id"], "succeeded")
    log = delivery["attempts_log"]
    assert [a["number"] for a in log] == [1, 2, 3, 4]
    assert [a["status_code"] for a in log] == [500, None, 503, 200]
    assert [a["succeeded"] for a in log] == [False, False, False, True]
    assert "500" in log[0]["error"] and "no answer" in log[1]["error"] and log[3]["error"] is None
    assert log[1]["duration_ms"] >= HANG_TIMEOUT_S * 1000 * 0.9
    assert delivery["attempts"] == 4 and delivery["delivered_at"] is not None

    # The wait after each failed attempt (from its end to the next start) doubles: 200, 400, 800 ms.
    def at(a: dict[str, Any]) -> float:
        return dt.datetime.fromisoformat(a["attempted_at"]).timestamp()

    waits = [at(log[i + 1]) - (at(log[i]) + log[i]["duration_ms"] / 1000) for i in range(3)]
    for i, wait in enumerate(waits):
        assert wait >= BASE_MS / 1000 * 2**i * 0.95, waits
    assert waits[0] < waits[1] < waits[2], waits

    # Acknowledged once: no further request arrives.
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 4
    assert [r.answered for r in receiver.requests].count(200) == 1


async def test_failed_after_max_attempts_then_redelivered(harness: Harness, receiver: Receiver) -> None:
    h = harness
    auth = await h.organizer()
    # Nothing listens there: every attempt is refused.
    endpoint = await register(h, auth, f"http://127.0.0.1:{closed_port()}/hooks", ["order.paid"])
    await ga_sale(h, auth)
    await h.settle()
    (delivery,) = await deliveries(h, auth, endpoint["id"])
    failed = await wait_status(h, auth, endpoint["id"], delivery["id"], "failed")
    assert failed["attempts"] == MAX_ATTEMPTS
    assert len(failed["attempts_log"]) == MAX_ATTEMPTS
    assert all(a["status_code"] is None and a["error"] for a in failed["attempts_log"])
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None

    failed_list = await h.ok("GET", "/api/v1/organizer/webhook-deliveries/failed", headers=auth)
    assert [d["id"] for d in failed_list] == [delivery["id"]]
    assert [d["id"] for d in await deliveries(h, auth, endpoint["id"], status="failed")] == [delivery["id"]]
    assert await deliveries(h, auth, endpoint["id"], status="succeeded") == []
    assert receiver.requests == []

    # The organizer fixes the URL and asks for a redelivery: it arrives with the same webhook id.
    await h.ok("PATCH", f"{WEBHOOKS}/{endpoint['id']}", json={"url": receiver.url}, headers=auth)
    queued = await h.ok(
        "POST", f"{WEBHOOKS}/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", 202, headers=auth
    )
    assert queued["status"] == "pending"
    (request,) = await receiver.wait_for(1)
    assert request.webhook_id == failed["webhook_id"]
    assert verify(endpoint["secret"], request)
    done = await wait_status(h, auth, endpoint["id"], delivery["id"], "succeeded")
    assert done["attempts"] == MAX_ATTEMPTS + 1
    assert done["attempts_log"][-1]["status_code"] == 200
    assert await h.ok("GET", "/api/v1/organizer/webhook-deliveries/failed", headers=auth) == []
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1


async def test_consumer_queues_once_per_endpoint_and_event(harness: Harness, receiver: Receiver) -> None:
    """Applying the same event twice (a replayed batch) queues it once per endpoint."""
    h = harness
    auth = await h.organizer()
    other = await h.organizer("Other")
    endpoint = await register(h, auth, receiver.url, ["order.paid"])
    foreign = await register(h, other, receiver.url, ["*"])  # another organizer's: gets nothing of this
    await ga_sale(h, auth)
    await h.settle()
    async with h.state.db.read() as conn:
        row = (await conn.execute(sa.select(outbox).where(outbox.c.type == "order.paid"))).one()
    envelope = envelope_of(row)
    consumer = WebhookConsumer(h.state.db, lambda: None)
    async with h.state.db.write() as conn:
        await consumer.handle(conn, envelope)
        await consumer.handle(conn, envelope)
    count = await h.scalar("SELECT count(*) FROM webhook_deliveries WHERE event_uuid = :u", u=envelope.id)
    assert count == 1
    assert len(await deliveries(h, auth, endpoint["id"])) == 1
    assert (
        await h.scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e", e=foreign["id"]) == 0
    )


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    windows = [service.backoff_window(n, 100, 1000) for n in range(1, 8)]
    assert windows == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    waits = []
    for _ in range(500):
        state = service.outcome(False, 3, now, max_attempts=5, base_ms=100, cap_ms=1000)
        assert state["status"] == "pending"
        waits.append((state["next_attempt_at"] - now).total_seconds())
    assert all(0 <= w <= 0.4 for w in waits)
    assert min(waits) < 0.1 and max(waits) > 0.3  # spread over the whole window
    assert service.outcome(False, 5, now, max_attempts=5, base_ms=100, cap_ms=1000)["status"] == "failed"
    assert service.outcome(True, 5, now, max_attempts=5, base_ms=100, cap_ms=1000)["status"] == "succeeded"


async def test_several_senders_share_the_queue(harness: Harness, receiver: Receiver) -> None:
    """Senders of several processes claim different deliveries: each is sent once."""
    h = harness
    assert h.state.webhooks is not None
    await h.state.webhooks.stop()  # only the senders below run
    auth = await h.organizer()
    endpoint = await register(h, auth, receiver.url, ["*"])
    for _ in range(3):
        await ga_sale(h, auth)
    await h.settle()
    queued = await h.scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e", e=endpoint["id"]
    )
    assert queued >= 12
    narrow = h.state.settings.model_copy(update={"webhook_concurrency": 2})
    senders = [WebhookSender(h.state.db, narrow, h.state.webhooks.client) for _ in range(3)]

    async def drain(sender: WebhookSender) -> None:
        for _ in range(100):
            if await sender.run_once() == 0:
                return

    await asyncio.wait_for(asyncio.gather(*(drain(s) for s in senders)), 30)
    ids = [r.webhook_id for r in receiver.requests]
    assert len(ids) == queued and len(set(ids)) == queued
    assert sum(s.sent for s in senders) == queued
    assert sum(1 for s in senders if s.sent > 0) >= 2, [s.sent for s in senders]
    assert await h.scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'") == 0


async def test_stop_lets_the_batch_in_flight_finish(harness: Harness) -> None:
    """A sender stopped while a batch runs waits for it instead of cancelling it: a cancellation inside a
    database call would abandon that call's connection."""
    h = harness
    assert h.state.webhooks is not None
    await h.state.webhooks.stop()
    sender = WebhookSender(h.state.db, h.state.settings, h.state.webhooks.client)
    finished: list[str] = []
    started = asyncio.Event()

    async def slow_batch() -> int:
        started.set()
        async with h.state.db.write() as conn:
            await asyncio.sleep(0.3)  # a batch holding its connection
            await conn.execute(sa.text("SELECT 1"))
        finished.append("batch")
        return 0

    sender.run_once = slow_batch  # type: ignore[method-assign]
    sender.start()
    await asyncio.wait_for(started.wait(), 5)
    await sender.stop()
    assert finished == ["batch"]
