"""Live updates of an event over WebSocket and Server-Sent Events. Handlers read from the hub only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from admitone.core.deps import StateDep
from admitone.core.errors import NotFound, problems
from admitone.core.params import IdPath
from admitone.live.hub import CLOSE_NOT_FOUND, CLOSE_TOO_SLOW, LiveHub, Subscriber

router = APIRouter(tags=["Live"])

LastSeq = Annotated[int | None, Query(ge=0, le=2**62, description="Resume after this sequence number.")]
KEEPALIVE_SECONDS = 15.0


async def _watch_disconnect(websocket: WebSocket, sub: Subscriber) -> None:
    """Reads (and ignores) what the client sends, to notice when it goes away."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    sub.close_code = sub.close_code or 1000
    with contextlib.suppress(asyncio.QueueFull):
        sub.queue.put_nowait(None)


@router.websocket("/events/{event_id}/live", name="live_socket")
async def live_socket(websocket: WebSocket, event_id: IdPath, last_seq: LastSeq = None) -> None:
    """Snapshot, then changes every ~200 ms. Close 4008: too slow, reconnect with ``last_seq``."""
    hub: LiveHub = websocket.app.state.admitone.hub
    await websocket.accept()
    try:
        sub, first = await hub.subscribe(event_id, last_seq)
    except LookupError:
        await websocket.close(CLOSE_NOT_FOUND, "no such published event")
        return
    watcher = asyncio.create_task(_watch_disconnect(websocket, sub))
    try:
        for _seq, data in first:
            await websocket.send_text(data)
        while True:
            item = await sub.queue.get()
            if item is None:
                break
            await websocket.send_text(item[1])
        if sub.close_code == CLOSE_TOO_SLOW:
            await websocket.close(CLOSE_TOO_SLOW, "too slow: reconnect with last_seq to resume")
        elif sub.close_code == 1001:
            await websocket.close(1001, "server shutting down")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        hub.unsubscribe(sub)
        watcher.cancel()


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
