"""What the API and the SIP server share in one process: settings, the database, key material."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .secrets import PasswordBox, derive_key, key_fingerprint, load_secret_key
from .store.credentials import Credentials
from .store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: PasswordBox
    credentials: Credentials
    nonce_key: bytes
    flow_key: bytes  # signs the flow tokens nodes relay by
    key_fingerprint: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        master = load_secret_key(settings.secret_key, settings.data_dir)
        box = PasswordBox(master)
        return cls(
            settings=settings,
            # Each worker has a pool of its own: together they stay within PostgreSQL's default 100.
            db=Database(settings.resolved_database_url, pool_size=max(4, 20 // settings.workers)),
            box=box,
            credentials=Credentials(box, settings.sip_domain),
            nonce_key=derive_key(master, "sip-digest-nonce"),
            flow_key=derive_key(master, "sip-flow-token"),
            key_fingerprint=key_fingerprint(master),
        )
