"""The one HTTP client for user URLs: call handler documents, fallbacks, status callbacks.

One pooled `httpx.AsyncClient` for the whole process (`WebhookClient`, closed with `aclose()`).
`fetch` never raises for anything the remote side does: a document comes back as `Fetched`, every
failure (connection refused, a timeout, a non-2xx answer, too many redirects, too big a body, a URL
that is not http(s)) as `FetchFailed` with SignalWire's error code 11200 and a reason in words.

The rules (calls.md, "The voice request"): timeouts in `timeouts.py` (2 s connect, 5 s read, 15 s
in all, changed by the URL's fragment); at most 3 redirects, to http(s) URLs only (a 4th fails); a
response body of at most 1 MiB; GET sends parameters in the query string, POST as a form or JSON.
Every request is signed with the project's signing key (`signing.py`), each redirect hop again
for its own URL. Redirects follow the browsers' rule, as httpx does: 303 (and 301/302 after a POST)
goes on with a GET without a body; 307/308 repeat the request.

The client trusts no proxy or .netrc from the environment (`trust_env=False`): a user URL must
never receive credentials meant for something else.

Requests wait for a slot of our own before they reach httpx's pool, never inside it: httpcore 1.0.9
leaks a pool slot for good when a request queued in its pool is cancelled (encode/httpcore#1093),
and the total timeout cancels requests, so a contended pool would fill with dead slots and every
later request would fail. With at most `max_connections` requests in it, the pool always has a
connection or room for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

import httpx
import msgspec

from sipline import __version__

from . import signing, timeouts

FETCH_FAILED = 11200  # SignalWire/Twilio: "HTTP retrieval failure"
MAX_REDIRECTS = 3
MAX_BODY = 1 << 20  # bytes
USER_AGENT = f"sipline/{__version__}"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    """A 2xx answer. `url` is the URL that gave it (after redirects, without a fragment): the base
    for relative URLs in the document."""

    status: int
    content_type: str | None
    body: bytes
    url: str


@dataclass(frozen=True, kw_only=True)
class FetchFailed:
    """No usable answer. `url` is the URL asked for (without its fragment), as a fallback request's
    `ErrorUrl` names it; `status` the HTTP status of the answer refused (a non-2xx one, the 4th
    redirect, a body too big), None when there was no answer."""

    code: int = FETCH_FAILED
    reason: str
    status: int | None = None
    url: str


@dataclass(frozen=True)
class _Hop:
    method: str
    url: str  # normalised as httpx sends it: the URL signed
    form: Mapping[str, str] | None = None  # POST form parameters (signed)
    json: bytes | None = None  # POST JSON body (signed)


class _Failure(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _http_url(url: str) -> str:
    """`url` as httpx will send it, or _Failure when it is not an absolute http(s) URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise _Failure("not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _Failure("not an http(s) URL")
    return str(parsed)


def _with_query(url: str, params: Mapping[str, str] | None) -> str:
    if not params:
        return url
    query = urlencode(list(params.items()))
    if "?" not in url:
        return f"{url}?{query}"
    return url + ("" if url.endswith(("?", "&")) else "&") + query


def _first_hop(url: str, method: str, params: Mapping[str, str] | None, json_body: object) -> _Hop:
    if method == "GET":
        if json_body is not None:
            raise ValueError("a GET request has no JSON body")
        return _Hop("GET", _http_url(_with_query(url, params)))
    if method != "POST":
        raise ValueError(f"method must be GET or POST, not {method!r}")
    if json_body is not None:
        if params:
            raise ValueError("a request has form parameters or a JSON body, not both")
        return _Hop("POST", _http_url(url), json=msgspec.json.encode(json_body))
    return _Hop("POST", _http_url(url), form=dict(params or {}))


def _describe(exc: Exception, limits: timeouts.Timeouts) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {_ms(limits.connect)} ms"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data from the server for {_ms(limits.read)} ms"
    if isinstance(exc, httpx.WriteTimeout):
        return f"could not send the request within {_ms(limits.read)} ms"
    detail = str(exc).strip()[:200] or type(exc).__name__  # never the URL: httpx's messages name none
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {detail}"
    return f"request failed: {detail}"


class WebhookClient:
    """The process's client for user URLs; `aclose()` it at shutdown."""

    def __init__(self, *, max_connections: int = 200, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._slots = asyncio.Semaphore(max_connections)  # see the module's docstring
        self._http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(
        self,
        url: str,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        *,
        json_body: object = None,
        signing_key: str | None = None,
    ) -> Fetched | FetchFailed:
        """Request `url` (its fragment sets the timeouts) and return the answer or why there is none.

        GET puts `params` in the query string; POST sends them as a form, or sends `json_body`
        (any value msgspec encodes) as JSON. Signed when `signing_key` is given. Raises only for
        the caller's own mistakes (a method other than GET/POST, both a form and a JSON body).
        """
        bare, limits = timeouts.split(url)
        try:
            hop = _first_hop(bare, method.upper(), params, json_body)
        except _Failure as failure:
            return FetchFailed(reason=failure.reason, url=bare)
        try:
            async with asyncio.timeout(limits.total):
                return await self._follow(hop, limits, signing_key)
        except _Failure as failure:
            return FetchFailed(reason=failure.reason, status=failure.status, url=bare)
        except TimeoutError:
            return FetchFailed(reason=f"no complete answer within {_ms(limits.total)} ms", url=bare)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as exc:
            return FetchFailed(reason=_describe(exc, limits), url=bare)

    async def _follow(self, hop: _Hop, limits: timeouts.Timeouts, signing_key: str | None) -> Fetched:
        timeout = httpx.Timeout(connect=limits.connect, read=limits.read, write=limits.read, pool=limits.connect)
        for redirects in range(MAX_REDIRECTS + 1):
            async with self._slots:
                response = await self._http.send(self._request(hop, timeout, signing_key), stream=True)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        if redirects == MAX_REDIRECTS:
                            raise _Failure(f"more than {MAX_REDIRECTS} redirects", response.status_code)
                        hop = _redirected(hop, response.status_code, location)
                        continue
                    if not response.is_success:
                        raise _Failure(f"the server answered HTTP {response.status_code}", response.status_code)
                    body = await self._body(response)
                    return Fetched(response.status_code, response.headers.get("content-type"), body, hop.url)
                finally:
                    await response.aclose()
        raise AssertionError("unreachable: the last hop returns or raises")

    def _request(self, hop: _Hop, timeout: httpx.Timeout, signing_key: str | None) -> httpx.Request:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if hop.json is not None:
            headers["Content-Type"] = "application/json"
            content = hop.json
        elif hop.form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(list(hop.form.items())).encode()
        if signing_key is not None:
            headers |= signing.headers(signing_key, hop.url, hop.form, json_body=hop.json)
        return self._http.build_request(hop.method, hop.url, content=content, headers=headers, timeout=timeout)

    async def _body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise _Failure(f"the answer is larger than {self.max_body} bytes", response.status_code)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise _Failure(f"the answer is larger than {self.max_body} bytes", response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)


def _redirected(hop: _Hop, status: int, location: str) -> _Hop:
    try:
        target = _http_url(urljoin(hop.url, location).partition("#")[0])
    except _Failure:
        raise _Failure("redirected to a URL that is not http(s)", status) from None
    if status == 303 or (status in (301, 302) and hop.method == "POST"):
        return _Hop("GET", target)
    return _Hop(hop.method, target, hop.form, hop.json)
