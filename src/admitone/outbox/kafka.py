"""The Kafka bus of the event stream: the stream relay's publisher and one consumer loop per durable consumer.

Every domain event goes to one topic (``ADMITONE_KAFKA_TOPIC``), keyed by its aggregate (the ticketing
event id): one event's stream stays in one partition, in sequence order. The value is the
:class:`~admitone.outbox.contracts.Envelope` as JSON; the headers carry ``type`` and ``version`` so a
consumer can route without parsing the value.

:class:`KafkaPublisher` is what the stream relay (the ``stream`` lane) publishes with: ``publish`` returns
only when the broker acknowledged every record (``acks="all"``) and raises otherwise, so the relay keeps the
rows and tries again. A broker outage therefore only delays the stream: the outbox grows, the API keeps
selling, and the backlog drains in order when the broker is back.

:class:`KafkaConsumerLoop` feeds one :class:`~admitone.outbox.consumers.ConsumerRunner` from its own consumer
group (``<prefix>.<consumer name>``). It commits Kafka offsets only after the runner's transaction committed;
a crash in between hands the records over again and the runner skips what it already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from pydantic import ValidationError

from admitone.outbox.consumers import ConsumerRunner
from admitone.outbox.contracts import Envelope

log = logging.getLogger(__name__)

# Records of one publish() are batched per partition up to this many bytes (one produce request each).
MAX_BATCH_BYTES = 1_048_576
STOP_GRACE_SECONDS = 10.0  # how long stop() lets a consumer loop finish its batch before cancelling it


def encode(envelope: Envelope) -> bytes:
    """The record value: the envelope as JSON (times as RFC 3339)."""
    # A model's __dict__ holds exactly its fields, in declaration order (a test compares it to model_dump).
    return orjson.dumps(envelope.__dict__)


def decode(value: bytes) -> Envelope:
    return Envelope.model_validate_json(value)


def key_of(aggregate_id: int) -> bytes:
    """The record key: the aggregate id as ASCII digits (one event's stream, one partition)."""
    return str(aggregate_id).encode()


def headers_of(envelope: Envelope) -> list[tuple[str, bytes]]:
    return [("type", envelope.type.encode()), ("version", str(envelope.version).encode())]


async def ensure_topic(bootstrap_servers: str, topic: str, partitions: int, timeout_ms: int = 10_000) -> None:
    """Creates the topic with ``partitions`` partitions unless it exists (its partitions are left alone)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        try:
            response = await admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=timeout_ms)
        except TopicAlreadyExistsError:
            return
        for _name, code, *_rest in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating Kafka topic {topic} failed with error code {code}")
        log.info("created Kafka topic %s with %d partitions", topic, partitions)
    finally:
        await admin.close()


class KafkaPublisher:
    """Writes envelopes to the topic and returns once the broker acknowledged all of them.

    ``start`` connects and creates the topic; when the broker is not reachable then, ``publish`` tries again
    (and raises while it still is not), so an app starts without its broker and catches up later.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        partitions: int = 12,
        *,
        request_timeout_ms: int = 10_000,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._topic_ready = False
        self._lock = asyncio.Lock()
        self.published = 0

    async def start(self) -> None:
        """Connects to the broker and creates the topic if missing; raises if the broker is unreachable."""
        async with self._lock:
            await self._connect()

    async def _connect(self) -> AIOKafkaProducer:
        if not self._topic_ready:
            await ensure_topic(self.bootstrap_servers, self.topic, self.partitions, self.request_timeout_ms)
            self._topic_ready = True
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                acks="all",
                linger_ms=2,
                max_batch_size=MAX_BATCH_BYTES,
                max_request_size=4 * MAX_BATCH_BYTES,
                request_timeout_ms=self.request_timeout_ms,
                client_id="admitone-relay",
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Sends every envelope, then waits for all acknowledgements; raises if any was not acknowledged.

        The records are packed into one batch per partition (several when one is full) and all batches are
        sent before the first acknowledgement is awaited: a backlog drains at tens of thousands of events
        per second instead of paying one produce round trip, and one future, per record.
        """
        if not envelopes:
            return
        async with self._lock:
            producer = await self._connect()
            topic = self.topic
            partitions = sorted(await producer.partitions_for(topic))
            count = len(partitions)
            routes: dict[int, tuple[bytes, int]] = {}
            open_batches: dict[int, Any] = {}
            pending: list[asyncio.Future[Any]] = []
            last_sent: dict[int, asyncio.Future[Any]] = {}
            try:
                for env in envelopes:
                    route = routes.get(env.aggregate_id)
                    if route is None:
                        key = key_of(env.aggregate_id)
                        # The Java client's default partitioner (murmur2 of the key): every client agrees.
                        route = routes[env.aggregate_id] = (
                            key,
                            partitions[(murmur2(key) & 0x7FFFFFFF) % count],
                        )
                    key, partition = route
                    value = encode(env)
                    headers = headers_of(env)
                    batch = open_batches.get(partition)
                    if batch is None:
                        batch = open_batches[partition] = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        # Full: send it and start the next one. A partition's next batch is sent only once
                        # the previous one is acknowledged, so a failed batch is never overtaken by a later
                        # one (the relay publishes it all again, and consumers never see a gap).
                        if partition in last_sent:
                            await last_sent[partition]
                        last_sent[partition] = await producer.send_batch(batch, topic, partition=partition)
                        pending.append(last_sent[partition])
                        batch = open_batches[partition] = producer.create_batch()
                        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                            raise ValueError(f"event {env.id} is larger than a Kafka batch")
                for partition, batch in open_batches.items():
                    if partition in last_sent:
                        await last_sent[partition]
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
            finally:
                # Every batch sent must be acknowledged (or fail) before this returns or raises.
                results = await asyncio.gather(*pending, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            self.published += len(envelopes)

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class KafkaConsumerLoop:
    """Runs one durable consumer from its own consumer group, in batches, until stopped.

    Survives broker outages: any failure closes the Kafka consumer, waits (exponential backoff with jitter,
    at most ``max_backoff`` seconds) and starts again from the group's committed offsets.
    """

    def __init__(
        self,
        runner: ConsumerRunner,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        *,
        max_records: int = 1000,
        poll_ms: int = 500,
        max_backoff: float = 5.0,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.runner = runner
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group_id = group_id
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.max_backoff = max_backoff
        self.session_timeout_ms = session_timeout_ms
        self.received = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_requested = asyncio.Event()

    @property
    def name(self) -> str:
        return self.runner.name

    def start(self) -> None:
        self._stopping = False
        self._stop_requested.clear()
        self._task = asyncio.create_task(self._loop(), name=f"kafka-consumer-{self.name}")

    async def stop(self) -> None:
        """Stops after the batch in flight, so that the offsets of every batch applied are committed (a
        cancellation between the runner's commit and the offset commit would make the next member read
        that batch again; harmless, it is skipped, but wasted). Cancels if that takes longer than
        ``STOP_GRACE_SECONDS`` (a broker that does not answer)."""
        self._stopping = True
        self._stop_requested.set()
        if self._task is not None:
            done, _ = await asyncio.wait([self._task], timeout=STOP_GRACE_SECONDS)
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        attempt = 0
        while not self._stopping:
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.group_id,
                client_id=f"admitone-{self.name}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 * MAX_BATCH_BYTES,
                session_timeout_ms=self.session_timeout_ms,
                rebalance_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=max(100, self.session_timeout_ms // 3),
            )
            try:
                await consumer.start()
                attempt = 0
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                self.failures += 1
                attempt += 1
                delay = min(self.max_backoff, 0.2 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                log.warning(
                    "Kafka consumer %s failed (%s: %s); retrying in %.1f s",
                    self.group_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self._pause(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)

    async def _pause(self, seconds: float) -> None:
        """Sleeps, waking early when the loop is asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), seconds)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping:
            batch = await consumer.getmany(timeout_ms=self.poll_ms, max_records=self.max_records)
            if not batch:
                continue
            envelopes: list[Envelope] = []
            offsets: dict[TopicPartition, int] = {}
            firsts: dict[TopicPartition, int] = {}
            for tp, records in batch.items():
                if not records:
                    continue
                firsts[tp] = records[0].offset
                offsets[tp] = records[-1].offset + 1
                for record in records:
                    try:
                        envelopes.append(decode(record.value))
                    except (ValidationError, ValueError, TypeError):
                        # Not ours or corrupt: it can never be applied, so it must not block the stream.
                        log.error(
                            "%s: skipping undecodable record %s:%d@%d",
                            self.name,
                            tp.topic,
                            tp.partition,
                            record.offset,
                        )
            self.received += len(envelopes)
            try:
                await self.runner.apply(envelopes)
            except Exception:
                # Read the batch again after the backoff: later records must not overtake it.
                for tp, first in firsts.items():
                    consumer.seek(tp, first)
                raise
            await consumer.commit(offsets)
