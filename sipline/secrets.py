"""Key material: the installation secret, password encryption at rest, token hashing.

Passwords are encrypted (not hashed) because the registrar must derive digest HA1 values for
whatever realm the project has, including after a change of domain. API tokens are only ever
compared, so only their SHA-256 is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


def load_secret_key(configured: str | None, data_dir: Path) -> bytes:
    """Return 32 bytes of key material: SIPLINE_SECRET_KEY, else a key file made on first use."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    return hashlib.sha256(path.read_text().strip().encode()).digest()


def derive_key(master: bytes, purpose: str) -> bytes:
    """A separate key per purpose, so a nonce key never doubles as an encryption key."""
    return hmac.new(master, purpose.encode(), hashlib.sha256).digest()


def key_fingerprint(master: bytes) -> str:
    """Names a secret key without revealing it: stored with the data to catch a node with another key."""
    return derive_key(master, "key-fingerprint").hex()[:16]


class PasswordBox:
    """Symmetric encryption for endpoint passwords (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, master: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(master, "password-encryption")))

    def seal(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode()

    def can_open(self, sealed: str) -> bool:
        try:
            self._fernet.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:  # wrong SIPLINE_SECRET_KEY: say so, never show the data
            raise RuntimeError("cannot decrypt a stored password: is SIPLINE_SECRET_KEY right?") from exc


TOKEN_PREFIX = "PT"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_hex(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
