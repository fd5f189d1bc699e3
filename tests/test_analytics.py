"""Analytics: the projection after a scripted sale, the REST endpoints, the live dashboard socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import websockets

from admitone.analytics import models as analytics_models
from admitone.analytics import service as analytics_service
from admitone.analytics.live import CLOSE_TOO_SLOW, AnalyticsBroadcaster
from admitone.core.db import utcnow
from admitone.outbox.consumers import ConsumerRunner
from admitone.outbox.contracts import TicketCheckedIn
from admitone.outbox.models import outbox
from admitone.outbox.relay import envelope_of
from admitone.outbox.repository import EventStream
from tests.harness import Harness, small_venue
from tests.support import free_port, serving

A = "/api/v1/organizer"


async def emit(h: Harness, event_id: int, *events: Any) -> None:
    """Writes domain events the way their services do: under the event's lock, into the outbox."""
    async with h.state.db.write() as conn:
        stream = await EventStream.lock(conn, event_id)
        for e in events:
            stream.emit(e)
        await stream.flush()


async def place_order(h: Harness, event_id: int, tt: int, quantity: int) -> dict[str, Any]:
    hold = await h.hold(event_id, {"tickets": [{"ticket_type_id": tt, "quantity": quantity}]})
    assert hold.status_code == 201, hold.text
    order: dict[str, Any] = await h.ok(
        "POST",
        "/api/v1/orders",
        201,
        json={"hold_id": hold.json()["id"], "buyer_name": "Bo", "buyer_email": "bo@example.com"},
    )
    return order


async def scripted_sale(h: Harness) -> tuple[dict[str, str], int, dict[str, Any]]:
    """Two paid orders of 2, one refunded; an active hold of 3; a cancelled order; a lapsed hold;
    an announcement; a check-in."""
    auth = await h.organizer()
    ga = await h.ga_event(auth, capacity=100, price=2500)
    tickets = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]}
    first = await h.sell(ga.event_id, tickets)
    await h.sell(ga.event_id, tickets)
    await h.ok("POST", f"{A}/orders/{first['id']}/refund", headers=auth)
    active = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]})
    assert active.status_code == 201
    cancelled = await place_order(h, ga.event_id, ga.ticket_type_id, 1)
    await h.ok(
        "POST",
        f"/api/v1/orders/{cancelled['id']}/cancel",
        headers={"X-Order-Token": cancelled["access_token"]},
    )
    # A hold that lapses: placed, then the clock passes its deadline and the sweeper ends it. The active
    # hold of 3 is kept alive by placing it after the lapse.
    lapsing = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    assert lapsing.status_code == 201
    await h.ok(
        "POST", f"{A}/events/{ga.event_id}/announcements", 201, json={"text": "Doors at 7"}, headers=auth
    )
    paid = await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    ticket = paid["tickets"][0]
    await emit(
        h,
        ga.event_id,
        TicketCheckedIn(
            event_id=ga.event_id,
            ticket_id=ticket["id"],
            order_id=paid["id"],
            ticket_type_id=ga.ticket_type_id,
            seat_id=None,
            checked_in_at=h.clock.now(),
        ),
    )
    await h.settle()
    return auth, ga.event_id, {"ticket_type_id": ga.ticket_type_id, "quota_id": ga.quota_id}


async def test_projection_after_a_scripted_sale(stream_harness: Harness) -> None:
    h = stream_harness
    auth, event_id, ids = await scripted_sale(h)
    s = await h.ok("GET", f"{A}/events/{event_id}/analytics", headers=auth)
    t = s["totals"]
    # holds: 3 sold (2+2+1 tickets), 1 active, 1 for the cancelled order, 1 still active (lapsing)
    assert t["holds_placed"] == 6
    assert t["orders_placed"] == 4
    assert t["orders_paid"] == 3
    assert t["orders_cancelled"] == 1
    assert t["orders_refunded"] == 1
    assert t["tickets_sold"] == 3  # 2 + 2 + 1 issued, 2 refunded
    assert t["tickets_refunded"] == 2
    assert t["revenue_minor"] == 5 * 2500
    assert t["refunded_minor"] == 2 * 2500
    assert s["net_revenue_minor"] == 3 * 2500
    assert t["chat_messages"] == 1
    assert t["check_ins"] == 1
    assert s["currency"] == "EUR" or len(s["currency"]) == 3
    assert s["active_holds"] == 4  # 3 + the not yet lapsed 1
    assert s["capacity"] == 100
    assert s["remaining"] == 97
    assert s["conversion"] == {"orders_per_hold": round(4 / 6, 4), "paid_per_hold": 0.5}
    assert s["tickets_per_minute"] == pytest.approx(5 / 5)
    assert s["sell_out_seconds"] == pytest.approx(97 / 1.0 * 60)
    assert s["last_paid_at"] is not None
    [quota] = s["quotas"]
    assert (quota["id"], quota["capacity"], quota["held"], quota["sold"]) == (ids["quota_id"], 100, 4, 3)
    assert quota["sell_through"] == 0.03
    [tt] = s["ticket_types"]
    assert (tt["id"], tt["capacity"], tt["sold"]) == (ids["ticket_type_id"], 100, 3)
    assert sum(p["counters"]["tickets_sold"] for p in s["recent"]) == 5
    assert len(s["recent"]) == 30

    # The hold lapses: the sweeper expires it, active holds drop and the expiry is counted.
    h.clock.advance(h.state.settings.hold_ttl_seconds + 5)
    assert await h.state.sweeper.run_once() >= 1
    await h.settle()
    s = await h.ok("GET", f"{A}/events/{event_id}/analytics", headers=auth)
    assert s["totals"]["holds_expired"] == 2  # the active 3 lapses too: the clock passed both
    assert s["active_holds"] == 0
    assert s["quotas"][0]["held"] == 0


async def test_history_and_organizer_totals(harness: Harness) -> None:
    h = harness
    auth, event_id, _ = await scripted_sale(h)
    other = await h.ga_event(auth, capacity=10, price=1000)
    await h.sell(other.event_id, {"tickets": [{"ticket_type_id": other.ticket_type_id, "quantity": 1}]})
    await h.settle()

    history = await h.ok("GET", f"{A}/events/{event_id}/analytics/history", headers=auth)
    assert history["bucket"] == "minute"
    assert len(history["points"]) == 60
    assert sum(p["counters"]["tickets_sold"] for p in history["points"]) == 5
    assert sum(p["counters"]["orders_paid"] for p in history["points"]) == 3
    hourly = await h.ok(
        "GET", f"{A}/events/{event_id}/analytics/history", params={"bucket": "hour"}, headers=auth
    )
    assert len(hourly["points"]) == 24
    assert sum(p["counters"]["revenue_minor"] for p in hourly["points"]) == 5 * 2500
    now = utcnow()
    ranged = await h.ok(
        "GET",
        f"{A}/events/{event_id}/analytics/history",
        params={"since": (now - dt.timedelta(minutes=10)).isoformat(), "until": now.isoformat()},
        headers=auth,
    )
    assert 10 <= len(ranged["points"]) <= 11
    assert sum(p["counters"]["holds_placed"] for p in ranged["points"]) == 6
    # An hour long ago: nothing happened then.
    old = await h.ok(
        "GET",
        f"{A}/events/{event_id}/analytics/history",
        params={"since": "2020-01-01T00:00:00Z", "until": "2020-01-01T01:00:00Z"},
        headers=auth,
    )
    assert len(old["points"]) == 60
    assert all(p["counters"]["tickets_sold"] == 0 for p in old["points"])

    org = await h.ok("GET", f"{A}/analytics", headers=auth)
    assert org["totals"]["tickets_sold"] == 3 + 1
    assert org["totals"]["orders_paid"] == 4
    [eur] = org["revenue"]
    assert eur["revenue_minor"] == 5 * 2500 + 1000
    assert eur["net_revenue_minor"] == 3 * 2500 + 1000
    rows = {r["event_id"]: r for r in org["events"]}
    assert rows[event_id]["totals"]["tickets_sold"] == 3
    assert rows[other.event_id]["totals"]["tickets_sold"] == 1


async def test_bad_ranges_and_other_organizers(harness: Harness) -> None:
    h = harness
    auth = await h.organizer("Mine")
    stranger = await h.organizer("Theirs")
    ga = await h.ga_event(auth)
    url = f"{A}/events/{ga.event_id}/analytics"
    await h.ok("GET", url, 404, headers=stranger)
    await h.ok("GET", f"{url}/history", 404, headers=stranger)
    await h.ok("GET", f"{A}/events/999999/analytics", 404, headers=auth)
    await h.ok("GET", url, 401)
    mine = await h.ok("GET", f"{A}/analytics", headers=stranger)
    assert mine["events"] == [] and mine["totals"]["tickets_sold"] == 0
    for params in (
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},  # backwards
        {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},  # too many minutes
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"bucket": "week"},
        {"since": "0001-01-01T00:00:00Z"},
        {"since": "not a time"},
    ):
        problem = await h.ok("GET", f"{url}/history", 422, params=params, headers=auth)
        assert problem["status"] == 422
    # Before any sale: zeros, no conversion, no estimate.
    s = await h.ok("GET", url, headers=auth)
    assert s["totals"]["tickets_sold"] == 0
    assert s["conversion"] == {"orders_per_hold": None, "paid_per_hold": None}
    assert s["sell_out_seconds"] is None and s["capacity"] == 300 and s["remaining"] == 300


async def test_seated_sell_through_per_section(harness: Harness) -> None:
    h = harness
    auth = await h.organizer()
    seated = await h.seated_event(
        auth, venue=small_venue(rows=2, per_row=5, sections=("Left", "Right")), prices={"A": 5000, "B": 3000}
    )
    seats = await h.ok("GET", f"{A}/venues/{seated.venue_id}/seats", headers=auth)
    left = [s["id"] for s in seats if s["section_id"] == seated.sections["Left"]]
    right = [s["id"] for s in seats if s["section_id"] == seated.sections["Right"]]
    await h.sell(seated.event_id, {"seat_ids": left[:3]})
    held = await h.hold(seated.event_id, {"seat_ids": right[:2]})
    assert held.status_code == 201
    await h.settle()
    s = await h.ok("GET", f"{A}/events/{seated.event_id}/analytics", headers=auth)
    sections = {x["name"]: x for x in s["sections"]}
    assert (sections["Left"]["capacity"], sections["Left"]["sold"], sections["Left"]["held"]) == (10, 3, 0)
    assert (sections["Right"]["capacity"], sections["Right"]["sold"], sections["Right"]["held"]) == (10, 0, 2)
    assert sections["Left"]["sell_through"] == 0.3
    assert s["capacity"] == 20 and s["remaining"] == 17 and s["active_holds"] == 2
    types = {x["name"]: x for x in s["ticket_types"]}
    assert types["Seat A"]["capacity"] == 10 and types["Seat B"]["capacity"] == 10
    assert types["Seat A"]["sold"] + types["Seat B"]["sold"] == 3
    assert s["totals"]["revenue_minor"] == sum(
        5000 if any(x["id"] == sid and x["category"] == "A" for x in seats) else 3000 for sid in left[:3]
    )


async def test_reapplying_the_stream_changes_nothing(stream_harness: Harness) -> None:
    h = stream_harness
    auth, event_id, _ = await scripted_sale(h)
    url = f"{A}/events/{event_id}/analytics"
    before = await h.ok("GET", url, headers=auth)
    assert h.state.analytics is not None
    async with h.state.db.read() as conn:
        rows = (await conn.execute(sa.select(outbox).where(outbox.c.aggregate_id == event_id))).all()
    envelopes = [envelope_of(r) for r in rows]
    runner = ConsumerRunner(h.state.db, h.state.analytics.consumer)
    assert await runner.apply(envelopes) == []
    assert await runner.apply(envelopes[: len(envelopes) // 2]) == []
    assert runner.skipped == len(envelopes) + len(envelopes) // 2
    after = await h.ok("GET", url, headers=auth)
    for key in ("totals", "active_holds", "quotas", "ticket_types", "sections", "remaining"):
        assert after[key] == before[key], key
    assert sum(p["counters"]["tickets_sold"] for p in after["recent"]) == 5


async def test_one_by_one_and_batched_projections_agree(harness: Harness) -> None:
    """The relay hands the consumer batches (``project_batch``); applying the same events one at a time
    (``project``) must leave the same numbers."""
    h = harness
    auth, event_id, _ = await scripted_sale(h)
    url = f"{A}/events/{event_id}/analytics"
    batched = await h.ok("GET", url, headers=auth)
    assert batched["totals"]["holds_placed"] == 6
    async with h.state.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox).where(outbox.c.aggregate_id == event_id).order_by(outbox.c.sequence)
            )
        ).all()
    tables = [t for name, t in analytics_models.metadata.tables.items() if name.startswith("analytics_")]
    assert len(tables) == 6
    assert h.state.analytics is not None
    lookups = h.state.analytics.consumer.lookups
    async with h.state.db.write() as conn:
        for table in tables:
            await conn.execute(sa.delete(table).where(table.c.event_id == event_id))
    cleared = await h.ok("GET", url, headers=auth)
    assert cleared["totals"]["holds_placed"] == 0
    async with h.state.db.write() as conn:
        for row in rows:
            await analytics_service.project(conn, lookups, envelope_of(row))
    one_by_one = await h.ok("GET", url, headers=auth)
    for key in ("totals", "active_holds", "quotas", "ticket_types", "sections", "remaining", "conversion"):
        assert one_by_one[key] == batched[key], key
    assert [p["counters"] for p in one_by_one["recent"]] == [p["counters"] for p in batched["recent"]]


# -- the live socket, on a real server ----------------------------------------------------------------


@pytest.fixture
async def served(harness: Harness) -> AsyncIterator[tuple[Harness, str]]:
    """The harness app also served by uvicorn on 127.0.0.1 (its lifespan is already running)."""
    async with serving(harness.app, free_port(), lifespan=False) as base:
        yield harness, base.replace("http://", "ws://") + "/api/v1"


async def receive(ws: Any, within: float) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def test_live_socket_pushes_a_sale(served: tuple[Harness, str]) -> None:
    h, base = served
    auth = await h.organizer("Mine")
    stranger = await h.organizer("Theirs")
    key = auth["Authorization"].removeprefix("Bearer ")
    ga = await h.ga_event(auth)
    url = f"{base}/organizer/events/{ga.event_id}/analytics/live"

    for first, code in (
        ({"type": "auth", "api_key": "adm_nope"}, 4401),
        ({"hello": 1}, 4401),
        ({"type": "auth", "api_key": stranger["Authorization"].removeprefix("Bearer ")}, 4404),
    ):
        async with websockets.connect(url) as ws:
            await ws.send(orjson.dumps(first).decode())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await receive(ws, 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code

    async with websockets.connect(url) as ws:
        await ws.send(orjson.dumps({"type": "auth", "api_key": key}).decode())
        hello = await receive(ws, 5)
        assert hello["type"] == "summary"
        assert hello["summary"]["totals"]["tickets_sold"] == 0
        await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]})
        committed = time.monotonic()
        await h.settle()
        deadline = committed + 5
        while True:
            message = await receive(ws, max(0.01, deadline - time.monotonic()))
            if message["summary"]["totals"]["tickets_sold"] == 2:
                break
        lag = time.monotonic() - committed
        assert lag < 1.0, f"the dashboard got the sale {lag:.2f} s after it committed"
        summary = message["summary"]
        assert summary["totals"]["revenue_minor"] == 2 * 2500
        assert summary["conversion"]["paid_per_hold"] == 1.0
        broadcaster = h.state.analytics.broadcaster  # type: ignore[union-attr]
        assert broadcaster.sent >= 1 and ga.event_id in broadcaster.watchers
    # The socket is gone: no watcher is left behind.
    for _ in range(100):
        if ga.event_id not in broadcaster.watchers:
            break
        await asyncio.sleep(0.02)
    assert ga.event_id not in broadcaster.watchers


REDIS_URL = os.environ.get("ADMITONE_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="ADMITONE_TEST_REDIS_URL is not set")
async def test_a_change_reaches_another_process_through_redis() -> None:
    """The process that applied a change tells the others over Redis; their watchers get a fresh summary."""
    loads: list[int] = []

    async def load(event_id: int) -> str:
        loads.append(event_id)
        return orjson.dumps({"type": "summary", "event_id": event_id}).decode()

    here = AnalyticsBroadcaster(load, interval=0.05, redis_url=REDIS_URL)
    there = AnalyticsBroadcaster(load, interval=0.05, redis_url=REDIS_URL)
    here.start()
    there.start()
    try:
        watcher = there.watch(424242)
        unwatched = there.watch(515151)
        await asyncio.sleep(0.3)  # the subscription is in place
        for _ in range(50):
            here.changed({424242})  # nobody watches it here: only Redis can carry it there
            try:
                text = await asyncio.wait_for(watcher.queue.get(), 0.2)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("the change did not arrive through Redis")
        assert orjson.loads(text or "{}")["event_id"] == 424242
        assert 515151 not in loads and unwatched.queue.empty()
    finally:
        await here.stop()
        await there.stop()


async def test_a_slow_watcher_is_dropped_not_waited_for() -> None:
    async def load(event_id: int) -> str:
        return "{}"

    broadcaster = AnalyticsBroadcaster(load, interval=0.01, queue_size=2)
    slow = broadcaster.watch(7)
    for _ in range(3):
        broadcaster.mark({7})
        await broadcaster.flush()
    assert slow.close_code == CLOSE_TOO_SLOW
    assert 7 not in broadcaster.watchers
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None
