"""A buyer's whole journey through the API, on each database."""

from __future__ import annotations

from tests.harness import Harness, small_venue


async def test_buyer_journey_seats_to_tickets(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=4, per_row=10))
    events = await h.ok("GET", "/api/v1/events")
    assert [e["id"] for e in events] == [ev.event_id]
    detail = await h.ok("GET", f"/api/v1/events/{ev.event_id}")
    assert {t["category"] for t in detail["ticket_types"]} == {"A", "B"}

    seat_map = await h.ok("GET", f"/api/v1/events/{ev.event_id}/seats")
    assert len(seat_map["seats"]) == 40 and {s["state"] for s in seat_map["seats"]} == {"free"}

    hold = await h.hold(ev.event_id, {"seat_ids": ev.seat_ids[:2]})
    assert hold.status_code == 201, hold.text
    body = hold.json()
    assert body["total_minor"] == 2 * 5000 and len(body["lines"]) == 2

    states = {
        s["id"]: s["state"] for s in (await h.ok("GET", f"/api/v1/events/{ev.event_id}/seats"))["seats"]
    }
    assert states[ev.seat_ids[0]] == "held" and states[ev.seat_ids[2]] == "free"

    order = await h.ok(
        "POST",
        "/api/v1/orders",
        201,
        json={"hold_id": body["id"], "buyer_name": "Ada", "buyer_email": "ada@example.com"},
    )
    assert order["status"] == "pending_payment" and order["tickets"] == []
    token = {"X-Order-Token": order["access_token"]}
    assert (await h.client.get(f"/api/v1/orders/{order['id']}")).status_code == 403

    url = order["payment"]["next_action"]["url"]
    await h.ok("POST", url, 202, json={"outcome": "succeeded"})
    await h.state.payments.test.drain()

    paid = await h.ok("GET", f"/api/v1/orders/{order['id']}", headers=token)
    assert paid["status"] == "paid"
    assert len(paid["tickets"]) == 2
    codes = {t["code"] for t in paid["tickets"]}
    assert len(codes) == 2 and all(len(c) >= 20 for c in codes)

    states = {
        s["id"]: s["state"] for s in (await h.ok("GET", f"/api/v1/events/{ev.event_id}/seats"))["seats"]
    }
    assert states[ev.seat_ids[0]] == "sold" and states[ev.seat_ids[1]] == "sold"
    await h.check_invariants(ev.event_id)

    types = [
        r[0]
        for r in await h.rows(
            "SELECT type FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ev.event_id
        )
    ]
    assert types[:2] == ["hold.placed", "inventory.changed"]
    assert "order.placed" in types and "order.paid" in types and types.count("ticket.issued") == 2


async def test_general_admission_and_free_order(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=5, price=0)
    hold = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]})
    assert hold.status_code == 201
    avail = await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability")
    assert avail["quotas"][0]["available"] == 2 and avail["quotas"][0]["held"] == 3
    order = await h.ok(
        "POST",
        "/api/v1/orders",
        201,
        json={
            "hold_id": hold.json()["id"],
            "buyer_name": "Bo",
            "buyer_email": "bo@example.com",
            "payment_provider": "free",
        },
    )
    assert order["status"] == "paid" and len(order["tickets"]) == 3
    avail = await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability")
    assert avail["quotas"][0] == {**avail["quotas"][0], "held": 0, "sold": 3, "available": 2}
    too_many = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 3}]})
    assert too_many.status_code == 409
    problem = too_many.json()
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert problem["available"] == 2 and "Only 2 left" in problem["detail"]
    await h.check_invariants(ga.event_id)
