"""Thin asyncio transports (udp, stream for TCP and TLS): they move bytes to `SipService` and back.

Routing of answers (the Via rules) lives in `routing`; certificates in `tls`.
"""
