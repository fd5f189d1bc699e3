"""HTTP and WebSocket of analytics: the organizer's numbers, their history, and the live dashboard feed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, WebSocket
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnect

from admitone.analytics import service
from admitone.analytics.live import CLOSE_TOO_SLOW, Watcher
from admitone.analytics.runtime import Analytics
from admitone.analytics.schemas import EventAnalytics, History, OrganizerAnalytics
from admitone.core.deps import AppState, StateDep
from admitone.core.errors import NotFound, Unauthorized, Unavailable, problems
from admitone.core.params import IdPath
from admitone.events import service as events_service
from admitone.organizers import service as organizers_service
from admitone.organizers.auth import CurrentCaller
from admitone.web.api import PAGE_HEADERS, STATIC_DIR

organizer = APIRouter(prefix="/organizer", tags=["Organizer: analytics"], responses=problems(401, 403))
sockets = APIRouter(tags=["Organizer: analytics"])

AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


def _analytics(state: AppState) -> Analytics:
    if state.analytics is None:
        raise Unavailable("Analytics is not running in this process.")
    return state.analytics


@organizer.get(
    "/events/{event_id}/analytics",
    name="get_event_analytics",
    response_model=EventAnalytics,
    responses=problems(404),
)
async def get_event_analytics(state: StateDep, caller: CurrentCaller, event_id: IdPath) -> EventAnalytics:
    """The event's numbers now: sales, revenue, holds, conversion, sell-through, sell-out estimate."""
    async with state.db.read() as conn:
        await events_service.own_event(conn, caller.organizer_id, event_id)
    return await _analytics(state).summary(event_id)


@organizer.get(
    "/events/{event_id}/analytics/history",
    name="get_event_analytics_history",
    response_model=History,
    responses=problems(404, 422),
)
async def get_event_analytics_history(
    state: StateDep,
    caller: CurrentCaller,
    event_id: IdPath,
    bucket: Annotated[Literal["minute", "hour"], Query(description="Bucket size.")] = "minute",
    since: Annotated[
        dt.datetime | None,
        Query(description="Start (with time zone). Default: 60 minutes or 24 hours before `until`."),
    ] = None,
    until: Annotated[dt.datetime | None, Query(description="End (with time zone). Default: now.")] = None,
) -> History:
    """Activity per minute or hour; at most 4,320 minute or 8,784 hour buckets per request."""
    async with state.db.read() as conn:
        await events_service.own_event(conn, caller.organizer_id, event_id)
        return await service.history(
            conn, _analytics(state).lookups, event_id, bucket, since, until, dt.datetime.now(dt.UTC)
        )


@organizer.get("/analytics", name="get_organizer_analytics", response_model=OrganizerAnalytics)
async def get_organizer_analytics(state: StateDep, caller: CurrentCaller) -> OrganizerAnalytics:
    """Totals across all your events, and one row per event."""
    async with state.db.read() as conn:
        return await service.organizer(conn, caller.organizer_id, dt.datetime.now(dt.UTC))


async def _authenticate(websocket: WebSocket, state: AppState, event_id: int) -> bool:
    """Reads the first message, ``{"type": "auth", "api_key": "adm_..."}``; closes the socket if refused."""
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        await websocket.close(CLOSE_UNAUTHORIZED, 'send {"type": "auth", "api_key": ...} first')
        return False
    try:
        message = orjson.loads(raw) if len(raw) <= 4096 else None
    except orjson.JSONDecodeError:
        message = None
    key = message.get("api_key") if isinstance(message, dict) and message.get("type") == "auth" else None
    try:
        async with state.db.read() as conn:
            caller = await organizers_service.authenticate(conn, key if isinstance(key, str) else None)
            await events_service.own_event(conn, caller.organizer_id, event_id)
    except Unauthorized:
        await websocket.close(CLOSE_UNAUTHORIZED, "the API key is missing, not valid or revoked")
        return False
    except NotFound:
        await websocket.close(CLOSE_NOT_FOUND, "no such event of your organizer")
        return False
    return True


async def _watch_disconnect(websocket: WebSocket, watcher: Watcher) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    watcher.close(1000)


@sockets.websocket("/organizer/events/{event_id}/analytics/live", name="analytics_live")
async def analytics_live(websocket: WebSocket, event_id: IdPath) -> None:
    """The dashboard feed. First message from the client: ``{"type": "auth", "api_key": "adm_..."}``.

    Then a ``summary`` message at once and a new one within a second of every change. Close codes: 4401
    bad or missing key, 4404 not your event (or none), 4008 too slow (reconnect).
    """
    state: AppState = websocket.app.state.admitone
    analytics = _analytics(state)
    await websocket.accept()
    try:
        if not await _authenticate(websocket, state, event_id):
            return
    except (WebSocketDisconnect, RuntimeError):
        return
    watcher = analytics.broadcaster.watch(event_id)
    reader = asyncio.create_task(_watch_disconnect(websocket, watcher))
    try:
        first = await analytics.summary_text(event_id)
        if first is None:
            await websocket.close(CLOSE_NOT_FOUND, "no such event of your organizer")
            return
        await websocket.send_text(first)
        while True:
            item = await watcher.queue.get()
            if item is None:
                break
            await websocket.send_text(item)
        if watcher.close_code == CLOSE_TOO_SLOW:
            await websocket.close(CLOSE_TOO_SLOW, "too slow: reconnect")
        elif watcher.close_code == 1001:
            await websocket.close(1001, "server shutting down")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        analytics.broadcaster.unwatch(watcher)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


page = APIRouter()


@page.get("/organizer/dashboard", name="page_dashboard", include_in_schema=False)
async def page_dashboard() -> FileResponse:
    """The organizer's live dashboard (a static page; it signs in with the API key in the browser)."""
    return FileResponse(
        STATIC_DIR / "dashboard.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )
