"""The stream relay's hot path: fast envelopes equal the validated ones, the lane's batches come in order,
and a batch the publisher refuses leaves the lane where it was (its new position is written while the
broker acknowledges, and rolled back)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from admitone.outbox.contracts import Envelope
from admitone.outbox.models import outbox
from admitone.outbox.relay import (
    PENDING_COLUMNS,
    STREAM_LANE,
    OutboxRelay,
    envelope_of,
    pending_envelopes,
)
from tests.harness import Harness


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.batches: list[list[Envelope]] = []

    async def publish(self, envelopes: list[Envelope]) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.batches.append(list(envelopes))


async def _activity(harness: Harness, holds: int = 5) -> int:
    # The app's own stream relay, stopped, leaves the lane to the test.
    await harness.state.stream_relay.stop()
    auth = await harness.organizer()
    ga = await harness.ga_event(auth)
    for _ in range(holds):
        r = await harness.hold(
            ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
        )
        assert r.status_code == 201, r.text
    return ga.event_id


async def _unstreamed(harness: Harness) -> int:
    return await harness.backlog("stream")


async def test_pending_envelopes_equal_envelope_of(harness: Harness) -> None:
    await _activity(harness)
    async with harness.state.db.read() as conn:
        full = list((await conn.execute(sa.select(outbox).order_by(outbox.c.id))).all())
        lean = list((await conn.execute(sa.select(*PENDING_COLUMNS).order_by(outbox.c.id))).all())
    assert len(full) == len(lean) >= 10
    fast = pending_envelopes(lean)
    for row, env in zip(full, fast, strict=True):
        reference = envelope_of(row)
        assert env == reference
        assert env.model_dump() == reference.model_dump()
        assert env.model_dump_json() == reference.model_dump_json()
        assert isinstance(env.payload, dict) and env.payload["event_id"] == row.aggregate_id
        # A validated copy is equal too: the fast path builds nothing the model would refuse.
        assert Envelope.model_validate(env.model_dump()) == env


async def test_stream_relay_publishes_in_order_in_batches_and_moves_its_position(harness: Harness) -> None:
    event_id = await _activity(harness, holds=7)
    total = await _unstreamed(harness)
    assert total >= 14
    recorder = Recorder()
    relay = OutboxRelay(
        harness.state.db,
        recorder,
        batch=4,
        lane=STREAM_LANE,
        name="test-stream",
    )
    await relay.drain()
    assert all(len(b) <= 4 for b in recorder.batches)
    sent = [e for b in recorder.batches for e in b]
    assert len(sent) == total == relay.published
    ids = [int(r[0]) for r in await harness.rows("SELECT id FROM outbox ORDER BY id")]
    uuids = {str(r[0]): int(r[1]) for r in await harness.rows("SELECT event_uuid, id FROM outbox")}
    assert [uuids[e.id] for e in sent] == ids  # id order across batches
    seqs = [e.sequence for e in sent if e.aggregate_id == event_id]
    assert seqs == list(range(1, len(seqs) + 1))
    assert await _unstreamed(harness) == 0


async def test_refused_batch_leaves_the_position_and_goes_later(harness: Harness) -> None:
    await _activity(harness, holds=3)
    total = await _unstreamed(harness)
    assert total > 0
    failing = OutboxRelay(
        harness.state.db,
        Recorder(fail=True),
        batch=100,
        lane=STREAM_LANE,
        name="test-stream",
    )
    for _ in range(3):
        try:
            await failing.run_once()
        except ConnectionError:
            pass
        else:
            raise AssertionError("publish failure was swallowed")
    assert await _unstreamed(harness) == total  # the concurrent position write was rolled back
    assert failing.published == 0
    # The database connection is still usable after the failed batches.
    recorder = Recorder()
    relay = OutboxRelay(
        harness.state.db,
        recorder,
        batch=100,
        lane=STREAM_LANE,
        name="test-stream",
    )
    assert await relay.run_once() == total
    assert await _unstreamed(harness) == 0
    assert len({e.id for e in recorder.batches[0]}) == total


async def test_relays_wake_only_for_commits_that_add_domain_events(harness: Harness) -> None:
    # A relay marking its batch commits too; if that woke the relays, the two lanes would wake each
    # other for ever and an idle server would spin at a full core.
    h = harness
    auth = await h.organizer()
    ga = await h.ga_event(auth)
    await h.state.relay.drain()
    await h.state.stream_relay.drain()
    woken: list[int] = []
    h.state.db.commit_listeners.append(lambda: woken.append(1))
    runs = {"live": 0, "stream": 0}
    live_once, stream_once = h.state.relay.run_once, h.state.stream_relay.run_once

    async def live() -> int | None:
        runs["live"] += 1
        return await live_once()

    async def stream() -> int | None:
        runs["stream"] += 1
        return await stream_once()

    h.state.relay.run_once = live  # type: ignore[method-assign]
    h.state.stream_relay.run_once = stream  # type: ignore[method-assign]

    async with h.state.db.write() as conn:  # a write without domain events
        await conn.execute(sa.text("SELECT 1"))
    assert woken == []
    r = await h.hold(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
    assert r.status_code == 201
    assert woken == [1]  # the hold's batch, and not the relays' own position commits after it

    async def waiting() -> int:
        return await h.backlog("live") + await h.backlog("stream")

    for _ in range(100):
        if await waiting() == 0:
            break
        await asyncio.sleep(0.02)
    assert await waiting() == 0
    settled = dict(runs)
    await asyncio.sleep(0.5)  # idle: below the relays' 1 s idle timer, nothing may run
    assert runs == settled, (settled, runs)
    assert woken == [1]
