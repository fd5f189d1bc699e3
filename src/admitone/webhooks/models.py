"""Webhook endpoints, one delivery per (endpoint, domain event), and every attempt to deliver it."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organizer_id", sa.Integer, sa.ForeignKey("organizers.id"), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("description", sa.String(500), nullable=False, server_default=""),
    # Domain event types (``order.paid``) or ``["*"]`` for all of them.
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # Kept in clear: the server needs it to sign. Shown to the organizer only on creation and rotation.
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("organizer_id", sa.Integer, nullable=False),
    sa.Column("event_uuid", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    # The envelope as sent (JSON), so every attempt sends the same body.
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # Attempts in all, and attempts in the current round (a redelivery starts a new round).
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("round_attempts", sa.Integer, nullable=False, server_default="0"),
    # When a pending delivery is due; while a sender holds it, the end of its lease.
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("claim", sa.String(32), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="known_status"),
    sa.UniqueConstraint("endpoint_id", "event_uuid", name="uq_webhook_deliveries_endpoint_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    sa.Index("ix_webhook_deliveries_organizer_status", "organizer_id", "status", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("webhook_deliveries.id"),
        nullable=False,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("attempted_at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)
