"""ticket check-ins

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import admitone.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("checked_in_at", admitone.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("checked_in_by", sa.String(length=50), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tickets_event_id_checked_in_at"), ["event_id", "checked_in_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_event_id_checked_in_at"))
        batch_op.drop_column("checked_in_by")
        batch_op.drop_column("checked_in_at")
