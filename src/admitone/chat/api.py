"""HTTP for the event chat: joining, posting and reading, and the organizer's announcements and moderation.

Messages are plain text in JSON; the API never produces HTML. Live delivery goes through the event's live
socket (see ``chat/live.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.chat import service
from admitone.chat.schemas import (
    AnnouncementCreate,
    Channel,
    ChatJoin,
    ChatJoined,
    ChatMessageOut,
    ChatSettingsOut,
    ChatSettingsUpdate,
    ChatUserOut,
    MessageCreate,
    MessageDeleted,
    MessagePage,
    MuteRequest,
)
from admitone.core.deps import StateDep
from admitone.core.errors import PROBLEM_JSON, Problem, TooManyRequests, problem, problems
from admitone.core.idempotency import IdempotencyKeyHeader, make_key, run_idempotent
from admitone.core.params import IdPath
from admitone.core.schemas import INT32_MAX
from admitone.events import service as events_service
from admitone.organizers.auth import WriteCaller
from admitone.outbox.repository import EventStream

public = APIRouter(tags=["Chat"])
organizer = APIRouter(prefix="/organizer", tags=["Organizer: chat"], responses=problems(401, 403))

T = TypeVar("T", bound=BaseModel)

ChatToken = Annotated[
    str | None,
    Header(alias="X-Chat-Token", description="The `chat_token` from joining the chat."),
]
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "Sending too fast; retry after the number of seconds in `Retry-After`",
        "content": {PROBLEM_JSON: {}},
        "headers": {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
        },
    }
}


def locked(
    event_id: int,
    work: Callable[[AsyncConnection, EventStream], Awaitable[T]],
    organizer_id: int | None = None,
) -> Callable[[AsyncConnection], Awaitable[T]]:
    """Runs ``work`` holding the event's lock, then writes its domain events, in the caller's transaction.
    With ``organizer_id``, the event must be that organizer's (else 404)."""

    async def run(conn: AsyncConnection) -> T:
        if organizer_id is not None:
            await events_service.own_event(conn, organizer_id, event_id)
        stream = await EventStream.lock(conn, event_id)
        result = await work(conn, stream)
        await stream.flush()
        return result

    return run


def _too_many(request: Request, exc: TooManyRequests) -> JSONResponse:
    response = problem(exc.status, exc.slug, exc.title, exc.detail, request.url.path, **exc.extra)
    response.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
    return response


# -- buyers and fans ------------------------------------------------------------------------------------


@public.post(
    "/events/{event_id}/chat/join",
    name="join_chat",
    status_code=201,
    response_model=ChatJoined,
    responses=problems(404, 409),
)
async def join_chat(
    state: StateDep, event_id: IdPath, body: ChatJoin, idempotency_key: IdempotencyKeyHeader = None
) -> ChatJoined | JSONResponse:
    """Joins the chat of a published event under a display name (unique in it, regardless of case).

    Keep the returned ``chat_token``: it is shown only once and is needed to post.
    """
    key = make_key(idempotency_key, f"chat-join:{event_id}", body)
    now = state.clock.now()
    return await run_idempotent(
        state.db, key, 201, locked(event_id, lambda conn, stream: service.join(conn, stream, body.name, now))
    )


@public.post(
    "/events/{event_id}/chat/messages",
    name="post_chat_message",
    status_code=201,
    response_model=ChatMessageOut,
    responses={**problems(401, 403, 404, 409), **RATE_LIMITED},
)
async def post_chat_message(
    state: StateDep,
    request: Request,
    event_id: IdPath,
    body: MessageCreate,
    token: ChatToken = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ChatMessageOut | JSONResponse:
    """Posts a plain-text message to the event's chat.

    At most 5 messages per 10 seconds per person, and in slow mode one per ``slow_mode_seconds``: faster
    posts get 429 with ``Retry-After``. Muted or banned people get 403; a closed chat 409.
    """
    now = state.clock.now()
    try:
        async with state.db.read() as conn:
            user = await service.authenticate(conn, event_id, token)
            if idempotency_key is None:
                # Refuse what is certain to be refused without taking the event's lock. (With a key, a
                # retry must reach the stored answer, so the checks run only under the lock.)
                await service.check_can_post(conn, event_id, user, now)
        key = make_key(idempotency_key, f"chat-message:{event_id}:{user.id}", body)
        return await run_idempotent(
            state.db,
            key,
            201,
            locked(
                event_id, lambda conn, stream: service.post_message(conn, stream, user.id, body.text, now)
            ),
        )
    except TooManyRequests as exc:
        return _too_many(request, exc)


@public.get(
    "/events/{event_id}/chat/messages",
    name="list_chat_messages",
    response_model=MessagePage,
    responses=problems(404),
)
async def list_chat_messages(
    state: StateDep,
    event_id: IdPath,
    channel: Channel = "chat",
    before_id: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="Only messages older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> MessagePage:
    """A page of a channel's history, newest last; follow ``next_before_id`` for older messages."""
    async with state.db.read() as conn:
        return await service.history(conn, event_id, channel, before_id, limit)


# -- organizers -----------------------------------------------------------------------------------------


@organizer.post(
    "/events/{event_id}/announcements",
    name="post_announcement",
    status_code=201,
    response_model=ChatMessageOut,
    responses=problems(404),
)
async def post_announcement(
    state: StateDep,
    caller: WriteCaller,
    event_id: IdPath,
    body: AnnouncementCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ChatMessageOut | JSONResponse:
    """Posts to the event's announcements channel under your organizer's name (also while chat is closed)."""
    key = make_key(idempotency_key, f"chat-announcement:{caller.organizer_id}:{event_id}", body)
    now = state.clock.now()
    return await run_idempotent(
        state.db,
        key,
        201,
        locked(
            event_id,
            lambda conn, stream: service.announce(conn, stream, caller.organizer_name, body.text, now),
            caller.organizer_id,
        ),
    )


@organizer.delete(
    "/events/{event_id}/chat/messages/{message_id}",
    name="delete_chat_message",
    response_model=MessageDeleted,
    responses=problems(404),
)
async def delete_chat_message(
    state: StateDep, caller: WriteCaller, event_id: IdPath, message_id: IdPath
) -> MessageDeleted:
    """Removes a message (chat or announcement) from history and from every live view."""
    now = state.clock.now()
    async with state.db.write() as conn:
        return await locked(
            event_id,
            lambda c, stream: service.delete_message(c, stream, message_id, now),
            caller.organizer_id,
        )(conn)


@organizer.post(
    "/events/{event_id}/chat/users/{user_id}/mute",
    name="mute_chat_user",
    response_model=ChatUserOut,
    responses=problems(404),
)
async def mute_chat_user(
    state: StateDep, caller: WriteCaller, event_id: IdPath, user_id: IdPath, body: MuteRequest
) -> ChatUserOut:
    """Keeps a chat user from posting for the given minutes (up to 7 days) from now."""
    now = state.clock.now()
    async with state.db.write() as conn:
        return await locked(
            event_id,
            lambda c, stream: service.mute(c, stream, user_id, body.minutes, now),
            caller.organizer_id,
        )(conn)


@organizer.post(
    "/events/{event_id}/chat/users/{user_id}/ban",
    name="ban_chat_user",
    response_model=ChatUserOut,
    responses=problems(404),
)
async def ban_chat_user(
    state: StateDep, caller: WriteCaller, event_id: IdPath, user_id: IdPath
) -> ChatUserOut:
    """Keeps a chat user from ever posting in this event's chat again."""
    async with state.db.write() as conn:
        return await locked(event_id, lambda c, stream: service.ban(c, stream, user_id), caller.organizer_id)(
            conn
        )


@organizer.patch(
    "/events/{event_id}/chat",
    name="update_chat_settings",
    response_model=ChatSettingsOut,
    responses=problems(404),
)
async def update_chat_settings(
    state: StateDep, caller: WriteCaller, event_id: IdPath, body: ChatSettingsUpdate
) -> ChatSettingsOut:
    """Sets slow mode (seconds between one person's messages; 0 = off) and opens or closes the chat.

    Fields left out stay as they are.
    """
    async with state.db.write() as conn:
        return await locked(
            event_id, lambda c, stream: service.update_settings(c, stream, body), caller.organizer_id
        )(conn)
