"""Orders, their lines, payments and tickets."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("organizer_id", sa.Integer, sa.ForeignKey("organizers.id"), nullable=False, index=True),
    sa.Column("hold_id", sa.String(64), sa.ForeignKey("holds.id"), nullable=False, unique=True),
    sa.Column("buyer_name", sa.String(200), nullable=False),
    sa.Column("buyer_email", sa.String(320), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("total_minor", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_provider", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("paid_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Index("ix_orders_status_expires", "status", "expires_at"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("ticket_type_id", sa.Integer, sa.ForeignKey("ticket_types.id"), nullable=False),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), nullable=True),
    sa.Column("description", sa.String(300), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_minor", sa.Integer, nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("amount_minor", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending | succeeded | failed | refunded
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("ticket_type_id", sa.Integer, sa.ForeignKey("ticket_types.id"), nullable=False),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), nullable=True),
    sa.Column("status", sa.String(12), nullable=False),  # valid | void
    sa.Column("issued_at", UTCDateTime, nullable=False),
    # Set once, by the first successful scan at the door (checkin/).
    sa.Column("checked_in_at", UTCDateTime, nullable=True),
    sa.Column("checked_in_by", sa.String(50), nullable=True),
    sa.Index("ix_tickets_event_id_checked_in_at", "event_id", "checked_in_at"),
)
