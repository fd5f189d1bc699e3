"""Helpers that drive the app through its HTTP API, as a client would."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from admitone.core.clock import ManualClock
from admitone.core.deps import AppState
from admitone.organizers import service as organizers
from admitone.outbox.relay import backlog


@dataclass
class GAEvent:
    event_id: int
    quota_id: int
    ticket_type_id: int


@dataclass
class SeatedEvent:
    event_id: int
    venue_id: int
    seat_ids: list[int]
    ticket_type_ids: dict[str, int]
    sections: dict[str, int] = field(default_factory=dict)


def small_venue(rows: int = 10, per_row: int = 30, sections: tuple[str, ...] = ("Main",)) -> dict[str, Any]:
    return {
        "name": "Test Hall",
        "sections": [
            {
                "name": name,
                "rows": [
                    {
                        "label": chr(ord("A") + r),
                        "seats": [
                            {"number": n, "x": 100 * s + n, "y": r, "category": "A" if r < rows // 2 else "B"}
                            for n in range(1, per_row + 1)
                        ],
                    }
                    for r in range(rows)
                ],
            }
            for s, name in enumerate(sections)
        ],
    }


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: ManualClock
    state: AppState
    _slug: int = 0

    async def organizer(
        self, name: str = "Org", scopes: tuple[str, ...] = ("read", "write")
    ) -> dict[str, str]:
        async with self.state.db.write() as conn:
            created = await organizers.create_organizer(conn, name, self.clock.now(), scopes)
        return {"Authorization": f"Bearer {created.api_key}"}

    async def ok(self, method: str, url: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(method, url, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json()

    async def event(self, auth: dict[str, str], venue_id: int | None = None, **extra: Any) -> int:
        self._slug += 1
        body = {
            "name": "Test Event",
            "slug": f"test-event-{self._slug}",
            "venue_id": venue_id,
            "starts_at": (self.clock.now() + dt.timedelta(days=10)).isoformat(),
            "status": "on_sale",
            **extra,
        }
        return int((await self.ok("POST", "/api/v1/organizer/events", 201, json=body, headers=auth))["id"])

    async def ga_event(
        self, auth: dict[str, str], capacity: int = 300, max_per_order: int = 10, price: int = 2500
    ) -> GAEvent:
        event_id = await self.event(auth)
        quota = await self.ok(
            "POST",
            f"/api/v1/organizer/events/{event_id}/quotas",
            201,
            json={"name": "Floor", "capacity": capacity},
            headers=auth,
        )
        tt = await self.ok(
            "POST",
            f"/api/v1/organizer/events/{event_id}/ticket-types",
            201,
            headers=auth,
            json={
                "name": "Standing",
                "kind": "admission",
                "price_minor": price,
                "quota_ids": [quota["id"]],
                "max_per_order": max_per_order,
            },
        )
        return GAEvent(event_id, quota["id"], tt["id"])

    async def seated_event(
        self, auth: dict[str, str], venue: dict[str, Any] | None = None, prices: dict[str, int] | None = None
    ) -> SeatedEvent:
        venue_out = await self.ok(
            "POST", "/api/v1/organizer/venues", 201, json=venue or small_venue(), headers=auth
        )
        event_id = await self.event(auth, venue_out["id"])
        types = {}
        for category, price in (prices or {"A": 5000, "B": 3000}).items():
            tt = await self.ok(
                "POST",
                f"/api/v1/organizer/events/{event_id}/ticket-types",
                201,
                headers=auth,
                json={
                    "name": f"Seat {category}",
                    "kind": "seated",
                    "category": category,
                    "price_minor": price,
                    "max_per_order": 50,
                },
            )
            types[category] = tt["id"]
        seats = await self.ok("GET", f"/api/v1/organizer/venues/{venue_out['id']}/seats", headers=auth)
        return SeatedEvent(
            event_id,
            venue_out["id"],
            [s["id"] for s in seats],
            types,
            {s["name"]: s["id"] for s in venue_out["sections"]},
        )

    async def hold(self, event_id: int, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.client.post(f"/api/v1/events/{event_id}/holds", json=body, **kwargs)

    async def scalar(self, query: str, **params: Any) -> Any:
        async with self.state.db.read() as conn:
            return (await conn.execute(sa.text(query), params)).scalar()

    async def backlog(self, lane: str) -> int:
        """How many domain events wait in the outbox lane ``live`` or ``stream``."""
        return await backlog(self.state.db, lane)

    async def rows(self, query: str, **params: Any) -> list[Any]:
        async with self.state.db.read() as conn:
            return list((await conn.execute(sa.text(query), params)).all())

    async def check_invariants(self, event_id: int) -> None:
        """The inventory invariants, read straight from the tables."""
        over = await self.scalar(
            "SELECT count(*) FROM quotas"
            " WHERE event_id = :e AND (held + sold > capacity OR held < 0 OR sold < 0)",
            e=event_id,
        )
        assert over == 0, "a quota is over capacity"
        mismatched = await self.rows(
            """
            SELECT q.id, q.held, q.sold,
                   COALESCE(SUM(CASE WHEN h.status IN ('active', 'ordered') THEN l.quantity END), 0) AS live,
                   COALESCE(SUM(CASE WHEN h.status = 'sold' THEN l.quantity END), 0) AS sold_lines
            FROM quotas q
            LEFT JOIN ticket_type_quotas tq ON tq.quota_id = q.id
            LEFT JOIN hold_lines l ON l.ticket_type_id = tq.ticket_type_id
            LEFT JOIN holds h ON h.id = l.hold_id
            WHERE q.event_id = :e
            GROUP BY q.id, q.held, q.sold
            HAVING q.held <> COALESCE(SUM(CASE WHEN h.status IN ('active', 'ordered') THEN l.quantity END), 0)
                OR q.sold <> COALESCE(SUM(CASE WHEN h.status = 'sold' THEN l.quantity END), 0)
            """,
            e=event_id,
        )
        assert mismatched == [], f"quota counters disagree with holds: {mismatched}"
        seat_lines = await self.rows(
            """
            SELECT l.seat_id, count(*) FROM hold_lines l JOIN holds h ON h.id = l.hold_id
            WHERE h.event_id = :e AND h.status IN ('active', 'ordered', 'sold') AND l.seat_id IS NOT NULL
            GROUP BY l.seat_id HAVING count(*) > 1
            """,
            e=event_id,
        )
        assert seat_lines == [], f"seats in two live holds: {seat_lines}"
        claims = await self.scalar("SELECT count(*) FROM seat_claims WHERE event_id = :e", e=event_id)
        live_seats = await self.scalar(
            """SELECT count(*) FROM hold_lines l JOIN holds h ON h.id = l.hold_id
               WHERE h.event_id = :e AND h.status IN ('active', 'ordered', 'sold')
                 AND l.seat_id IS NOT NULL""",
            e=event_id,
        )
        assert claims == live_seats, f"{claims} seat claims but {live_seats} seats in live holds"

    async def sell(
        self, event_id: int, hold_body: dict[str, Any], email: str = "ada@example.com", name: str = "Ada"
    ) -> dict[str, Any]:
        """Holds, orders and pays through the test provider; returns the paid order (with its token).

        ``hold_body`` as the holds endpoint takes it: ``{"tickets": [{"ticket_type_id": 1, "quantity": 2}]}``
        or ``{"seat_ids": [...]}``.
        """
        hold = await self.hold(event_id, hold_body)
        assert hold.status_code == 201, hold.text
        order = await self.ok(
            "POST",
            "/api/v1/orders",
            201,
            json={"hold_id": hold.json()["id"], "buyer_name": name, "buyer_email": email},
        )
        await self.ok("POST", order["payment"]["next_action"]["url"], 202, json={"outcome": "succeeded"})
        await self.state.payments.test.drain()
        token = {"X-Order-Token": order["access_token"]}
        paid = await self.ok("GET", f"/api/v1/orders/{order['id']}", headers=token)
        assert paid["status"] == "paid", paid
        paid["access_token"] = order["access_token"]
        return dict(paid)

    async def settle(self, within: float = 20.0) -> None:
        """Publishes everything committed so far and waits until every durable consumer has applied it.

        Both lanes are drained. In process, draining the stream relay applies the batches to the durable
        consumers. Kafka: then this waits (at most ``within`` seconds) until every consumer's stored
        position has reached the last outbox sequence of every aggregate.
        """
        await self.state.relay.drain()
        await self.state.stream_relay.drain()
        if not self.state.kafka_loops:
            return
        deadline = asyncio.get_running_loop().time() + within
        for runner in self.state.consumers:
            while True:
                behind = await self.rows(
                    """
                    SELECT o.aggregate_type, o.aggregate_id, max(o.sequence) AS last,
                           max(COALESCE(p.sequence, 0)) AS applied
                    FROM outbox o
                    LEFT JOIN consumer_positions p ON p.consumer = :name
                        AND p.aggregate_type = o.aggregate_type AND p.aggregate_id = o.aggregate_id
                    GROUP BY o.aggregate_type, o.aggregate_id
                    HAVING max(o.sequence) > max(COALESCE(p.sequence, 0))
                    """,
                    name=runner.name,
                )
                if not behind:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(
                        f"consumer {runner.name} still behind after {within} s: {behind[:5]}"
                    )
                await asyncio.sleep(0.05)
