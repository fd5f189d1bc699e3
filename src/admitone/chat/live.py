"""The chat in the live view of an event: handlers that turn chat domain events into live updates.

Chat shares the event's live socket with availability. The snapshot carries

* ``chat``: the last 50 messages of the chat channel, oldest first,
* ``announcements``: the last 10 announcements, oldest first,
* ``chat_settings``: ``{"slow_mode_seconds": int, "closed": bool}``,

and each ``changes`` message lists chat updates under ``events``, in stream order:

* ``{"kind": "chat.message", "message": {id, event_id, channel, author, text, posted_at}}``
* ``{"kind": "chat.deleted", "message_id": int}``
* ``{"kind": "chat.settings", "settings": {"slow_mode_seconds": int, "closed": bool}}``

Message text is plain text: clients must insert it as text (``textContent``), never as HTML.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.chat import service
from admitone.chat.schemas import ChatMessageDeleted, ChatMessagePosted, ChatSettingsChanged
from admitone.live.hub import Channel, LiveHub
from admitone.live.service import SnapshotPart
from admitone.outbox.contracts import Envelope

KEEP = {"chat": service.LIVE_CHAT, "announcements": service.LIVE_ANNOUNCEMENTS}


async def snapshot(conn: AsyncConnection, event_id: int) -> dict[str, Any]:
    """The chat part of an event's live snapshot, read in the snapshot's transaction."""
    return await service.live_state(conn, event_id)


def _message(env: Envelope) -> dict[str, Any]:
    p = env.payload
    return {
        "id": p["message_id"],
        "event_id": env.aggregate_id,
        "channel": p["channel"],
        "author": p["author"],
        "text": p["text"],
        "posted_at": p["posted_at"],
    }


def on_message_posted(channel: Channel, env: Envelope) -> dict[str, Any] | None:
    message = _message(env)
    kept = KEEP.get(message["channel"])
    if kept is None:
        return None
    recent: list[dict[str, Any]] = channel.extra.setdefault(message["channel"], [])
    recent.append(message)
    del recent[:-kept]
    return {"kind": "chat.message", "message": message}


def on_message_deleted(channel: Channel, env: Envelope) -> dict[str, Any] | None:
    message_id = env.payload["message_id"]
    for name in KEEP:
        recent = channel.extra.get(name)
        if recent is not None:
            channel.extra[name] = [m for m in recent if m["id"] != message_id]
    return {"kind": "chat.deleted", "message_id": message_id}


def on_settings_changed(channel: Channel, env: Envelope) -> dict[str, Any] | None:
    settings = {
        "slow_mode_seconds": env.payload["slow_mode_seconds"],
        "closed": env.payload["closed"],
    }
    channel.extra["chat_settings"] = settings
    return {"kind": "chat.settings", "settings": settings}


def install(hub: LiveHub) -> SnapshotPart:
    """Registers the chat's live handlers on ``hub``; returns the chat part of the snapshot, which the
    hub's snapshot loader must include so that new subscribers see the chat as it is."""
    hub.on(ChatMessagePosted.TYPE, on_message_posted)
    hub.on(ChatMessageDeleted.TYPE, on_message_deleted)
    hub.on(ChatSettingsChanged.TYPE, on_settings_changed)
    return snapshot
