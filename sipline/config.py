"""Settings from SIPLINE_* environment variables; CLI flags override them.

Each setting is normalised here, once, and every part of sipline uses the normalised value (the SIP
domain in particular: the digest realm, the registrar and the credential store must agree on it to
the byte). A bad value is refused at startup with one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sipline.sip.digest import DEFAULT_ALGORITHMS, parse_algorithms

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A project's domain is `{domain_identifier}.{sip_domain}` with identifiers of up to 63 characters,
# and a host name has at most 253: the base domain keeps room for both.
MAX_SIP_DOMAIN = 253 - 64
MAX_WORKERS = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalize_host_name(value: str) -> str:
    """Lower case, no trailing dot, every label a valid DNS label; ValueError otherwise."""
    name = value.strip().lower().removesuffix(".")
    if not name or len(name) > MAX_SIP_DOMAIN:
        raise ValueError(f"must be a host name of 1 to {MAX_SIP_DOMAIN} characters, got {value!r}")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"must be a host name (letters, digits, hyphens and dots), got {value!r}")
    return name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIPLINE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sip_host: str = "127.0.0.1"
    # The address devices and other nodes reach this one at (Via, Contact); default: sip_host, or
    # this machine's address when sip_host is a wildcard (0.0.0.0, ::).
    sip_advertised_host: str | None = None
    sip_udp_port: int = 5060
    sip_tcp_port: int = 5060
    sip_tls_port: int = 5061
    sip_domain: str = "sip.localhost"
    # Digest algorithms offered in challenges, in order (see sipline.sip.digest.DEFAULT_ALGORITHMS).
    sip_digest_algorithms: str = ",".join(DEFAULT_ALGORITHMS)
    # Failed authentications: more than `limit` for one user name from one address within `window`
    # seconds blocks that user name from that address for `block` seconds; more than
    # `source_limit` from one address, whatever the user names, blocks the address (a scanner).
    sip_auth_failure_limit: int = 20
    sip_auth_source_failure_limit: int = 100
    sip_auth_failure_window: float = 60.0
    sip_auth_block_seconds: float = 300.0
    # Comma-separated networks (CIDR) never throttled, e.g. an office NAT: "10.0.0.0/8,192.0.2.7".
    sip_trusted_networks: str = ""
    # Calls to remote SIP servers (a call handler's document dials them): the DNS servers to ask
    # (comma-separated; default the system's) and the authorities a TLS server's certificate must
    # chain to (default the system's).
    sip_dns_servers: str = ""
    sip_tls_ca: Path | None = None
    # Calls: how long devices ring before the caller hears "no answer" (480), and the longest call.
    call_ring_timeout: float = 60.0
    call_max_duration: float = 14400.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secret_key: str | None = None
    # When set, GET /metrics requires `Authorization: Bearer <this token>`.
    metrics_token: str | None = None
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    # Processes serving the node's HTTP and SIP ports together (`sipline serve --workers N`).
    workers: int = 1

    @field_validator("sip_domain")
    @classmethod
    def _sip_domain(cls, value: str) -> str:
        return normalize_host_name(value)

    @field_validator("sip_digest_algorithms")
    @classmethod
    def _algorithms(cls, value: str) -> str:
        return ",".join(parse_algorithms(value))

    @field_validator("sip_trusted_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError(f"must be one of critical, error, warning, info, debug, got {value!r}")
        return level

    @field_validator("sip_auth_failure_limit", "sip_auth_source_failure_limit")
    @classmethod
    def _positive_int(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if not 1 <= value <= MAX_WORKERS:
            raise ValueError(f"must be from 1 to {MAX_WORKERS}")
        return value

    @field_validator("sip_auth_failure_window", "sip_auth_block_seconds", "call_ring_timeout", "call_max_duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @property
    def digest_algorithms(self) -> tuple[str, ...]:
        return parse_algorithms(self.sip_digest_algorithms)

    @property
    def dns_servers(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.sip_dns_servers.split(",") if s.strip())

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.sip_trusted_networks)

    @property
    def advertised_host(self) -> str:
        if self.sip_advertised_host:
            return self.sip_advertised_host
        if self.sip_host not in ("0.0.0.0", "::", ""):
            return self.sip_host
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sipline.db').resolve()}"


def parse_networks(value: str) -> tuple[Network, ...]:
    networks = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network such as 10.0.0.0/8 or 192.0.2.7") from None
    return tuple(networks)


def settings_error(exc: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for error in exc.errors():
        name = "SIPLINE_" + "_".join(str(p) for p in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{name} {message}")
    return "; ".join(parts)
