"""Call records: one row per call leg, for the LaML Calls resource.

The To/From indexes hold the first 200 characters of the address (sipline.store.schema.ADDRESS_PREFIX):
PostgreSQL's B-tree refuses longer entries, and queries use the very same expression.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("parent_call_sid", sa.String(length=34), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("from_address", sa.Text(), nullable=False),
        sa.Column("to_address", sa.Text(), nullable=False),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=False),
        sa.Column("answered_time", sa.Float(), nullable=True),
        sa.Column("end_time", sa.Float(), nullable=True),
        sa.Column("sip_call_id", sa.Text(), nullable=True),
        sa.Column("sip_result_code", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("endpoint_id", sa.String(length=36), nullable=True),
        sa.Column("date_created", sa.Float(), nullable=False),
        sa.Column("date_updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_calls_project_id"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_calls")),
        sa.UniqueConstraint("sid", name=op.f("uq_calls_sid")),
    )
    op.create_index(op.f("ix_calls_project_id_seq"), "calls", ["project_id", "seq"])
    op.create_index(op.f("ix_calls_project_id_parent_call_sid_seq"), "calls", ["project_id", "parent_call_sid", "seq"])
    op.create_index(op.f("ix_calls_status_project_id_seq"), "calls", ["status", "project_id", "seq"])
    op.create_index(op.f("ix_calls_project_id_start_time"), "calls", ["project_id", "start_time"])
    for column in ("to_address", "from_address"):
        op.create_index(
            op.f(f"ix_calls_project_id_{column}"), "calls", ["project_id", sa.text(f"substr({column}, 1, 200)"), "seq"]
        )


def downgrade() -> None:
    op.drop_table("calls")  # its indexes go with it
