"""Holds and seat claims: the tables the inventory invariants live in."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

# A hold reserves inventory. Its status moves active -> ordered -> sold, or ends released/expired.
# ``expires_at`` is the current deadline: the hold's, then the unpaid order's; NULL once sold.
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("total_minor", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Index("ix_holds_event_status_expires", "event_id", "status", "expires_at"),
)

hold_lines = sa.Table(
    "hold_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hold_id", sa.String(64), sa.ForeignKey("holds.id"), nullable=False, index=True),
    sa.Column("ticket_type_id", sa.Integer, sa.ForeignKey("ticket_types.id"), nullable=False),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), nullable=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_minor", sa.Integer, nullable=False),
)

# A row here means the seat is taken for the event; the primary key makes a second claim impossible.
seat_claims = sa.Table(
    "seat_claims",
    metadata,
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), primary_key=True),
    sa.Column("hold_id", sa.String(64), sa.ForeignKey("holds.id"), nullable=False, index=True),
    sa.Column("state", sa.String(8), nullable=False),  # held | sold
    sa.Column("expires_at", UTCDateTime, nullable=True),
)
