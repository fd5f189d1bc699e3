"""Fan-out of domain events to the live hubs of every process: Redis pub/sub, one subscription per
watched event per process. Without Redis the hub listens to the in-process bus instead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from admitone.live.hub import LiveHub
from admitone.outbox.contracts import Envelope

log = logging.getLogger(__name__)

PREFIX = "admitone:live:"


class RedisFanout:
    def __init__(self, url: str, hub: LiveHub) -> None:
        self.redis = aioredis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.hub = hub
        self._reader: asyncio.Task[None] | None = None

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Called by the outbox relay's bus: one Redis message per event and batch."""
        by_event: dict[int, list[dict[str, object]]] = defaultdict(list)
        for env in envelopes:
            if env.aggregate_type == "event":
                by_event[env.aggregate_id].append(env.model_dump(mode="json"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id, items in by_event.items():
                pipe.publish(f"{PREFIX}{event_id}", orjson.dumps(items))
            await pipe.execute()

    async def watch(self, event_id: int) -> None:
        await self.pubsub.subscribe(f"{PREFIX}{event_id}")
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="live-redis-reader")

    async def unwatch(self, event_id: int) -> None:
        await self.pubsub.unsubscribe(f"{PREFIX}{event_id}")

    async def _read(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception:
                log.exception("reading live updates from Redis failed; retrying")
                await asyncio.sleep(1)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                envelopes = [Envelope.model_validate(item) for item in orjson.loads(message["data"])]
            except ValueError:
                log.warning("ignoring a malformed live message on %s", message.get("channel"))
                continue
            await self.hub.deliver(envelopes)

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()
