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
    # Everything published so far counts as streamed: a deployment that turns Kafka on later starts there.
    op.execute("UPDATE outbox SET streamed_at = published_at")
    # The lanes' indexes hold only the rows still waiting (partial indexes, on both databases).
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    for lane, name in (("published_at", "ix_outbox_unpublished"), ("streamed_at", "ix_outbox_unstreamed")):
        op.create_index(
            name,
            "outbox",
            [lane, "id"],
            postgresql_where=sa.text(f"{lane} IS NULL"),
            sqlite_where=sa.text(f"{lane} IS NULL"),
        )
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
    op.drop_index("ix_outbox_unstreamed", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("streamed_at")
