"""Holds: expiry, release, idempotency, best-available seats, and the domain events they write."""

from __future__ import annotations

import asyncio
import datetime as dt

from admitone.core.settings import Settings
from admitone.outbox.repository import EventStream
from tests.conftest import running
from tests.harness import Harness, small_venue


async def test_expired_hold_is_free_before_and_after_the_sweep(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=4)
    seated = await h.seated_event(org, small_venue(rows=1, per_row=4))
    g = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 4}]})
    s = await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[:2]})
    assert g.status_code == 201 and s.status_code == 201
    assert (
        await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    ).status_code == 409

    h.clock.advance(601)
    # Not swept yet: availability and the seat map already count the expired holds as free.
    avail = await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability")
    assert avail["quotas"][0]["available"] == 4 and avail["ticket_types"][0]["available"] == 4
    desk = await h.ok("GET", f"/api/v1/organizer/events/{ga.event_id}/quotas", headers=org)
    assert (desk[0]["held"], desk[0]["available"]) == (0, 4)
    seats = await h.ok("GET", f"/api/v1/events/{seated.event_id}/seats")
    assert {x["state"] for x in seats["seats"]} == {"free"}
    hold = await h.ok("GET", f"/api/v1/holds/{g.json()['id']}")
    assert hold["status"] == "expired"
    order = await h.client.post(
        "/api/v1/orders",
        json={"hold_id": g.json()["id"], "buyer_name": "Late", "buyer_email": "late@example.com"},
    )
    assert order.status_code == 410 and "expired" in order.json()["detail"]

    assert await h.state.sweeper.run_once() == 2
    assert await h.scalar("SELECT held FROM quotas WHERE id = :q", q=ga.quota_id) == 0
    assert await h.scalar("SELECT count(*) FROM seat_claims WHERE event_id = :e", e=seated.event_id) == 0
    types = [
        r[0]
        for r in await h.rows(
            "SELECT type FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ga.event_id
        )
    ]
    assert types == ["hold.placed", "inventory.changed", "hold.expired", "inventory.changed"]
    # The seats can be taken again at once, by someone else.
    again = await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[:2]})
    assert again.status_code == 201
    await h.check_invariants(ga.event_id)
    await h.check_invariants(seated.event_id)


async def test_new_hold_takes_seats_of_an_expired_unswept_hold(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    seated = await h.seated_event(org, small_venue(rows=1, per_row=3))
    first = await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[:1]})
    assert first.status_code == 201
    h.clock.advance(700)
    second = await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[:1]})
    assert second.status_code == 201, second.text
    assert (await h.ok("GET", f"/api/v1/holds/{first.json()['id']}"))["status"] == "expired"
    await h.check_invariants(seated.event_id)


async def test_release_returns_inventory_and_cannot_repeat(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=3)
    r = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]})
    hold_id = r.json()["id"]
    released = await h.ok("DELETE", f"/api/v1/holds/{hold_id}")
    assert released["status"] == "released"
    assert (await h.client.delete(f"/api/v1/holds/{hold_id}")).status_code == 410
    assert (await h.client.delete("/api/v1/holds/hold_nope")).status_code == 404
    avail = await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability")
    assert avail["quotas"][0]["available"] == 3
    await h.check_invariants(ga.event_id)


async def test_hold_idempotency_key_replays_and_refuses_other_bodies(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    body = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]}
    key = {"Idempotency-Key": "retry-me-1"}
    # Concurrent retries with the same key and body: one hold, every answer the same.
    answers = await asyncio.gather(*(h.hold(ga.event_id, body, headers=key) for _ in range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    later = await h.hold(ga.event_id, body, headers=key)
    assert later.json()["id"] == answers[0].json()["id"] and later.headers["Idempotent-Replayed"] == "true"
    other = await h.hold(
        ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]}, headers=key
    )
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    assert await h.scalar("SELECT held FROM quotas WHERE id = :q", q=ga.quota_id) == 2
    assert await h.scalar("SELECT count(*) FROM holds") == 1


async def test_order_idempotency_key(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    hold = (
        await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    ).json()
    body = {"hold_id": hold["id"], "buyer_name": "Cy", "buyer_email": "cy@example.com"}
    key = {"Idempotency-Key": "order-1"}
    answers = await asyncio.gather(
        *(h.client.post("/api/v1/orders", json=body, headers=key) for _ in range(4))
    )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await h.scalar("SELECT count(*) FROM orders") == 1


async def test_best_available_leaves_no_single_orphan(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    seated = await h.seated_event(org, small_venue(rows=2, per_row=6))
    # Row A: take seats 1 and 6, leaving 2..5 free.
    row_a = seated.seat_ids[:6]
    assert (await h.hold(seated.event_id, {"seat_ids": [row_a[0], row_a[5]]})).status_code == 201
    r = await h.hold(seated.event_id, {"best_available": {"quantity": 3}})
    chosen = [ln["seat_id"] for ln in r.json()["lines"]]
    # Any block of 3 within 2..5 leaves one lone seat in row A, so row B is chosen, at an end of it:
    # 2-3-4 or 3-4-5 would strand seat 1 or seat 6.
    assert all(s not in row_a for s in chosen), chosen
    numbers = sorted(seated.seat_ids.index(s) - 6 + 1 for s in chosen)
    assert set(numbers) in ({1, 2, 3}, {4, 5, 6})
    r2 = await h.hold(seated.event_id, {"best_available": {"quantity": 4}})
    chosen2 = [ln["seat_id"] for ln in r2.json()["lines"]]
    assert sorted(chosen2) == sorted(row_a[1:5])
    section = next(iter(seated.sections.values()))
    r3 = await h.hold(seated.event_id, {"best_available": {"quantity": 4, "section_id": section}})
    assert r3.status_code == 409 and "adjacent" in r3.json()["detail"]
    await h.check_invariants(seated.event_id)


async def test_taken_seats_are_named(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    seated = await h.seated_event(org, small_venue(rows=1, per_row=5))
    assert (await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[1:3]})).status_code == 201
    r = await h.hold(seated.event_id, {"seat_ids": seated.seat_ids[:3]})
    assert r.status_code == 409
    problem = r.json()
    assert problem["seats"] == ["Main A-2", "Main A-3"] and "Main A-2, Main A-3" in problem["detail"]
    assert problem["seat_ids"] == seated.seat_ids[1:3]


async def test_sales_window_and_status_are_enforced(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=5)
    later = (h.clock.now().replace(microsecond=0)).isoformat()
    await h.ok(
        "PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"sales_close_at": later}, headers=org
    )
    r = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    await h.ok("PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"status": "cancelled"}, headers=org)
    r = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    back = await h.client.patch(
        f"/api/v1/organizer/events/{ga.event_id}", json={"status": "on_sale"}, headers=org
    )
    assert back.status_code == 409


async def test_hold_writer_sees_configuration_changes_at_once(harness: Harness) -> None:
    # The event's writer caches the event and its ticket types between batches; every change to them
    # must reach the very next hold.
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=20, price=1000)
    one = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
    assert (await h.hold(ga.event_id, one)).status_code == 201
    version = await h.scalar("SELECT config_version FROM event_streams WHERE event_id = :e", e=ga.event_id)

    vip = await h.ok(
        "POST",
        f"/api/v1/organizer/events/{ga.event_id}/ticket-types",
        201,
        headers=org,
        json={"name": "VIP", "kind": "admission", "price_minor": 9900, "quota_ids": [ga.quota_id]},
    )
    r = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": vip["id"], "quantity": 2}]})
    assert r.status_code == 201, r.text
    assert r.json()["total_minor"] == 19800 and r.json()["lines"][0]["ticket_type"] == "VIP"

    later = (h.clock.now().replace(microsecond=0)).isoformat()
    await h.ok(
        "PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"sales_close_at": later}, headers=org
    )
    r = await h.hold(ga.event_id, one)
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    reopened = (h.clock.now().replace(microsecond=0) + dt.timedelta(days=1)).isoformat()
    await h.ok(
        "PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"sales_close_at": reopened}, headers=org
    )
    assert (await h.hold(ga.event_id, one)).status_code == 201
    await h.ok("PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"status": "cancelled"}, headers=org)
    r = await h.hold(ga.event_id, one)
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    after = await h.scalar("SELECT config_version FROM event_streams WHERE event_id = :e", e=ga.event_id)
    assert after > version
    await h.check_invariants(ga.event_id)


async def test_outbox_sequence_is_gap_free_per_event(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    a = await h.ga_event(org, capacity=100)
    b = await h.ga_event(org, capacity=100)
    await asyncio.gather(
        *(
            h.hold(e.event_id, {"tickets": [{"ticket_type_id": e.ticket_type_id, "quantity": 1}]})
            for e in (a, b)
            for _ in range(40)
        )
    )
    for ev in (a, b):
        seqs = [
            r[0]
            for r in await h.rows(
                "SELECT sequence FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ev.event_id
            )
        ]
        assert seqs == list(range(1, len(seqs) + 1))
        placed = await h.scalar(
            "SELECT count(*) FROM outbox WHERE aggregate_id = :e AND type = 'hold.placed'", e=ev.event_id
        )
        assert placed == 40
        last = await h.scalar("SELECT last_seq FROM event_streams WHERE event_id = :e", e=ev.event_id)
        assert last == seqs[-1]
    payload = (await h.rows("SELECT payload FROM outbox WHERE type = 'hold.placed' LIMIT 1"))[0][0]
    from admitone.outbox.contracts import HoldPlaced

    parsed = HoldPlaced.model_validate(
        payload if isinstance(payload, dict) else __import__("json").loads(payload)
    )
    assert parsed.lines[0].quantity == 1


async def test_a_lingering_writer_takes_late_requests_into_its_batch(settings: Settings) -> None:
    # ADMITONE_BATCH_LINGER_MS: a request that arrives shortly after the first one of a batch joins it.
    async with running(settings.model_copy(update={"batch_linger_ms": 300})) as h:
        org = await h.organizer()
        ga = await h.ga_event(org, capacity=10)
        one = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
        before = h.state.engine.batches

        async def late() -> int:
            await asyncio.sleep(0.05)
            return (await h.hold(ga.event_id, one)).status_code

        first, second = await asyncio.gather(h.hold(ga.event_id, one), late())
        assert (first.status_code, second) == (201, 201)
        assert h.state.engine.batches - before == 1
        await h.check_invariants(ga.event_id)


async def test_requests_arriving_while_a_batch_waits_for_the_lock_join_it(harness: Harness) -> None:
    # The writer takes the waiting requests in again once it holds the event's lock: a request that
    # arrives while the batch waits for another transaction is in that batch, not in the next one.
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    one = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
    assert (await h.hold(ga.event_id, one)).status_code == 201  # the event's writer is running
    before = h.state.engine.batches
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold_the_lock() -> None:
        async with h.state.db.write() as conn:
            await EventStream.lock(conn, ga.event_id)
            locked.set()
            await release.wait()

    blocker = asyncio.create_task(hold_the_lock())
    await locked.wait()
    first = asyncio.create_task(h.hold(ga.event_id, one))
    await asyncio.sleep(0.2)  # the writer has taken the first request and waits for the lock
    second = asyncio.create_task(h.hold(ga.event_id, one))
    await asyncio.sleep(0.2)
    release.set()
    await blocker
    assert [r.status_code for r in await asyncio.gather(first, second)] == [201, 201]
    assert h.state.engine.batches - before == 1
    await h.check_invariants(ga.event_id)
