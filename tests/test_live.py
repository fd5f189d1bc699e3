"""Live updates: snapshot, coalesced changes with sequence numbers, resume, slow clients, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from admitone.core.clock import ManualClock
from admitone.core.settings import Settings
from admitone.live.hub import CLOSE_TOO_SLOW, Subscriber
from tests.harness import Harness, small_venue


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Harness]:
    """The app with a coalescing window long enough that only the test decides when changes go out."""
    from admitone.core.app import create_app

    slow = settings.model_copy(update={"live_coalesce_ms": 10_000, "live_queue_size": 8})
    clock = ManualClock()
    app = create_app(slow, clock, self_transport=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield Harness(app=app, client=client, clock=clock, state=app.state.admitone)


def parse(item: tuple[int, str] | None) -> dict[str, Any]:
    assert item is not None
    message: dict[str, Any] = orjson.loads(item[1])
    assert message["seq"] == item[0]
    return message


async def publish(h: Harness, event_id: int) -> None:
    """Everything committed so far reaches the hub, and the event's changes go out."""
    await h.state.relay.drain()
    h.state.hub.channels[event_id].flush()


async def test_snapshot_then_changes_with_sequence(live: Harness) -> None:
    h = live
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=2, per_row=10))
    taken = await h.hold(ev.event_id, {"seat_ids": ev.seat_ids[:2]})
    assert taken.status_code == 201
    await h.state.relay.drain()

    sub, first = await h.state.hub.subscribe(ev.event_id)
    snap = parse(first[0])
    assert snap["type"] == "snapshot"
    assert snap["seats"] == {str(ev.seat_ids[0]): "held", str(ev.seat_ids[1]): "held"}
    assert snap["seq"] == await h.scalar(
        "SELECT last_seq FROM event_streams WHERE event_id = :e", e=ev.event_id
    )
    assert {t["ticket_type_id"]: t["available"] for t in snap["ticket_types"]} == {
        ev.ticket_type_ids["A"]: 8,
        ev.ticket_type_ids["B"]: 10,
    }

    r = await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[15]]})
    await publish(h, ev.event_id)
    change = parse(sub.queue.get_nowait())
    assert change["type"] == "changes" and change["from_seq"] == snap["seq"] + 1
    assert change["seats"] == {str(ev.seat_ids[15]): "held"}
    assert change["seq"] > snap["seq"]

    await h.ok("DELETE", f"/api/v1/holds/{r.json()['id']}")
    await publish(h, ev.event_id)
    released = parse(sub.queue.get_nowait())
    assert released["from_seq"] == change["seq"] + 1
    assert released["seats"] == {str(ev.seat_ids[15]): "free"}
    assert {t["ticket_type_id"]: t["available"] for t in released["ticket_types"]}[
        ev.ticket_type_ids["B"]
    ] == 10
    h.state.hub.unsubscribe(sub)


async def test_many_changes_in_one_window_are_one_message(live: Harness) -> None:
    h = live
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=2, per_row=20))
    ga = await h.ga_event(org, capacity=100)
    subs: list[Subscriber] = []
    for _ in range(50):
        sub, _first = await h.state.hub.subscribe(ev.event_id)
        subs.append(sub)
    await asyncio.gather(*(h.hold(ev.event_id, {"seat_ids": [s]}) for s in ev.seat_ids[:25]))
    await asyncio.gather(
        *(
            h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
            for _ in range(5)
        )
    )
    sent_before = h.state.hub.messages
    await publish(h, ev.event_id)
    assert h.state.hub.messages == sent_before + 1  # one message for 25 holds
    messages = [sub.queue.get_nowait() for sub in subs]
    assert all(sub.queue.empty() for sub in subs)
    assert len({id(m[1]) for m in messages if m}) == 1, "serialized once, the same text for every subscriber"
    change = parse(messages[0])
    assert sorted(int(s) for s in change["seats"]) == sorted(ev.seat_ids[:25])
    assert set(change["seats"].values()) == {"held"}


async def test_resume_from_last_seq_or_fresh_snapshot(live: Harness) -> None:
    h = live
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=1, per_row=10))
    sub, first = await h.state.hub.subscribe(ev.event_id)
    snap_seq = parse(first[0])["seq"]
    seen = []
    for seat in ev.seat_ids[:3]:
        await h.hold(ev.event_id, {"seat_ids": [seat]})
        await publish(h, ev.event_id)
        seen.append(parse(sub.queue.get_nowait()))
    h.state.hub.unsubscribe(sub)

    # A client that saw the first change reconnects: it gets exactly the two it missed.
    again, missed = await h.state.hub.subscribe(ev.event_id, last_seq=seen[0]["seq"])
    assert [parse(m)["seq"] for m in missed] == [seen[1]["seq"], seen[2]["seq"]]
    h.state.hub.unsubscribe(again)
    up_to_date, nothing = await h.state.hub.subscribe(ev.event_id, last_seq=seen[2]["seq"])
    assert nothing == []
    h.state.hub.unsubscribe(up_to_date)
    # Too old (before the history) or from the future: a fresh snapshot instead.
    for last in (snap_seq - 1, seen[2]["seq"] + 100):
        fresh, first_again = await h.state.hub.subscribe(ev.event_id, last_seq=last)
        message = parse(first_again[0])
        assert message["type"] == "snapshot" and len(message["seats"]) == 3
        h.state.hub.unsubscribe(fresh)


async def test_slow_subscriber_is_dropped_with_close_code(live: Harness) -> None:
    h = live
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=2, per_row=10))
    slow, _ = await h.state.hub.subscribe(ev.event_id)
    fast, _ = await h.state.hub.subscribe(ev.event_id)
    for seat in ev.seat_ids[:12]:  # the queue holds 8 messages
        await h.hold(ev.event_id, {"seat_ids": [seat]})
        await publish(h, ev.event_id)
        assert fast.queue.get_nowait() is not None
    assert slow.close_code == CLOSE_TOO_SLOW
    assert slow not in h.state.hub.channels[ev.event_id].subscribers
    assert fast in h.state.hub.channels[ev.event_id].subscribers
    drained = []
    while not slow.queue.empty():
        drained.append(slow.queue.get_nowait())
    assert drained[-1] is None  # the sender learns it must close
    assert h.state.hub.dropped == 1


async def test_live_unknown_or_draft_event(live: Harness) -> None:
    h = live
    org = await h.organizer()
    draft = await h.event(org, status="draft")
    for event_id in (draft, 999_999):
        with pytest.raises(LookupError):
            await h.state.hub.subscribe(event_id)
    r = await h.client.get("/api/v1/events/999999/live/sse")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_own_commits_reach_the_hub_before_the_relay_reads_them(live: Harness) -> None:
    """A commit of this process is applied to its hub at once; rows it cannot apply in order (a gap: rows
    of another process not delivered yet) wait for the relay, without a reload."""
    h = live
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=1, per_row=10))
    sub, first = await h.state.hub.subscribe(ev.event_id)
    start = parse(first[0])["seq"]
    channel = h.state.hub.channels[ev.event_id]
    await h.state.relay.stop()  # from here on only the commit hands rows to the hub
    try:
        assert (await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[0]]})).status_code == 201
        channel.flush()
        change = parse(sub.queue.get_nowait())
        assert change["from_seq"] == start + 1 and change["seats"] == {str(ev.seat_ids[0]): "held"}
        applied = channel.seq
        assert applied == await h.scalar(
            "SELECT last_seq FROM event_streams WHERE event_id = :e", e=ev.event_id
        )

        # A commit whose rows this hub is not given stands for a write of another process.
        h.state.db.outbox_listeners.remove(h.state.hub.committed)
        assert (await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[1]]})).status_code == 201
        h.state.db.outbox_listeners.append(h.state.hub.committed)
        assert (await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[2]]})).status_code == 201
        assert channel.seq == applied and channel.ready.is_set()  # not applied past the gap, not reloading
        channel.flush()
        assert sub.queue.empty()
    finally:
        h.state.relay.start()
    await h.state.relay.drain()
    channel.flush()
    caught_up = parse(sub.queue.get_nowait())
    assert caught_up["type"] == "changes" and caught_up["from_seq"] == applied + 1
    assert caught_up["seats"] == {str(ev.seat_ids[1]): "held", str(ev.seat_ids[2]): "held"}
    assert channel.seq == await h.scalar(
        "SELECT last_seq FROM event_streams WHERE event_id = :e", e=ev.event_id
    )
