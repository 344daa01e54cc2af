"""Multi-process mode: worker processes count into files in PROMETHEUS_MULTIPROC_DIR, and a scrape
of any process sums them. The workers run as subprocesses (prometheus_client chooses where values
live when a metric is made, once per process); this process only reads their files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from sipline import metrics
from sipline.api.app import create_app
from sipline.runtime import Runtime
from tests.scrape import Samples, parse, scrape, value

# What each worker does: shed two requests, receive a TCP response, answer a call, end another.
WORK = """
metrics.sip_shed()
metrics.sip_shed()
metrics.sip_received("tcp", b"SIP/2.0 200 OK\\r\\n\\r\\n")
metrics.call_answered()
metrics.call_ended("busy", answered=False)
metrics.http_request("GET", "/healthz", 200, 0.003)
"""


def _python(code: str, directory: Path | None, cwd: Path) -> str:
    env = {"PATH": "/usr/bin:/bin"}
    if directory is not None:
        env[metrics.MULTIPROC_ENV] = str(directory)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _collected(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Samples:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    return scrape()


def test_two_workers_started_with_the_variable_are_summed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    pids = [
        int(_python(f"import os\nfrom sipline import metrics\n{WORK}\nprint(os.getpid())", directory, tmp_path))
        for _ in range(2)
    ]
    samples = _collected(directory, monkeypatch)
    assert value(samples, "sipline_sip_requests_shed_total") == 4
    assert value(samples, "sipline_sip_messages_received_total", transport="tcp", kind="response") == 2
    assert value(samples, "sipline_calls_total", status="busy") == 2
    assert value(samples, "sipline_http_requests_total", method="GET", route="/healthz", status="200") == 2
    assert value(samples, "sipline_http_request_duration_seconds_count", method="GET", route="/healthz") == 2
    # Active calls are a live sum: the exited workers count until the master says they are gone.
    assert value(samples, "sipline_calls_active") == 2
    metrics.mark_process_dead(pids[0])
    assert value(_collected(directory, monkeypatch), "sipline_calls_active") == 1
    metrics.mark_process_dead(pids[1])
    after = _collected(directory, monkeypatch)
    assert value(after, "sipline_calls_active") == 0
    assert value(after, "sipline_sip_requests_shed_total") == 4  # counters outlive their processes


def test_workers_forked_after_the_master_set_the_variable_count_in_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master imports sipline (and these metrics) before it knows it will fork, counts a little
    itself, then sets the variable and forks: each worker counts into files, from zero."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    master = f"""
        import os
        from sipline import metrics
        for _ in range(5):
            metrics.sip_shed()  # the master's own, in memory: no worker inherits them
        os.environ[metrics.MULTIPROC_ENV] = {str(directory)!r}
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                {textwrap.indent(WORK, " " * 16).strip()}
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        print(" ".join(map(str, pids)))
    """
    pids = [int(pid) for pid in _python(master, None, tmp_path).split()]
    samples = _collected(directory, monkeypatch)
    assert value(samples, "sipline_sip_requests_shed_total") == 4
    assert value(samples, "sipline_calls_total", status="busy") == 2
    assert value(samples, "sipline_calls_active") == 2
    for pid in pids:
        metrics.mark_process_dead(pid)
    assert value(_collected(directory, monkeypatch), "sipline_calls_active") == 0


async def test_the_route_serves_every_process_metrics_and_the_live_bindings(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    _python(f"from sipline import metrics\n{WORK}", directory, tmp_path)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://testserver"
    ) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "sipline_sip_requests_shed_total") == 2  # the worker's, not this process's
    assert ("sipline_sip_bindings", frozenset({("transport", "udp")})) in samples


def test_without_the_variable_mark_process_dead_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.mark_process_dead(12345)
