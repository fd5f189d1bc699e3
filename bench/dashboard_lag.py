"""Commit-to-dashboard lag: sales at a steady rate, timed from the order's paid time to the summary.

Against a running server (``admitone demo``): opens the live analytics socket of an event, sells standing
tickets through the API at ``--rate`` orders per second for ``--seconds``, and for every summary whose
``last_paid_at`` moved records ``received - last_paid_at``. Same machine, same clock.

    python bench/dashboard_lag.py --url http://127.0.0.1:8000 --key adm_... --event 1 --rate 5 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time

import httpx
import orjson
import websockets


async def sell(client: httpx.AsyncClient, event_id: int, ticket_type_id: int) -> None:
    hold = await client.post(
        f"/api/v1/events/{event_id}/holds",
        json={"tickets": [{"ticket_type_id": ticket_type_id, "quantity": 1}]},
    )
    if hold.status_code != 201:
        return
    order = await client.post(
        "/api/v1/orders",
        json={"hold_id": hold.json()["id"], "buyer_name": "Bench", "buyer_email": "bench@example.com"},
    )
    if order.status_code == 201:
        await client.post(order.json()["payment"]["next_action"]["url"], json={"outcome": "succeeded"})


async def main(args: argparse.Namespace) -> None:
    ws_url = args.url.replace("http", "ws", 1) + f"/api/v1/organizer/events/{args.event}/analytics/live"
    lags: list[float] = []
    async with httpx.AsyncClient(base_url=args.url, timeout=20) as client:
        event = (await client.get(f"/api/v1/events/{args.event}")).json()
        tt = next(t["id"] for t in event["ticket_types"] if t["kind"] == "admission")
        async with websockets.connect(ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "api_key": args.key}).decode())
            first = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            last = first["summary"]["last_paid_at"]

            async def receive() -> None:
                nonlocal last
                while True:
                    message = orjson.loads(await ws.recv())
                    received = dt.datetime.now(dt.UTC)
                    paid = message["summary"]["last_paid_at"]
                    if paid and paid != last:
                        last = paid
                        lags.append((received - dt.datetime.fromisoformat(paid)).total_seconds() * 1000)

            reader = asyncio.create_task(receive())
            sales: list[asyncio.Task[None]] = []
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < args.seconds:
                sales.append(asyncio.create_task(sell(client, args.event, tt)))
                n += 1
                await asyncio.sleep(max(0.0, start + n / args.rate - time.monotonic()))
            await asyncio.gather(*sales)
            await asyncio.sleep(2)  # the last payments' webhooks and pushes
            reader.cancel()
    if not lags:
        print("no updates received")
        return
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"{n} orders at {args.rate}/s over {args.seconds}s; {len(lags)} dashboard updates with a new sale; "
        f"lag from paid to received: p50 {statistics.median(lags):.0f} ms, p99 {p99:.0f} ms, "
        f"max {lags[-1]:.0f} ms (push interval ADMITONE_ANALYTICS_PUSH_MS, default 250 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="organizer API key")
    parser.add_argument("--event", type=int, default=1)
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(main(parser.parse_args()))
