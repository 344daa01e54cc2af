"""Projects' signing keys: the HMAC key that signs requests to the project's URLs.

SignalWire gives every project a signing key (its "auth token" for X-Twilio-Signature); the
webhooks client signs every request with it. Existing projects each get a fresh random key here.

Revision ID: 0006
Revises: 0005
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("signing_key", sa.String(64)))
    projects = sa.table("projects", sa.column("id", sa.String), sa.column("signing_key", sa.String))
    conn = op.get_bind()
    for (project_id,) in conn.execute(sa.select(projects.c.id)).all():
        key = "PSK_" + secrets.token_hex(20)  # as sipline.store.projects.new_signing_key
        conn.execute(projects.update().where(projects.c.id == project_id).values(signing_key=key))
    with op.batch_alter_table("projects") as batch:
        batch.alter_column("signing_key", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("signing_key")
