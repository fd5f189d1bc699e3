"""E-mail jobs: one row per message to send, written by the ``mail`` stream consumer."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

# status: pending (waiting for its next attempt) -> sending (claimed by a sender until lease_until)
#         -> sent | failed (gave up after the last attempt) | skipped (the order is no longer paid)
mail_jobs = sa.Table(
    "mail_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("organizer_id", sa.Integer, sa.ForeignKey("organizers.id"), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claim_token", sa.String(40), nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("message_id", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("kind", "order_id", name="uq_mail_jobs_kind_order"),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name="known_status"),
    sa.Index("ix_mail_jobs_due", "status", "next_attempt_at"),
    sa.Index("ix_mail_jobs_event_status", "event_id", "status", "id"),
)
