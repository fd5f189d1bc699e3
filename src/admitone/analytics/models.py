"""Projection tables of the ``analytics`` stream consumer. Written only by the consumer.

Counters are plain integers, bumped with ``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``; the
runner applies each domain event once, in the same transaction as these writes, so the numbers are exact.
"""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

# The activity counters kept per event (totals) and per event and minute (history).
COUNTERS = (
    "tickets_sold",
    "tickets_refunded",
    "revenue_minor",
    "refunded_minor",
    "holds_placed",
    "holds_released",
    "holds_expired",
    "orders_placed",
    "orders_paid",
    "orders_cancelled",
    "orders_refunded",
    "orders_expired",
    "chat_messages",
    "check_ins",
)


def _counters() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in COUNTERS]


# One row per ticketing event: totals since the first domain event.
analytics_events = sa.Table(
    "analytics_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("organizer_id", sa.Integer, nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    *_counters(),
    sa.Column("last_paid_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# One row per event and minute with any activity; the minute is the domain event's time, floored.
analytics_minutes = sa.Table(
    "analytics_minutes",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("bucket", UTCDateTime, primary_key=True),
    *_counters(),
)

# The latest state of each quota, as ``inventory.changed`` reported it.
analytics_quotas = sa.Table(
    "analytics_quotas",
    metadata,
    sa.Column("quota_id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, nullable=False, index=True),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("held", sa.Integer, nullable=False),
    sa.Column("sold", sa.Integer, nullable=False),
)

# Seats that are held or sold (free seats have no row), with the section they belong to.
analytics_seats = sa.Table(
    "analytics_seats",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("seat_id", sa.Integer, primary_key=True),
    sa.Column("section_id", sa.Integer, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
)

# Tickets sold (issued and not refunded) per ticket type.
analytics_ticket_types = sa.Table(
    "analytics_ticket_types",
    metadata,
    sa.Column("ticket_type_id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, nullable=False, index=True),
    sa.Column("sold", sa.Integer, nullable=False),
)

# Tickets issued per order and ticket type, so that a refund can take them back out of the counts.
analytics_order_lines = sa.Table(
    "analytics_order_lines",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("ticket_type_id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)
