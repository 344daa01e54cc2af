"""Flows and nodes: which node (and which of its connections) reaches each registered device.

A device behind a NAT is reached only through the flow it registered on (RFC 5626): the TCP or TLS
connection it opened, or the UDP socket it sent to. With several nodes, a call placed on one node
reaches a device held by another through that node, which `sip_nodes` lists with its address.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_bindings") as batch:
        batch.add_column(sa.Column("node_id", sa.String(80)))
        batch.add_column(sa.Column("flow_id", sa.String(40)))
    op.create_table(
        "sip_nodes",
        sa.Column("node_id", sa.String(80), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("udp_port", sa.Integer, nullable=False),
        sa.Column("tcp_port", sa.Integer, nullable=False),
        sa.Column("tls_port", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    # Which node runs each call leg: a node restarting after a crash closes its own records only.
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("node_id", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("node_id")
    op.drop_table("sip_nodes")
    with op.batch_alter_table("sip_bindings") as batch:
        batch.drop_column("flow_id")
        batch.drop_column("node_id")
