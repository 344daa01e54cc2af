"""How sipline writes instants: ISO 8601 in its own extensions, RFC 2822 where SignalWire/Twilio do."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import formatdate


def iso8601(epoch: float) -> str:
    """`2026-11-29T05:44:06Z`: UTC, whole seconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rfc2822(epoch: float) -> str:
    """`Sun, 29 Nov 2026 05:44:06 +0000`, as the LaML/Twilio API writes dates."""
    return formatdate(int(epoch), usegmt=False).replace("-0000", "+0000")
