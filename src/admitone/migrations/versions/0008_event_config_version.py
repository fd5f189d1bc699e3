"""event configuration version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_streams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_version", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("event_streams", schema=None) as batch_op:
        batch_op.drop_column("config_version")
