"""The event chat: who joined it, what was said, and how the organizer has set it up."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

# One row per person who joined an event's chat. The token is shown once and stored hashed. Names are
# unique per event regardless of case and width: ``name_key`` is the SHA-256 of the NFKC-normalised,
# case-folded name (a digest, because normalising and case-folding can make a name many times longer).
chat_users = sa.Table(
    "chat_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("muted_until", UTCDateTime, nullable=True),
    sa.Column("banned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("event_id", "name_key", name="uq_chat_users_event_name"),
)

# Messages of both channels: 'chat' (by chat users) and 'announcements' (by the organizer, user_id NULL).
# Deleting a message only stamps ``deleted_at``; it then disappears from history and the live view.
chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("chat_users.id"), nullable=True),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("channel IN ('chat', 'announcements')", name="known_channel"),
    sa.Index("ix_chat_messages_history", "event_id", "channel", "id"),
    sa.Index("ix_chat_messages_user_recent", "user_id", "posted_at"),
)

# Per-event chat settings; an event without a row has the defaults.
chat_settings = sa.Table(
    "chat_settings",
    metadata,
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("slow_mode_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("slow_mode_seconds >= 0", name="slow_mode_not_negative"),
)
