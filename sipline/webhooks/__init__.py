"""The one HTTP client for user URLs: timeouts, redirects, size limits, signing, status callbacks.

client = WebhookClient()                      # one per process
result = await client.fetch(url, "POST", params, signing_key=project["signing_key"])
match result:
    case Fetched(): ...                       # 2xx: parse result.body
    case FetchFailed(): ...                   # 11200: go to the fallback URL with result.reason

callbacks = Callbacks(client)                 # status callbacks, in the background
callbacks.send(url, "POST", status_params(...), signing_key=...)
...
await callbacks.aclose(); await client.aclose()
"""

from .callbacks import Callbacks, status_params
from .client import FETCH_FAILED, MAX_BODY, MAX_REDIRECTS, USER_AGENT, Fetched, FetchFailed, WebhookClient
from .signing import headers, json_signature, signature
from .timeouts import Timeouts

__all__ = [
    "FETCH_FAILED",
    "MAX_BODY",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "Callbacks",
    "FetchFailed",
    "Fetched",
    "Timeouts",
    "WebhookClient",
    "headers",
    "json_signature",
    "signature",
    "status_params",
]
