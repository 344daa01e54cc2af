import base64
import dataclasses
import hashlib

import pytest

from sipline.sip import (
    DEFAULT_ALGORITHMS,
    DigestCredentials,
    NonceManager,
    NonceStatus,
    Verdict,
    challenge_headers,
    compute_ha1,
    parse_authorization,
    verdict,
    verify,
)
from sipline.sip.digest import parse_algorithms

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


def test_default_challenge_offers_md5_alone_as_phones_expect():
    assert DEFAULT_ALGORITHMS == ("MD5",)


@pytest.mark.parametrize(
    ("setting", "parsed"),
    [("MD5", ("MD5",)), ("sha-256, md5", ("SHA-256", "MD5")), ("SHA256", ("SHA-256",))],
)
def test_algorithm_settings_are_normalised(setting, parsed):
    assert parse_algorithms(setting) == parsed


@pytest.mark.parametrize("setting", ["", "SHA-1", "MD5,MD5", "MD5-sess", " , "])
def test_bad_algorithm_settings_are_refused(setting):
    with pytest.raises(ValueError):
        parse_algorithms(setting)


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
    assert len(nonces._last_nc) == 1  # only the new nonce's count is remembered


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        NonceManager(b"")


# --- challenges ---------------------------------------------------------------------------


def test_challenge_offers_md5_alone_by_default():
    [only] = challenge_headers(NonceManager(SECRET, clock=Clock()), REALM)
    assert only.endswith('algorithm=MD5, qop="auth"')


def test_challenge_offers_the_algorithms_given_in_order_with_qop_auth():
    nonces = NonceManager(SECRET, clock=Clock())
    first, second = challenge_headers(nonces, REALM, ("SHA-256", "MD5"))
    assert first.startswith(f'Digest realm="{REALM}", nonce="')
    assert first.endswith('algorithm=SHA-256, qop="auth"')
    assert second.endswith('algorithm=MD5, qop="auth"')
    nonce = first.split('nonce="')[1].split('"')[0]
    assert nonces.check(nonce, REALM) is NonceStatus.VALID


def test_stale_challenge_says_so():
    values = challenge_headers(NonceManager(SECRET, clock=Clock()), REALM, ("SHA-256", "MD5"), stale=True)
    assert all(v.endswith(", stale=true") for v in values)


def test_full_exchange_with_a_challenge_nonce_succeeds():
    nonces = NonceManager(SECRET, clock=Clock())
    nonce = challenge_headers(nonces, REALM, ("SHA-256",))[0].split('nonce="')[1].split('"')[0]
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


# --- verdicts -----------------------------------------------------------------------------


def _answer(nonces: NonceManager, password: str, *, nc: int = 1, method: str = "INVITE") -> DigestCredentials:
    nonce = nonces.issue(REALM)
    ha1 = compute_ha1("alice", REALM, password, "MD5")
    uri = f"sip:bob@{REALM}"

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    response = h(f"{ha1}:{nonce}:{nc:08x}:cn:auth:{h(method + ':' + uri)}")
    creds = parse_authorization(
        f'Digest username="alice", realm="{REALM}", nonce="{nonce}", uri="{uri}", response="{response}", '
        f'algorithm=MD5, qop=auth, nc={nc:08x}, cnonce="cn"'
    )
    assert creds is not None
    return creds


def test_verdict_ok_for_the_right_password():
    nonces = NonceManager(SECRET, clock=Clock())
    creds = _answer(nonces, "pw")
    ha1 = compute_ha1("alice", REALM, "pw", "MD5")
    assert verdict(creds, "INVITE", ha1, nonces.check(creds.nonce, REALM), nonces) is Verdict.OK


def test_verdict_wrong_for_a_wrong_password_and_a_replay_is_invalid():
    nonces = NonceManager(SECRET, clock=Clock())
    creds = _answer(nonces, "guess")
    ha1 = compute_ha1("alice", REALM, "pw", "MD5")
    status = nonces.check(creds.nonce, REALM)
    assert verdict(creds, "INVITE", ha1, status, nonces) is Verdict.WRONG
    assert Verdict.WRONG.is_failure and Verdict.UNKNOWN_USER.is_failure
    good = _answer(nonces, "pw")
    assert verdict(good, "INVITE", ha1, status, nonces) is Verdict.OK
    assert verdict(good, "INVITE", ha1, status, nonces) is Verdict.INVALID  # same nonce-count again
    assert not Verdict.INVALID.is_failure


def test_verdict_unknown_user_stale_and_invalid_nonce():
    clock = Clock()
    nonces = NonceManager(SECRET, ttl=300, clock=clock)
    creds = _answer(nonces, "pw")
    ha1 = compute_ha1("alice", REALM, "pw", "MD5")
    assert verdict(creds, "INVITE", None, NonceStatus.VALID, nonces) is Verdict.UNKNOWN_USER
    assert verdict(creds, "INVITE", ha1, NonceStatus.INVALID, nonces) is Verdict.INVALID
    clock.now += 1000
    assert verdict(creds, "INVITE", ha1, nonces.check(creds.nonce, REALM), nonces) is Verdict.STALE
    # A stale nonce does not excuse a wrong password.
    wrong = compute_ha1("alice", REALM, "other", "MD5")
    assert verdict(creds, "INVITE", wrong, NonceStatus.STALE, nonces) is Verdict.WRONG


def test_verdict_checks_the_method_the_answer_was_made_for():
    nonces = NonceManager(SECRET, clock=Clock())
    creds = _answer(nonces, "pw", method="REGISTER")
    ha1 = compute_ha1("alice", REALM, "pw", "MD5")
    assert verdict(creds, "INVITE", ha1, NonceStatus.VALID, nonces) is Verdict.WRONG


# --- the client side ----------------------------------------------------------------------


def test_an_answer_to_our_own_challenge_is_accepted_by_our_own_verifier():
    from sipline.sip.digest import answer_challenge, parse_challenge

    nonces = NonceManager(SECRET, clock=Clock())
    for algorithm in ("MD5", "SHA-256"):
        [value] = challenge_headers(nonces, REALM, (algorithm,))
        challenge = parse_challenge(value)
        assert challenge is not None and challenge.algorithm == algorithm and challenge.qop == ("auth",)
        header = answer_challenge(challenge, "INVITE", f"sip:bob@{REALM}", "alice", "pw", cnonce="abc")
        creds = parse_authorization(header or "")
        assert creds is not None
        ha1 = compute_ha1("alice", REALM, "pw", algorithm)
        assert verdict(creds, "INVITE", ha1, nonces.check(creds.nonce, REALM), nonces) is Verdict.OK


def test_the_client_answer_matches_rfc_2617s_worked_example():
    from sipline.sip.digest import Challenge, answer_challenge

    challenge = Challenge(
        "testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "MD5", ("auth",), "5ccc069c403ebaf9f0171e9517f40e41"
    )
    header = answer_challenge(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    assert header is not None and 'response="6629fae49393a05397450978507c4ef1"' in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_unusable_challenges_are_refused():
    from sipline.sip.digest import Challenge, answer_challenge, parse_challenge

    assert parse_challenge('Basic realm="x"') is None
    assert parse_challenge('Digest realm="x", nonce="n", algorithm=MD5-sess') is None
    assert parse_challenge('Digest nonce="n"') is None
    assert answer_challenge(Challenge("r", "n", "MD5", ("auth-int",)), "INVITE", "sip:x", "u", "p", cnonce="c") is None
