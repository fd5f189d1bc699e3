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
    # Live lane: handed to this deployment's live hubs (and, without Kafka, to the durable consumers).
    sa.Column("published_at", UTCDateTime, nullable=True),
    # Stream lane: written to Kafka. Without Kafka it is set together with published_at.
    sa.Column("streamed_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("aggregate_type", "aggregate_id", "sequence", name="uq_outbox_stream_position"),
    # Partial: only rows still waiting in a lane are indexed, so marking a row done removes it from the
    # lane's index instead of writing a new entry, and the relay's read touches nothing already done.
    sa.Index(
        "ix_outbox_unpublished",
        "published_at",
        "id",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
    sa.Index(
        "ix_outbox_unstreamed",
        "streamed_at",
        "id",
        postgresql_where=sa.text("streamed_at IS NULL"),
        sqlite_where=sa.text("streamed_at IS NULL"),
    ),
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
