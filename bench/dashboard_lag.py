"""Commit-to-dashboard lag: sales at a steady rate, timed from the order's paid time to the summary.

Against a running server (``admitone demo``): opens the live analytics socket of an event, sells standing
tickets through the API at ``--rate`` orders per second for ``--seconds``, and for every summary whose
``last_paid_at`` moved records ``received - last_paid_at``. Same machine, same clock.

    python bench/dashboard_lag.py --url http://127.0.0.1:8000 --key adm_... --event 1 --rate 5 --seconds 20

``bench/relay.py`` uses the same pieces (:class:`DashboardProbe`, :func:`run_sales`) during its live hold
runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import websockets


@dataclass
class Sales:
    """What became of the sales: every step that did not succeed is counted by its status."""

    started: int = 0
    paid: int = 0  # checkout accepted; the payment webhook follows
    failures: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "checkout_accepted": self.paid, "failures": dict(self.failures)}


async def sell(client: httpx.AsyncClient, event_id: int, ticket_type_id: int, sales: Sales) -> None:
    """One order of one ticket: hold, order, the test provider's checkout (its webhook pays the order)."""
    try:
        hold = await client.post(
            f"/api/v1/events/{event_id}/holds",
            json={"tickets": [{"ticket_type_id": ticket_type_id, "quantity": 1}]},
        )
        if hold.status_code != 201:
            sales.failures[f"hold {hold.status_code}"] += 1
            return
        order = await client.post(
            "/api/v1/orders",
            json={"hold_id": hold.json()["id"], "buyer_name": "Bench", "buyer_email": "bench@example.com"},
        )
        if order.status_code != 201:
            sales.failures[f"order {order.status_code}"] += 1
            return
        paid = await client.post(order.json()["payment"]["next_action"]["url"], json={"outcome": "succeeded"})
        if paid.status_code >= 300:
            sales.failures[f"checkout {paid.status_code}"] += 1
            return
        sales.paid += 1
    except httpx.HTTPError as exc:
        sales.failures[type(exc).__name__] += 1


async def run_sales(
    client: httpx.AsyncClient, event_id: int, ticket_type_id: int, rate: float, seconds: float, sales: Sales
) -> None:
    """Starts one sale every 1/rate seconds for ``seconds`` (never waiting for one), then awaits them all."""
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        tasks.append(asyncio.create_task(sell(client, event_id, ticket_type_id, sales)))
        n += 1
        sales.started += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)


@dataclass
class DashboardProbe:
    """The organizer dashboard's live socket: every summary whose ``last_paid_at`` moved is one lag sample
    (receipt - ``last_paid_at``, in ms). ``reset()`` starts a new measured window."""

    base_url: str
    event_id: int
    api_key: str
    lags_ms: list[float] = field(default_factory=list)
    # (last_paid_at as sent, receipt time) of every sample, for matching it with the order afterwards
    samples: list[tuple[str, dt.datetime]] = field(default_factory=list)
    messages: int = 0
    last_paid_at: str | None = None
    _ws: Any = None

    @property
    def ws_url(self) -> str:
        return (
            self.base_url.replace("http", "ws", 1)
            + f"/api/v1/organizer/events/{self.event_id}/analytics/live"
        )

    async def connect(self, limit_s: float = 10.0) -> dict[str, Any]:
        self._ws = await asyncio.wait_for(websockets.connect(self.ws_url, max_size=2**22), limit_s)
        await self._ws.send(orjson.dumps({"type": "auth", "api_key": self.api_key}).decode())
        first: dict[str, Any] = orjson.loads(await asyncio.wait_for(self._ws.recv(), limit_s))
        if "summary" not in first:
            raise RuntimeError(f"the dashboard socket answered {first!r}")
        self.last_paid_at = first["summary"]["last_paid_at"]
        return first

    async def run(self) -> None:
        """Reads until the socket closes or the task is cancelled."""
        assert self._ws is not None, "connect() first"
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                message = orjson.loads(await self._ws.recv())
                received = dt.datetime.now(dt.UTC)
                self.messages += 1
                paid = message.get("summary", {}).get("last_paid_at")
                if paid and paid != self.last_paid_at:
                    self.last_paid_at = paid
                    self.lags_ms.append((received - dt.datetime.fromisoformat(paid)).total_seconds() * 1000)
                    self.samples.append((paid, received))

    def reset(self) -> None:
        self.lags_ms = []
        self.samples = []
        self.messages = 0

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def wait_for_update(self, limit_s: float) -> bool:
        """True once a new ``last_paid_at`` arrived (with ``run()`` reading), within ``limit_s``."""
        seen = len(self.lags_ms)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if len(self.lags_ms) > seen:
                return True
            await asyncio.sleep(0.05)
        return False


def summarize(lags_ms: list[float]) -> dict[str, Any]:
    """count, p50, p90, p99, max of the lags (ms; p by rank, like bench/relay.py's Kafka lags)."""
    if not lags_ms:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(lags_ms)

    def rank(p: float) -> float:
        return round(ordered[max(1, min(len(ordered), math.ceil(p / 100 * len(ordered)))) - 1], 2)

    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": rank(90),
        "p99_ms": rank(99),
        "max_ms": round(ordered[-1], 2),
    }


async def main(args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=args.url, timeout=20) as client:
        event = (await client.get(f"/api/v1/events/{args.event}")).json()
        tt = next(t["id"] for t in event["ticket_types"] if t["kind"] == "admission")
        probe = DashboardProbe(args.url, args.event, args.key)
        await probe.connect()
        reader = asyncio.create_task(probe.run())
        sales = Sales()
        await run_sales(client, args.event, tt, args.rate, args.seconds, sales)
        await asyncio.sleep(2)  # the last payments' webhooks and pushes
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await probe.close()
    s = summarize(probe.lags_ms)
    if not s["count"]:
        print(f"no updates received ({sales.as_dict()})")
        return
    print(
        f"{sales.started} orders at {args.rate}/s over {args.seconds}s ({sales.as_dict()}); {s['count']} "
        f"dashboard updates with a new sale; lag from paid to received: p50 {s['p50_ms']:.0f} ms, "
        f"p99 {s['p99_ms']:.0f} ms, max {s['max_ms']:.0f} ms "
        "(push interval ADMITONE_ANALYTICS_PUSH_MS, default 250 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="organizer API key")
    parser.add_argument("--event", type=int, default=1)
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(main(parser.parse_args()))
