"""Thin asyncio transports (udp, stream for TCP and TLS): they move bytes to `SipService` and back.

Where an answer goes (the Via rules) is the SIP core's `sipline.sip.routing`; certificates are in `tls`.
"""
