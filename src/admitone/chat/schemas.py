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
    user_id: int
    name: str
    chat_token: str = Field(description="Send it as `X-Chat-Token` to post. Shown only once.")


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
    id: int
    event_id: int
    channel: Channel
    author: str
    text: str = Field(description="Plain text; display it as text, never as HTML.")
    posted_at: dt.datetime


class MessagePage(BaseModel):
    items: list[ChatMessageOut] = Field(description="Oldest first, newest last.")
    next_before_id: int | None = Field(
        description="Pass as `before_id` for the older page; null when there is none."
    )


class MessageDeleted(BaseModel):
    deleted: int


class MuteRequest(Schema):
    minutes: Annotated[int, Field(ge=1, le=MAX_MUTE_MINUTES, description="1 minute to 7 days.")]


class ChatUserOut(BaseModel):
    user_id: int
    name: str
    muted_until: dt.datetime | None
    banned: bool


class ChatSettingsUpdate(Schema):
    slow_mode_seconds: (
        Annotated[int, Field(ge=0, le=MAX_SLOW_MODE_SECONDS, description="0 turns slow mode off.")] | None
    ) = Field(None, description="Least time between two messages of one person, in seconds.")
    closed: bool | None = Field(None, description="A closed chat can be read but not written to.")


class ChatSettingsOut(BaseModel):
    slow_mode_seconds: int
    closed: bool


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
