"""Signatures on requests to user URLs, so a user's server can tell sipline's requests from forgeries.

Both headers carry an HMAC-SHA1 keyed with the project's signing key:

- `X-Twilio-Signature`: Twilio's algorithm (twilio.com/docs/usage/webhooks/webhooks-security):
  base64 of HMAC-SHA1 over the full URL (a GET's parameters are in its query string) followed by
  the POST parameters sorted by name, each name immediately followed by its value. The `twilio`
  package's `RequestValidator` checks it.
- `X-SignalWire-Signature`: for form requests the same value. SignalWire's cXML guide
  (signalwire/docs `.../cxml/guides/webhooks/webhook-security.mdx`) validates it with the
  compatibility SDK's `validateRequest`, Twilio's algorithm; SignalWire's own validators (signalwire-python
  `signalwire/request_validator.py`, signalwire-js `packages/web-api/src/validateRequest.ts`) fall
  back to exactly that for form parameters. For a JSON body (SWML fetches) they first try
  lowercase hex of HMAC-SHA1 over the URL followed by the raw body, which is what a JSON request
  carries here.

A JSON request's `X-Twilio-Signature` covers the URL alone (Twilio's algorithm with no
parameters): Twilio's own JSON scheme adds a `bodySHA256` query parameter, which would change
the URL the user configured. The body is covered by `X-SignalWire-Signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def signature(key: str, url: str, params: Mapping[str, str] | None) -> str:
    """Twilio's X-Twilio-Signature of a request to `url` with form parameters `params`."""
    form = params or {}
    text = url + "".join(name + form[name] for name in sorted(form))
    digest = hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def json_signature(key: str, url: str, body: bytes) -> str:
    """SignalWire's signature of a JSON request: hex HMAC-SHA1 over the URL and the raw body."""
    return hmac.new(key.encode(), url.encode() + body, hashlib.sha1).hexdigest()


def headers(
    key: str, url: str, params: Mapping[str, str] | None = None, *, json_body: bytes | None = None
) -> dict[str, str]:
    """Both signature headers for a request to `url` (without its fragment): a form or query with
    `params` (GET: already in `url`, pass None), or a JSON body of exactly these bytes."""
    if json_body is None:
        twilio = signature(key, url, params)
        return {"X-SignalWire-Signature": twilio, "X-Twilio-Signature": twilio}
    if params:
        raise ValueError("a request has form parameters or a JSON body, not both")
    return {
        "X-SignalWire-Signature": json_signature(key, url, json_body),
        "X-Twilio-Signature": signature(key, url, None),
    }
