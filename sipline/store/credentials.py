"""Endpoint credentials as stored: the sealed password and the digest HA1 values for its realm.

HA1 = H(username:realm:password) depends on the realm (the project's SIP domain), so whenever the
username, the password or the domain changes, the HA1 columns are derived again from the password.
"""

from __future__ import annotations

from sipline.domain.profile import sip_domain
from sipline.secrets import PasswordBox
from sipline.sip.digest import compute_ha1


class Credentials:
    def __init__(self, box: PasswordBox, base_domain: str) -> None:
        self._box = box
        self.base_domain = base_domain

    def realm(self, domain_identifier: str) -> str:
        return sip_domain(domain_identifier, self.base_domain)

    def columns(self, username: str, password: str, domain_identifier: str) -> dict[str, str]:
        realm = self.realm(domain_identifier)
        return {
            "password_sealed": self._box.seal(password),
            "ha1_md5": compute_ha1(username, realm, password, "MD5"),
            "ha1_sha256": compute_ha1(username, realm, password, "SHA-256"),
        }

    def rederive(self, sealed: str, username: str, domain_identifier: str) -> dict[str, str]:
        realm = self.realm(domain_identifier)
        password = self._box.open(sealed)
        return {
            "ha1_md5": compute_ha1(username, realm, password, "MD5"),
            "ha1_sha256": compute_ha1(username, realm, password, "SHA-256"),
        }
