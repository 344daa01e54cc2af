import base64
import dataclasses
import hashlib

import pytest

from sipline.sip import (
    ALGORITHMS,
    DigestCredentials,
    NonceManager,
    NonceStatus,
    challenge_headers,
    compute_ha1,
    parse_authorization,
    verify,
)

SECRET = b"k" * 32
REALM = "acme.sip.localhost"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# RFC 7616 §3.9.1: Mufasa / "Circle of Life" / http-auth@example.org, GET /dir/index.html.
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def rfc7616_header(algorithm: str, response: str) -> str:
    return (
        f'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC7616_NONCE}", nc=00000001, cnonce="{RFC7616_CNONCE}", '
        f'qop=auth, response="{response}", opaque="{RFC7616_OPAQUE}"'
    )


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example_response_verifies(algorithm, response):
    creds = parse_authorization(rfc7616_header(algorithm, response))
    assert creds is not None
    assert (creds.username, creds.algorithm, creds.qop, creds.nc) == ("Mufasa", algorithm, "auth", "00000001")
    assert creds.opaque == RFC7616_OPAQUE
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    assert verify(creds, ha1, "GET")


def test_wrong_password_does_not_verify():
    creds = parse_authorization(rfc7616_header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
    assert creds is not None
    assert not verify(creds, compute_ha1("Mufasa", "http-auth@example.org", "Circle of Lies", "MD5"), "GET")


def test_wrong_method_does_not_verify():
    creds = parse_authorization(rfc7616_header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
    assert creds is not None
    assert not verify(creds, compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "MD5"), "POST")


def test_legacy_rfc2617_response_without_qop_verifies():
    # RFC 2617 §3.5 example: response = MD5(HA1:nonce:HA2) when qop is absent.
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5")
    creds = DigestCredentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="670fd8c2df070c60b045671b8b24ff02",
    )
    assert verify(creds, ha1, "GET")


def test_unknown_or_sess_algorithm_does_not_verify():
    creds = parse_authorization(rfc7616_header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
    assert creds is not None
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "MD5")
    for algorithm in ("SHA-512-256", "MD5-sess", "bogus"):
        assert not verify(dataclasses.replace(creds, algorithm=algorithm), ha1, "GET")


def test_auth_int_qop_does_not_verify():
    creds = parse_authorization(rfc7616_header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
    assert creds is not None
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "MD5")
    assert not verify(dataclasses.replace(creds, qop="auth-int"), ha1, "GET")


def test_compute_ha1_refuses_unknown_algorithm():
    with pytest.raises(ValueError):
        compute_ha1("a", "b", "c", "SHA-1")


def test_algorithms_prefer_sha256():
    assert ALGORITHMS == ("SHA-256", "MD5")


# --- parse_authorization ------------------------------------------------------------------


def test_authorization_defaults_to_md5_and_handles_escapes_and_case():
    creds = parse_authorization(
        'digest USERNAME="a\\"b", Realm="r", NONCE="n", uri="sip:r", response="ABC", userhash=true'
    )
    assert creds is not None
    assert (creds.username, creds.algorithm, creds.response, creds.userhash) == ('a"b', "MD5", "ABC", True)
    assert creds.qop is None and creds.nc is None


def test_algorithm_names_are_normalised():
    creds = parse_authorization('Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=sha-256')
    assert creds is not None and creds.algorithm == "SHA-256"


@pytest.mark.parametrize(
    "value",
    [
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "NoOneKnowsThisScheme opaque-data=here",  # RFC 4475 regaut01
        "Digest",
        'Digest realm="r", nonce="n", uri="u", response="x"',  # no username
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',  # qop without nc
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=1, cnonce="c"',
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a, realm="r"',
        "Digest ,,,",
        "",
    ],
)
def test_unusable_authorization_yields_none(value):
    assert parse_authorization(value) is None


# --- NonceManager -------------------------------------------------------------------------


def test_fresh_nonce_is_valid():
    nonces = NonceManager(SECRET, clock=Clock())
    assert nonces.check(nonces.issue(REALM), REALM) is NonceStatus.VALID


def test_expired_nonce_is_stale():
    clock = Clock()
    nonces = NonceManager(SECRET, ttl=300, clock=clock)
    nonce = nonces.issue(REALM)
    clock.now += 301
    assert nonces.check(nonce, REALM) is NonceStatus.STALE


def test_nonce_for_another_realm_is_invalid():
    nonces = NonceManager(SECRET, clock=Clock())
    assert nonces.check(nonces.issue(REALM), "other.sip.localhost") is NonceStatus.INVALID


def test_nonce_from_another_secret_is_invalid():
    other = NonceManager(b"x" * 32, clock=Clock())
    assert NonceManager(SECRET, clock=Clock()).check(other.issue(REALM), REALM) is NonceStatus.INVALID


def test_tampered_nonce_is_invalid():
    nonces = NonceManager(SECRET, clock=Clock())
    raw = bytearray(base64.urlsafe_b64decode(nonces.issue(REALM) + "="))
    raw[7] ^= 1  # move the timestamp
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert nonces.check(tampered, REALM) is NonceStatus.INVALID


def test_nonce_from_the_future_is_invalid():
    clock = Clock()
    nonces = NonceManager(SECRET, clock=clock)
    nonce = nonces.issue(REALM)
    clock.now -= 60
    assert nonces.check(nonce, REALM) is NonceStatus.INVALID


@pytest.mark.parametrize("nonce", ["", "abc", "!" * 43, "A" * 43, "\u00e9" * 43, RFC7616_NONCE])
def test_garbage_nonce_is_invalid(nonce):
    assert NonceManager(SECRET, clock=Clock()).check(nonce, REALM) is NonceStatus.INVALID


def test_nonce_count_must_increase():
    nonces = NonceManager(SECRET, clock=Clock())
    nonce = nonces.issue(REALM)
    assert nonces.accept_nc(nonce, 1)
    assert not nonces.accept_nc(nonce, 1)  # replay
    assert nonces.accept_nc(nonce, 3)
    assert not nonces.accept_nc(nonce, 2)
    assert not nonces.accept_nc(nonces.issue(REALM), 0)


def test_nonce_count_memory_is_bounded():
    nonces = NonceManager(SECRET, clock=Clock(), max_entries=3)
    issued = [nonces.issue(REALM) for _ in range(5)]
    for nonce in issued:
        assert nonces.accept_nc(nonce, 1)
    assert len(nonces._last_nc) == 3


def test_nonce_count_entries_expire_with_the_nonce():
    clock = Clock()
    nonces = NonceManager(SECRET, ttl=300, clock=clock)
    old = nonces.issue(REALM)
    nonces.accept_nc(old, 1)
    clock.now += 1000
    nonces.accept_nc(nonces.issue(REALM), 1)
    assert old not in nonces._last_nc


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        NonceManager(b"")


# --- challenges ---------------------------------------------------------------------------


def test_challenge_offers_sha256_then_md5_with_qop_auth():
    nonces = NonceManager(SECRET, clock=Clock())
    first, second = challenge_headers(nonces, REALM)
    assert first.startswith(f'Digest realm="{REALM}", nonce="')
    assert first.endswith('algorithm=SHA-256, qop="auth"')
    assert second.endswith('algorithm=MD5, qop="auth"')
    nonce = first.split('nonce="')[1].split('"')[0]
    assert nonces.check(nonce, REALM) is NonceStatus.VALID


def test_stale_challenge_says_so():
    values = challenge_headers(NonceManager(SECRET, clock=Clock()), REALM, stale=True)
    assert all(v.endswith(", stale=true") for v in values)


def test_full_exchange_with_a_challenge_nonce_succeeds():
    nonces = NonceManager(SECRET, clock=Clock())
    nonce = challenge_headers(nonces, REALM)[0].split('nonce="')[1].split('"')[0]
    ha1 = compute_ha1("alice", REALM, "pw", "SHA-256")
    uri = f"sip:{REALM}"

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    response = h(f"{ha1}:{nonce}:00000001:cn:auth:{h('REGISTER:' + uri)}")
    header = (
        f'Digest username="alice", realm="{REALM}", nonce="{nonce}", uri="{uri}", response="{response}", '
        'algorithm=SHA-256, qop=auth, nc=00000001, cnonce="cn"'
    )
    creds = parse_authorization(header)
    assert creds is not None
    assert nonces.check(creds.nonce, creds.realm) is NonceStatus.VALID
    assert verify(creds, ha1, "REGISTER")
    assert nonces.accept_nc(creds.nonce, int(creds.nc or "0", 16))
    assert not nonces.accept_nc(creds.nonce, int(creds.nc or "0", 16))
