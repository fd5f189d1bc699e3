"""The hold fast path answers like the FastAPI route, and passes on every request it does not serve."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from admitone.inventory.allocation import DraftLine, HoldDraft, SeatInfo, TicketTypeInfo
from admitone.inventory.engine import hold_documents
from admitone.inventory.fastpath import HoldFastPath
from admitone.outbox.contracts import HoldPlaced, LineV1
from tests.harness import Harness

# FastAPI reads ``+json`` bodies as JSON too; the fast path serves only ``application/json``, so this
# content type sends the same request through the FastAPI route.
SLOW = {"Content-Type": "application/vnd.admitone+json"}


@dataclass
class PassedOn:
    """Counts the hold requests the fast path handed to the app behind it."""

    app: ASGIApp
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/holds"):
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def spy(h: Harness) -> PassedOn:
    layer: Any = getattr(h.app, "hold_fast_path", None)
    assert isinstance(layer, HoldFastPath), "the app serves holds without HoldFastPath"
    passed = PassedOn(layer.app)
    layer.app = passed
    return passed


async def post(h: Harness, event_id: int | str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return await h.client.post(f"/api/v1/events/{event_id}/holds", content=content, headers=headers)


def same_answer(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.headers.get("content-type") == slow.headers.get("content-type")
    assert fast.headers.get("idempotent-replayed") == slow.headers.get("idempotent-replayed")
    a, b = fast.json(), slow.json()
    if fast.status_code == 201:
        a.pop("id"), b.pop("id")
        a.pop("expires_at"), b.pop("expires_at")
    assert a == b


async def test_a_hold_is_served_by_the_fast_path_with_the_routes_answer(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=3, price=1250)
    passed = await spy(h)
    body = b'{"tickets":[{"ticket_type_id":%d,"quantity":1}]}' % ga.ticket_type_id

    fast = await post(h, ga.event_id, body, {"Content-Type": "application/json"})
    assert passed.paths == []
    assert fast.status_code == 201 and fast.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    out = fast.json()
    assert out["status"] == "active" and out["total_minor"] == 1250 and out["event_id"] == ga.event_id
    assert out["lines"] == [
        {
            "ticket_type_id": ga.ticket_type_id,
            "ticket_type": "Standing",
            "seat_id": None,
            "seat_label": None,
            "quantity": 1,
            "unit_price_minor": 1250,
        }
    ]
    assert (await h.ok("GET", f"/api/v1/holds/{out['id']}"))["status"] == "active"

    slow = await post(h, ga.event_id, body, SLOW)
    assert passed.paths == [f"/api/v1/events/{ga.event_id}/holds"]
    same_answer(fast, slow)

    # 409 sold out / not enough left: the same problem document from both.
    body2 = b'{"tickets":[{"ticket_type_id":%d,"quantity":2}]}' % ga.ticket_type_id
    fast = await post(h, ga.event_id, body2, {"Content-Type": "application/json"})
    slow = await post(h, ga.event_id, body2, SLOW)
    assert fast.status_code == 409 and fast.headers["content-type"] == "application/problem+json"
    assert fast.json()["type"].endswith("/quota-exceeded") and fast.json()["available"] == 1
    assert fast.json()["instance"] == f"/api/v1/events/{ga.event_id}/holds"
    same_answer(fast, slow)
    assert len(passed.paths) == 2

    # 404: an event that does not exist, answered by the engine in both cases.
    fast = await post(h, 999_999, body, {"Content-Type": "application/json"})
    slow = await post(h, 999_999, body, SLOW)
    assert fast.status_code == 404
    same_answer(fast, slow)
    assert len(passed.paths) == 3
    await h.check_invariants(ga.event_id)


async def test_idempotent_replay_and_reuse_match_the_route(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    passed = await spy(h)
    body = b'{"tickets":[{"ticket_type_id":%d,"quantity":2}]}' % ga.ticket_type_id
    fast_headers = {"Content-Type": "application/json", "Idempotency-Key": "k-1"}

    first = await post(h, ga.event_id, body, fast_headers)
    again = await post(h, ga.event_id, body, fast_headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    # The route sees the same key as the same request: the fingerprint is computed the same way.
    slow = await post(h, ga.event_id, body, {**SLOW, "Idempotency-Key": "k-1"})
    assert slow.status_code == 201 and slow.json() == first.json()
    assert slow.headers["idempotent-replayed"] == "true"
    assert await h.scalar("SELECT held FROM quotas WHERE id = :q", q=ga.quota_id) == 2

    other = b'{"tickets":[{"ticket_type_id":%d,"quantity":3}]}' % ga.ticket_type_id
    fast = await post(h, ga.event_id, other, fast_headers)
    slow = await post(h, ga.event_id, other, {**SLOW, "Idempotency-Key": "k-1"})
    assert fast.status_code == 422 and fast.json()["type"].endswith("/idempotency-key-reused")
    same_answer(fast, slow)
    assert len(passed.paths) == 2

    # A key the header pattern refuses goes to the route, which answers its validation error.
    bad = await post(h, ga.event_id, body, {"Content-Type": "application/json", "Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert len(passed.paths) == 3
    await h.check_invariants(ga.event_id)


async def test_invalid_requests_get_the_routes_errors(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    passed = await spy(h)
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[int | str, bytes, dict[str, str], int, str]] = [
        (ga.event_id, b"{}", json_type, 422, "validation-error"),
        (ga.event_id, b'{"tickets":[{"ticket_type_id":1,"quantity":0}]}', json_type, 422, "validation-error"),
        (ga.event_id, b'{"tickets": [}', json_type, 422, "validation-error"),
        (ga.event_id, b'{"seat_ids":[1],"extra":1}', json_type, 422, "validation-error"),
        ("0", b'{"seat_ids":[1]}', json_type, 422, "validation-error"),
        ("99999999999", b'{"seat_ids":[1]}', json_type, 422, "validation-error"),
        ("abc", b'{"seat_ids":[1]}', json_type, 422, "validation-error"),
        (ga.event_id, b'{"seat_ids":[1]}', {"Content-Type": "text/plain"}, 422, "validation-error"),
        (ga.event_id, b'{"seat_ids":[1]}' + b" " * 1_100_000, json_type, 413, "payload-too-large"),
    ]
    for event_id, content, headers, status, slug in cases:
        before = len(passed.paths)
        r = await post(h, event_id, content, headers)
        assert r.status_code == status, (event_id, content[:40], r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/" + slug), r.text
        assert len(passed.paths) == before + 1, (event_id, content[:40])
    detail = (await post(h, ga.event_id, b"{}", json_type)).json()
    assert detail["errors"][0]["loc"] == ["body"] and "tickets" in detail["errors"][0]["msg"]
    assert await h.scalar("SELECT count(*) FROM holds WHERE event_id = :e", e=ga.event_id) == 0


async def test_shutting_down_answers_503_from_both(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)
    body = b'{"tickets":[{"ticket_type_id":%d,"quantity":1}]}' % ga.ticket_type_id
    h.state.engine.closing = True
    try:
        fast = await post(h, ga.event_id, body, {"Content-Type": "application/json"})
        slow = await post(h, ga.event_id, body, SLOW)
    finally:
        h.state.engine.closing = False
    assert fast.status_code == 503 and fast.json()["type"].endswith("/unavailable")
    same_answer(fast, slow)


async def test_an_unexpected_failure_is_a_500_problem(harness: Harness, monkeypatch: Any) -> None:
    # The fast path runs ahead of the framework's error layers, so it renders their 500 itself.
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10)

    async def broken(*_: Any) -> bytes:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(h.state.engine, "hold", broken)
    body = b'{"tickets":[{"ticket_type_id":%d,"quantity":1}]}' % ga.ticket_type_id
    fast = await post(h, ga.event_id, body, {"Content-Type": "application/json"})
    assert fast.status_code == 500 and fast.headers["content-type"] == "application/problem+json"
    assert fast.json()["type"].endswith("/internal-error")
    assert fast.json()["instance"] == f"/api/v1/events/{ga.event_id}/holds"
    assert "RuntimeError" not in fast.text


def test_the_writers_documents_are_what_the_models_serialize() -> None:
    expires = dt.datetime(2031, 5, 4, 21, 7, 3, 120_004, tzinfo=dt.UTC)
    seated = TicketTypeInfo(7, "Parkett «Mitte» \u00e9\u2603", "seated", "A", 4_999, "EUR", 1, 10, (3,))
    standing = TicketTypeInfo(8, 'Stehplatz "\\n"\n', "admission", None, 0, "EUR", 1, 10, (4,))
    seat = SeatInfo(11, 2, "Main", "B", 2, 14, "Main B-14", "A")
    draft = HoldDraft(
        "hold_abc",
        5,
        [DraftLine(seated, seat, 1), DraftLine(standing, None, 3)],
        4_999,
        "EUR",
        expires,
        expires - dt.timedelta(minutes=10),
    )
    body, placed = hold_documents(draft, TypeAdapter(dt.datetime).dump_python(expires, mode="json"))
    assert body == draft.to_out().model_dump_json().encode()
    expected = HoldPlaced(
        event_id=5,
        hold_id="hold_abc",
        total_minor=4_999,
        currency="EUR",
        expires_at=expires,
        lines=[
            LineV1(ticket_type_id=7, seat_id=11, quantity=1, unit_price_minor=4_999),
            LineV1(ticket_type_id=8, seat_id=None, quantity=3, unit_price_minor=0),
        ],
    )
    assert placed == expected.model_dump(mode="json")
    assert list(placed) == list(expected.model_dump(mode="json"))


async def test_hold_placed_in_the_outbox_matches_its_contract(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=10, price=700)
    r = await post(
        h,
        ga.event_id,
        b'{"tickets":[{"ticket_type_id":%d,"quantity":2}]}' % ga.ticket_type_id,
        {"Content-Type": "application/json"},
    )
    assert r.status_code == 201
    rows = await h.rows(
        "SELECT type, version, payload FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=ga.event_id
    )
    assert [(t, v) for t, v, _ in rows] == [("hold.placed", 1), ("inventory.changed", 1)]
    payload = rows[0][2] if isinstance(rows[0][2], dict) else json.loads(rows[0][2])
    event = HoldPlaced.model_validate(payload)
    assert event.model_dump(mode="json") == payload
    hold = r.json()
    assert (event.hold_id, event.total_minor, event.expires_at.isoformat().replace("+00:00", "Z")) == (
        hold["id"],
        1400,
        hold["expires_at"],
    )
    assert [ln.model_dump() for ln in event.lines] == [
        {"ticket_type_id": ga.ticket_type_id, "seat_id": None, "quantity": 2, "unit_price_minor": 700}
    ]
