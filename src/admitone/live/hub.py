"""The live hub: per event, the current availability in memory, coalesced changes, and the subscribers.

Changes arrive as domain events (from the outbox relay, through the in-process bus or Redis). The hub
applies them to its in-memory view of each watched event and, at most every ``coalesce`` seconds, sends
each event's accumulated changes as one message, serialized once. The flush hands that message straight
to every WebSocket (``SocketSubscriber``: no queue and no task per socket while the socket keeps up) and
queues it for every SSE stream (``Subscriber``). Each message carries the event's stream sequence, so a
client can resume from the last one it saw, on this process or another. A subscriber that falls more than
the configured number of messages behind is dropped (close code 4008) and resumes. WebSocket and SSE
handlers only read from here; they never touch the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from admitone.live.repository import Snapshot
from admitone.outbox.contracts import Envelope

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
CLOSE_NOT_FOUND = 4404

SnapshotLoader = Callable[[int], Awaitable[Snapshot | None]]
# An ASGI ``send`` callable.
AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class Fanout(Protocol):
    async def watch(self, event_id: int) -> None: ...
    async def unwatch(self, event_id: int) -> None: ...


class Subscriber:
    """A queued subscriber (Server-Sent Events): its handler takes the messages from ``queue``."""

    def __init__(self, channel: Channel, size: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(size)
        self.close_code: int | None = None

    def offer(
        self, seq: int, data: str, message: dict[str, Any] | None = None, frame: bytes | None = None
    ) -> None:
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait((seq, data))
        except asyncio.QueueFull:
            self.close_code = CLOSE_TOO_SLOW
            self.channel.subscribers.discard(self)
            self.channel.hub.dropped += 1
            # Wake the sender so it notices; the queue is full, so make room for the sentinel.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def close(self, code: int) -> None:
        self.close_code = code
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


_OPEN = 1  # websockets' ``State.OPEN``


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 5.2): what a server sends."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def sansio_protocol(send: Any) -> Any | None:
    """The uvicorn ``websockets-sansio`` connection whose ASGI ``send`` this is, or None."""
    protocol = getattr(send, "__self__", None)
    return protocol if type(protocol).__name__ == "WebSocketsSansIOProtocol" else None


def direct_writer(send: AsgiSend) -> Any | None:
    """uvicorn's ``websockets-sansio`` connection behind an ASGI ``send``, or None for any other server.

    For such a connection the flush writes the frame it built once for all sockets straight to the
    transport (``SocketSubscriber.offer``), instead of having every connection encode the text, build and
    serialize its own frame object and join its output: the bytes on the wire are the same. Only the
    attributes checked here are used, read-only, and a connection in any other state goes through ``send``.
    """
    protocol = sansio_protocol(send)
    if protocol is None:
        return None
    conn = getattr(protocol, "conn", None)
    needed = ("transport", "writable", "close_sent", "disconnected", "handshake_complete")
    if conn is None or not all(hasattr(protocol, name) for name in needed):
        return None
    if not (hasattr(conn, "state") and hasattr(conn, "extensions")):
        return None
    return protocol


def _direct_ok(protocol: Any) -> bool:
    """The connection is open, negotiated no extension (compression) and its transport takes data."""
    return bool(
        protocol.handshake_complete
        and not protocol.close_sent
        and not protocol.disconnected
        and protocol.writable.is_set()
        and protocol.conn.state == _OPEN
        and not protocol.conn.extensions
        and not protocol.transport.is_closing()
    )


class _Resumed:
    """Awaits a coroutine that has already run up to its first suspension (``yielded``) to its end."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation and the like go to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration:
                    return


class SocketSubscriber:
    """A WebSocket fed by the flush itself: no queue and no task of its own while it keeps up.

    On uvicorn's ``websockets-sansio`` connections ``offer`` writes the text frame the flush built once
    for all sockets straight to the transport (``direct_writer``). Otherwise, and whenever that
    connection is not open and writable, it calls the ASGI ``send`` without awaiting it; the server writes
    the frame to the socket at once unless the socket's write buffer is full, in which case the send
    suspends. Then this subscriber is slow: one task finishes that send and the messages arriving
    meanwhile wait in ``backlog``; past ``limit`` of them the socket is closed with 4008 and the client
    resumes with ``last_seq``.
    """

    __slots__ = ("backlog", "channel", "close_code", "direct", "limit", "send", "task")

    def __init__(self, channel: Channel, send: AsgiSend, limit: int) -> None:
        self.channel = channel
        self.send = send
        self.direct = direct_writer(send)
        self.limit = limit
        self.close_code: int | None = None
        # Not None while a send is in progress (at first: the snapshot or the missed messages).
        self.backlog: deque[str] | None = deque()
        self.task: asyncio.Task[None] | None = None

    def offer(
        self, seq: int, data: str, message: dict[str, Any] | None = None, frame: bytes | None = None
    ) -> None:
        if self.close_code is not None:
            return
        backlog = self.backlog
        if backlog is not None:
            if len(backlog) < self.limit:
                backlog.append(data)
            else:
                self.drop(CLOSE_TOO_SLOW)
            return
        direct = self.direct
        if frame is not None and direct is not None and _direct_ok(direct):
            # The transport buffers what the kernel does not take at once; past its high-water mark it
            # pauses the connection (``writable`` cleared) and the next message goes through ``send``.
            direct.transport.write(frame)
            self.channel.hub.direct_writes += 1
            return
        coro = self.send(message if message is not None else {"type": "websocket.send", "text": data})
        if not isinstance(coro, Coroutine):  # not a coroutine: await it in a task
            self.backlog = deque()
            self.task = asyncio.create_task(self._drain(coro))
            return
        try:
            yielded = coro.send(None)
        except StopIteration:
            return  # written (or buffered by the transport below its limit)
        except Exception:
            self.gone()
            return
        # The socket's write buffer is full: finish this send in a task, keep what comes meanwhile.
        self.backlog = deque()
        self.task = asyncio.create_task(self._drain(_Resumed(coro, yielded)))

    async def run(self, first: Sequence[str]) -> None:
        """Sends the first messages (snapshot or missed changes), then whatever arrived meanwhile."""
        try:
            for data in first:
                await self.send({"type": "websocket.send", "text": data})
        except Exception:
            self.gone()
            return
        await self._drain(None)

    async def _drain(self, pending: Awaitable[None] | None) -> None:
        try:
            if pending is not None:
                await pending
            backlog = self.backlog
            while backlog and self.close_code is None:
                await self.send({"type": "websocket.send", "text": backlog.popleft()})
        except Exception:
            self.gone()
            return
        finally:
            self.task = None
        if self.close_code is None:
            self.backlog = None  # caught up: the flush sends directly again
        elif self.close_code != 1000:
            await self._close()

    def drop(self, code: int) -> None:
        """Closes the socket with ``code`` (4008: too slow, 1001: shutting down)."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.channel.subscribers.discard(self)
        if code == CLOSE_TOO_SLOW:
            self.channel.hub.dropped += 1
        if self.backlog is None:
            self.backlog = deque()
            self.task = asyncio.create_task(self._close())
        else:
            self.backlog.clear()  # the running send closes the socket when it completes

    def close(self, code: int) -> None:
        self.drop(code)

    async def _close(self) -> None:
        reason = "too slow: reconnect with last_seq to resume" if self.close_code == CLOSE_TOO_SLOW else ""
        if self.close_code == 1001:
            reason = "server shutting down"
        with contextlib.suppress(Exception):
            await self.send({"type": "websocket.close", "code": self.close_code, "reason": reason})

    def gone(self) -> None:
        """The client went away."""
        if self.close_code is None:
            self.close_code = 1000
        self.channel.subscribers.discard(self)
        if self.backlog is not None:
            self.backlog.clear()

    def detach(self) -> None:
        """The handler ends: stop sending."""
        self.gone()
        task = self.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()


@dataclass
class _Pending:
    seats: dict[int, str] = field(default_factory=dict)
    quotas: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.seats or self.quotas or self.events)


class Channel:
    """One watched event in this process."""

    def __init__(self, hub: LiveHub, event_id: int) -> None:
        self.hub = hub
        self.event_id = event_id
        self.ready = asyncio.Event()
        self.missing = False
        self.seq = 0
        self.flushed_seq = 0  # the last sequence covered by a sent message (or the snapshot)
        self.seats: dict[int, str] = {}
        self.quotas: dict[int, dict[str, Any]] = {}
        self.ticket_types: list[dict[str, Any]] = []
        self.seat_categories: dict[int, str] = {}
        self.free_by_category: Counter[str] = Counter()
        self.extra: dict[str, Any] = {}
        self.history: deque[tuple[int, int, str]] = deque(maxlen=hub.history_size)
        self.pending = _Pending()
        self.subscribers: set[Subscriber | SocketSubscriber] = set()
        self.buffer: list[Envelope] = []
        self.idle_since: float | None = None

    # -- state ---------------------------------------------------------------------------------------------
    def load(self, snap: Snapshot) -> None:
        self.seq = self.flushed_seq = snap.seq
        self.seats = dict(snap.seats)
        self.quotas = dict(snap.quotas)
        self.ticket_types = snap.ticket_types
        self.seat_categories = snap.seat_categories
        self.extra = snap.extra
        self.free_by_category = Counter(
            cat for seat, cat in self.seat_categories.items() if seat not in self.seats
        )
        self.pending = _Pending()
        self.history.clear()

    def ticket_type_availability(self) -> list[dict[str, int]]:
        out = []
        for tt in self.ticket_types:
            limits = [self.quotas[q]["available"] for q in tt["quota_ids"] if q in self.quotas]
            if tt["kind"] == "seated":
                limits.append(self.free_by_category.get(tt["category"], 0))
            out.append({"ticket_type_id": tt["ticket_type_id"], "available": max(min(limits, default=0), 0)})
        return out

    def snapshot_message(self) -> tuple[int, str]:
        return self.seq, orjson.dumps(
            {
                "type": "snapshot",
                "event_id": self.event_id,
                "seq": self.seq,
                "seats": {str(k): v for k, v in self.seats.items()},
                "quotas": list(self.quotas.values()),
                "ticket_types": self.ticket_type_availability(),
                **self.extra,
            }
        ).decode()

    def apply(self, env: Envelope) -> None:
        """Applies one domain event of this event's stream, in sequence order."""
        if not self.ready.is_set():
            self.buffer.append(env)
            return
        if env.sequence <= self.seq:
            return  # already applied (at-least-once delivery)
        if env.sequence != self.seq + 1:
            log.warning(
                "event %s: stream jumped from %d to %d; reloading", self.event_id, self.seq, env.sequence
            )
            self.hub.resync(self)
            return
        self.seq = env.sequence
        if env.type == "inventory.changed":
            payload: dict[str, Any] = env.payload
            for q in payload.get("quotas", []):
                self.quotas[q["quota_id"]] = q
                self.pending.quotas[q["quota_id"]] = q
            for s in payload.get("seats", []):
                seat_id, state = s["seat_id"], s["state"]
                before = self.seats.get(seat_id, "free")
                if state == "free":
                    self.seats.pop(seat_id, None)
                else:
                    self.seats[seat_id] = state
                category = self.seat_categories.get(seat_id)
                if category is not None and (before == "free") != (state == "free"):
                    self.free_by_category[category] += 1 if state == "free" else -1
                self.pending.seats[seat_id] = state
        for handler in self.hub.handlers.get(env.type, ()):
            update = handler(self, env)
            if update is not None:
                self.pending.events.append(update)

    def flush(self) -> None:
        """Sends the accumulated changes to every subscriber now (in one go)."""
        taken = self.take()
        if taken is not None:
            self.hub.offer_all(self, *taken)

    def take(self) -> tuple[int, str] | None:
        """The accumulated changes as one message (sequence, JSON text), or None when there are none."""
        if self.pending.empty() or not self.ready.is_set():
            return None
        p = self.pending
        message: dict[str, Any] = {
            "type": "changes",
            "event_id": self.event_id,
            "from_seq": self.flushed_seq + 1,
            "seq": self.seq,
            "seats": {str(k): v for k, v in p.seats.items()},
        }
        if p.quotas:
            message["quotas"] = list(p.quotas.values())
        if p.quotas or p.seats:
            message["ticket_types"] = self.ticket_type_availability()
        if p.events:
            message["events"] = p.events
        data = orjson.dumps(message).decode()
        self.pending = _Pending()
        self.flushed_seq = self.seq
        self.history.append((message["from_seq"], self.seq, data))
        self.hub.messages += 1
        return self.seq, data

    def replay_since(self, last_seq: int) -> list[tuple[int, str]] | None:
        """Messages after ``last_seq``, or None when history no longer reaches back that far."""
        if last_seq == self.seq:
            return []
        if last_seq > self.seq or not self.history or self.history[0][0] > last_seq + 1:
            return None
        return [(last, data) for _first, last, data in self.history if last > last_seq]


# A handler turns a domain event into a live update (chat messages, announcements, ...), or None.
Handler = Callable[[Channel, Envelope], dict[str, Any] | None]


class LiveHub:
    def __init__(
        self,
        loader: SnapshotLoader,
        coalesce_seconds: float = 0.2,
        queue_size: int = 64,
        history_size: int = 1024,
        idle_seconds: float = 60.0,
        slice_size: int = 1000,
    ) -> None:
        self.loader = loader
        self.slice_size = slice_size
        self.coalesce = coalesce_seconds
        self.queue_size = queue_size
        self.history_size = history_size
        self.idle_seconds = idle_seconds
        self.channels: dict[int, Channel] = {}
        self.handlers: dict[str, list[Handler]] = {}
        self.fanout: Fanout | None = None
        self._task: asyncio.Task[None] | None = None
        self._loads: set[asyncio.Task[None]] = set()
        self.messages = 0
        self.dropped = 0
        self.direct_writes = 0  # messages written straight to a socket's transport (SocketSubscriber)

    def on(self, event_type: str, handler: Handler) -> None:
        self.handlers.setdefault(event_type, []).append(handler)

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Domain events from the bus or the fan-out; events nobody here watches are ignored."""
        for env in envelopes:
            channel = self.channels.get(env.aggregate_id) if env.aggregate_type == "event" else None
            if channel is not None:
                channel.apply(env)

    def committed(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Outbox rows a transaction of this process has just committed (``Database.outbox_listeners``).

        Applied at once, without waiting for the live relay to read them back: a watched event's changes
        reach its sockets with the next flush. Only rows that continue a channel's stream are applied; at
        a gap (rows of another process the relay has not delivered yet) the channel waits for the relay,
        which delivers every row in order and whose copies of rows applied here are skipped by sequence.
        """
        blocked: set[int] = set()
        for row in rows:
            event_id = row["aggregate_id"]
            if row["aggregate_type"] != "event" or event_id in blocked:
                continue
            channel = self.channels.get(event_id)
            if channel is None or not channel.ready.is_set():
                continue
            sequence = row["sequence"]
            if sequence <= channel.seq:
                continue
            if sequence != channel.seq + 1:
                blocked.add(event_id)
                continue
            channel.apply(
                Envelope.model_construct(
                    id=row["event_uuid"],
                    type=row["type"],
                    version=row["version"],
                    aggregate_type="event",
                    aggregate_id=event_id,
                    sequence=sequence,
                    occurred_at=row["occurred_at"],
                    payload=row["payload"],
                )
            )

    async def _channel(self, event_id: int) -> Channel:
        channel = self.channels.get(event_id)
        if channel is None:
            channel = self.channels[event_id] = Channel(self, event_id)
            self._spawn_load(channel)
        await channel.ready.wait()
        if channel.missing:
            self.channels.pop(event_id, None)
            raise LookupError(event_id)
        return channel

    @staticmethod
    def _first(channel: Channel, last_seq: int | None) -> list[tuple[int, str]]:
        first = channel.replay_since(last_seq) if last_seq is not None else None
        return first if first is not None else [channel.snapshot_message()]

    async def subscribe(
        self, event_id: int, last_seq: int | None = None
    ) -> tuple[Subscriber, list[tuple[int, str]]]:
        """A new queued subscriber and what to send it first: the missed messages, or a snapshot."""
        channel = await self._channel(event_id)
        sub = Subscriber(channel, self.queue_size)
        channel.subscribers.add(sub)
        channel.idle_since = None
        return sub, self._first(channel, last_seq)

    async def attach(
        self, event_id: int, send: AsgiSend, last_seq: int | None = None
    ) -> tuple[SocketSubscriber, list[str]]:
        """A new WebSocket subscriber and what to send it first (``SocketSubscriber.run`` sends it)."""
        channel = await self._channel(event_id)
        sub = SocketSubscriber(channel, send, self.queue_size)
        channel.subscribers.add(sub)
        channel.idle_since = None
        return sub, [data for _seq, data in self._first(channel, last_seq)]

    def unsubscribe(self, sub: Subscriber | SocketSubscriber) -> None:
        if isinstance(sub, SocketSubscriber):
            sub.detach()
        else:
            sub.channel.subscribers.discard(sub)

    def offer_all(self, channel: Channel, seq: int, data: str) -> None:
        """One message to every subscriber of ``channel``; the ASGI message is built once for all."""
        message = {"type": "websocket.send", "text": data}
        frame = text_frame(data.encode())
        for sub in list(channel.subscribers):
            sub.offer(seq, data, message, frame)

    async def offer_all_in_slices(self, channel: Channel, seq: int, data: str) -> None:
        """``offer_all``, letting the event loop run other work (hold requests) after every
        ``slice_size`` subscribers: with 10,000 sockets one pass takes a noticeable fraction of a second.
        Subscribers that join meanwhile got a snapshot that already covers this message."""
        message = {"type": "websocket.send", "text": data}
        frame = text_frame(data.encode())
        subs = list(channel.subscribers)
        step = self.slice_size
        for start in range(0, len(subs), step):
            if start:
                await asyncio.sleep(0)
                if not channel.ready.is_set():
                    return  # reloading: every subscriber gets a fresh snapshot instead
            for sub in subs[start : start + step]:
                sub.offer(seq, data, message, frame)

    def _spawn_load(self, channel: Channel) -> None:
        task = asyncio.create_task(self._load(channel), name=f"live-load-{channel.event_id}")
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _load(self, channel: Channel) -> None:
        try:
            if self.fanout is not None:
                await self.fanout.watch(channel.event_id)
            snap = await self.loader(channel.event_id)
        except Exception:
            log.exception("loading the live view of event %s failed", channel.event_id)
            snap = None
        if snap is None:
            channel.missing = True
            channel.ready.set()
            return
        channel.load(snap)
        buffered, channel.buffer = channel.buffer, []
        channel.ready.set()
        for env in sorted(buffered, key=lambda e: e.sequence):
            channel.apply(env)

    def resync(self, channel: Channel) -> None:
        """Reloads a channel whose stream has a gap, then sends every subscriber a fresh snapshot."""
        if not channel.ready.is_set():
            return
        channel.ready.clear()

        async def reload() -> None:
            await self._load(channel)
            if not channel.missing:
                seq, data = channel.snapshot_message()
                self.offer_all(channel, seq, data)

        task = asyncio.create_task(reload())
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher(), name="live-flusher")

    async def _flusher(self) -> None:
        """Flushes every ``coalesce`` seconds, on a fixed schedule: when a pass takes longer than that,
        the next one starts right after it rather than ``coalesce`` later."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.coalesce
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                due = now
                await asyncio.sleep(0)
            now = loop.time()
            for event_id, channel in list(self.channels.items()):
                try:
                    taken = channel.take()
                    if taken is not None:
                        await self.offer_all_in_slices(channel, *taken)
                except Exception:
                    log.exception("flushing live changes of event %s failed", event_id)
                if channel.subscribers or not channel.ready.is_set():
                    continue
                if channel.idle_since is None:
                    channel.idle_since = now
                elif now - channel.idle_since > self.idle_seconds:
                    self.channels.pop(event_id, None)
                    if self.fanout is not None:
                        await self.fanout.unwatch(event_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._loads):
            task.cancel()
        for channel in self.channels.values():
            for sub in list(channel.subscribers):
                sub.close(1001)
