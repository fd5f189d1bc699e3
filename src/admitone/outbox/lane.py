"""The stream lane of one process: the relay of the ``stream`` lane and the durable consumers it feeds.

Without Kafka the relay hands its batches to the consumers in this process (an in-process bus with durable
subscriptions); with Kafka it writes them to the topic and every consumer reads the topic in its own
consumer group. The lane runs in ``admitone serve`` (the default) or, with ``ADMITONE_STREAM_WORKER``, in
``admitone worker`` processes of its own, so the API process spends its time on requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from admitone.core.db import Database
from admitone.core.settings import Settings
from admitone.outbox.bus import InProcessBus
from admitone.outbox.consumers import ConsumerRunner, StreamConsumer
from admitone.outbox.kafka import KafkaConsumerLoop, KafkaPublisher
from admitone.outbox.relay import STREAM_LANE, OutboxRelay

log = logging.getLogger(__name__)


class StreamLane:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        consumers: Sequence[StreamConsumer],
        *,
        idle_seconds: float = 1.0,
    ) -> None:
        self.runners = [ConsumerRunner(db, consumer) for consumer in consumers]
        self.kafka_publisher: KafkaPublisher | None = None
        self.kafka_loops: list[KafkaConsumerLoop] = []
        if settings.kafka_bootstrap_servers:
            servers = settings.kafka_bootstrap_servers
            self.kafka_publisher = KafkaPublisher(servers, settings.kafka_topic, settings.kafka_partitions)
            self.relay = OutboxRelay(
                db,
                self.kafka_publisher,
                batch=5000,
                idle_seconds=idle_seconds,
                lane=STREAM_LANE,
                name="outbox-stream",
            )
            self.kafka_loops = [
                KafkaConsumerLoop(
                    runner,
                    servers,
                    settings.kafka_topic,
                    f"{settings.kafka_group_prefix}.{runner.name}",
                    session_timeout_ms=settings.kafka_session_timeout_ms,
                )
                for runner in self.runners
            ]
        else:
            bus = InProcessBus()
            for runner in self.runners:
                bus.subscribe(runner.name, runner.apply, durable=True)
            self.relay = OutboxRelay(
                db,
                bus,
                idle_seconds=idle_seconds,
                lane=STREAM_LANE,
                name="outbox-stream",
            )

    async def start(self) -> None:
        if self.kafka_publisher is not None:
            try:
                await self.kafka_publisher.start()
            except Exception as exc:
                # Not fatal: the relay keeps trying, the outbox keeps the events meanwhile.
                log.warning("Kafka is not reachable at start (%s: %s)", type(exc).__name__, exc)
        self.relay.start()
        for loop in self.kafka_loops:
            loop.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await asyncio.gather(*(loop.stop() for loop in self.kafka_loops))
        if self.kafka_publisher is not None:
            await self.kafka_publisher.stop()
