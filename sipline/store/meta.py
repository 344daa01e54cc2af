"""Installation facts kept with the data, and the startup check that the secret key matches it."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from .db import savepoint
from .schema import sip_endpoints, sipline_meta

KEY_FINGERPRINT = "secret_key_fingerprint"


def get(conn: Connection, name: str) -> str | None:
    return conn.execute(sa.select(sipline_meta.c.value).where(sipline_meta.c.name == name)).scalar()


def put_once(conn: Connection, name: str, value: str) -> str:
    """Record a value unless one is recorded already (by a node starting at the same moment,
    say); returns the value that stands."""
    try:
        with savepoint(conn):
            conn.execute(sipline_meta.insert().values(name=name, value=value))
    except IntegrityError:
        pass
    stored = get(conn, name)
    assert stored is not None
    return stored


def claim_secret_key(conn: Connection, fingerprint: str, can_open: Callable[[str], bool]) -> str | None:
    """None when this key is the installation's; else why not, in one line.

    The first node to start records its key's fingerprint. A database from before fingerprints
    were kept is checked by opening one sealed password with the key, then recorded.
    """
    stored = get(conn, KEY_FINGERPRINT)
    if stored is None:
        sealed = conn.execute(sa.select(sip_endpoints.c.password_sealed).limit(1)).scalar()
        if sealed is not None and not can_open(sealed):
            return (
                "the secret key cannot open the passwords stored in this database: "
                "give every node the same SIPLINE_SECRET_KEY"
            )
        stored = put_once(conn, KEY_FINGERPRINT, fingerprint)
    if stored == fingerprint:
        return None
    return (
        f"the secret key (fingerprint {fingerprint}) is not the one this database was created with "
        f"(fingerprint {stored}): give every node the same SIPLINE_SECRET_KEY"
    )
