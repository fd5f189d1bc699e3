"""relay lanes track one position per aggregate instead of a timestamp per outbox row

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import admitone.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lane name -> the outbox column that recorded it before this revision
LANES = (("live", "published_at", "ix_outbox_unpublished"), ("stream", "streamed_at", "ix_outbox_unstreamed"))


def upgrade() -> None:
    op.create_table(
        "outbox_lanes",
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("aggregate_type", sa.String(32), nullable=False),
        sa.Column("aggregate_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lane", "aggregate_type", "aggregate_id", name=op.f("pk_outbox_lanes")),
    )
    for lane, column, index in LANES:
        # A lane's position in an aggregate is the row before its first row still waiting (or its last
        # row when none waits). Rows after the first waiting one that were already published are
        # published again: delivery is at least once, and consumers skip what they have seen.
        op.execute(
            sa.text(
                f"""
                INSERT INTO outbox_lanes (lane, aggregate_type, aggregate_id, sequence, updated_at)
                SELECT :lane, aggregate_type, aggregate_id,
                       coalesce(min(CASE WHEN {column} IS NULL THEN sequence END) - 1, max(sequence)),
                       CURRENT_TIMESTAMP
                FROM outbox GROUP BY aggregate_type, aggregate_id
                """
            ).bindparams(lane=lane)
        )
        op.drop_index(index, table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("published_at")
        batch.drop_column("streamed_at")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for _, column, _ in LANES:
            batch.add_column(sa.Column(column, admitone.core.db.UTCDateTime(timezone=True), nullable=True))
    for lane, column, index in LANES:
        op.execute(
            sa.text(
                f"""
                UPDATE outbox SET {column} = CURRENT_TIMESTAMP
                WHERE sequence <= (SELECT l.sequence FROM outbox_lanes l
                                   WHERE l.lane = :lane AND l.aggregate_type = outbox.aggregate_type
                                     AND l.aggregate_id = outbox.aggregate_id)
                """
            ).bindparams(lane=lane)
        )
        op.create_index(
            index,
            "outbox",
            [column, "id"],
            postgresql_where=sa.text(f"{column} IS NULL"),
            sqlite_where=sa.text(f"{column} IS NULL"),
        )
    op.drop_table("outbox_lanes")
