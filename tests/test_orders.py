"""Orders: payment by signed webhook, expiry, cancellation and refund."""

from __future__ import annotations

import time

import orjson

from admitone.core import security
from admitone.orders.payments import SIGNATURE_HEADER, WEBHOOK_PATH, webhook_secret
from tests.conftest import SECRET
from tests.harness import GAEvent, Harness


async def _order(h: Harness, ga: GAEvent, n: int = 2) -> dict[str, object]:
    hold = (
        await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": n}]})
    ).json()
    return await h.ok(
        "POST",
        "/api/v1/orders",
        201,
        json={"hold_id": hold["id"], "buyer_name": "Di", "buyer_email": "di@example.com"},
    )


def _signed(
    payload: dict[str, object], secret: str = webhook_secret(SECRET), ts: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    return body, {
        SIGNATURE_HEADER: security.signature_header(secret, body, ts),
        "Content-Type": "application/json",
    }


async def test_webhook_signature_is_checked(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    order = await _order(h, ga)
    payment = order["payment"]
    assert isinstance(payment, dict)
    note = {
        "id": "evt_1",
        "type": "payment.succeeded",
        "payment_id": payment["id"],
        "amount_minor": 5000,
        "currency": "EUR",
    }
    body, good = _signed(note)
    for headers in (
        {"Content-Type": "application/json"},
        _signed(note, secret="another-secret")[1],
        _signed(note, ts=int(time.time()) - 3600)[1],
        {**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].replace("v1=", "v1=00")},
    ):
        r = await h.client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert r.status_code == 401, r.text
    tampered = orjson.dumps({**note, "amount_minor": 1})
    assert (await h.client.post(WEBHOOK_PATH, content=tampered, headers=good)).status_code == 401
    assert (
        await h.ok("GET", f"/api/v1/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]})
    )["status"] == "pending_payment"

    ack = await h.ok("POST", WEBHOOK_PATH, content=body, headers=good)
    assert ack["order_status"] == "paid"
    again = await h.ok("POST", WEBHOOK_PATH, content=body, headers=_signed(note)[1])
    assert again["note"] == "already paid"
    assert await h.scalar("SELECT count(*) FROM tickets WHERE order_id = :o", o=order["id"]) == 2
    wrong = {**note, "amount_minor": 1}
    r = await h.client.post(WEBHOOK_PATH, content=orjson.dumps(wrong), headers=_signed(wrong)[1])
    assert r.status_code == 422 and "amount" in r.json()["detail"]
    await h.check_invariants(ga.event_id)


async def test_failed_payment_then_success(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    order = await _order(h, ga)
    token = {"X-Order-Token": str(order["access_token"])}
    url = order["payment"]["next_action"]["url"]  # type: ignore[index]
    await h.ok("POST", url, 202, json={"outcome": "failed"})
    await h.state.payments.test.drain()
    failed = await h.ok("GET", f"/api/v1/orders/{order['id']}", headers=token)
    assert failed["status"] == "pending_payment" and failed["payment"]["status"] == "failed"
    await h.ok("POST", url, 202, json={"outcome": "succeeded"})
    await h.state.payments.test.drain()
    paid = await h.ok("GET", f"/api/v1/orders/{order['id']}", headers=token)
    assert paid["status"] == "paid" and len(paid["tickets"]) == 2
    assert (await h.client.post(url, json={"outcome": "succeeded"})).status_code == 409


async def test_unpaid_order_expires_and_late_payment_is_flagged(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=2)
    order = await _order(h, ga, 2)
    h.clock.advance(601)  # past the hold's own deadline: the order's deadline (900 s) still holds it
    assert (await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability"))["quotas"][0]["available"] == 0
    h.clock.advance(300)
    assert (await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability"))["quotas"][0]["available"] == 2
    assert await h.state.sweeper.run_once() == 1
    token = {"X-Order-Token": str(order["access_token"])}
    assert (await h.ok("GET", f"/api/v1/orders/{order['id']}", headers=token))["status"] == "expired"
    note = {
        "id": "evt_2",
        "type": "payment.succeeded",
        "payment_id": order["payment"]["id"],  # type: ignore[index]
        "amount_minor": 5000,
        "currency": "EUR",
    }
    body, headers = _signed(note)
    ack = await h.ok("POST", "/api/v1/payments/test/webhook", content=body, headers=headers)
    assert ack["order_status"] == "expired" and "refund" in ack["note"]
    types = [
        r[0]
        for r in await h.rows(
            "SELECT type FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ga.event_id
        )
    ]
    assert "order.expired" in types and "hold.expired" not in types
    assert await h.scalar("SELECT count(*) FROM tickets") == 0
    await h.check_invariants(ga.event_id)


async def test_cancel_and_refund_return_inventory(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=4)
    unpaid = await _order(h, ga)
    paid = await _order(h, ga)
    token = {"X-Order-Token": str(unpaid["access_token"])}
    assert (await h.client.post(f"/api/v1/orders/{unpaid['id']}/cancel")).status_code == 403
    cancelled = await h.ok("POST", f"/api/v1/orders/{unpaid['id']}/cancel", headers=token)
    assert cancelled["status"] == "cancelled"
    url = paid["payment"]["next_action"]["url"]  # type: ignore[index]
    await h.ok("POST", url, 202, json={"outcome": "succeeded"})
    await h.state.payments.test.drain()
    quota = (await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability"))["quotas"][0]
    assert (quota["sold"], quota["held"], quota["available"]) == (2, 0, 2)
    r = await h.client.post(
        f"/api/v1/orders/{paid['id']}/cancel", headers={"X-Order-Token": str(paid["access_token"])}
    )
    assert r.status_code == 409 and "refund" in r.json()["detail"]
    refunded = await h.ok("POST", f"/api/v1/organizer/orders/{paid['id']}/refund", headers=org)
    assert refunded["status"] == "refunded" and {t["status"] for t in refunded["tickets"]} == {"void"}
    again = await h.ok("POST", f"/api/v1/organizer/orders/{paid['id']}/refund", headers=org)
    assert again["status"] == "refunded"
    quota = (await h.ok("GET", f"/api/v1/events/{ga.event_id}/availability"))["quotas"][0]
    assert (quota["sold"], quota["held"], quota["available"]) == (0, 0, 4)
    orders = await h.ok("GET", f"/api/v1/organizer/events/{ga.event_id}/orders", headers=org)
    assert sorted(o["status"] for o in orders) == ["cancelled", "refunded"]
    types = [
        r[0]
        for r in await h.rows(
            "SELECT type FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ga.event_id
        )
    ]
    assert types.count("order.cancelled") == 1 and types.count("order.refunded") == 1
    await h.check_invariants(ga.event_id)
