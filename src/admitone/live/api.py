"""Live updates of an event over WebSocket and Server-Sent Events. Handlers read from the hub only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from admitone.core.deps import StateDep
from admitone.core.errors import NotFound, problems
from admitone.core.params import IdPath
from admitone.core.schemas import INT32_MAX
from admitone.live.hub import CLOSE_NOT_FOUND, CLOSE_TOO_SLOW, LiveHub, sansio_protocol

router = APIRouter(tags=["Live"])

LastSeq = Annotated[int | None, Query(ge=0, le=2**62, description="Resume after this sequence number.")]
KEEPALIVE_SECONDS = 15.0


def _query_int(scope: Scope, name: str, high: int) -> tuple[bool, int | None]:
    """(valid, value) of an optional integer query parameter in 0..high."""
    values = [v for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k == name]
    if not values:
        return True, None
    text = values[-1]
    if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) > high:
        return False, None
    return True, int(text)


def _release_handshake(scope: Scope, send: Send) -> None:
    """Lets the handshake's request and response go once the socket is open: uvicorn's WebSocket protocol
    keeps both (and the scope its header list) for the connection's lifetime, about 3 KiB of 20 per idle
    live connection (docs/benchmarks.md). Only uvicorn's ``websockets-sansio`` protocol is touched, and
    only attributes it reads during the handshake; any other server is left alone."""
    scope["headers"] = []
    protocol = sansio_protocol(send)
    if protocol is not None and getattr(protocol, "handshake_complete", False):
        for name in ("request", "response"):
            if hasattr(protocol, name):
                setattr(protocol, name, None)


class LiveSocket:
    """``/events/{event_id}/live``: snapshot, then changes every ~200 ms. Close 4008: too slow, reconnect
    with ``last_seq``; 4404: no such published event; 1008: invalid parameters.

    A bare ASGI app rather than a FastAPI WebSocket route: the hub's flush calls this connection's ASGI
    ``send`` directly (see ``SocketSubscriber``), and the connection keeps no wrapper objects, no queue
    and no second task. Its own task only waits for the client to go away.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub: LiveHub = scope["app"].state.admitone.hub
        raw_id = str(scope.get("path_params", {}).get("event_id", ""))
        valid_seq, last_seq = _query_int(scope, "last_seq", 2**62)
        if not (raw_id.isascii() and raw_id.isdigit() and 1 <= int(raw_id) <= INT32_MAX) or not valid_seq:
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid event_id or last_seq"})
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        _release_handshake(scope, send)
        try:
            sub, first = await hub.attach(int(raw_id), send, last_seq)
        except LookupError:
            with contextlib.suppress(OSError, RuntimeError):
                await send(
                    {"type": "websocket.close", "code": CLOSE_NOT_FOUND, "reason": "no such published event"}
                )
            return
        try:
            await sub.run(first)
            while (await receive())["type"] != "websocket.disconnect":
                pass  # what the client sends is ignored
        except (OSError, RuntimeError):
            pass
        finally:
            hub.unsubscribe(sub)


live_socket = LiveSocket()
router.routes.append(WebSocketRoute("/events/{event_id}/live", live_socket, name="live_socket"))


class LiveSocketFastPath:
    """Pure ASGI layer ahead of the framework (``AdmitoneApp`` in ``core/app.py``): hands
    ``/api/v1/events/{id}/live`` WebSockets to ``live_socket`` without the rest of the stack. A
    connection's task stays suspended for as long as the client is connected, and every frame of the stack
    below it stays allocated with it; going around the framework's middleware, routing and exception layers
    saves memory per connection. Everything else goes on unchanged.
    """

    PREFIX = "/api/v1/events/"
    SUFFIX = "/live"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            if path.startswith(self.PREFIX) and path.endswith(self.SUFFIX):
                event_id = path[len(self.PREFIX) : -len(self.SUFFIX)]
                if "/" not in event_id:
                    scope["path_params"] = {"event_id": event_id}
                    await live_socket(scope, receive, send)
                    return
        await self.app(scope, receive, send)


@router.get(
    "/events/{event_id}/live/sse",
    name="live_events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "A stream of snapshot and changes."},
        **problems(404),
    },
)
async def live_events(
    state: StateDep,
    event_id: IdPath,
    last_seq: LastSeq = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """The same messages as the WebSocket, as Server-Sent Events; each event's ``id`` is its sequence."""
    if last_seq is None and last_event_id is not None and last_event_id.isdigit():
        last_seq = int(last_event_id)
    try:
        sub, first = await state.hub.subscribe(event_id, last_seq)
    except LookupError as exc:
        raise NotFound(f"Event {event_id} does not exist or is not published.") from exc

    async def stream() -> AsyncIterator[str]:
        try:
            for seq, data in first:
                yield f"id: {seq}\ndata: {data}\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    if sub.close_code == CLOSE_TOO_SLOW:
                        yield 'event: close\ndata: {"code": 4008, "reason": "too slow"}\n\n'
                    return
                yield f"id: {item[0]}\ndata: {item[1]}\n\n"
        finally:
            state.hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
