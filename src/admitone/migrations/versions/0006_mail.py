"""order confirmation e-mails

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import admitone.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.Column("claimed_at", admitone.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", admitone.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", admitone.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", admitone.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_mail_jobs_known_status"),
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_mail_jobs_event_id_events")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_mail_jobs_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["organizer_id"], ["organizers.id"], name=op.f("fk_mail_jobs_organizer_id_organizers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_jobs")),
        sa.UniqueConstraint("kind", "order_id", name="uq_mail_jobs_kind_order"),
    )
    with op.batch_alter_table("mail_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_mail_jobs_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_mail_jobs_event_status", ["event_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_jobs_event_status")
        batch_op.drop_index("ix_mail_jobs_due")
    op.drop_table("mail_jobs")
