"""Self-check of the call scenarios and helpers against Kamailio (bench/kamailio/calls.cfg), the
baseline bench/calls.py measures sipline against: what passes here is what sipline must pass.

Not part of `make test` (the suite does not depend on Kamailio); run it after changing a scenario:
    .venv/bin/python -m pytest -q bench/test_scenarios_kamailio.py
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import sipp_call, sipp_callee, sipp_setup_times

pytestmark = pytest.mark.integration

DOMAIN = "default.sip.localhost"
USERS = [(f"user{i}", f"pw-{i}-secret") for i in range(40)]
PASSWORDS = dict(USERS)
# TLS: this Kamailio configuration listens on UDP and TCP only (no sipp at hand speaks TLS to test it with)
TRANSPORTS = ["udp", "tcp"]


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not shutil.which("kamailio"):
        pytest.skip("kamailio is not installed")
    from bench.calls import Kamailio, Users

    users = Users(DOMAIN, USERS, [])
    with Kamailio(tmp_path_factory.mktemp("kamailio"), users) as server:
        yield server.port


class Names:
    """A fresh pair of users per test: a callee registered by one test must not ring in another."""

    def __init__(self) -> None:
        self._free = [u for u, _ in USERS]

    def take(self) -> tuple[str, str]:
        user = self._free.pop(0)
        return user, PASSWORDS[user]


NAMES = Names()


def _ok(result: object) -> str:
    return f"{getattr(result, 'stdout', '')[-3000:]}{getattr(result, 'stderr', '')[-2000:]}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_answered_call_with_digest(kamailio: int, tmp_path: Path, transport: str):
    caller, password = NAMES.take()
    callee, callee_password = NAMES.take()
    calls = 1 if transport == "udp" else None
    with sipp_callee(tmp_path / "callee", kamailio, callee, callee_password, DOMAIN, transport=transport,
                     calls=calls) as device:  # fmt: skip
        result = sipp_call(tmp_path / "caller", kamailio, caller, password, callee, DOMAIN, transport=transport)
        assert result.returncode == 0, _ok(result)
        if calls:
            assert device.wait(timeout=10) == 0, device.output()
    [setup] = sipp_setup_times(tmp_path / "caller")
    assert 0 <= setup < 1000


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_busy_callee(kamailio: int, tmp_path: Path, transport: str):
    caller, password = NAMES.take()
    callee, callee_password = NAMES.take()
    with sipp_callee(tmp_path / "callee", kamailio, callee, callee_password, DOMAIN, "uas_busy.xml",
                     transport=transport):  # fmt: skip
        result = sipp_call(tmp_path / "caller", kamailio, caller, password, callee, DOMAIN,
                           scenario="uac_expect.xml", expect=486, transport=transport)  # fmt: skip
        assert result.returncode == 0, _ok(result)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_call_cancelled_while_ringing(kamailio: int, tmp_path: Path, transport: str):
    caller, password = NAMES.take()
    callee, callee_password = NAMES.take()
    with sipp_callee(tmp_path / "callee", kamailio, callee, callee_password, DOMAIN, "uas_ring_forever.xml",
                     transport=transport):  # fmt: skip
        result = sipp_call(tmp_path / "caller", kamailio, caller, password, callee, DOMAIN,
                           scenario="uac_cancel.xml", transport=transport)  # fmt: skip
        assert result.returncode == 0, _ok(result)


def test_a_user_with_no_registered_device_is_temporarily_unavailable(kamailio: int, tmp_path: Path):
    caller, password = NAMES.take()
    callee, _ = NAMES.take()
    result = sipp_call(tmp_path, kamailio, caller, password, callee, DOMAIN, scenario="uac_expect.xml", expect=480)
    assert result.returncode == 0, _ok(result)


def test_an_unknown_user_is_not_found(kamailio: int, tmp_path: Path):
    caller, password = NAMES.take()
    result = sipp_call(tmp_path, kamailio, caller, password, "nobody", DOMAIN, scenario="uac_expect.xml", expect=404)
    assert result.returncode == 0, _ok(result)


def test_another_status_than_the_expected_one_fails_the_call(kamailio: int, tmp_path: Path):
    caller, password = NAMES.take()
    result = sipp_call(tmp_path, kamailio, caller, password, "nobody", DOMAIN, scenario="uac_expect.xml",
                       expect=486, timeout=10)  # fmt: skip
    assert result.returncode != 0
    assert "expected 486, got 404" in _ok(result) + "".join(
        p.read_text(errors="replace") for p in tmp_path.glob("*_errors.log")
    )


def test_after_the_callee_leaves_it_is_unregistered(kamailio: int, tmp_path: Path):
    caller, password = NAMES.take()
    callee, callee_password = NAMES.take()
    with sipp_callee(tmp_path / "callee", kamailio, callee, callee_password, DOMAIN, calls=1):
        pass
    result = sipp_call(tmp_path / "caller", kamailio, caller, password, callee, DOMAIN, scenario="uac_expect.xml",
                       expect=480)  # fmt: skip
    assert result.returncode == 0, _ok(result)


def test_several_calls_to_one_callee(kamailio: int, tmp_path: Path):
    caller, password = NAMES.take()
    callee, callee_password = NAMES.take()
    with sipp_callee(tmp_path / "callee", kamailio, callee, callee_password, DOMAIN, calls=20) as device:
        result = sipp_call(tmp_path / "caller", kamailio, caller, password, callee, DOMAIN, calls=20, rate=50)
        assert result.returncode == 0, _ok(result)
        assert device.wait(timeout=10) == 0, device.output()
    assert len(sipp_setup_times(tmp_path / "caller")) == 20


def test_tls_needs_a_sipp_with_tls(tmp_path: Path):
    """Over TLS the helpers pass -t l1 with a certificate of their own; this sipp may lack TLS."""
    from tests.integration.clients import sipp_has_tls

    if sipp_has_tls():
        pytest.skip("this sipp has TLS: the Kamailio baseline has no TLS listener to try it on")
    with pytest.raises(pytest.skip.Exception):
        sipp_call(tmp_path, 5061, "a", "b", "c", DOMAIN, transport="tls")
