"""Settings from SIPLINE_* environment variables; CLI flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIPLINE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sip_host: str = "127.0.0.1"
    sip_udp_port: int = 5060
    sip_tcp_port: int = 5060
    sip_tls_port: int = 5061
    sip_domain: str = "sip.localhost"
    # Digest algorithms offered in 401 challenges, in order. MD5 first: Debian 12's sipp answers
    # only MD5 and takes the first challenge; baresip 1.0 gives up if any is SHA-256 (set "MD5").
    sip_digest_algorithms: str = "MD5,SHA-256"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secret_key: str | None = None
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sipline.db').resolve()}"
