"""Rules of the event chat. Never commits.

Every change (joining, posting, announcing, deleting, muting, banning, settings) is written under the
event's lock (:class:`EventStream`) together with its domain event, so chat messages take their place in
the event's stream and reach the live view in order, like availability. The price is that chat writes of
an event queue behind that event's hold batches and the other way round; a chat write is a few small
statements, so the wait it adds is short. Refusals that need no lock (unknown token, banned, muted,
closed, too fast) are found before the lock is taken, and checked again under it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import unicodedata
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.chat import repository as repo
from admitone.chat.schemas import (
    Channel,
    ChatJoined,
    ChatMessageDeleted,
    ChatMessageOut,
    ChatMessagePosted,
    ChatSettingsChanged,
    ChatSettingsOut,
    ChatSettingsUpdate,
    ChatUserBanned,
    ChatUserJoined,
    ChatUserMuted,
    ChatUserOut,
    MessageDeleted,
    MessagePage,
)
from admitone.core import security
from admitone.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from admitone.outbox.repository import EventStream

RATE_LIMIT = 5
RATE_WINDOW = dt.timedelta(seconds=10)
LIVE_CHAT = 50
LIVE_ANNOUNCEMENTS = 10
TOKEN_PREFIX = "chat"
MAX_TOKEN_LENGTH = 200


def name_key(name: str) -> str:
    """The identity of a display name: equal for names that differ only in case or character width."""
    return hashlib.sha256(unicodedata.normalize("NFKC", name).casefold().encode()).hexdigest()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def require_published(conn: AsyncConnection, event_id: int) -> None:
    status = await repo.event_status(conn, event_id)
    if status is None or status == "draft":
        raise NotFound(f"No event {event_id}.")


def message_out(row: Any) -> ChatMessageOut:
    return ChatMessageOut(
        id=row.id,
        event_id=row.event_id,
        channel=row.channel,
        author=row.author,
        text=row.text,
        posted_at=row.posted_at,
    )


def user_out(row: Any) -> ChatUserOut:
    return ChatUserOut(user_id=row.id, name=row.name, muted_until=row.muted_until, banned=row.banned)


def _settings_of(row: Any) -> ChatSettingsOut:
    if row is None:
        return ChatSettingsOut(slow_mode_seconds=0, closed=False)
    return ChatSettingsOut(slow_mode_seconds=row.slow_mode_seconds, closed=row.closed)


async def read_settings(conn: AsyncConnection, event_id: int) -> ChatSettingsOut:
    return _settings_of(await repo.get_settings(conn, event_id))


# -- people ---------------------------------------------------------------------------------------------


async def join(conn: AsyncConnection, stream: EventStream, name: str, now: dt.datetime) -> ChatJoined:
    event_id = stream.event_id
    await require_published(conn, event_id)
    key = name_key(name)
    if await repo.user_by_name_key(conn, event_id, key) is not None:
        raise Conflict(f"The name '{name}' is already taken in this chat; choose another.")
    token = security.new_token(TOKEN_PREFIX)
    user_id = await repo.insert_user(conn, event_id, name, key, security.hash_secret(token), now)
    stream.emit(ChatUserJoined(event_id=event_id, user_id=user_id, name=name))
    return ChatJoined(user_id=user_id, name=name, chat_token=token)


async def authenticate(conn: AsyncConnection, event_id: int, token: str | None) -> Any:
    """The chat user a token belongs to, in this event's chat."""
    await require_published(conn, event_id)
    if not token:
        raise Unauthorized("Posting needs the token from joining the chat: send 'X-Chat-Token: <token>'.")
    user = None
    if len(token) <= MAX_TOKEN_LENGTH:
        user = await repo.user_by_token(conn, event_id, security.hash_secret(token))
    if user is None:
        raise Unauthorized("The chat token is not valid for this event's chat; join the chat to get one.")
    return user


async def check_can_post(conn: AsyncConnection, event_id: int, user: Any, now: dt.datetime) -> None:
    """Refuses a message from ``user`` now: banned, muted, chat closed, or too many too fast."""
    if user.banned:
        raise Forbidden("You have been banned from this event's chat.")
    if user.muted_until is not None and user.muted_until > now:
        until = _iso(user.muted_until)
        raise Forbidden(f"You are muted in this event's chat until {until}.", muted_until=until)
    settings = await read_settings(conn, event_id)
    if settings.closed:
        raise Conflict("This event's chat is closed: messages can be read, but no new ones posted.")
    recent = await repo.last_post_times(conn, user.id, RATE_LIMIT)
    waits: list[tuple[dt.timedelta, str]] = []
    if len(recent) >= RATE_LIMIT and recent[-1] > now - RATE_WINDOW:
        waits.append(
            (
                recent[-1] + RATE_WINDOW - now,
                f"at most {RATE_LIMIT} messages per {int(RATE_WINDOW.total_seconds())} seconds",
            )
        )
    slow = dt.timedelta(seconds=settings.slow_mode_seconds)
    if slow and recent and recent[0] + slow > now:
        rule = f"slow mode allows one message per {settings.slow_mode_seconds} seconds"
        waits.append((recent[0] + slow - now, rule))
    if waits:
        wait, rule = max(waits)
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise TooManyRequests(
            f"You are sending messages too fast ({rule}); try again in {seconds} s.", retry_after=seconds
        )


# -- messages -------------------------------------------------------------------------------------------


async def _post(
    conn: AsyncConnection,
    stream: EventStream,
    channel: Channel,
    user_id: int | None,
    author: str,
    text: str,
    now: dt.datetime,
) -> ChatMessageOut:
    message_id = await repo.insert_message(conn, stream.event_id, channel, user_id, author, text, now)
    stream.emit(
        ChatMessagePosted(
            event_id=stream.event_id,
            message_id=message_id,
            channel=channel,
            user_id=user_id,
            author=author,
            text=text,
            posted_at=now,
        )
    )
    return ChatMessageOut(
        id=message_id, event_id=stream.event_id, channel=channel, author=author, text=text, posted_at=now
    )


async def post_message(
    conn: AsyncConnection, stream: EventStream, user_id: int, text: str, now: dt.datetime
) -> ChatMessageOut:
    """A chat user's message; the checks run again under the lock, so concurrent posts cannot slip by."""
    user = await repo.get_user(conn, stream.event_id, user_id)
    if user is None:
        raise Unauthorized("The chat token is not valid for this event's chat; join the chat to get one.")
    await check_can_post(conn, stream.event_id, user, now)
    return await _post(conn, stream, "chat", user.id, user.name, text, now)


async def announce(
    conn: AsyncConnection, stream: EventStream, organizer_name: str, text: str, now: dt.datetime
) -> ChatMessageOut:
    """An organizer's announcement; it goes out even while the chat is closed or in slow mode."""
    return await _post(conn, stream, "announcements", None, organizer_name, text, now)


async def history(
    conn: AsyncConnection, event_id: int, channel: Channel, before_id: int | None, limit: int
) -> MessagePage:
    await require_published(conn, event_id)
    rows = await repo.latest_messages(conn, event_id, channel, limit + 1, before_id)
    more = len(rows) > limit
    items = [message_out(r) for r in reversed(rows[:limit])]
    return MessagePage(items=items, next_before_id=items[0].id if more and items else None)


async def delete_message(
    conn: AsyncConnection, stream: EventStream, message_id: int, now: dt.datetime
) -> MessageDeleted:
    """Removes a message from history and the live view. Deleting it again changes nothing."""
    row = await repo.get_message(conn, stream.event_id, message_id)
    if row is None:
        raise NotFound(f"No message {message_id} in the chat of event {stream.event_id}.")
    if row.deleted_at is None:
        await repo.mark_deleted(conn, message_id, now)
        stream.emit(ChatMessageDeleted(event_id=stream.event_id, message_id=message_id))
    return MessageDeleted(deleted=message_id)


# -- moderation -----------------------------------------------------------------------------------------


async def _chat_user(conn: AsyncConnection, event_id: int, user_id: int) -> Any:
    user = await repo.get_user(conn, event_id, user_id)
    if user is None:
        raise NotFound(f"No chat user {user_id} in the chat of event {event_id}.")
    return user


async def mute(
    conn: AsyncConnection, stream: EventStream, user_id: int, minutes: int, now: dt.datetime
) -> ChatUserOut:
    """Mutes a chat user for ``minutes`` from now (replacing an earlier mute)."""
    user = await _chat_user(conn, stream.event_id, user_id)
    until = now + dt.timedelta(minutes=minutes)
    await repo.set_muted_until(conn, user.id, until)
    stream.emit(ChatUserMuted(event_id=stream.event_id, user_id=user.id, muted_until=until))
    return ChatUserOut(user_id=user.id, name=user.name, muted_until=until, banned=user.banned)


async def ban(conn: AsyncConnection, stream: EventStream, user_id: int) -> ChatUserOut:
    """Bans a chat user from posting in this event's chat for good."""
    user = await _chat_user(conn, stream.event_id, user_id)
    if not user.banned:
        await repo.set_banned(conn, user.id)
        stream.emit(ChatUserBanned(event_id=stream.event_id, user_id=user.id))
    return ChatUserOut(user_id=user.id, name=user.name, muted_until=user.muted_until, banned=True)


async def update_settings(
    conn: AsyncConnection, stream: EventStream, changes: ChatSettingsUpdate
) -> ChatSettingsOut:
    row = await repo.get_settings(conn, stream.event_id)
    current = _settings_of(row)
    wanted = ChatSettingsOut(
        slow_mode_seconds=current.slow_mode_seconds
        if changes.slow_mode_seconds is None
        else changes.slow_mode_seconds,
        closed=current.closed if changes.closed is None else changes.closed,
    )
    if wanted != current:
        await repo.save_settings(
            conn, stream.event_id, wanted.slow_mode_seconds, wanted.closed, exists=row is not None
        )
        stream.emit(
            ChatSettingsChanged(
                event_id=stream.event_id, slow_mode_seconds=wanted.slow_mode_seconds, closed=wanted.closed
            )
        )
    return wanted


# -- live view ------------------------------------------------------------------------------------------


async def live_state(conn: AsyncConnection, event_id: int) -> dict[str, Any]:
    """The chat part of the live snapshot: recent messages of both channels and the settings."""
    chat = await repo.latest_messages(conn, event_id, "chat", LIVE_CHAT)
    announcements = await repo.latest_messages(conn, event_id, "announcements", LIVE_ANNOUNCEMENTS)
    settings = await read_settings(conn, event_id)
    return {
        "chat": [message_out(r).model_dump(mode="json") for r in reversed(chat)],
        "announcements": [message_out(r).model_dump(mode="json") for r in reversed(announcements)],
        "chat_settings": settings.model_dump(mode="json"),
    }
