"""A relay lane's progress is one position per event: batches take several events' rows in id order,
each event's rows in sequence order and from where its lane stands; the read goes by sequence range, not
through the rows already done; a position never moves back; batches leave no garbage cycles."""

from __future__ import annotations

import gc
import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from admitone.outbox.contracts import Envelope
from admitone.outbox.relay import (
    STREAM_LANE,
    OutboxRelay,
    ranges_statement,
    record_positions,
    rows_statement,
    shares,
    waiting_statement,
)
from tests.harness import Harness

# Ten relay batches left 616 objects in reference cycles with the position upsert built per batch (on
# both databases), and none with it built once.
FOUND_LIMIT = 100


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Envelope]] = []

    async def publish(self, envelopes: list[Envelope]) -> None:
        self.batches.append(list(envelopes))


async def _positions(h: Harness, lane: str) -> dict[int, int]:
    rows = await h.rows("SELECT aggregate_id, sequence FROM outbox_lanes WHERE lane = :lane", lane=lane)
    return {int(r[0]): int(r[1]) for r in rows}


async def _interleaved_holds(h: Harness, events: int, rounds: int) -> list[int]:
    auth = await h.organizer()
    gas = [await h.ga_event(auth) for _ in range(events)]
    for _ in range(rounds):
        for ga in gas:
            body = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
            r = await h.hold(ga.event_id, body)
            assert r.status_code == 201, r.text
    return [ga.event_id for ga in gas]


async def test_events_take_turns_in_batches_in_sequence_order_from_their_position(
    harness: Harness,
) -> None:
    await harness.state.stream_relay.stop()  # the lane is left to the test
    event_ids = await _interleaved_holds(harness, events=3, rounds=4)
    heads = {
        int(r[0]): int(r[1])
        for r in await harness.rows("SELECT event_id, last_seq FROM event_streams WHERE last_seq > 0")
    }
    assert set(heads) == set(event_ids) and all(n >= 8 for n in heads.values())
    assert await harness.backlog("stream") == sum(heads.values())
    recorder = Recorder()
    relay = OutboxRelay(harness.state.db, recorder, batch=5, lane=STREAM_LANE, name="test-stream")

    # Never served, the events come in id order; a batch fills up with the next event's rows.
    a, b, c = sorted(event_ids)
    assert await relay.run_once() == 5
    assert [(e.aggregate_id, e.sequence) for e in recorder.batches[0]] == [(a, s) for s in range(1, 6)]
    assert await _positions(harness, STREAM_LANE) == {a: 5}
    assert await harness.backlog("stream") == sum(heads.values()) - 5
    assert await relay.run_once() == 5
    assert {e.aggregate_id for e in recorder.batches[1]} == {b}
    assert await relay.run_once() == 5
    assert {e.aggregate_id for e in recorder.batches[2]} == {c}
    assert await _positions(harness, STREAM_LANE) == {a: 5, b: 5, c: 5}
    # Then the event served least recently first, from where its lane stands, and the next one.
    assert await relay.run_once() == 5
    fourth = [(e.aggregate_id, e.sequence) for e in recorder.batches[3]]
    rest = 5 - (heads[a] - 5)
    assert [x for x in fourth if x[0] == a] == [(a, s) for s in range(6, heads[a] + 1)]
    assert [x for x in fourth if x[0] != a] == [(b, s) for s in range(6, 6 + rest)]
    # Within a batch the rows are in id order (commit order).
    ids = {str(r[0]): int(r[1]) for r in await harness.rows("SELECT event_uuid, id FROM outbox")}
    for batch in recorder.batches:
        assert [ids[e.id] for e in batch] == sorted(ids[e.id] for e in batch)

    await relay.drain()
    sent = [e for b in recorder.batches for e in b]
    assert len(sent) == sum(heads.values()) == relay.published
    assert len({e.id for e in sent}) == len(sent)  # nothing twice
    for event_id in event_ids:
        assert [e.sequence for e in sent if e.aggregate_id == event_id] == list(range(1, heads[event_id] + 1))
    assert await _positions(harness, STREAM_LANE) == heads
    assert await harness.backlog("stream") == 0
    assert await relay.run_once() == 0

    # New rows of one event: the next batch starts right after that event's position.
    await _interleaved_holds(harness, events=1, rounds=1)
    assert await relay.run_once() == 2  # hold.placed and inventory.changed
    assert {e.sequence for e in recorder.batches[-1]} == {1, 2}


async def test_a_position_never_moves_back(harness: Harness) -> None:
    db = harness.state.db
    event_id = (await _interleaved_holds(harness, events=1, rounds=1))[0]
    async with db.write() as conn:
        await record_positions(conn, db.dialect, STREAM_LANE, {event_id: 2})
        await record_positions(conn, db.dialect, STREAM_LANE, {event_id: 1})  # a late, older batch
    assert (await _positions(harness, STREAM_LANE))[event_id] == 2


async def test_the_lane_reads_by_sequence_range_not_through_the_rows_done(harness: Harness) -> None:
    """An event with many rows done and two waiting: the plan reads the outbox only through the
    (aggregate, sequence) index, never walking it in id order nor scanning it, and the relay gets exactly
    the two rows after the position."""
    await harness.state.stream_relay.stop()
    db = harness.state.db
    event_id = (await _interleaved_holds(harness, events=1, rounds=1))[0]  # sequences 1 and 2
    top = 20_002  # rows 3..top are added; the lane stands at top - 2
    series = (
        "FROM generate_series(3, :top) AS g(n)"
        if db.dialect == "postgresql"
        else "FROM (WITH RECURSIVE g(n) AS (SELECT 3 UNION ALL SELECT n + 1 FROM g WHERE n < :top)"
        " SELECT n FROM g)"
    )
    async with db.write() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO outbox (event_uuid, type, version, aggregate_type, aggregate_id, sequence,"
                " occurred_at, payload) SELECT 'bulk-' || n, 'hold.placed', 1, 'event', :e, n,"
                f" CURRENT_TIMESTAMP, '{{}}' {series}"
            ),
            {"e": event_id, "top": top},
        )
        await conn.execute(
            sa.text("UPDATE event_streams SET last_seq = :top WHERE event_id = :e"),
            {"e": event_id, "top": top},
        )
        await record_positions(conn, db.dialect, STREAM_LANE, {event_id: top - 2})
        if db.dialect == "postgresql":
            await conn.execute(sa.text("ANALYZE outbox"))
    assert await harness.backlog("stream") == 2

    async with db.read() as conn:
        waiting = (await conn.execute(waiting_statement(), {"lane": STREAM_LANE, "events": 100})).all()
        assert [tuple(r) for r in waiting] == [(event_id, top - 2, 2)]
        taken = shares(waiting, 1000)
        assert taken == [(event_id, top - 2, 2)]
        if db.dialect == "postgresql":
            compiled = rows_statement().compile(dialect=db.write_engine.dialect)
            values = {"agg_ids": [event_id], "dones": [top - 2], "takes": [2], **compiled.params}
            params = tuple(values[name] for name in compiled.positiontup or ())
            raw = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}", params)).scalar()
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            scans = [
                f"{n['Node Type']} {n.get('Index Name')}"
                for n in _nodes(plan)
                if n.get("Relation Name") == "outbox"
            ]
            assert scans and all(s.endswith("uq_outbox_stream_position") for s in scans), scans
        else:
            dialect = db.write_engine.dialect
            for ranges in (taken, [*taken, (event_id + 1, 0, 5)]):  # one event, and the compound form
                sql = ranges_statement(ranges).compile(
                    dialect=dialect, compile_kwargs={"literal_binds": True}
                )
                rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
                scans = [str(r[-1]) for r in rows if " outbox " in f" {r[-1]} "]
                # uq_outbox_stream_position, which SQLite names sqlite_autoindex_outbox_N
                by_range = "(aggregate_type=? AND aggregate_id=? AND sequence>? AND sequence<?)"
                assert scans and all(s.startswith("SEARCH outbox USING INDEX") for s in scans), scans
                assert all(s.endswith(by_range) for s in scans), scans

    recorder = Recorder()
    relay = OutboxRelay(db, recorder, batch=1000, lane=STREAM_LANE, name="test-stream")
    assert await relay.run_once() == 2
    assert [e.sequence for e in recorder.batches[0]] == [top - 1, top]
    assert (await _positions(harness, STREAM_LANE))[event_id] == top


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


async def test_relay_batches_leave_no_garbage_cycles_behind(harness: Harness) -> None:
    """The relays' statements are built once: a batch leaves (nearly) nothing in reference cycles for the
    garbage collector, whose pauses every request in flight would wait for."""
    await harness.state.stream_relay.stop()
    await _interleaved_holds(harness, events=2, rounds=12)
    relay = OutboxRelay(harness.state.db, Recorder(), batch=4, lane=STREAM_LANE, name="test-stream")
    assert await relay.run_once() == 4  # statements built and compiled on first use
    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            assert await relay.run_once() == 4
        found = gc.collect()
    finally:
        gc.enable()
    assert found < FOUND_LIMIT, f"{found} objects in reference cycles after 10 relay batches"


async def test_rows_deleted_from_the_outbox_are_reported_and_passed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Sequences are gap-free; a row deleted by hand can never come, so the lane says so and moves on
    rather than stopping the event's stream for good."""
    await harness.state.stream_relay.stop()
    event_id = (await _interleaved_holds(harness, events=1, rounds=2))[0]  # sequences 1..4
    async with harness.state.db.write() as conn:
        await conn.execute(
            sa.text("DELETE FROM outbox WHERE aggregate_id = :e AND sequence = 2"), {"e": event_id}
        )
    recorder = Recorder()
    relay = OutboxRelay(harness.state.db, recorder, batch=100, lane=STREAM_LANE, name="test-stream")
    with caplog.at_level(logging.ERROR, logger="admitone.outbox.relay"):
        assert await relay.run_once() == 3
    assert [e.sequence for e in recorder.batches[0]] == [1, 3, 4]
    assert f"event {event_id} sequence 2" in caplog.text and "moves past them" in caplog.text
    assert (await _positions(harness, STREAM_LANE))[event_id] == 4
    assert await harness.backlog("stream") == 0
