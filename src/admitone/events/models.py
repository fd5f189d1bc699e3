"""Venues with their seat maps, events, ticket types and quotas."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

venues = sa.Table(
    "venues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organizer_id", sa.Integer, sa.ForeignKey("organizers.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sections = sa.Table(
    "sections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.UniqueConstraint("venue_id", "name"),
)

seats = sa.Table(
    "seats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("section_id", sa.Integer, sa.ForeignKey("sections.id"), nullable=False, index=True),
    sa.Column("row_label", sa.String(20), nullable=False),
    sa.Column("row_ordinal", sa.Integer, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("label", sa.String(80), nullable=False),
    sa.Column("x", sa.Float, nullable=False),
    sa.Column("y", sa.Float, nullable=False),
    sa.Column("category", sa.String(50), nullable=False),
    sa.UniqueConstraint("section_id", "row_label", "number"),
    sa.Index("ix_seats_venue", "venue_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organizer_id", sa.Integer, sa.ForeignKey("organizers.id"), nullable=False, index=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("sales_open_at", UTCDateTime, nullable=True),
    sa.Column("sales_close_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# One row per event: its stream position. Every change to an event's inventory updates this row first,
# which serialises writers of one event across all processes and numbers its domain events.
event_streams = sa.Table(
    "event_streams",
    metadata,
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    # Bumped by every change to the event's row, its ticket types or their quota links, in the changing
    # transaction: hold writers cache that configuration and reload it when the number moves.
    sa.Column("config_version", sa.BigInteger, nullable=False, server_default="0"),
)

quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sold", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("held >= 0 AND sold >= 0", name="counts_not_negative"),
    sa.CheckConstraint("held + sold <= capacity", name="within_capacity"),
)

ticket_types = sa.Table(
    "ticket_types",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # admission | seated
    sa.Column("category", sa.String(50), nullable=True),  # seated: the seat price category it prices
    sa.Column("price_minor", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("min_per_order", sa.Integer, nullable=False),
    sa.Column("max_per_order", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("price_minor >= 0", name="price_not_negative"),
)

ticket_type_quotas = sa.Table(
    "ticket_type_quotas",
    metadata,
    sa.Column("ticket_type_id", sa.Integer, sa.ForeignKey("ticket_types.id"), primary_key=True),
    sa.Column("quota_id", sa.Integer, sa.ForeignKey("quotas.id"), primary_key=True),
)
