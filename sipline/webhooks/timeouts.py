"""How long a request to a user URL may take, and the URL fragment that changes it.

Defaults (signalwire/docs `.../cxml/guides/webhooks/common-webhook-errors.mdx` and the contract in
calls.md): 2 s to connect, 5 s to read (each wait for the next bytes of the response), 15 s in all,
redirects included. A user tunes them per URL with a fragment, as SignalWire and Twilio accept
(`.../cxml/guides/webhooks/index.mdx`, "Webhook Connection Overrides"):

    https://example.com/voice#ct=1000&rt=3000&tt=8000

`ct` (connect, 100-10000 ms; `ot` is accepted as the same, the name calls.md gives it), `rt` (read,
100-15000 ms), `tt` (total, 100-15000 ms). A value outside its range is clamped into it; one that
is not a whole number, and any other key (Twilio's `rc`, `rp`, `e`, `sni`...), is ignored. The
fragment is never sent, and is not part of the signed URL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Timeouts:
    """Seconds."""

    connect: float = 2.0
    read: float = 5.0
    total: float = 15.0


DEFAULT = Timeouts()

# fragment key -> (Timeouts field, lowest ms, highest ms)
_OVERRIDES = {
    "ct": ("connect", 100, 10000),
    "ot": ("connect", 100, 10000),
    "rt": ("read", 100, 15000),
    "tt": ("total", 100, 15000),
}


def split(url: str) -> tuple[str, Timeouts]:
    """The URL to request (without its fragment) and the timeouts its fragment asks for."""
    bare, _, fragment = url.partition("#")  # not urldefrag: it re-assembles, and may change, the URL
    values: dict[str, float] = {}
    for key, raw in parse_qsl(fragment):
        if key not in _OVERRIDES:
            continue
        field, low, high = _OVERRIDES[key]
        try:
            ms = int(raw.strip())
        except ValueError:
            continue
        values[field] = min(max(ms, low), high) / 1000
    return bare, replace(DEFAULT, **values)
