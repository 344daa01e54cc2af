"""Tables, as SQLAlchemy Core: the API and the registrar run plain statements on hot paths."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
_SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_identifier", sa.String(63), nullable=False, unique=True),
    sa.Column("default_codecs", sa.JSON, nullable=False),
    sa.Column("default_ciphers", sa.JSON, nullable=False),
    sa.Column("default_encryption", sa.String(16), nullable=False),
    sa.Column("default_send_as", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    # The HMAC key that signs requests to the project's URLs (X-SignalWire-Signature, X-Twilio-Signature).
    sa.Column("signing_key", sa.String(64), nullable=False),
)

# The SIP profile lives on the project row: these columns.
PROFILE_COLUMNS = ("domain_identifier", "default_codecs", "default_ciphers", "default_encryption", "default_send_as")

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

sip_endpoints = sa.Table(
    "sip_endpoints",
    metadata,
    # seq orders lists and backs the keyset page tokens; id is the public identifier.
    sa.Column("seq", _SeqType, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("password_sealed", sa.Text, nullable=False),
    sa.Column("ha1_md5", sa.String(32), nullable=False),
    sa.Column("ha1_sha256", sa.String(64), nullable=False),
    sa.Column("caller_id", sa.String(255)),
    sa.Column("send_as", sa.String(32)),
    sa.Column("ciphers", sa.JSON),
    sa.Column("codecs", sa.JSON),
    sa.Column("encryption", sa.String(16), nullable=False),
    sa.Column("call_handler", sa.String(32)),
    sa.Column("call_request_url", sa.Text),
    sa.Column("call_request_method", sa.String(8)),
    sa.Column("call_fallback_url", sa.Text),
    sa.Column("call_fallback_method", sa.String(8)),
    sa.Column("call_status_callback_url", sa.Text),
    sa.Column("call_status_callback_method", sa.String(8)),
    sa.Column("call_laml_application_id", sa.String(255)),
    sa.Column("call_dialogflow_agent_id", sa.String(255)),
    sa.Column("call_relay_topic", sa.String(255)),
    sa.Column("call_relay_topic_status_callback_url", sa.Text),
    sa.Column("call_relay_context", sa.String(255)),
    sa.Column("call_relay_context_status_callback_url", sa.Text),
    sa.Column("call_relay_application", sa.String(255)),
    sa.Column("call_video_room_id", sa.String(36)),
    sa.Column("call_flow_id", sa.String(36)),
    sa.Column("call_flow_version", sa.String(32)),
    sa.Column("call_ai_agent_id", sa.String(36)),
    sa.Column("call_relay_script_url", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "username"),
    sa.Index(None, "project_id", "seq"),
)

sip_bindings = sa.Table(
    "sip_bindings",
    metadata,
    sa.Column("id", _SeqType, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.String(36), sa.ForeignKey("sip_endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("contact", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("registered_at", sa.Float, nullable=False),
    sa.Column("call_id", sa.Text, nullable=False),
    sa.Column("cseq", sa.BigInteger, nullable=False),
    sa.Column("q", sa.Float),
    sa.Column("transport", sa.String(8), nullable=False),
    sa.Column("source_host", sa.String(64), nullable=False),
    sa.Column("source_port", sa.Integer, nullable=False),
    sa.Column("user_agent", sa.Text),
    # The flow the device registered on: the node holding it, and (TCP, TLS) which connection.
    sa.Column("node_id", sa.String(80)),
    sa.Column("flow_id", sa.String(40)),
    sa.Index(None, "endpoint_id"),
    sa.Index(None, "expires_at"),
)

# Installation facts (the secret key's fingerprint), one row per name.
sipline_meta = sa.Table(
    "sipline_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The To/From indexes hold a prefix of the address: PostgreSQL's B-tree refuses entries over about
# 2.7 kB, and a SIP URI may be as long as a message allows (64 KiB). A filter matches the prefix
# (served by the index), then the whole value. Migration 0004 writes the same expression.
ADDRESS_PREFIX = 200


def address_prefix(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    # Literal arguments, never bound ones: SQLite uses an expression index only for the very same text.
    return sa.func.substr(column, sa.literal_column("1"), sa.literal_column(str(ADDRESS_PREFIX)))


# One row per call leg (the Calls resource of the LaML API); written by the call engine.
calls = sa.Table(
    "calls",
    metadata,
    # seq orders lists (newest first) and backs the keyset page tokens; sid is the public identifier.
    sa.Column("seq", _SeqType, primary_key=True, autoincrement=True),
    sa.Column("sid", sa.String(34), nullable=False, unique=True),
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("parent_call_sid", sa.String(34)),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("from_address", sa.Text, nullable=False),
    sa.Column("to_address", sa.Text, nullable=False),
    sa.Column("caller_name", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("answered_time", sa.Float),
    sa.Column("end_time", sa.Float),
    sa.Column("sip_call_id", sa.Text),
    sa.Column("sip_result_code", sa.Integer),
    sa.Column("error_code", sa.Integer),
    sa.Column("error_message", sa.Text),  # why the call failed, in words
    # The endpoint that placed or received the leg; no foreign key: records outlive endpoints.
    sa.Column("endpoint_id", sa.String(36)),
    sa.Column("node_id", sa.String(80)),  # the SIP node running the leg (added by migration 0005)
    sa.Column("date_created", sa.Float, nullable=False),
    sa.Column("date_updated", sa.Float, nullable=False),
    sa.Index(None, "project_id", "seq"),
    sa.Index(None, "project_id", "parent_call_sid", "seq"),
    # status first: it also finds the unfinished calls of every project (close_unfinished at start).
    sa.Index(None, "status", "project_id", "seq"),
    sa.Index(None, "project_id", "start_time"),
)
sa.Index("ix_calls_project_id_to_address", calls.c.project_id, address_prefix(calls.c.to_address), calls.c.seq)
sa.Index("ix_calls_project_id_from_address", calls.c.project_id, address_prefix(calls.c.from_address), calls.c.seq)


# The SIP nodes of the installation (processes running the SIP server), with the address the others
# relay through; a node updates `seen_at` while it runs, and one unseen for long is gone.
sip_nodes = sa.Table(
    "sip_nodes",
    metadata,
    sa.Column("node_id", sa.String(80), primary_key=True),  # "host:port" of its UDP socket
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("udp_port", sa.Integer, nullable=False),
    sa.Column("tcp_port", sa.Integer, nullable=False),
    sa.Column("tls_port", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
)
