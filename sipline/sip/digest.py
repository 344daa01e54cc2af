"""HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): challenges, nonces, verdicts.

Like Kamailio's `auth` module this knows nothing about where credentials live, nor which response
a failure deserves (401 for REGISTER, 407 for INVITE): the caller looks up the HA1 and picks the
response from the verdict. Typical glue:

    creds = parse_authorization(value)            # None: not Digest / unparseable -> challenge
    creds.realm == realm                          # else challenge
    nonce = nonces.check(creds.nonce, realm)      # INVALID -> challenge, before any lookup
    ha1 = lookup(creds.username, creds.algorithm) # None when there is no such user
    verdict(creds, method, ha1, nonce, nonces)    # OK, STALE, WRONG, UNKNOWN_USER or INVALID
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sipline.sip.expiring import ExpiringCache
from sipline.sip.headers import quote

SUPPORTED = ("MD5", "SHA-256")
# What a challenge offers unless configured otherwise: MD5 alone, as Kamailio does. Phones answer
# the first challenge they support, and some (baresip 1.0) give up when any is SHA-256; SHA-256 is
# an opt-in (SIPLINE_SIP_DIGEST_ALGORITHMS=SHA-256,MD5), preferred first when offered (RFC 8760 §2.4).
DEFAULT_ALGORITHMS = ("MD5",)

_HASHES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}  # RFC name -> hashlib name
_CANONICAL_ALGORITHMS = {name.upper(): name for name in ("MD5", "SHA-256", "MD5-sess", "SHA-256-sess")}


def _h(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """H(username:realm:password) in lowercase hex; what a credential store keeps per algorithm."""
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _h(algorithm, f"{username}:{realm}:{password}")


@dataclass(frozen=True)
class DigestCredentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False


# The quoted value as "unrolled" runs of plain characters between escapes, not one alternation per
# character: the same language, matched at a third less cost (a REGISTER's answer quotes 150 characters).
_AUTH_PARAM_RE = re.compile(
    r"\s*(?P<name>[A-Za-z0-9\-.!%*_+`\'~]+)\s*=\s*"
    r'(?:"(?P<quoted>[^"\\]*(?:\\.[^"\\]*)*)"|(?P<token>[^\s,"]+))\s*(?:,|$)',
    re.S,
)
_SCHEME_RE = re.compile(r"(\S+)\s+(.*)", re.S)
_ESCAPED_RE = re.compile(r"\\(.)", re.S)
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded base64url


def _digest_params(value: str) -> dict[str, str] | None:
    """The name=value pairs of a Digest header value (challenge or answer); None for another
    scheme, a repeated parameter or anything malformed."""
    if not isinstance(value, str):
        return None
    scheme = _SCHEME_RE.match(value.strip())
    if scheme is None or scheme[1].lower() != "digest":
        return None
    params: dict[str, str] = {}
    position = 0
    rest = scheme[2].strip()
    while position < len(rest):
        match = _AUTH_PARAM_RE.match(rest, position)
        if match is None or match.end() == position:
            return None
        name = match["name"].lower()
        if name in params:
            return None  # a repeated parameter makes the header ambiguous
        quoted = match["quoted"]
        if quoted is not None:
            params[name] = _ESCAPED_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name] = match["token"]
        position = match.end()
    return params


def parse_authorization(value: str) -> DigestCredentials | None:
    """Authorization / Proxy-Authorization value; None for other schemes or anything malformed."""
    params = _digest_params(value)
    if params is None:
        return None
    required = ("username", "realm", "nonce", "uri", "response")
    if any(name not in params for name in required):
        return None
    qop, nc, cnonce = params.get("qop"), params.get("nc"), params.get("cnonce")
    if qop is not None and (nc is None or cnonce is None or not _NC_RE.fullmatch(nc)):
        return None
    algorithm = params.get("algorithm", "MD5")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=_CANONICAL_ALGORITHMS.get(algorithm.upper(), algorithm),
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "false").lower() == "true",
    )


def verify(creds: DigestCredentials, ha1: str, method: str) -> bool:
    """Recompute the expected response from HA1 and compare in constant time.

    -sess algorithms are refused: they need a per-session HA1 that no SIP client we target uses.
    """
    algorithm = creds.algorithm
    if algorithm not in _HASHES:
        return False
    ha2 = _h(algorithm, f"{method}:{creds.uri}")
    ha1 = ha1.lower()
    if creds.qop is None:
        expected = _h(algorithm, f"{ha1}:{creds.nonce}:{ha2}")  # RFC 2617 legacy, no qop
    elif creds.qop.lower() == "auth" and creds.nc is not None and creds.cnonce is not None:
        expected = _h(algorithm, f"{ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{creds.qop}:{ha2}")
    else:
        return False  # auth-int would need the body; we never offer it
    return hmac.compare_digest(expected.encode("ascii"), creds.response.lower().encode("utf-8"))


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"
    INVALID = "invalid"


class NonceManager:
    """Stateless nonces: base64url(timestamp || random || HMAC(secret, timestamp||random||realm)[:16]).

    Any node holding the same secret can check a nonce another node issued; only the nc replay
    window below is local memory, which bounds replays per node.
    """

    _SKEW = 5.0  # seconds a nonce timestamp may run ahead of our clock (clock drift between nodes)

    def __init__(
        self,
        secret: bytes,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
    ) -> None:
        if not secret:
            raise ValueError("nonce secret must not be empty")
        self._secret = secret
        self.ttl = ttl
        self._clock = clock
        self._last_nc: ExpiringCache[str, int] = ExpiringCache(max_entries)

    def _mac(self, stamp_and_random: bytes, realm: str) -> bytes:
        message = stamp_and_random + realm.lower().encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:16]

    def issue(self, realm: str) -> str:
        stamp = int(self._clock()).to_bytes(8, "big")
        head = stamp + secrets.token_bytes(8)
        return base64.urlsafe_b64encode(head + self._mac(head, realm)).rstrip(b"=").decode("ascii")

    def _timestamp(self, nonce: str, realm: str) -> int | None:
        """Issue time of a nonce we minted for this realm, else None."""
        if not isinstance(nonce, str) or not _NONCE_RE.fullmatch(nonce):
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 32 or not hmac.compare_digest(raw[16:], self._mac(raw[:16], realm)):
            return None
        return int.from_bytes(raw[:8], "big")

    def check(self, nonce: str, realm: str) -> NonceStatus:
        issued = self._timestamp(nonce, realm)
        now = self._clock()
        if issued is None or issued > now + self._SKEW:
            return NonceStatus.INVALID
        if now - issued > self.ttl:
            return NonceStatus.STALE
        return NonceStatus.VALID

    def accept_nc(self, nonce: str, nc: int) -> bool:
        """Refuse a nonce-count not strictly above the last one accepted for that nonce (replay)."""
        if nc < 1:
            return False
        now = self._clock()
        self._last_nc.purge(now)
        last = self._last_nc.get(nonce, now)
        if last is not None and nc <= last:
            return False
        expires = self._last_nc.expiry(nonce, now) or self._expiry(nonce, now)
        self._last_nc.put(nonce, nc, expires)
        return True

    def _expiry(self, nonce: str, now: float) -> float:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
            issued = int.from_bytes(raw[:8], "big") if len(raw) == 32 else now
        except (binascii.Error, ValueError):
            issued = now
        # Keep the entry a little past the nonce's own expiry so a just-stale nonce cannot replay.
        return min(issued, now) + self.ttl + self._SKEW


def challenge_headers(
    nonces: NonceManager, realm: str, algorithms: Sequence[str] = DEFAULT_ALGORITHMS, *, stale: bool = False
) -> list[str]:
    """WWW-Authenticate / Proxy-Authenticate values, one per algorithm in the order given (the
    client takes the first it supports, RFC 8760 §2.4), all sharing one nonce."""
    nonce = nonces.issue(realm)
    suffix = ", stale=true" if stale else ""
    return [
        f'Digest realm={quote(realm)}, nonce="{nonce}", algorithm={algorithm}, qop="auth"{suffix}'
        for algorithm in algorithms
    ]


def parse_algorithms(setting: str) -> tuple[str, ...]:
    """A comma-separated list such as "SHA-256,MD5" (SHA256 accepted); ValueError names what is wrong."""
    chosen = tuple(a.strip().upper().replace("SHA256", "SHA-256") for a in setting.split(",") if a.strip())
    if not chosen or any(a not in SUPPORTED for a in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"must list some of {', '.join(SUPPORTED)}, each once: {setting!r}")
    return chosen


class Verdict(enum.Enum):
    """What a Digest answer proves; the caller turns it into a response (401 or 407 and a challenge)."""

    OK = "ok"
    STALE = "stale"  # the right credentials on an expired nonce: challenge again with stale=true
    WRONG = "wrong"  # the response does not match this user's credentials (a failure to count)
    UNKNOWN_USER = "unknown user"  # no such user in this realm (a failure to count)
    INVALID = "invalid"  # not an answer to a challenge of ours (forged or foreign nonce, replayed count)

    @property
    def is_failure(self) -> bool:
        """A wrong password or user name: what a throttle counts."""
        return self in (Verdict.WRONG, Verdict.UNKNOWN_USER)


def verdict(
    creds: DigestCredentials,
    method: str,
    ha1: str | None,
    nonce: NonceStatus,
    nonces: NonceManager,
    *,
    nc_accepted: bool = False,
) -> Verdict:
    """Judge a Digest answer. `nonce` is `nonces.check(creds.nonce, realm)`, which the caller asks
    first so that an answer to no challenge of ours costs no credential lookup; `ha1` is the
    user's H(username:realm:password) for `creds.algorithm`, None when there is no such user.
    `nc_accepted`: this very answer was judged OK before and its nonce count taken then (the
    verdict asked again, against credentials read again): the count is not a replay."""
    if nonce is NonceStatus.INVALID:
        return Verdict.INVALID
    if ha1 is None:
        return Verdict.UNKNOWN_USER
    if creds.userhash or not verify(creds, ha1, method):
        return Verdict.WRONG
    if nonce is NonceStatus.STALE:
        return Verdict.STALE
    if creds.nc is not None and not nc_accepted and not nonces.accept_nc(creds.nonce, int(creds.nc, 16)):
        return Verdict.INVALID
    return Verdict.OK


# --- the client's side: answering a challenge (calls sipline places toward remote servers) -------


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None


def parse_challenge(value: str) -> Challenge | None:
    """WWW-Authenticate / Proxy-Authenticate value; None for other schemes, unsupported algorithms
    (sessions, unknown hashes) and anything malformed."""
    params = _digest_params(value)
    if params is None or "realm" not in params or "nonce" not in params:
        return None
    algorithm = _CANONICAL_ALGORITHMS.get(params.get("algorithm", "MD5").upper(), "")
    if algorithm not in _HASHES:
        return None
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(params["realm"], params["nonce"], algorithm, qop, params.get("opaque"))


def answer_challenge(
    challenge: Challenge, method: str, uri: str, username: str, password: str, *, cnonce: str, nc: int = 1
) -> str | None:
    """The Authorization value answering `challenge` (RFC 7616 §3.4); None when it asks for a
    quality of protection other than auth (auth-int needs the body: no server we call wants it)."""
    if challenge.qop and "auth" not in challenge.qop:
        return None
    algorithm = challenge.algorithm
    ha1 = compute_ha1(username, challenge.realm, password, algorithm)
    ha2 = _h(algorithm, f"{method}:{uri}")
    fields = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"algorithm={algorithm}",
    ]
    if challenge.qop:
        response = _h(algorithm, f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
        fields += [f"response={quote(response)}", "qop=auth", f"nc={nc:08x}", f"cnonce={quote(cnonce)}"]
    else:
        fields.append(f"response={quote(_h(algorithm, f'{ha1}:{challenge.nonce}:{ha2}'))}")
    if challenge.opaque is not None:
        fields.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(fields)
