"""analytics projections

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import admitone.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    return [sa.Column(name, sa.BigInteger(), server_default="0", nullable=False) for name in COUNTERS]


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_counters(),
        sa.Column("last_paid_at", admitone.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_analytics_events")),
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_events_organizer_id"), ["organizer_id"], unique=False)
    op.create_table(
        "analytics_minutes",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("bucket", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("event_id", "bucket", name=op.f("pk_analytics_minutes")),
    )
    op.create_table(
        "analytics_quotas",
        sa.Column("quota_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("quota_id", name=op.f("pk_analytics_quotas")),
    )
    with op.batch_alter_table("analytics_quotas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_quotas_event_id"), ["event_id"], unique=False)
    op.create_table(
        "analytics_seats",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "seat_id", name=op.f("pk_analytics_seats")),
    )
    op.create_table(
        "analytics_ticket_types",
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_type_id", name=op.f("pk_analytics_ticket_types")),
    )
    with op.batch_alter_table("analytics_ticket_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_ticket_types_event_id"), ["event_id"], unique=False)
    op.create_table(
        "analytics_order_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "ticket_type_id", name=op.f("pk_analytics_order_lines")),
    )


def downgrade() -> None:
    op.drop_table("analytics_order_lines")
    with op.batch_alter_table("analytics_ticket_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_ticket_types_event_id"))
    op.drop_table("analytics_ticket_types")
    op.drop_table("analytics_seats")
    with op.batch_alter_table("analytics_quotas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_quotas_event_id"))
    op.drop_table("analytics_quotas")
    op.drop_table("analytics_minutes")
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_events_organizer_id"))
    op.drop_table("analytics_events")
