"""Payment providers.

``free`` settles a zero total at once. ``test`` behaves like a card processor: the buyer completes a
checkout at the provider, and the provider later tells us the outcome through a signed webhook call to
``/api/v1/payments/test/webhook``, retried until it is acknowledged. It stands in for the card network,
which cannot run here; the webhook path it exercises is the one real processors use.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from typing import Literal, Protocol

import httpx
import orjson

from admitone.core import security
from admitone.orders.schemas import NextAction

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/payments/test/webhook"
SIGNATURE_HEADER = "Admitone-Signature"


class PaymentProvider(Protocol):
    name: str

    def start(
        self, payment_id: str, amount_minor: int
    ) -> tuple[Literal["succeeded", "pending"], NextAction | None]:
        """Begins a payment: settled at once, or pending with what the buyer must do next."""
        ...


class FreeProvider:
    name = "free"

    def start(
        self, payment_id: str, amount_minor: int
    ) -> tuple[Literal["succeeded", "pending"], NextAction | None]:
        return "succeeded", None


class TestProvider:
    name = "test"

    def __init__(
        self, secret: str, client: httpx.AsyncClient, retry_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8)
    ):
        self.secret = secret
        self.client = client
        self.retry_delays = retry_delays
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, payment_id: str, amount_minor: int
    ) -> tuple[Literal["succeeded", "pending"], NextAction | None]:
        return "pending", NextAction(type="test_checkout", url=f"/api/v1/payments/test/{payment_id}/checkout")

    def complete(self, payment_id: str, amount_minor: int, currency: str, outcome: str) -> None:
        """The buyer finished the provider's checkout; the webhook follows asynchronously."""
        body = orjson.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "type": f"payment.{outcome}",
                "payment_id": payment_id,
                "amount_minor": amount_minor,
                "currency": currency,
            }
        )
        task = asyncio.create_task(self._deliver(body), name=f"test-payment-webhook-{payment_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, body: bytes) -> None:
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            await asyncio.sleep(delay)
            headers = {
                SIGNATURE_HEADER: security.signature_header(self.secret, body),
                "Content-Type": "application/json",
            }
            try:
                response = await self.client.post(WEBHOOK_PATH, content=body, headers=headers)
                if response.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.warning("test payment webhook attempt %d failed: %s", attempt + 1, exc)
        log.error("test payment webhook gave up after %d attempts", len(self.retry_delays) + 1)

    async def drain(self) -> None:
        """Waits for webhooks in flight (tests use this to know the outcome has arrived)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def webhook_secret(secret_key: str) -> str:
    """The secret shared with the test provider, derived from the server's secret key."""
    return hmac.new(secret_key.encode(), b"payments:test", hashlib.sha256).hexdigest()


class Payments:
    """The providers of one process, built in the lifespan."""

    def __init__(self, test: TestProvider) -> None:
        self.free = FreeProvider()
        self.test = test

    def get(self, name: str) -> PaymentProvider:
        return self.free if name == "free" else self.test
