"""the stream lane of the outbox, positions of the event-stream consumers

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import admitone.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("streamed_at", admitone.core.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_unstreamed", ["streamed_at", "id"])
    # Everything published so far counts as streamed: a deployment that turns Kafka on later starts there.
    op.execute("UPDATE outbox SET streamed_at = published_at")
    op.create_table(
        "consumer_positions",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("aggregate_type", sa.String(32), nullable=False),
        sa.Column("aggregate_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "consumer", "aggregate_type", "aggregate_id", name=op.f("pk_consumer_positions")
        ),
    )


def downgrade() -> None:
    op.drop_table("consumer_positions")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_unstreamed")
        batch.drop_column("streamed_at")
