"""Error responses, authentication, authorisation and isolation between organizers, on each database.

Every error is RFC 9457 ``application/problem+json``; organizer endpoints need a valid key with the right
scope, and an organizer never sees (or touches) another organizer's venues, events, quotas or orders.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from admitone.core import security
from admitone.core.app import create_app
from admitone.core.errors import PROBLEM_BASE, PROBLEM_JSON
from admitone.orders.payments import SIGNATURE_HEADER, webhook_secret
from admitone.organizers import service as organizers
from tests.harness import Harness, small_venue

API = "/api/v1"
MIB = 1024 * 1024


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """Checks the response is a problem document with the given status, and returns it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith(PROBLEM_BASE)
    if slug is not None:
        assert problem["type"] == PROBLEM_BASE + slug
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


def event_body(slug: str, **extra: Any) -> dict[str, Any]:
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return {
        "name": "Spring Gala",
        "slug": slug,
        "starts_at": starts.isoformat(),
        "status": "on_sale",
        **extra,
    }


# --------------------------------------------------------------------------- 404, 405, 422


async def test_unknown_route_is_a_404_problem(harness: Harness) -> None:
    for path in ("/nope", f"{API}/nope", f"{API}/events/1/nope"):
        problem = assert_problem(await harness.client.get(path), 404, "not-found")
        assert problem["instance"] == path
        assert "/docs" in problem["detail"]


async def test_wrong_method_is_a_405_problem(harness: Harness) -> None:
    assert_problem(await harness.client.delete(f"{API}/events"), 405)


async def test_unknown_event_is_a_404_problem(harness: Harness) -> None:
    for path in (f"{API}/events/999999", f"{API}/events/999999/availability", f"{API}/events/999999/seats"):
        problem = assert_problem(await harness.client.get(path), 404, "not-found")
        assert "999999" in problem["detail"]
    hold = await harness.hold(999999, {"seat_ids": [1]})
    assert_problem(hold, 404, "not-found")


async def test_unknown_hold_and_order_are_404_problems(harness: Harness) -> None:
    assert_problem(await harness.client.get(f"{API}/holds/hold_missing"), 404, "not-found")
    assert_problem(await harness.client.delete(f"{API}/holds/hold_missing"), 404, "not-found")
    assert_problem(await harness.client.get(f"{API}/orders/ord_missing"), 404, "not-found")


async def test_invalid_body_is_a_422_problem_listing_every_error(harness: Harness) -> None:
    auth = await harness.organizer()
    response = await harness.client.post(
        f"{API}/organizer/events",
        headers=auth,
        json={"name": "", "slug": "Not A Slug", "starts_at": "tomorrow", "surprise": 1},
    )
    problem = assert_problem(response, 422, "validation-error")
    errors = problem["errors"]
    assert isinstance(errors, list)
    locations = {tuple(e["loc"]) for e in errors}
    assert {("body", "name"), ("body", "slug"), ("body", "starts_at"), ("body", "surprise")} <= locations
    assert all(isinstance(e["msg"], str) and e["msg"] for e in errors)
    assert all(isinstance(e["type"], str) and e["type"] for e in errors)
    # The first error is spelled out in the detail, with where it is.
    first = errors[0]
    assert problem["detail"].startswith(".".join(str(p) for p in first["loc"]))


async def test_invalid_path_and_query_are_422_problems(harness: Harness) -> None:
    for path in (f"{API}/events/abc", f"{API}/events/0", f"{API}/events/{2**31}", f"{API}/events?limit=0"):
        problem = assert_problem(await harness.client.get(path), 422, "validation-error")
        assert problem["errors"], path


async def test_malformed_json_is_a_client_error_problem(harness: Harness) -> None:
    auth = await harness.organizer()
    response = await harness.client.post(
        f"{API}/organizer/events",
        headers={**auth, "content-type": "application/json"},
        content=b'{"name": "unterminated',
    )
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


# --------------------------------------------------------------------------- 413


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


async def test_oversized_body_with_content_length_is_a_413_problem(harness: Harness) -> None:
    limit = harness.state.settings.max_body_bytes
    assert limit == MIB
    auth = await harness.organizer()
    too_big = await harness.client.post(
        f"{API}/organizer/venues",
        headers={**auth, "content-type": "application/json"},
        content=b"x" * (limit + 1),
    )
    assert too_big.request.headers["content-length"] == str(limit + 1)
    problem = assert_problem(too_big, 413, "payload-too-large")
    assert str(limit) in problem["detail"]
    # Exactly at the limit, the body reaches the app (and is refused there as bad JSON, not as too large).
    at_limit = await harness.client.post(
        f"{API}/organizer/venues", headers={**auth, "content-type": "application/json"}, content=b"x" * limit
    )
    assert at_limit.status_code in (400, 422)


async def test_oversized_chunked_body_without_length_is_a_413_problem(harness: Harness) -> None:
    limit = harness.state.settings.max_body_bytes
    auth = await harness.organizer()
    response = await harness.client.post(
        f"{API}/organizer/venues",
        headers={**auth, "content-type": "application/json"},
        content=_chunks(limit + 1),
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload-too-large")


async def test_chunked_body_within_limit_reaches_the_app_intact(harness: Harness) -> None:
    auth = await harness.organizer()
    payload = json.dumps(event_body("chunked-gala")).encode()

    async def two_chunks() -> AsyncIterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = await harness.client.post(
        f"{API}/organizer/events", headers={**auth, "content-type": "application/json"}, content=two_chunks()
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["slug"] == "chunked-gala"


async def test_body_limit_follows_the_setting(harness: Harness) -> None:
    settings = harness.state.settings.model_copy(update={"max_body_bytes": 2048})
    app = create_app(settings, harness.clock, self_transport=True)
    auth = await harness.organizer()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            padded = {**event_body("padded-gala"), "description": "d" * 3000}
            problem = assert_problem(
                await client.post(f"{API}/organizer/events", headers=auth, json=padded),
                413,
                "payload-too-large",
            )
            assert "2048" in problem["detail"]
            small = await client.post(f"{API}/organizer/events", headers=auth, json=event_body("small-gala"))
            assert small.status_code == 201, small.text
    # The default app still takes the padded event.
    await harness.ok("POST", f"{API}/organizer/events", 201, headers=auth, json=padded)


# --------------------------------------------------------------------------- 401, 403

ORGANIZER_CALLS = [
    ("GET", f"{API}/organizer/me", None),
    ("GET", f"{API}/organizer/events", None),
    ("GET", f"{API}/organizer/venues", None),
    ("POST", f"{API}/organizer/events", event_body("unauthorised")),
    ("POST", f"{API}/organizer/venues", small_venue(rows=1, per_row=2)),
    ("GET", f"{API}/organizer/orders/ord_x", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer adm_000000000000_wrong"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["no-key", "unknown-key", "malformed-key", "basic-auth", "empty-bearer"],
)
async def test_organizer_endpoints_need_a_valid_key(harness: Harness, headers: dict[str, str]) -> None:
    for method, path, body in ORGANIZER_CALLS:
        response = await harness.client.request(method, path, headers=headers, json=body)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
    assert await harness.scalar("SELECT count(*) FROM events") == 0
    assert await harness.scalar("SELECT count(*) FROM venues") == 0


async def test_a_key_of_another_shape_with_the_right_prefix_is_refused(harness: Harness) -> None:
    auth = await harness.organizer()
    key = auth["Authorization"].removeprefix("Bearer ")
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = await harness.client.get(
        f"{API}/organizer/me", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert_problem(response, 401, "unauthorized")
    assert (await harness.ok("GET", f"{API}/organizer/me", headers=auth))["scopes"] == ["read", "write"]


async def test_read_only_key_may_read_but_not_write(harness: Harness) -> None:
    writer = await harness.organizer("Acme")
    ga = await harness.ga_event(writer)
    org_id = (await harness.ok("GET", f"{API}/organizer/me", headers=writer))["id"]
    # A second key of the same organizer, allowed only to read.
    async with harness.state.db.write() as conn:
        key = await organizers.create_key(conn, org_id, ("read",), harness.clock.now(), name="reader")
    reader = {"Authorization": f"Bearer {key.api_key}"}

    me = await harness.ok("GET", f"{API}/organizer/me", headers=reader)
    assert me == {"id": org_id, "name": "Acme", "scopes": ["read"]}
    assert [e["id"] for e in await harness.ok("GET", f"{API}/organizer/events", headers=reader)] == [
        ga.event_id
    ]

    refused = [
        ("POST", f"{API}/organizer/events", event_body("read-only")),
        ("POST", f"{API}/organizer/venues", small_venue(rows=1, per_row=2)),
        ("PATCH", f"{API}/organizer/events/{ga.event_id}", {"name": "Renamed"}),
        ("POST", f"{API}/organizer/events/{ga.event_id}/quotas", {"name": "Extra", "capacity": 5}),
    ]
    for method, path, body in refused:
        response = await harness.client.request(method, path, headers=reader, json=body)
        problem = assert_problem(response, 403, "forbidden")
        assert "write" in problem["detail"]
    assert await harness.scalar("SELECT count(*) FROM events") == 1
    assert await harness.scalar("SELECT name FROM events WHERE id = :e", e=ga.event_id) == "Test Event"


async def test_read_only_organizer_cannot_create_an_event(harness: Harness) -> None:
    reader = await harness.organizer(scopes=("read",))
    response = await harness.client.post(f"{API}/organizer/events", headers=reader, json=event_body("nope"))
    assert_problem(response, 403, "forbidden")
    assert response.headers.get("www-authenticate") is None
    assert await harness.scalar("SELECT count(*) FROM events") == 0


# --------------------------------------------------------------------------- isolation


async def test_organizers_cannot_see_or_touch_each_others_data(harness: Harness) -> None:
    h = harness
    a = await h.organizer("A")
    b = await h.organizer("B")
    seated = await h.seated_event(a, small_venue(rows=2, per_row=4))
    ga = await h.ga_event(a, capacity=10)
    hold = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    assert hold.status_code == 201, hold.text
    order = await h.ok(
        "POST",
        f"{API}/orders",
        201,
        json={"hold_id": hold.json()["id"], "buyer_name": "Ada", "buyer_email": "ada@example.com"},
    )
    b_event = await h.ga_event(b, capacity=5)

    not_found = [
        ("GET", f"/organizer/venues/{seated.venue_id}", None),
        ("GET", f"/organizer/venues/{seated.venue_id}/seats", None),
        ("GET", f"/organizer/events/{ga.event_id}", None),
        ("GET", f"/organizer/events/{seated.event_id}", None),
        ("PATCH", f"/organizer/events/{ga.event_id}", {"status": "cancelled"}),
        ("GET", f"/organizer/events/{ga.event_id}/quotas", None),
        ("POST", f"/organizer/events/{ga.event_id}/quotas", {"name": "Sneaky", "capacity": 1000}),
        (
            "POST",
            f"/organizer/events/{ga.event_id}/ticket-types",
            {"name": "Sneaky", "price_minor": 0, "quota_ids": [ga.quota_id]},
        ),
        ("GET", f"/organizer/events/{ga.event_id}/orders", None),
        ("GET", f"/organizer/orders/{order['id']}", None),
        ("POST", f"/organizer/orders/{order['id']}/cancel", None),
        ("POST", f"/organizer/orders/{order['id']}/refund", None),
        ("POST", "/organizer/events", event_body("on-a-venue-of-a", venue_id=seated.venue_id)),
    ]
    for method, path, body in not_found:
        response = await h.client.request(method, f"{API}{path}", headers=b, json=body)
        assert_problem(response, 404, "not-found")

    # Nor may B borrow A's quota for a ticket type of B's own event.
    borrowed = await h.client.post(
        f"{API}/organizer/events/{b_event.event_id}/ticket-types",
        headers=b,
        json={"name": "Borrowed", "price_minor": 0, "quota_ids": [ga.quota_id]},
    )
    assert 400 <= borrowed.status_code < 500, borrowed.text
    assert_problem(borrowed, borrowed.status_code)

    # B's lists hold only B's things.
    b_events = await h.ok("GET", f"{API}/organizer/events", headers=b)
    assert [e["id"] for e in b_events] == [b_event.event_id]
    assert await h.ok("GET", f"{API}/organizer/venues", headers=b) == []

    # A's data is unchanged and A still sees all of it.
    a_events = {e["id"] for e in await h.ok("GET", f"{API}/organizer/events", headers=a)}
    assert a_events == {seated.event_id, ga.event_id}
    assert (await h.ok("GET", f"{API}/organizer/events/{ga.event_id}", headers=a))["status"] == "on_sale"
    quotas = await h.ok("GET", f"{API}/organizer/events/{ga.event_id}/quotas", headers=a)
    assert [(q["name"], q["capacity"], q["held"]) for q in quotas] == [("Floor", 10, 1)]
    assert (await h.ok("GET", f"{API}/organizer/orders/{order['id']}", headers=a))[
        "status"
    ] == "pending_payment"
    assert [
        o["id"] for o in await h.ok("GET", f"{API}/organizer/events/{ga.event_id}/orders", headers=a)
    ] == [order["id"]]
    assert await h.scalar("SELECT count(*) FROM ticket_types WHERE name IN ('Sneaky', 'Borrowed')") == 0


async def test_buyers_cannot_see_draft_events(harness: Harness) -> None:
    h = harness
    auth = await h.organizer()
    published = await h.event(auth)
    draft = await h.event(auth, status="draft")

    assert_problem(await h.client.get(f"{API}/events/{draft}"), 404, "not-found")
    assert_problem(await h.client.get(f"{API}/events/{draft}/availability"), 404, "not-found")
    assert [e["id"] for e in await h.ok("GET", f"{API}/events")] == [published]
    assert (await h.ok("GET", f"{API}/events/{published}"))["status"] == "on_sale"
    # The organizer sees the draft, and a draft sells nothing.
    assert (await h.ok("GET", f"{API}/organizer/events/{draft}", headers=auth))["status"] == "draft"
    assert {e["id"] for e in await h.ok("GET", f"{API}/organizer/events", headers=auth)} == {published, draft}
    quota = await h.ok(
        "POST",
        f"{API}/organizer/events/{draft}/quotas",
        201,
        headers=auth,
        json={"name": "Floor", "capacity": 5},
    )
    tt = await h.ok(
        "POST",
        f"{API}/organizer/events/{draft}/ticket-types",
        201,
        headers=auth,
        json={"name": "Standing", "price_minor": 100, "quota_ids": [quota["id"]]},
    )
    hold = await h.hold(draft, {"tickets": [{"ticket_type_id": tt["id"], "quantity": 1}]})
    assert_problem(hold, 409, "conflict")

    # Once published, buyers see it.
    await h.ok("PATCH", f"{API}/organizer/events/{draft}", headers=auth, json={"status": "on_sale"})
    assert (await h.ok("GET", f"{API}/events/{draft}"))["id"] == draft
    assert {e["id"] for e in await h.ok("GET", f"{API}/events")} == {published, draft}


# --------------------------------------------------------------------------- 409


async def test_taken_seats_are_named_in_the_409(harness: Harness) -> None:
    h = harness
    auth = await h.organizer()
    ev = await h.seated_event(auth, small_venue(rows=2, per_row=5))
    first = await h.hold(ev.event_id, {"seat_ids": ev.seat_ids[1:3]})
    assert first.status_code == 201, first.text
    taken_labels = [line["seat_label"] for line in first.json()["lines"]]
    assert taken_labels == ["Main A-2", "Main A-3"]

    clash = await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[0], ev.seat_ids[2], ev.seat_ids[1]]})
    problem = assert_problem(clash, 409, "seats-taken")
    assert sorted(problem["seats"]) == ["Main A-2", "Main A-3"]
    assert sorted(problem["seat_ids"]) == sorted(ev.seat_ids[1:3])
    for label in taken_labels:
        assert label in problem["detail"]
    assert "Main A-1" not in problem["detail"]

    one = assert_problem(await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[2]]}), 409, "seats-taken")
    assert one["seats"] == ["Main A-3"]
    assert "Seat Main A-3 is already taken" in one["detail"]

    # All or nothing: the free seat asked for alongside the taken ones was not held.
    states = {s["id"]: s["state"] for s in (await h.ok("GET", f"{API}/events/{ev.event_id}/seats"))["seats"]}
    assert states[ev.seat_ids[0]] == "free"
    await h.check_invariants(ev.event_id)


# --------------------------------------------------------------------------- idempotency


async def test_idempotency_key_replays_the_same_request_and_refuses_another(harness: Harness) -> None:
    h = harness
    auth = await h.organizer()
    body = event_body("idempotent-gala")
    headers = {**auth, "Idempotency-Key": "create-gala-1"}

    first = await h.client.post(f"{API}/organizer/events", headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    again = await h.client.post(f"{API}/organizer/events", headers=headers, json=body)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()

    other = await h.client.post(
        f"{API}/organizer/events",
        headers=headers,
        json={**body, "name": "Another Gala", "slug": "another-gala"},
    )
    problem = assert_problem(other, 422)
    assert problem["type"].endswith("idempotency-key-reused")
    assert "create-gala-1" in problem["detail"]

    assert await h.scalar("SELECT count(*) FROM events") == 1
    assert await h.scalar("SELECT count(*) FROM events WHERE slug = 'another-gala'") == 0

    # The same key from another organizer is another request altogether.
    other_org = await h.organizer("Other")
    theirs = await h.client.post(
        f"{API}/organizer/events",
        headers={**other_org, "Idempotency-Key": "create-gala-1"},
        json={**body, "slug": "their-gala"},
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    assert await h.scalar("SELECT count(*) FROM events") == 2


async def test_idempotency_key_must_be_printable(harness: Harness) -> None:
    auth = await harness.organizer()
    response = await harness.client.post(
        f"{API}/organizer/events", headers={**auth, "Idempotency-Key": "has space"}, json=event_body("spaced")
    )
    problem = assert_problem(response, 422, "validation-error")
    assert any("Idempotency-Key" in str(e["loc"]) for e in problem["errors"])
    assert await harness.scalar("SELECT count(*) FROM events") == 0


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "change",
    [
        {"sales_open_at": "0001-01-01T00:00:00+01:00"},
        {"sales_close_at": "9999-12-31T23:59:59-01:00"},
        {"sales_open_at": "1969-12-31T23:59:59Z"},
        {"name": "nul\u0000byte"},
        {"description": "nul\u0000byte"},
        {"status": "sold"},
    ],
    ids=["year-1", "year-9999", "before-1970", "nul-name", "nul-description", "unknown-status"],
)
async def test_out_of_range_event_changes_are_422_problems(harness: Harness, change: dict[str, Any]) -> None:
    auth = await harness.organizer()
    ga = await harness.ga_event(auth)
    response = await harness.client.patch(f"{API}/organizer/events/{ga.event_id}", headers=auth, json=change)
    assert_problem(response, 422, "validation-error")
    event = await harness.ok("GET", f"{API}/organizer/events/{ga.event_id}", headers=auth)
    assert event["sales_open_at"] is None
    assert event["name"] == "Test Event"


async def _raw_get(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, str], bytes]:
    """A request straight through ASGI, with header bytes no HTTP client library would send."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    start = messages[0]
    head = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in messages[1:])


@pytest.mark.parametrize(
    "key",
    [
        b"adm_\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00_x",
        b"adm_\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9_x",
    ],
    ids=["nul-bytes", "latin-1"],
)
async def test_keys_with_odd_bytes_are_refused_not_crashed_on(harness: Harness, key: bytes) -> None:
    status, headers, body = await _raw_get(
        harness.app, f"{API}/organizer/me", [(b"authorization", b"Bearer " + key)]
    )
    assert status == 401, body
    assert headers["content-type"].startswith(PROBLEM_JSON)
    assert headers["www-authenticate"] == "Bearer"


async def test_signed_webhook_with_unstorable_payment_id_is_a_client_error(harness: Harness) -> None:
    secret = webhook_secret(harness.state.secret_key)
    for payment_id in ("pay_\x00", "p" * 41, "pay_missing"):
        raw = json.dumps(
            {
                "id": "evt_1",
                "type": "payment.succeeded",
                "payment_id": payment_id,
                "amount_minor": 1,
                "currency": "EUR",
            }
        ).encode()
        response = await harness.client.post(
            f"{API}/payments/test/webhook",
            content=raw,
            headers={
                SIGNATURE_HEADER: security.signature_header(secret, raw),
                "content-type": "application/json",
            },
        )
        assert 400 <= response.status_code < 500, (payment_id, response.status_code, response.text)
        assert_problem(response, response.status_code)
    unsigned = await harness.client.post(f"{API}/payments/test/webhook", content=raw)
    assert_problem(unsigned, 401, "unauthorized")
