"""`sipline serve --workers 2`: one node in two processes sharing its ports.

What a user relies on: registrations and calls work whichever worker reads each message (calls
are spread over both, and a call placed on one reaches a device connected to the other); a
password change through the API counts at once on both; a worker that dies is started again
and the node keeps serving; when the parent process is killed, its workers go with it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.clients import sipp_call, sipp_callee, sipp_register
from tests.integration.sipline_process import Sipline
from tests.scrape import parse, value
from tests.sip_server.ua import UA
from tests.sip_server.world import answered_call

pytestmark = pytest.mark.integration

ENV = {"SIPLINE_WORKERS": "2", "SIPLINE_LOG_LEVEL": "warning", "SIPLINE_CALL_RING_TIMEOUT": "5"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Sipline]:
    with Sipline(tmp_path / "node", env=ENV) as process:
        yield process


def _workers(server: Sipline, count: int = 2, timeout: float = 20.0) -> list[int]:
    """The live worker processes' ids, once there are `count` of them (a worker that died is
    listed until its parent reaps it: not counted)."""
    assert server.pid is not None
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        found = [int(pid) for pid in listed if "zombie" not in _state(int(pid))]
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].splitlines()[0].lower()
    except (OSError, IndexError):
        return "zombie"


def _users(server: Sipline, count: int) -> tuple[list[tuple[str, str, str]], list[str]]:
    with server.api() as api:
        domain = server.domain(api)
        users, ids = [], []
        for _ in range(count):
            username, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
            ids.append(server.create_endpoint(api, username=username, password=password)["id"])
            users.append((username, password, domain))
    return users, ids


def _records(server: Sipline, caller: str) -> list[tuple[str, str, str]]:
    """(direction, status, the worker that ran it) of every leg of `caller`'s calls."""
    with sqlite3.connect(server.data_dir / "sipline.db") as db:
        rows = db.execute(
            "SELECT direction, status, node_id FROM calls WHERE sid IN "
            "(SELECT sid FROM calls WHERE from_address LIKE ?) OR parent_call_sid IN "
            "(SELECT sid FROM calls WHERE from_address LIKE ?)",
            (f"sip:{caller}@%", f"sip:{caller}@%"),
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(("caller_transport", "callee_transport"), [("udp", "udp"), ("udp", "tcp"), ("tcp", "udp")])
def test_calls_run_on_both_workers_and_reach_devices_held_by_either(
    node: Sipline, tmp_path: Path, caller_transport: str, callee_transport: str
) -> None:
    users, _ = _users(node, 2)
    (caller, password, domain), (callee, callee_password, _) = users
    calls = 16
    with sipp_callee(
        tmp_path / "callee", node.ports[callee_transport], callee, callee_password, domain, transport=callee_transport
    ):
        result = sipp_call(
            tmp_path / "caller", node.ports[caller_transport], caller, password, callee, domain,
            transport=caller_transport, calls=calls, rate=20, duration_ms=50,
        )  # fmt: skip
        _ok(result)
    records = _records(node, caller)
    assert (
        sorted((d, s) for d, s, _ in records)
        == [("inbound", "completed")] * calls + [("outbound", "completed")] * calls
    )
    workers = {n for _, _, n in records}
    if caller_transport == "udp":
        # Each call's Call-ID picks its worker: 16 calls all on one of two workers is a broken
        # dispatch (a chance of 2 in 65,536 otherwise).
        assert len(workers) == 2, workers
    assert all(n.endswith(("/w0", "/w1")) for n in workers)


def test_a_password_change_counts_on_every_worker_at_once(node: Sipline, tmp_path: Path) -> None:
    users, ids = _users(node, 12)
    _ok(sipp_register(tmp_path / "before", node.ports["udp"], users))
    with node.api() as api:
        for endpoint_id in ids:
            assert api.put(f"/endpoints/sip/{endpoint_id}", json={"password": "a-new-password-1"}).status_code == 201
    old = sipp_register(tmp_path / "old", node.ports["udp"], users, timeout=10)
    assert old.returncode != 0
    assert "Successful call" in old.stdout and _successes(old.stdout) == 0
    _ok(sipp_register(tmp_path / "new", node.ports["udp"], [(u, "a-new-password-1", d) for u, _, d in users]))


def _successes(screen: str) -> int:
    line = next(line for line in screen.splitlines() if line.strip().startswith("Successful call"))
    return int(line.split("|")[2].split()[0])


def test_a_worker_that_dies_is_started_again_and_the_node_goes_on(node: Sipline, tmp_path: Path) -> None:
    first = _workers(node)
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    assert _gone([first[0]])
    again = _workers(node)
    assert len(again) == 2 and first[0] not in again and first[1] in again
    users, _ = _users(node, 2)
    (caller, password, domain), (callee, callee_password, _) = users
    with sipp_callee(tmp_path / "callee", node.ports["udp"], callee, callee_password, domain):
        _ok(sipp_call(tmp_path / "caller", node.ports["udp"], caller, password, callee, domain, calls=8, rate=20))
    assert httpx.get(f"{node.http_url}/healthz").status_code == 200
    assert re.search(r"worker \d exited \(killed by SIGKILL\); starting it again", node.output())


def test_workers_stop_when_the_parent_is_killed(node: Sipline) -> None:
    workers = _workers(node)
    assert node.pid is not None
    # The parent would have removed the workers' metrics directory; killed, it cannot: the test does.
    mapped = re.search(r"(/\S*/sipline-metrics-[^/\s]+)/", Path(f"/proc/{workers[0]}/maps").read_text())
    os.kill(node.pid, signal.SIGKILL)
    assert _gone(workers), "the workers outlived their parent"
    if mapped is not None:  # the files of the workers' metrics, mapped while they lived
        shutil.rmtree(mapped[1], ignore_errors=True)


def test_stopping_the_node_stops_every_worker(node: Sipline) -> None:
    workers = _workers(node)
    node.stop()
    assert _gone(workers, timeout=1)


def test_metrics_count_what_every_worker_did_whichever_answers_the_scrape(node: Sipline, tmp_path: Path) -> None:
    users, _ = _users(node, 12)
    _ok(sipp_register(tmp_path / "register", node.ports["udp"], users))
    for _ in range(6):  # the HTTP connections land on either worker; each sums all of them
        samples = parse(httpx.get(f"{node.http_url}/metrics").text)
        assert value(samples, "sipline_sip_registers_total", outcome="registered") == 12
        assert value(samples, "sipline_sip_registers_total", outcome="challenged") == 12


async def test_requests_of_a_call_sent_over_new_connections_reach_the_worker_holding_it(node: Sipline) -> None:
    """A caller on TCP whose later requests come over connections of their own (a phone that opened
    a new one to hang up, say): whichever worker accepts them, they reach the call."""
    users, _ = _users(node, 2)
    (alice_user, alice_pw, domain), (bob_user, bob_pw, _) = users
    tcp, udp = ("127.0.0.1", node.ports["tcp"]), ("127.0.0.1", node.ports["udp"])
    async with (
        UA(alice_user, alice_pw, domain, tcp, transport="tcp") as alice,
        UA(bob_user, bob_pw, domain, udp) as bob,
    ):
        assert (await bob.register()).status == 200
        leg, _, _ = await answered_call(alice, bob)
        # Eight connections: all accepted by the worker holding the call has a chance of 1 in 256.
        for _ in range(8):
            async with UA(alice_user, alice_pw, domain, tcp, transport="tcp") as other:
                other.in_dialog(leg, "INFO", body="Signal=5\r\n", content_type="application/dtmf-relay")
                info = await bob.request("INFO")
                bob.send(bob.reply(info, 200, "OK"))
                assert (await other.response(leg.call_id, method="INFO")).status == 200
        async with UA(alice_user, alice_pw, domain, tcp, transport="tcp") as other:
            other.in_dialog(leg, "BYE")
            bye = await bob.request("BYE")
            bob.send(bob.reply(bye, 200, "OK"))
            assert (await other.response(leg.call_id, method="BYE")).status == 200
