"""Pushes fresh analytics summaries to the dashboards watching an event.

The consumer calls :meth:`AnalyticsBroadcaster.changed` after each commit. The broadcaster marks the events
dirty and, at most every ``interval`` seconds, reads each dirty event's summary once (one database read,
whatever the number of sockets), serializes it once and puts the same text in every watcher's bounded
queue; a watcher whose queue is full is dropped (close 4008) and reconnects. Sockets never read the
database themselves after connecting.

With Redis, a change is also published on one channel (``admitone:analytics``) and every process keeps one
subscription to it, so dashboards connected to another instance update too. A process that does not run
the consumer and has no Redis (an API server whose stream lane runs in ``admitone worker``) is given
``positions`` instead: every ``interval`` it reads how far the consumer got for the watched events (one
small query) and treats the events whose position moved as changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

CHANNEL = "admitone:analytics"
CLOSE_TOO_SLOW = 4008

SummaryLoader = Callable[[int], Awaitable[str | None]]
# The consumer's position per event id, for the given events.
PositionReader = Callable[[list[int]], Awaitable[dict[int, int]]]


class Watcher:
    """One socket watching one event: a bounded queue of summary texts; ``None`` ends it."""

    def __init__(self, event_id: int, size: int) -> None:
        self.event_id = event_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(size)
        self.close_code: int | None = None

    def offer(self, text: str) -> bool:
        if self.close_code is not None:
            return False
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            self.close(CLOSE_TOO_SLOW)
            return False

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        with contextlib.suppress(asyncio.QueueEmpty):
            while self.queue.full():
                self.queue.get_nowait()
        self.queue.put_nowait(None)


class AnalyticsBroadcaster:
    def __init__(
        self,
        load: SummaryLoader,
        *,
        interval: float = 0.25,
        queue_size: int = 8,
        redis_url: str | None = None,
        positions: PositionReader | None = None,
    ) -> None:
        self.load = load
        self.positions = positions
        self.interval = interval
        self.queue_size = queue_size
        self.watchers: dict[int, set[Watcher]] = {}
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._outgoing: set[int] = set()
        self._publish_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.redis = aioredis.from_url(redis_url) if redis_url else None
        self.sent = 0
        self.dropped = 0
        self.loads = 0

    # -- changes in ---------------------------------------------------------------------------------------

    def changed(self, event_ids: set[int]) -> None:
        """Events whose numbers changed (called after the consumer's commit; never blocks)."""
        self.mark(event_ids)
        if self.redis is not None and event_ids:
            self._outgoing |= event_ids
            self._publish_wake.set()

    def mark(self, event_ids: set[int]) -> None:
        watched = {e for e in event_ids if e in self.watchers}
        if watched:
            self._dirty |= watched
            self._wake.set()

    # -- watchers -----------------------------------------------------------------------------------------

    def watch(self, event_id: int) -> Watcher:
        watcher = Watcher(event_id, self.queue_size)
        self.watchers.setdefault(event_id, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        group = self.watchers.get(watcher.event_id)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self.watchers[watcher.event_id]

    # -- tasks --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="analytics-broadcast"))
        if self.positions is not None:
            self._tasks.append(asyncio.create_task(self._poll_loop(), name="analytics-poll"))
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self._publish_loop(), name="analytics-redis-publish"))
            self._tasks.append(asyncio.create_task(self._read_loop(), name="analytics-redis-read"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for group in list(self.watchers.values()):
            for watcher in list(group):
                watcher.close(1001)
        if self.redis is not None:
            await self.redis.aclose()

    async def flush(self) -> None:
        """Sends a fresh summary of every dirty event to its watchers."""
        dirty, self._dirty = self._dirty, set()
        for event_id in sorted(dirty):
            group = self.watchers.get(event_id)
            if not group:
                continue
            try:
                text = await self.load(event_id)
                self.loads += 1
            except Exception:
                log.exception("reading the analytics of event %d failed", event_id)
                continue
            if text is None:
                continue
            for watcher in list(group):
                if watcher.offer(text):
                    self.sent += 1
                else:
                    self.dropped += 1
                    self.unwatch(watcher)

    async def _flush_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            started = time.monotonic()
            await self.flush()
            # At most one read per event per interval, however many commits arrive.
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _poll_loop(self) -> None:
        assert self.positions is not None
        seen: dict[int, int] = {}
        while not self._stopping:
            await asyncio.sleep(self.interval)
            watched = sorted(self.watchers)
            if not watched:
                seen.clear()
                continue
            try:
                now = await self.positions(watched)
            except Exception:
                log.exception("reading the analytics consumer's positions failed")
                continue
            # An event seen for the first time counts as changed: its watcher may have read its summary
            # just before a change this poll is the first to notice.
            moved = {e for e in watched if e not in seen or now.get(e, 0) != seen[e]}
            seen = {e: now.get(e, 0) for e in watched}
            self.mark(moved)

    async def _publish_loop(self) -> None:
        assert self.redis is not None
        while not self._stopping:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            ids, self._outgoing = self._outgoing, set()
            if not ids:
                continue
            try:
                await self.redis.publish(CHANNEL, orjson.dumps(sorted(ids)))
            except Exception:
                log.exception("publishing analytics changes to Redis failed")
                await asyncio.sleep(1)

    async def _read_loop(self) -> None:
        assert self.redis is not None
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        ids = {int(i) for i in orjson.loads(message["data"])}
                    except (ValueError, TypeError):
                        log.warning("ignoring a malformed analytics message")
                        continue
                    self.mark(ids)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading analytics changes from Redis failed; retrying")
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def ping(self) -> None:
        if self.redis is not None:
            await self.redis.ping()
