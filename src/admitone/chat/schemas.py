"""API shapes of the event chat, and the domain events it writes.

Message text is plain text. It is stored and returned exactly as sent (trimmed), never as HTML: clients
must display it as text (``textContent``), never as markup.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from admitone.core.schemas import Schema
from admitone.outbox.contracts import DomainEvent

Channel = Literal["chat", "announcements"]

MAX_NAME = 40
MAX_TEXT = 500
MAX_MUTE_MINUTES = 7 * 24 * 60
MAX_SLOW_MODE_SECONDS = 3600


def _printable_name(value: str) -> str:
    # Refuses control, format (zero-width, direction overrides) and separator characters other than the
    # space, so that two names that look the same are the same name.
    if not value.isprintable():
        raise ValueError("a chat name may contain only printable characters")
    return value


def _plain_text(value: str) -> str:
    for char in value:
        category = unicodedata.category(char)
        if (category == "Cc" and char != "\n") or category == "Cs":
            raise ValueError(
                f"control character U+{ord(char):04X} is not allowed; text may contain line breaks (\\n)"
            )
    return value


ChatName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME),
    AfterValidator(_printable_name),
]
MessageText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT),
    AfterValidator(_plain_text),
]


class ChatJoin(Schema):
    name: ChatName = Field(
        description="Display name in this event's chat, 1 to 40 printable characters, unique per event "
        "regardless of case.",
        examples=["Ada"],
    )


class ChatJoined(BaseModel):
    user_id: int = Field(
        description="Your id in this event's chat; moderators mute or ban by it.", examples=[77]
    )
    name: str = Field(description="Your display name in this event's chat.", examples=["Ada"])
    chat_token: str = Field(
        description="Send it as `X-Chat-Token` to post. Shown only once.",
        examples=["chat_b7Kq2Xz9LmP4vR8tN1cW6yDfH3sJ0aGe"],
    )


class MessageCreate(Schema):
    text: MessageText = Field(
        description="Plain text, 1 to 500 characters after trimming; line breaks allowed, other control "
        "characters refused. Stored and returned verbatim, never interpreted as HTML.",
        examples=["See you at the front!"],
    )


class AnnouncementCreate(Schema):
    text: MessageText = Field(
        description="Plain text, 1 to 500 characters, posted to the announcements channel.",
        examples=["Doors open at 19:00."],
    )


class ChatMessageOut(BaseModel):
    id: int = Field(description="The message's id; increases with time.", examples=[1024])
    event_id: int = Field(description="The event whose chat it is.", examples=[12])
    channel: Channel = Field(
        description="`chat` (buyers) or `announcements` (the organizer).", examples=["chat"]
    )
    author: str = Field(description="Display name of the author.", examples=["Ada"])
    text: str = Field(
        description="Plain text; display it as text, never as HTML.", examples=["See you at the front!"]
    )
    posted_at: dt.datetime = Field(
        description="When it was posted (UTC, RFC 3339).", examples=["2026-06-12T17:45:03Z"]
    )


class MessagePage(BaseModel):
    items: list[ChatMessageOut] = Field(description="Oldest first, newest last.")
    next_before_id: int | None = Field(
        description="Pass as `before_id` for the older page; null when there is none.", examples=[1024]
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "items": [
                        {
                            "id": 1024,
                            "event_id": 12,
                            "channel": "chat",
                            "author": "Ada",
                            "text": "See you at the front!",
                            "posted_at": "2026-06-12T17:45:03Z",
                        }
                    ],
                    "next_before_id": 1024,
                }
            ]
        }
    }


class MessageDeleted(BaseModel):
    deleted: int = Field(description="Id of the message that was deleted.", examples=[1024])


class MuteRequest(Schema):
    minutes: Annotated[
        int,
        Field(ge=1, le=MAX_MUTE_MINUTES, description="How long to mute, 1 minute to 7 days.", examples=[30]),
    ]


class ChatUserOut(BaseModel):
    user_id: int = Field(description="The chat user's id.", examples=[77])
    name: str = Field(description="Display name in the event's chat.", examples=["Ada"])
    muted_until: dt.datetime | None = Field(
        description="Posting is refused until this time (UTC); null when not muted.",
        examples=["2026-06-12T18:15:03Z"],
    )
    banned: bool = Field(
        description="A banned user can no longer post in this event's chat.", examples=[False]
    )


class ChatSettingsUpdate(Schema):
    slow_mode_seconds: (
        Annotated[int, Field(ge=0, le=MAX_SLOW_MODE_SECONDS, description="0 turns slow mode off.")] | None
    ) = Field(None, description="Least time between two messages of one person, in seconds.", examples=[10])
    closed: bool | None = Field(
        None, description="A closed chat can be read but not written to.", examples=[False]
    )


class ChatSettingsOut(BaseModel):
    slow_mode_seconds: int = Field(
        description="Least time between two messages of one person, in seconds; 0: off.", examples=[10]
    )
    closed: bool = Field(description="A closed chat can be read but not written to.", examples=[False])


# -- domain events ---------------------------------------------------------------------------------------


class ChatMessagePosted(DomainEvent):
    TYPE = "chat.message_posted"
    message_id: int
    channel: Channel
    user_id: int | None
    author: str
    text: str
    posted_at: dt.datetime


class ChatMessageDeleted(DomainEvent):
    TYPE = "chat.message_deleted"
    message_id: int


class ChatSettingsChanged(DomainEvent):
    TYPE = "chat.settings_changed"
    slow_mode_seconds: int
    closed: bool


class ChatUserJoined(DomainEvent):
    TYPE = "chat.user_joined"
    user_id: int
    name: str


class ChatUserMuted(DomainEvent):
    TYPE = "chat.user_muted"
    user_id: int
    muted_until: dt.datetime


class ChatUserBanned(DomainEvent):
    TYPE = "chat.user_banned"
    user_id: int
