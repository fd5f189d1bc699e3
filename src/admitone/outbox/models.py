"""The outbox: domain events written in the same transaction as the change they describe."""

import sqlalchemy as sa

from admitone.core.db import UTCDateTime, metadata

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("aggregate_type", sa.String(32), nullable=False),
    sa.Column("aggregate_id", sa.Integer, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.UniqueConstraint("aggregate_type", "aggregate_id", "sequence", name="uq_outbox_stream_position"),
)

# How far each relay lane has delivered each aggregate's stream: the last sequence it published.
# Sequences are gap-free per aggregate and committed in order (writers hold the event's lock to commit),
# so one number per aggregate says which rows are done; publishing a batch updates a row per aggregate
# instead of every outbox row of the batch (no index covers ``sequence``, so those updates are HOT).
outbox_lanes = sa.Table(
    "outbox_lanes",
    metadata,
    sa.Column("lane", sa.String(16), primary_key=True),
    sa.Column("aggregate_type", sa.String(32), primary_key=True),
    sa.Column("aggregate_id", sa.Integer, primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Where each durable consumer of the event stream stands, per aggregate: the last sequence it applied.
# Updated in the same transaction as the consumer's own writes, so a redelivered event is skipped and a
# crash loses neither the effect nor the position without the other.
consumer_positions = sa.Table(
    "consumer_positions",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("aggregate_type", sa.String(32), primary_key=True),
    sa.Column("aggregate_id", sa.Integer, primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
