"""The event chat: joining, posting, history, limits, moderation, plain-text safety and the live path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from admitone.live.hub import Subscriber
from tests.harness import Harness

API = "/api/v1"


async def join(h: Harness, event_id: int, name: str) -> dict[str, Any]:
    return await h.ok("POST", f"{API}/events/{event_id}/chat/join", 201, json={"name": name})


async def post(h: Harness, event_id: int, token: str, text: str, **headers: str) -> httpx.Response:
    return await h.client.post(
        f"{API}/events/{event_id}/chat/messages",
        json={"text": text},
        headers={"X-Chat-Token": token, **headers},
    )


async def history(h: Harness, event_id: int, **params: Any) -> dict[str, Any]:
    return await h.ok("GET", f"{API}/events/{event_id}/chat/messages", params=params)


def organizer_url(event_id: int, rest: str) -> str:
    return f"{API}/organizer/events/{event_id}/{rest}"


async def test_join_post_and_read_history_in_pages(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    ada = await join(h, event_id, "  Ada  ")
    assert ada["name"] == "Ada" and ada["user_id"] >= 1 and ada["chat_token"].startswith("chat_")
    # Names are unique per event regardless of case and width; other events have their own names.
    for taken in ("ada", "ADA", "\uff21\uff44\uff41"):
        r = await h.client.post(f"{API}/events/{event_id}/chat/join", json={"name": taken})
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    other_event = await h.event(org)
    await join(h, other_event, "Ada")
    # The token is stored hashed only.
    stored = await h.scalar("SELECT token_hash FROM chat_users WHERE id = :u", u=ada["user_id"])
    assert stored != ada["chat_token"] and len(stored) == 64

    posted = []
    for i in range(5):
        r = await post(h, event_id, ada["chat_token"], f"message {i}")
        assert r.status_code == 201, r.text
        posted.append(r.json())
        h.clock.advance(3)
    first = posted[0]
    assert set(first) == {"id", "event_id", "channel", "author", "text", "posted_at"}
    assert first["channel"] == "chat" and first["author"] == "Ada" and first["event_id"] == event_id

    page = await history(h, event_id, limit=2)
    assert [m["text"] for m in page["items"]] == ["message 3", "message 4"]  # newest last
    assert page["next_before_id"] == posted[3]["id"]
    page = await history(h, event_id, limit=2, before_id=page["next_before_id"])
    assert [m["text"] for m in page["items"]] == ["message 1", "message 2"]
    page = await history(h, event_id, limit=2, before_id=page["next_before_id"])
    assert [m["text"] for m in page["items"]] == ["message 0"] and page["next_before_id"] is None
    everything = await history(h, event_id)
    assert everything["items"] == posted and everything["next_before_id"] is None
    assert (await history(h, event_id, channel="announcements"))["items"] == []
    assert (await history(h, other_event))["items"] == []

    # Drafts and unknown events have no chat.
    draft = await h.event(org, status="draft")
    for event in (draft, 999_999):
        assert (
            await h.client.post(f"{API}/events/{event}/chat/join", json={"name": "Bo"})
        ).status_code == 404
        assert (await h.client.get(f"{API}/events/{event}/chat/messages")).status_code == 404
        assert (await post(h, event, ada["chat_token"], "hi")).status_code == 404


async def test_join_and_history_input_is_bounded(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    for name in ("", "   ", "x" * 41, "a\x00b", "tab\there", "zero\u200bwidth", "new\nline", 5, None):
        r = await h.client.post(f"{API}/events/{event_id}/chat/join", json={"name": name})
        assert r.status_code == 422, (name, r.text)
    assert (
        await h.client.post(f"{API}/events/{event_id}/chat/join", json={"name": "x" * 40})
    ).status_code == 201
    base = f"{API}/events/{event_id}/chat/messages"
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"before_id": 0},
        {"before_id": 2**63},
        {"channel": "secret"},
    ):
        assert (await h.client.get(base, params=params)).status_code == 422, params
    assert (await h.client.get(f"{API}/events/{2**40}/chat/messages")).status_code == 422


async def test_bad_or_missing_token_is_refused(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    other = await h.event(org)
    token = (await join(h, other, "Ada"))["chat_token"]
    missing = await h.client.post(f"{API}/events/{event_id}/chat/messages", json={"text": "hi"})
    assert missing.status_code == 401 and "X-Chat-Token" in missing.json()["detail"]
    for bad in ("nope", "chat_" + "x" * 500, token):  # the last one belongs to another event's chat
        r = await post(h, event_id, bad, "hi")
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await h.scalar("SELECT count(*) FROM chat_messages") == 0


async def test_rate_limit_answers_429_with_retry_after(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    ada = (await join(h, event_id, "Ada"))["chat_token"]
    bo = (await join(h, event_id, "Bo"))["chat_token"]
    for i in range(5):
        assert (await post(h, event_id, ada, f"m{i}")).status_code == 201
        h.clock.advance(1)
    # Five in the last ten seconds: the sixth waits until the first leaves the window.
    r = await post(h, event_id, ada, "one too many")
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["Retry-After"] == "5" and r.json()["retry_after"] == 5
    assert "too fast" in r.json()["detail"] and "5 messages per 10 seconds" in r.json()["detail"]
    # The limit is per person.
    assert (await post(h, event_id, bo, "I can still talk")).status_code == 201
    h.clock.advance(4)
    assert (await post(h, event_id, ada, "still too early")).status_code == 429
    h.clock.advance(1)
    assert (await post(h, event_id, ada, "back")).status_code == 201
    assert await h.scalar("SELECT count(*) FROM chat_messages WHERE author = 'Ada'") == 6


async def test_concurrent_posts_cannot_beat_the_limit(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    token = (await join(h, event_id, "Ada"))["chat_token"]
    answers = await asyncio.gather(*(post(h, event_id, token, f"burst {i}") for i in range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [429] * 7, codes
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


async def test_idempotency_key_replays_a_message(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    token = (await join(h, event_id, "Ada"))["chat_token"]
    await h.ok("PATCH", organizer_url(event_id, "chat"), json={"slow_mode_seconds": 60}, headers=org)
    key = {"Idempotency-Key": "msg-1"}
    first = await post(h, event_id, token, "once", **key)
    again = await post(h, event_id, token, "once", **key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (await post(h, event_id, token, "twice")).status_code == 429  # slow mode, not the replay
    assert await h.scalar("SELECT count(*) FROM chat_messages") == 1


async def test_slow_mode(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    token = (await join(h, event_id, "Ada"))["chat_token"]
    url = organizer_url(event_id, "chat")
    settings = await h.ok("PATCH", url, json={"slow_mode_seconds": 30}, headers=org)
    assert settings == {"slow_mode_seconds": 30, "closed": False}
    for bad in (
        {"slow_mode_seconds": 3601},
        {"slow_mode_seconds": -1},
        {"slow_mode_seconds": 2**70},
        {"x": 1},
    ):
        assert (await h.client.patch(url, json=bad, headers=org)).status_code == 422, bad
    assert (await post(h, event_id, token, "first")).status_code == 201
    h.clock.advance(10)
    r = await post(h, event_id, token, "second")
    assert r.status_code == 429 and r.headers["Retry-After"] == "20"
    assert "slow mode" in r.json()["detail"]
    h.clock.advance(20)
    assert (await post(h, event_id, token, "second")).status_code == 201
    # Fields left out stay as they are; 0 turns slow mode off.
    assert await h.ok("PATCH", url, json={}, headers=org) == {"slow_mode_seconds": 30, "closed": False}
    assert await h.ok("PATCH", url, json={"slow_mode_seconds": 0}, headers=org) == {
        "slow_mode_seconds": 0,
        "closed": False,
    }
    assert (await post(h, event_id, token, "third")).status_code == 201


async def test_muted_and_banned_people_cannot_post(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    ada = await join(h, event_id, "Ada")
    bo = await join(h, event_id, "Bo")
    mute_url = organizer_url(event_id, f"chat/users/{ada['user_id']}/mute")
    for bad in ({"minutes": 0}, {"minutes": 10081}, {"minutes": 2**64}, {}):
        assert (await h.client.post(mute_url, json=bad, headers=org)).status_code == 422, bad
    muted = await h.ok("POST", mute_url, json={"minutes": 5}, headers=org)
    assert muted["user_id"] == ada["user_id"] and muted["muted_until"] and muted["banned"] is False
    r = await post(h, event_id, ada["chat_token"], "hello?")
    assert r.status_code == 403 and "muted" in r.json()["detail"]
    assert r.json()["muted_until"] in r.json()["detail"]
    assert (await post(h, event_id, bo["chat_token"], "hello")).status_code == 201
    h.clock.advance(5 * 60 + 1)
    assert (await post(h, event_id, ada["chat_token"], "I'm back")).status_code == 201

    banned = await h.ok("POST", organizer_url(event_id, f"chat/users/{bo['user_id']}/ban"), headers=org)
    assert banned["banned"] is True
    r = await post(h, event_id, bo["chat_token"], "hello")
    assert r.status_code == 403 and "banned" in r.json()["detail"]
    h.clock.advance(10 * 24 * 3600)
    assert (await post(h, event_id, bo["chat_token"], "hello")).status_code == 403
    # Unknown people, and people of another event's chat, are not found.
    other = await h.event(org)
    stranger = await join(h, other, "Cy")
    for user_id in (999_999, stranger["user_id"]):
        url = organizer_url(event_id, f"chat/users/{user_id}/ban")
        assert (await h.client.post(url, headers=org)).status_code == 404


async def test_closed_chat_refuses_messages_but_not_announcements(harness: Harness) -> None:
    h = harness
    org = await h.organizer("Venue Co")
    event_id = await h.event(org)
    token = (await join(h, event_id, "Ada"))["chat_token"]
    url = organizer_url(event_id, "chat")
    assert await h.ok("PATCH", url, json={"closed": True}, headers=org) == {
        "slow_mode_seconds": 0,
        "closed": True,
    }
    r = await post(h, event_id, token, "anyone?")
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    note = await h.ok(
        "POST", organizer_url(event_id, "announcements"), 201, json={"text": "Doors at 19:00"}, headers=org
    )
    assert note["channel"] == "announcements" and note["author"] == "Venue Co"
    assert (await history(h, event_id, channel="announcements"))["items"] == [note]
    assert (await history(h, event_id))["items"] == []
    await h.ok("PATCH", url, json={"closed": False}, headers=org)
    assert (await post(h, event_id, token, "anyone?")).status_code == 201


async def test_markup_is_stored_and_returned_as_plain_text(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    token = (await join(h, event_id, "<b>Mallory</b>"))["chat_token"]
    attempts = [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(document.cookie)">',
        "</textarea><svg onload=alert(1)>",
        "a & b < c > d \"quoted\" 'single'",
        "line one\nline two",
        "'; DROP TABLE chat_messages; --",
    ]
    for text in attempts:
        r = await post(h, event_id, token, text)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json()["text"] == text and r.json()["author"] == "<b>Mallory</b>"
        h.clock.advance(10)
    listed = await h.client.get(f"{API}/events/{event_id}/chat/messages")
    assert listed.headers["content-type"] == "application/json"
    assert [m["text"] for m in listed.json()["items"]] == attempts
    assert "&lt;" not in listed.text  # not HTML-escaped either: the text is data, not markup

    # Trimmed; control characters other than the line break refused; bounded length.
    r = await post(h, event_id, token, "  \n padded \n  ")
    assert r.status_code == 201 and r.json()["text"] == "padded"
    h.clock.advance(10)
    for bad in (
        "",
        "   ",
        "\n\n",
        "nul\x00byte",
        "bell\x07",
        "carriage\rreturn",
        "esc\x1b[31m",
        "\x85",
        "x" * 501,
    ):
        r = await post(h, event_id, token, bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await post(h, event_id, token, "é€ 👩‍👩‍👧 " + "x" * 490)).status_code == 201
    for body in ({"text": None}, {"text": 5}, {"text": "hi", "html": True}, {}):
        r = await h.client.post(
            f"{API}/events/{event_id}/chat/messages", json=body, headers={"X-Chat-Token": token}
        )
        assert r.status_code == 422, body


async def test_moderation_of_another_organizers_event_is_not_found(harness: Harness) -> None:
    h = harness
    owner = await h.organizer("Owner")
    intruder = await h.organizer("Intruder")
    reader = await h.organizer("Reader", scopes=("read",))
    event_id = await h.event(owner)
    ada = await join(h, event_id, "Ada")
    message = (await post(h, event_id, ada["chat_token"], "hello")).json()
    calls = [
        ("POST", organizer_url(event_id, "announcements"), {"text": "Free drinks"}),
        ("DELETE", organizer_url(event_id, f"chat/messages/{message['id']}"), None),
        ("POST", organizer_url(event_id, f"chat/users/{ada['user_id']}/mute"), {"minutes": 60}),
        ("POST", organizer_url(event_id, f"chat/users/{ada['user_id']}/ban"), None),
        ("PATCH", organizer_url(event_id, "chat"), {"closed": True}),
    ]
    for method, url, body in calls:
        r = await h.client.request(method, url, json=body, headers=intruder)
        assert r.status_code == 404, (method, url, r.text)
        r = await h.client.request(method, url, json=body, headers=reader)
        assert r.status_code == 403, (method, url, r.text)
        r = await h.client.request(method, url, json=body)
        assert r.status_code == 401, (method, url, r.text)
    assert (await history(h, event_id))["items"] == [message]
    assert (await history(h, event_id, channel="announcements"))["items"] == []
    assert (await post(h, event_id, ada["chat_token"], "still here")).status_code == 201
    # The owner may; deleting twice is harmless; unknown messages are not found.
    url = organizer_url(event_id, f"chat/messages/{message['id']}")
    assert await h.ok("DELETE", url, headers=owner) == {"deleted": message["id"]}
    assert await h.ok("DELETE", url, headers=owner) == {"deleted": message["id"]}
    missing = organizer_url(event_id, "chat/messages/999999")
    assert (await h.client.delete(missing, headers=owner)).status_code == 404
    assert [m["text"] for m in (await history(h, event_id))["items"]] == ["still here"]


async def live_updates(h: Harness, sub: Subscriber, event_id: int) -> list[dict[str, Any]]:
    """Publishes what is committed, flushes the event's live changes and returns the queued messages."""
    await h.state.relay.drain()
    h.state.hub.channels[event_id].flush()
    messages = []
    while not sub.queue.empty():
        item = sub.queue.get_nowait()
        assert item is not None
        messages.append(json.loads(item[1]))
    return messages


def chat_events(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all(m["type"] == "changes" for m in messages)
    return [e for m in messages for e in m.get("events", [])]


async def test_live_chat_through_the_hub(harness: Harness) -> None:
    h = harness
    org = await h.organizer("Venue Co")
    event_id = await h.event(org)
    ada = await join(h, event_id, "Ada")
    early = (await post(h, event_id, ada["chat_token"], "before anyone watched")).json()
    await h.state.relay.drain()

    sub, first = await h.state.hub.subscribe(event_id)
    snapshot = json.loads(first[0][1])
    assert snapshot["type"] == "snapshot"
    assert snapshot["chat"] == [early]
    assert snapshot["announcements"] == []
    assert snapshot["chat_settings"] == {"slow_mode_seconds": 0, "closed": False}

    message = (await post(h, event_id, ada["chat_token"], "<script>alert(1)</script>")).json()
    note = await h.ok(
        "POST", organizer_url(event_id, "announcements"), 201, json={"text": "Doors at 19:00"}, headers=org
    )
    events = chat_events(await live_updates(h, sub, event_id))
    assert events == [
        {"kind": "chat.message", "message": message},
        {"kind": "chat.message", "message": note},
    ]

    await h.ok("DELETE", organizer_url(event_id, f"chat/messages/{message['id']}"), headers=org)
    await h.ok("PATCH", organizer_url(event_id, "chat"), json={"slow_mode_seconds": 15}, headers=org)
    await h.ok(
        "POST", organizer_url(event_id, f"chat/users/{ada['user_id']}/mute"), json={"minutes": 1}, headers=org
    )
    events = chat_events(await live_updates(h, sub, event_id))
    assert events == [
        {"kind": "chat.deleted", "message_id": message["id"]},
        {"kind": "chat.settings", "settings": {"slow_mode_seconds": 15, "closed": False}},
    ]

    # A new subscriber starts from the hub's current view: the deleted message is gone.
    later, first = await h.state.hub.subscribe(event_id)
    snapshot = json.loads(first[0][1])
    assert snapshot["chat"] == [early]
    assert snapshot["announcements"] == [note]
    assert snapshot["chat_settings"] == {"slow_mode_seconds": 15, "closed": False}
    # ... and so does a fresh load from the database.
    h.state.hub.unsubscribe(sub)
    h.state.hub.unsubscribe(later)
    del h.state.hub.channels[event_id]
    fresh, first = await h.state.hub.subscribe(event_id)
    reloaded = json.loads(first[0][1])
    assert {k: reloaded[k] for k in ("chat", "announcements", "chat_settings", "seq")} == {
        k: snapshot[k] for k in ("chat", "announcements", "chat_settings", "seq")
    }
    h.state.hub.unsubscribe(fresh)

    rows = await h.rows(
        "SELECT sequence, type FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=event_id
    )
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[1] for r in rows] == [
        "chat.user_joined",
        "chat.message_posted",
        "chat.message_posted",
        "chat.message_posted",
        "chat.message_deleted",
        "chat.settings_changed",
        "chat.user_muted",
    ]
    assert await h.scalar("SELECT last_seq FROM event_streams WHERE event_id = :e", e=event_id) == len(rows)
    assert await h.backlog("live") == 0


async def test_live_view_keeps_the_latest_messages(harness: Harness) -> None:
    h = harness
    org = await h.organizer()
    event_id = await h.event(org)
    sub, _ = await h.state.hub.subscribe(event_id)
    for i in range(12):
        await h.ok(
            "POST", organizer_url(event_id, "announcements"), 201, json={"text": f"note {i}"}, headers=org
        )
    people = [await join(h, event_id, f"fan {i}") for i in range(11)]
    for i in range(55):
        assert (await post(h, event_id, people[i % 11]["chat_token"], f"chat {i}")).status_code == 201
    events = chat_events(await live_updates(h, sub, event_id))
    assert len(events) == 12 + 55
    live = json.loads(h.state.hub.channels[event_id].snapshot_message()[1])
    assert [m["text"] for m in live["announcements"]] == [f"note {i}" for i in range(2, 12)]
    assert [m["text"] for m in live["chat"]] == [f"chat {i}" for i in range(5, 55)]
    h.state.hub.unsubscribe(sub)
    del h.state.hub.channels[event_id]
    fresh, first = await h.state.hub.subscribe(event_id)
    reloaded = json.loads(first[0][1])
    assert reloaded["chat"] == live["chat"] and reloaded["announcements"] == live["announcements"]
    h.state.hub.unsubscribe(fresh)
