"""Which project a SIP host name belongs to: `{domain_identifier}.{SIPLINE_SIP_DOMAIN}`.

Looked up in the store and remembered briefly, so that a burst of requests for one project costs
one query; a profile change (a new domain, a new default encryption) is seen within `ttl` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sipline.domain.profile import sip_domain
from sipline.sip.expiring import ExpiringCache
from sipline.store import projects
from sipline.store.db import Database

_MISSING: dict[str, Any] = {}  # cached "no such project", told apart from "not cached"


class Domains:
    def __init__(self, db: Database, base_domain: str, own_hosts: Iterable[str], *, ttl: float = 1.0) -> None:
        self.db = db
        self.base_domain = base_domain  # normalised by Settings: lower case, no trailing dot
        self._suffix = "." + base_domain
        self.own_hosts = frozenset({"localhost", base_domain, *(h.lower() for h in own_hosts)})
        self.ttl = ttl
        self._cache: ExpiringCache[str, dict[str, Any]] = ExpiringCache(10_000)

    def identifier(self, host: str) -> str | None:
        """The domain identifier a host names (`acme` for `acme.sip.example.com`), else None."""
        host = host.lower().removesuffix(".")
        if not host.endswith(self._suffix):
            return None
        identifier = host[: -len(self._suffix)]
        return identifier if identifier and "." not in identifier else None

    def realm(self, project: dict[str, Any]) -> str:
        return sip_domain(project["domain_identifier"], self.base_domain)

    def is_own(self, host: str) -> bool:
        """The server itself rather than a project (an OPTIONS keep-alive to the server, say)."""
        return host.lower().removesuffix(".") in self.own_hosts

    def known(self, host: str, now: float) -> dict[str, Any] | None:
        """The project a host names, if it is in the cache now; None when it is not (or names none)."""
        identifier = self.identifier(host)
        return None if identifier is None else self._cache.get(identifier, now) or None

    async def project(self, host: str, now: float) -> dict[str, Any] | None:
        identifier = self.identifier(host)
        if identifier is None:
            return None
        cached = self._cache.get(identifier, now)
        if cached is not None:
            return cached or None
        project = await self.db.read(projects.find_by_domain_identifier, identifier)
        if self.ttl > 0:
            self._cache.put(identifier, project or _MISSING, now + self.ttl)
        return project
