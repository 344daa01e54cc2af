"""Installation facts kept with the data: the fingerprint of the secret key that sealed it.

A node started with another SIPLINE_SECRET_KEY could not open the sealed passwords (it would fail
on the first rename, long after starting); with the fingerprint stored, it refuses to start.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sipline_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sipline_meta")
