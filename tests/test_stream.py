"""The event stream: durable consumers get every event once, in order per ticketing event, on both buses
(the embedded in-process bus and a real Kafka-protocol broker), and resume after a restart."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.settings import Settings
from admitone.outbox.consumers import ConsumerRunner, position
from admitone.outbox.contracts import Envelope
from admitone.outbox.kafka import decode, encode
from tests.conftest import running
from tests.harness import Harness


class Recorder:
    """A durable consumer that remembers what it applied (after commit: only what really counts)."""

    def __init__(self, name: str = "test-recorder", fail_on: str | None = None) -> None:
        self.name = name
        self.handled: list[Envelope] = []
        self.committed: list[Envelope] = []
        self.fail_on = fail_on

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        if self.fail_on is not None and envelope.id == self.fail_on:
            self.fail_on = None
            raise RuntimeError("the consumer failed once")
        self.handled.append(envelope)

    def after_commit(self, applied: Sequence[Envelope]) -> None:
        self.committed.extend(applied)

    def sequences(self, event_id: int) -> list[int]:
        return [e.sequence for e in self.committed if e.aggregate_id == event_id]


def envelope(event_id: int, sequence: int) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="hold.released",
        version=1,
        aggregate_type="event",
        aggregate_id=event_id,
        sequence=sequence,
        occurred_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        payload={"event_id": event_id, "hold_id": f"h{sequence}"},
    )


async def outbox_sequences(h: Harness, event_id: int) -> list[int]:
    rows = await h.rows("SELECT sequence FROM outbox WHERE aggregate_id = :e ORDER BY sequence", e=event_id)
    return [int(r[0]) for r in rows]


async def sell_some(h: Harness, auth: dict[str, str], n: int) -> list[int]:
    """Two GA events, ``n`` orders each, interleaved; returns the event ids."""
    first = await h.ga_event(auth)
    second = await h.ga_event(auth)
    for i in range(n):
        for ev in (first, second):
            await h.sell(
                ev.event_id, {"tickets": [{"ticket_type_id": ev.ticket_type_id, "quantity": 1 + i % 2}]}
            )
    return [first.event_id, second.event_id]


def test_envelope_round_trip() -> None:
    env = envelope(7, 3)
    value = orjson.loads(encode(env))
    assert list(value) == list(Envelope.model_fields)
    assert dt.datetime.fromisoformat(value.pop("occurred_at")) == env.occurred_at
    assert value == env.model_dump(mode="json", exclude={"occurred_at"})
    back = decode(encode(env))
    assert back == env
    assert back.occurred_at.tzinfo is not None


async def test_runner_applies_a_batch_once(harness: Harness) -> None:
    """The same batch twice applies once; positions are kept per aggregate."""
    recorder = Recorder()
    runner = ConsumerRunner(harness.state.db, recorder)
    batch = [envelope(1, 1), envelope(2, 1), envelope(1, 2), envelope(2, 2), envelope(1, 3)]
    applied = await runner.apply(batch)
    assert [(e.aggregate_id, e.sequence) for e in applied] == [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3)]
    assert await runner.apply(batch) == []
    assert runner.applied == 5
    assert runner.skipped == 5
    assert await position(harness.state.db, recorder.name, "event", 1) == 3
    assert await position(harness.state.db, recorder.name, "event", 2) == 2
    # An overlapping batch applies only what is new.
    more = await runner.apply([envelope(1, 3), envelope(1, 4), envelope(2, 2)])
    assert [(e.aggregate_id, e.sequence) for e in more] == [(1, 4)]
    assert recorder.sequences(1) == [1, 2, 3, 4]
    assert recorder.sequences(2) == [1, 2]


async def test_runner_rolls_back_a_failed_batch(harness: Harness) -> None:
    """A consumer failing mid-batch stores neither effects nor positions; the batch applies when retried."""
    batch = [envelope(5, 1), envelope(5, 2), envelope(5, 3)]
    recorder = Recorder(fail_on=batch[1].id)
    runner = ConsumerRunner(harness.state.db, recorder)
    with pytest.raises(RuntimeError):
        await runner.apply(batch)
    assert await position(harness.state.db, recorder.name, "event", 5) == 0
    assert recorder.committed == []
    assert [e.sequence for e in await runner.apply(batch)] == [1, 2, 3]
    assert await position(harness.state.db, recorder.name, "event", 5) == 3


async def test_events_arrive_in_order_once(stream_settings: Settings) -> None:
    """Every event of every ticketing event reaches the consumer once, in sequence order."""
    recorder = Recorder()
    async with running(stream_settings, consumers=[recorder]) as h:
        auth = await h.organizer()
        events = await sell_some(h, auth, 4)
        await h.settle()
        for event_id in events:
            expected = await outbox_sequences(h, event_id)
            assert len(expected) >= 4 * 4  # hold, order, payment, tickets, inventory for each sale
            assert recorder.sequences(event_id) == expected
            assert await position(h.state.db, recorder.name, "event", event_id) == expected[-1]
        types = {e.type for e in recorder.committed}
        assert {"hold.placed", "order.placed", "order.paid", "ticket.issued"} <= types
        ids = [e.id for e in recorder.committed]
        assert len(ids) == len(set(ids))
        unstreamed = await h.backlog("stream")
        assert unstreamed == 0


async def test_consumers_resume_after_restart(stream_settings: Settings) -> None:
    """After a restart a consumer continues from its stored position (Kafka: its group's committed offsets)
    and applies nothing twice."""
    recorder = Recorder()
    async with running(stream_settings, consumers=[recorder]) as h:
        auth = await h.organizer()
        ga = await h.ga_event(auth)
        for _ in range(3):
            await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]})
        await h.settle()
        before = await outbox_sequences(h, ga.event_id)
        assert recorder.sequences(ga.event_id) == before
    received_first = len(recorder.handled)

    again = Recorder()  # same name: same stored identity
    async with running(stream_settings, consumers=[again]) as h:
        await h.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]})
        await h.settle()
        after = await outbox_sequences(h, ga.event_id)
        assert len(after) > len(before)
        assert again.sequences(ga.event_id) == after[len(before) :]
        assert await position(h.state.db, again.name, "event", ga.event_id) == after[-1]
        if h.state.kafka_loops:
            # Committed offsets: the second consumer group member did not even read the old records.
            assert h.state.kafka_loops[0].received == len(after) - len(before)
    assert received_first == len(before)


async def test_kafka_records_are_keyed_by_event(stream_settings: Settings) -> None:
    """With Kafka: one topic, records keyed by the ticketing event id, headers with type and version."""
    if not stream_settings.kafka_bootstrap_servers:
        pytest.skip("Kafka only")
    from aiokafka import AIOKafkaConsumer

    async with running(stream_settings) as h:
        auth = await h.organizer()
        events = await sell_some(h, auth, 2)
        await h.settle()
        expected = {e: await outbox_sequences(h, e) for e in events}
    consumer = AIOKafkaConsumer(
        stream_settings.kafka_topic,
        bootstrap_servers=stream_settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: dict[int, list[int]] = {}
        partitions: dict[int, set[int]] = {}
        total = sum(len(v) for v in expected.values())
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=250)
            for tp, records in batch.items():
                for record in records:
                    env = decode(record.value)
                    assert record.key == str(env.aggregate_id).encode()
                    headers = dict(record.headers)
                    assert headers["type"] == env.type.encode()
                    assert headers["version"] == str(env.version).encode()
                    seen.setdefault(env.aggregate_id, []).append(env.sequence)
                    partitions.setdefault(env.aggregate_id, set()).add(tp.partition)
            if sum(len(v) for v in seen.values()) >= total:
                break
    finally:
        await consumer.stop()
    assert seen == expected
    assert all(len(p) == 1 for p in partitions.values()), partitions
