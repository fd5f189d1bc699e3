"""Check-in at the door: signed ticket payloads, and the check-in API on both databases."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
import sqlalchemy as sa

from admitone.checkin.tokens import TicketClaim, sign_ticket, ticket_signing_key, verify_ticket
from admitone.organizers import service as organizers
from admitone.web.qr import ticket_svg
from tests.harness import Harness

API = "/api/v1"
KEY = ticket_signing_key("k" * 48)


# --- tokens -------------------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    payload = sign_ticket(KEY, 12, 345, "Zq3v9dK2mX8pL4rT7wYbN1cE")
    assert payload.startswith("AT1.12.345.Zq3v9dK2mX8pL4rT7wYbN1cE.")
    assert len(payload.rsplit(".", 1)[1]) == 22  # 16 bytes, base64url without padding
    assert verify_ticket(KEY, payload) == TicketClaim(12, 345, "Zq3v9dK2mX8pL4rT7wYbN1cE")
    # What a scanner hands over may carry a trailing newline.
    assert verify_ticket(KEY, payload + "\n") == TicketClaim(12, 345, "Zq3v9dK2mX8pL4rT7wYbN1cE")


def test_key_is_derived_per_secret_and_stable() -> None:
    assert ticket_signing_key("k" * 48) == KEY
    assert ticket_signing_key("j" * 48) != KEY
    assert len(KEY) == 32


def _swap(payload: str, index: int, value: str) -> str:
    parts = payload.split(".")
    parts[index] = value
    return ".".join(parts)


def _flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: _swap(p, 1, "13"), id="event"),
        pytest.param(lambda p: _swap(p, 2, "346"), id="ticket"),
        pytest.param(lambda p: _swap(p, 3, "Zq3v9dK2mX8pL4rT7wYbN1cF"), id="code"),
        pytest.param(lambda p: _flip_last(p), id="signature"),
        pytest.param(lambda p: _swap(p, 4, ""), id="no-signature"),
        pytest.param(lambda p: _swap(p, 0, "AT2"), id="prefix"),
        pytest.param(lambda p: p.rsplit(".", 1)[0], id="truncated"),
        pytest.param(lambda p: p + ".extra", id="extra-part"),
    ],
)
def test_tampered_payload_is_refused(tamper: Any) -> None:
    payload = sign_ticket(KEY, 12, 345, "Zq3v9dK2mX8pL4rT7wYbN1cE")
    assert verify_ticket(KEY, payload) is not None
    assert verify_ticket(KEY, tamper(payload)) is None


def test_signature_of_another_key_is_refused() -> None:
    payload = sign_ticket(ticket_signing_key("j" * 48), 12, 345, "Zq3v9dK2mX8pL4rT7wYbN1cE")
    assert verify_ticket(KEY, payload) is None


def test_full_length_mac_is_not_accepted_for_the_truncated_one() -> None:
    payload = sign_ticket(KEY, 1, 2, "code")
    body = payload.rsplit(".", 1)[0]
    full = base64.urlsafe_b64encode(hmac.new(KEY, body.encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert verify_ticket(KEY, f"{body}.{full.decode()}") is None


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "AT1",
        "AT1....",
        "AT1.x.2.code.sig",
        "AT1.1.-2.code.sig",
        "AT1.1.2..sig",
        "AT1.1234567890123.2.code.sig",
        "AT1.1.1234567890123.code.sig",
        "AT1.\u0661.2.code.sig",  # a non-ASCII digit
        "hello world",
        "AT1.1.2.code.€€€",
    ],
)
def test_malformed_payload_is_refused(payload: str) -> None:
    assert verify_ticket(KEY, payload) is None


# --- API ----------------------------------------------------------------------------------------------


async def _sold(harness: Harness, quantity: int = 2) -> tuple[dict[str, str], int, dict[str, Any]]:
    auth = await harness.organizer()
    ga = await harness.ga_event(auth)
    order = await harness.sell(
        ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": quantity}]}
    )
    return auth, ga.event_id, order


async def _scan(
    harness: Harness, auth: dict[str, str], event_id: int, payload: str, scanner: str = "gate-1"
) -> dict[str, Any]:
    body = {"payload": payload, "scanner": scanner}
    result: dict[str, Any] = await harness.ok(
        "POST", f"{API}/organizer/events/{event_id}/checkins", json=body, headers=auth
    )
    return result


async def _summary(harness: Harness, auth: dict[str, str], event_id: int) -> dict[str, Any]:
    result: dict[str, Any] = await harness.ok(
        "GET", f"{API}/organizer/events/{event_id}/checkins/summary", headers=auth
    )
    return result


async def _checked_in_events(harness: Harness, event_id: int) -> list[dict[str, Any]]:
    rows = await harness.rows(
        "SELECT payload FROM outbox WHERE aggregate_id = :e AND type = 'ticket.checked_in' ORDER BY id",
        e=event_id,
    )
    return [r.payload if isinstance(r.payload, dict) else json.loads(r.payload) for r in rows]


async def test_order_tickets_carry_a_signed_payload_and_the_qr_draws_it(harness: Harness) -> None:
    _, event_id, order = await _sold(harness)
    key = harness.state.ticket_key
    for ticket in order["tickets"]:
        claim = verify_ticket(key, ticket["qr_payload"])
        assert claim == TicketClaim(event_id, ticket["id"], ticket["code"])
    ticket = order["tickets"][0]
    svg = await harness.client.get(
        f"{API}/orders/{order['id']}/tickets/{ticket['id']}/qr.svg",
        headers={"X-Order-Token": order["access_token"]},
    )
    assert svg.status_code == 200, svg.text
    assert svg.content == ticket_svg(ticket["qr_payload"], f"Ticket {ticket['id']}")
    assert svg.content != ticket_svg(ticket["code"], f"Ticket {ticket['id']}")


async def test_valid_then_already_used_with_time_and_scanner(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness)
    ticket = order["tickets"][0]
    assert await _summary(harness, auth, event_id) == {
        "event_id": event_id,
        "checked_in": 0,
        "total": 2,
        "remaining": 2,
    }
    first = await _scan(harness, auth, event_id, ticket["qr_payload"], "gate-1")
    assert first["result"] == "valid", first
    assert first["repeated"] is False
    assert first["checked_in_by"] == "gate-1"
    assert first["ticket"] == {
        "id": ticket["id"],
        "order_id": order["id"],
        "ticket_type": "Standing",
        "seat_label": None,
    }
    admitted_at = first["checked_in_at"]
    assert admitted_at is not None
    assert (await _summary(harness, auth, event_id))["checked_in"] == 1

    harness.clock.advance(5)
    other = await _scan(harness, auth, event_id, ticket["qr_payload"], "gate-2")
    assert other["result"] == "already_used", other
    assert other["checked_in_at"] == admitted_at
    assert other["checked_in_by"] == "gate-1"
    assert "gate-1" in other["message"]

    # The same gate, long after its retry window: the ticket is used.
    harness.clock.advance(harness.state.settings.checkin_retry_seconds + 1)
    late = await _scan(harness, auth, event_id, ticket["qr_payload"], "gate-1")
    assert late["result"] == "already_used", late
    assert late["checked_in_at"] == admitted_at

    summary = await _summary(harness, auth, event_id)
    assert (summary["checked_in"], summary["total"], summary["remaining"]) == (1, 2, 1)
    await harness.settle()
    events = await _checked_in_events(harness, event_id)
    assert len(events) == 1
    assert events[0]["ticket_id"] == ticket["id"]
    assert events[0]["order_id"] == order["id"]
    assert events[0]["scanner"] == "gate-1"


async def test_same_scanner_retry_is_idempotent(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness, 1)
    payload = order["tickets"][0]["qr_payload"]
    first = await _scan(harness, auth, event_id, payload, "gate-3")
    harness.clock.advance(10)
    again = await _scan(harness, auth, event_id, payload, "gate-3")
    assert again["result"] == "valid", again
    assert again["repeated"] is True
    assert again["checked_in_at"] == first["checked_in_at"]
    assert len(await _checked_in_events(harness, event_id)) == 1
    assert (await _summary(harness, auth, event_id))["checked_in"] == 1


async def test_bare_code_typed_by_hand(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness)
    code = order["tickets"][1]["code"]
    typed = f" {code[:8]} {code[8:16]} {code[16:]} "
    result = await _scan(harness, auth, event_id, typed, "desk")
    assert result["result"] == "valid", result
    assert result["ticket"]["id"] == order["tickets"][1]["id"]
    # The QR code of the same ticket is now used.
    again = await _scan(harness, auth, event_id, order["tickets"][1]["qr_payload"], "gate-1")
    assert again["result"] == "already_used"
    assert again["checked_in_by"] == "desk"


async def test_invalid_payloads(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness)
    ticket = order["tickets"][0]
    key = harness.state.ticket_key
    cases = {
        "bad_signature": [
            _flip_last(ticket["qr_payload"]),
            sign_ticket(ticket_signing_key("z" * 48), event_id, ticket["id"], ticket["code"]),
            _swap(ticket["qr_payload"], 2, str(order["tickets"][1]["id"])),
        ],
        "malformed": ["hello world!", "AT1", "short"],
        "unknown_ticket": [
            "A" * 24,
            sign_ticket(key, event_id, 999_999, ticket["code"]),
            sign_ticket(key, event_id, ticket["id"], "B" * 24),
        ],
    }
    for reason, payloads in cases.items():
        for payload in payloads:
            result = await _scan(harness, auth, event_id, payload)
            assert (result["result"], result["reason"]) == ("invalid", reason), (payload, result)
            assert result["message"]
    assert (await _summary(harness, auth, event_id))["checked_in"] == 0
    assert await _checked_in_events(harness, event_id) == []


async def test_forged_payload_never_reaches_the_database(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness, 1)
    await harness.settle()  # background consumers of the sale are done
    # The relays read the event streams on their idle timer; stopped, they leave only the scans' SQL.
    await harness.state.relay.stop()
    await harness.state.stream_relay.stop()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engines = {harness.state.db.read_engine.sync_engine, harness.state.db.write_engine.sync_engine}
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", record)
    try:
        forged = _flip_last(order["tickets"][0]["qr_payload"])
        result = await _scan(harness, auth, event_id, forged)
        garbage = await _scan(harness, auth, event_id, "not a ticket at all")
        # Not even the event is looked up: a forged payload for an event that does not exist is
        # refused the same way.
        nowhere = await _scan(harness, auth, 999_999, forged)
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", record)
    assert result["reason"] == "bad_signature"
    assert garbage["reason"] == "malformed"
    assert nowhere["reason"] == "bad_signature"
    touched = [s for s in statements if "tickets" in s or "event_streams" in s]
    assert touched == []
    assert any("api_keys" in s for s in statements), "the API key is still checked"


async def test_wrong_event(harness: Harness) -> None:
    auth = await harness.organizer()
    here = await harness.ga_event(auth)
    there = await harness.ga_event(auth)
    await harness.ok(
        "PATCH", f"{API}/organizer/events/{there.event_id}", json={"name": "Matinee"}, headers=auth
    )
    order = await harness.sell(
        there.event_id, {"tickets": [{"ticket_type_id": there.ticket_type_id, "quantity": 1}]}
    )
    ticket = order["tickets"][0]
    for payload in (ticket["qr_payload"], ticket["code"]):
        result = await _scan(harness, auth, here.event_id, payload)
        assert result["result"] == "wrong_event", result
        assert result["ticket_event_id"] == there.event_id
        assert result["ticket_event_name"] == "Matinee"
        assert "Matinee" in result["message"]
    # Still good at its own event.
    assert (await _scan(harness, auth, there.event_id, ticket["qr_payload"]))["result"] == "valid"

    # Another organizer's genuine ticket: wrong event, without naming it.
    other = await harness.organizer("Other")
    elsewhere = await harness.ga_event(other)
    foreign = await harness.sell(
        elsewhere.event_id, {"tickets": [{"ticket_type_id": elsewhere.ticket_type_id, "quantity": 1}]}
    )
    result = await _scan(harness, auth, here.event_id, foreign["tickets"][0]["qr_payload"])
    assert result["result"] == "wrong_event"
    assert result["ticket_event_id"] is None and result["ticket_event_name"] is None


async def test_refunded_ticket_is_void(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness)
    await harness.ok("POST", f"{API}/organizer/orders/{order['id']}/refund", headers=auth)
    for payload in (order["tickets"][0]["qr_payload"], order["tickets"][1]["code"]):
        result = await _scan(harness, auth, event_id, payload)
        assert (result["result"], result["reason"]) == ("invalid", "void"), result
        assert result["ticket"]["id"] in {t["id"] for t in order["tickets"]}
    assert await _summary(harness, auth, event_id) == {
        "event_id": event_id,
        "checked_in": 0,
        "total": 0,
        "remaining": 0,
    }


async def test_other_organizer_gets_404(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness, 1)
    intruder = await harness.organizer("Intruder")
    scan = await harness.client.post(
        f"{API}/organizer/events/{event_id}/checkins",
        json={"payload": order["tickets"][0]["qr_payload"], "scanner": "gate-1"},
        headers=intruder,
    )
    assert scan.status_code == 404, scan.text
    summary = await harness.client.get(
        f"{API}/organizer/events/{event_id}/checkins/summary", headers=intruder
    )
    assert summary.status_code == 404, summary.text
    assert (await _summary(harness, auth, event_id))["checked_in"] == 0
    unauthenticated = await harness.client.post(
        f"{API}/organizer/events/{event_id}/checkins",
        json={"payload": order["tickets"][0]["qr_payload"], "scanner": "gate-1"},
    )
    assert unauthenticated.status_code == 401


async def test_checkin_scope(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness)
    reader = await harness.organizer("Reader", scopes=("read",))
    # The scope is checked first: a read-only key gets 403 (of any organizer).
    refused = await harness.client.post(
        f"{API}/organizer/events/{event_id}/checkins",
        json={"payload": order["tickets"][0]["qr_payload"], "scanner": "gate-1"},
        headers=reader,
    )
    assert refused.status_code == 403, refused.text
    assert "checkin" in refused.json()["detail"]
    # A door key of the event's own organizer.
    async with harness.state.db.write() as conn:
        organizer_id = (await harness.ok("GET", f"{API}/organizer/me", headers=auth))["id"]
        created = await organizers.create_key(conn, organizer_id, ("checkin",), harness.clock.now(), "door")
    own_door = {"Authorization": f"Bearer {created.api_key}"}
    assert (await _scan(harness, own_door, event_id, order["tickets"][0]["qr_payload"]))["result"] == "valid"
    # It may not change other data.
    refund = await harness.client.post(f"{API}/organizer/orders/{order['id']}/refund", headers=own_door)
    assert refund.status_code == 403


async def test_twenty_gates_at_once_admit_exactly_once(harness: Harness) -> None:
    auth, event_id, order = await _sold(harness, 1)
    payload = order["tickets"][0]["qr_payload"]

    async def gate(n: int) -> dict[str, Any]:
        return await _scan(harness, auth, event_id, payload, f"gate-{n}")

    results = await asyncio.wait_for(asyncio.gather(*(gate(n) for n in range(20))), timeout=60)
    valid = [r for r in results if r["result"] == "valid"]
    used = [r for r in results if r["result"] == "already_used"]
    assert len(valid) == 1, results
    assert len(used) == 19, results
    winner = valid[0]["checked_in_by"]
    assert all(r["checked_in_by"] == winner and r["checked_in_at"] == valid[0]["checked_in_at"] for r in used)
    row = (
        await harness.rows("SELECT checked_in_by FROM tickets WHERE id = :t", t=order["tickets"][0]["id"])
    )[0]
    assert row.checked_in_by == winner
    await harness.settle()
    events = await _checked_in_events(harness, event_id)
    assert [e["scanner"] for e in events] == [winner]
    assert (await _summary(harness, auth, event_id))["checked_in"] == 1


async def test_request_bounds(harness: Harness) -> None:
    auth, event_id, _ = await _sold(harness, 1)
    url = f"{API}/organizer/events/{event_id}/checkins"
    for body in (
        {"payload": "x" * 201, "scanner": "gate"},
        {"payload": "", "scanner": "gate"},
        {"payload": "abc", "scanner": ""},
        {"payload": "abc", "scanner": "g" * 51},
        {"payload": "abc\x00", "scanner": "gate"},
        {"payload": "abc"},
    ):
        response = await harness.client.post(url, json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
