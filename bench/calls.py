"""SIP call benchmark: sipline against Kamailio, the same sipp scenarios, in one run.

    .venv/bin/python bench/calls.py [--server both|kamailio|sipline] [--users 1000]
                                    [--rates 100,200,400,...] [--step-seconds 5] [--hold-ms 1000]
                                    [--concurrent 4000] [--concurrent-rate 200] [--transport udp|tcp]
                                    [--kamailio-dialog] [--database-url URL] [--keep]

Each server is measured the same way, unpinned (both compete with sipp for the same two cores, as
in production they would with everything else), with the same sipp command lines:

1. N caller endpoints and N callee endpoints (bench00000.. callers, then the callees). sipline: seeded
   through the store exactly as bench/sip.py seeds them (bench/common.py `seed`, one executemany, sipline
   stopped). Kamailio: the same users in a db_text `subscriber` table with precomputed HA1.
2. The server starts (sipline: `sipline serve` through tests/integration/sipline_process.py, MD5
   challenges as sipp computes MD5 only; Kamailio: bench/kamailio/calls.cfg in the foreground). One
   sipp registers the N callees from one local port (register_digest.xml), then one sipp UAS
   (uas_answer.xml, server mode) answers every call on that port: a UDP device is reached at the
   source address it registered from, so each callee endpoint has one binding, and all of them lead
   to the same sipp. Over TCP one sipp does both on one connection (register_wait.xml with
   uas_answer.xml as its out-of-call scenario).
3. Rate sweep: for each offered rate R, one sipp UAC (uac_call.xml) places R x step-seconds calls at
   R calls/s, caller i calling callee i: INVITE, 407, ACK, INVITE with digest, 100/180, 200, ACK,
   hold, BYE, 200. Per step: answered calls per second (from the times the 200s arrived), failed
   calls (UAC and UAS), retransmissions (UAC and UAS, per 100 calls), setup time p50/p99 (first
   INVITE to 200, sipp's 1 ms clock), CPU of the server, of the UAC and of the UAS. The sweep stops
   after the first step with a failed call, >= 1 % retransmissions or an answered rate under 90 % of
   the offered one. Capacity = the highest answered rate of a step with no failed call and < 1 %
   retransmissions. sipp's call limit (-l) is set so high that it never throttles the server.
4. Memory: a fresh server, the callees registered, then calls held open (-d long) at a modest rate
   until about --concurrent calls are up; the server's memory idle and then with those calls up,
   per 1,000 concurrent calls. Memory is the proportional set size (PSS, /proc/PID/smaps_rollup)
   summed over the server's processes: Kamailio's processes share its shm pool, which a sum of RSS
   would count once per process that touched it (RSS sums are printed too).
5. Prints Kamailio's figures, sipline's, then the ratios sipline/Kamailio. All traffic on 127.0.0.1;
   every process started is stopped, also on Ctrl-C or an error.

Why N distinct callees and one UAS: each call makes the server find its callee's bindings, as in
real use (a single hot callee would flatter any cache), while one sipp process answering all of
them leaves the most CPU to the server on a small machine. Neither server can tell that the
bindings lead to one process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402  (helpers shared with bench/sip.py)
    SIPP_DIR,
    SIPP_TUNING,
    KamailioProcess,
    ProbeError,
    ProbeThread,
    SiplineServer,
    bench_creds,
    counter,
    cpu_seconds,
    digest,
    free_port,
    last_int,
    last_stats,
    machine_busy_seconds,
    memory_kb,
    own_cpu_seconds,
    own_database,
    percentile,
    ratio,
    seed,
    stop_group,
    udp_receive_drops,
    write_subscribers,
)

KAMAILIO_CFG = ROOT / "bench" / "kamailio" / "calls.cfg"
KAMAILIO_DOMAIN = "default.sip.localhost"  # only when sipline is not run (its domain otherwise)
RECV_TIMEOUT_S = 10  # a call waiting longer than this for a message fails


# --- users ------------------------------------------------------------------------------------


@dataclass
class Users:
    domain: str
    callers: list[tuple[str, str]]
    callees: list[tuple[str, str]]

    @classmethod
    def split(cls, domain: str, creds: list[tuple[str, str]]) -> Users:
        half = len(creds) // 2
        return cls(domain, creds[:half], creds[half:])

    def write(self, tmp: Path) -> tuple[Path, Path]:
        """callees.csv (username;password;domain) and calls.csv (caller;password;callee;domain)."""
        callees, calls = tmp / "callees.csv", tmp / "calls.csv"
        callees.write_text("SEQUENTIAL\n" + "".join(f"{u};{p};{self.domain}\n" for u, p in self.callees))
        calls.write_text(
            "SEQUENTIAL\n"
            + "".join(f"{c};{p};{e};{self.domain}\n" for (c, p), (e, _) in zip(self.callers, self.callees, strict=True))
        )
        return callees, calls


# --- processes --------------------------------------------------------------------------------


class Kamailio(KamailioProcess):
    """bench/kamailio/calls.cfg: UDP and TCP on one port, auth_db on db_text, optionally dialogs."""

    def __init__(self, tmp: Path, users: Users, *, dialog: bool = False) -> None:
        super().__init__(tmp)
        self.dialog = dialog
        self.db = tmp / "kamailio-db"
        if not self.db.exists():
            write_subscribers(self.db, users.domain, users.callers + users.callees)

    def arguments(self, port: int) -> list[str]:
        return [
            "-f", str(KAMAILIO_CFG), "-l", f"udp:127.0.0.1:{port}", "-l", f"tcp:127.0.0.1:{port}",
            "-A", f'DBURL="text://{self.db}"', *(["-A", "WITH_DIALOG"] if self.dialog else []),
        ]  # fmt: skip

    def port_for(self, transport: str) -> int:
        return self.port  # the same port for UDP and TCP


Server = Kamailio | SiplineServer


# --- sipp -------------------------------------------------------------------------------------


class CalleeFarm:
    """The N callees registered from one local port and answered there by one sipp UAS."""

    def __init__(self, workdir: Path, server_port: int, callees_csv: Path, count: int, transport: str) -> None:
        self.workdir = workdir
        self.server = f"127.0.0.1:{server_port}"
        self.csv = callees_csv
        self.count = count
        self.transport = transport
        self.mode = {"udp": "u1", "tcp": "t1"}[transport]
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CalleeFarm:
        self.workdir.mkdir(parents=True, exist_ok=True)
        common = ["-i", "127.0.0.1", "-p", str(self.port), "-t", self.mode, "-nostdin", *SIPP_TUNING]
        rate = ["-r", "500", "-l", "200"]
        if self.transport == "udp":
            done = subprocess.run(
                ["sipp", "-sf", str(SIPP_DIR / "register_digest.xml"), "-inf", str(self.csv), *common,
                 "-m", str(self.count), *rate, "-timeout", "300s", "-timeout_error", self.server],
                cwd=self.workdir, capture_output=True, text=True, timeout=330,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"registering {self.count} callees failed: {done.stdout[-2000:]}{done.stderr}")
            cmd = [
                "sipp", "-sf", str(SIPP_DIR / "uas_answer.xml"), *common, "-trace_stat", "-fd", "1", "-trace_err",
                self.server,
            ]  # fmt: skip
        else:
            cmd = [
                "sipp", "-sf", str(SIPP_DIR / "register_wait.xml"), "-oocsf", str(SIPP_DIR / "uas_answer.xml"),
                "-inf", str(self.csv), *common, "-m", str(self.count), *rate, "-d", "86400000",
                "-trace_stat", "-fd", "1", "-trace_logs", "-trace_err", self.server,
            ]  # fmt: skip
        with (self.workdir / "uas.out").open("w") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, stdout=out, stderr=out, text=True, start_new_session=True
            )
        try:
            if self.transport == "udp":
                self._wait_bound()
            else:
                self._wait_registered()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _failed(self, what: str) -> RuntimeError:
        return RuntimeError(f"{what}: {(self.workdir / 'uas.out').read_text(errors='replace')[-2000:]}")

    def _wait_bound(self, timeout: float = 10.0) -> None:
        """Until the UAS holds its UDP port (binding it ourselves then fails)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self._failed("the callee sipp exited")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    return
            time.sleep(0.05)
        raise self._failed(f"the callee sipp did not bind port {self.port}")

    def _wait_registered(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = list(self.workdir.glob("*_logs.log"))
            if logs and logs[0].read_text().count("registered ") >= self.count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise self._failed("the callees did not register")

    def stats(self) -> dict[str, str]:
        return last_stats(self.workdir)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def unregister(self) -> None:
        """Remove every callee's bindings (Contact: *): a restarted server must not ring this port."""
        subprocess.run(
            ["sipp", "-sf", str(SIPP_DIR / "unregister_digest.xml"), "-inf", str(self.csv), "-i", "127.0.0.1",
             "-p", str(free_port()), "-t", self.mode, "-m", str(self.count), "-r", "500", "-l", "200", "-nostdin",
             "-timeout", "120s", *SIPP_TUNING, self.server],
            cwd=self.workdir, capture_output=True, text=True, timeout=150,
        )  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc)


@dataclass
class Step:
    offered: float
    calls: int
    ok: int = 0
    failed: int = 0
    retransmissions: int = 0
    answered_rate: float = 0.0
    setup_ms: list[float] = field(default_factory=list)  # the probe's
    rtd_ms: list[float] = field(default_factory=list)  # sipp's, every call, coarse (see Probe)
    probe_failures: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # share of one core over the step
    uac_cpu: float = 0.0
    uas_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine (other users' work), in cores
    udp_drops: int = 0  # datagrams dropped by full receive buffers (machine-wide)
    note: str = ""

    @property
    def retrans_pct(self) -> float:
        return 100.0 * self.retransmissions / self.calls if self.calls else 0.0

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.retrans_pct < 1.0 and self.ok > 0

    @property
    def saturated(self) -> bool:
        return self.answered_rate < 0.9 * self.offered

    def pct(self, p: float) -> float:
        return percentile(self.setup_ms, p)

    def rtd(self, p: float) -> float:
        return percentile(self.rtd_ms, p)

    @staticmethod
    def header() -> str:
        return (
            f"{'offered/s':>9} {'calls':>6} {'ok':>6} {'failed':>6} {'retrans':>7} {'retr%':>6} {'answered/s':>10} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'probes':>6} {'rtd p50':>7} {'rtd p99':>7} "
            f"{'srv CPU':>7} {'uac CPU':>7} {'uas CPU':>7} {'other':>6} {'drops':>6}"
        )

    def row(self) -> str:
        flags = []
        if not self.clean:
            flags.append("FAILED" if self.failed else "RETRANS")
        if self.saturated:
            flags.append("saturated")
        if max(self.uac_cpu, self.uas_cpu) > 0.85:
            flags.append("sipp busy")
        if self.other_cpu > 0.25:
            flags.append("machine shared")
        if self.probe_failures:
            flags.append(f"probe: {self.probe_failures[0]}")
        if self.note:
            flags.append(self.note)
        return (
            f"{self.offered:>9g} {self.calls:>6} {self.ok:>6} {self.failed:>6} {self.retransmissions:>7} "
            f"{self.retrans_pct:>6.2f} {self.answered_rate:>10.0f} {self.pct(50):>7.2f} {self.pct(99):>7.2f} "
            f"{len(self.setup_ms):>6} {self.rtd(50):>7.0f} {self.rtd(99):>7.0f} "
            f"{self.server_cpu:>7.0%} {self.uac_cpu:>7.0%} {self.uas_cpu:>7.0%} {self.other_cpu:>6.0%} "
            f"{self.udp_drops:>6}  " + " ".join(flags)
        )


def uac_command(calls_csv: Path, server_port: int, mode: str, calls: int, rate: float, hold_ms: int) -> list[str]:
    # The call limit only bounds sipp's memory: every call of the step may be in flight at once.
    limit = max(calls, 1)
    return [
        "sipp", "-sf", str(SIPP_DIR / "uac_call.xml"), "-inf", str(calls_csv), "-i", "127.0.0.1",
        "-p", str(free_port()), "-t", mode, "-m", str(calls), "-r", f"{rate:g}", "-l", str(limit),
        "-d", str(hold_ms), "-recv_timeout", str(RECV_TIMEOUT_S * 1000), "-nostdin",
        "-trace_err", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1", *SIPP_TUNING,
        f"127.0.0.1:{server_port}",
    ]  # fmt: skip


def setup_times(workdir: Path) -> tuple[list[float], list[float]]:
    """(setup times in ms, the sipp clock times in ms at which each 200 arrived)."""
    times, stamps = [], []
    for path in workdir.glob("*_rtt.csv"):
        for row in path.read_text().splitlines()[1:]:
            fields = row.split(";")
            with contextlib.suppress(ValueError, IndexError):
                if fields[2] == "setup":
                    stamps.append(float(fields[0]))
                    times.append(float(fields[1]))
    return times, stamps


def run_step(
    server: Server,
    farm: CalleeFarm,
    calls_csv: Path,
    probe_users: Users,
    workdir: Path,
    rate: float,
    args: argparse.Namespace,
) -> Step:
    calls = max(1, round(rate * args.step_seconds))
    step = Step(offered=rate, calls=calls)
    workdir.mkdir(parents=True, exist_ok=True)
    uas_before = farm.stats()
    server_pids, uas_pids = server.pids(), farm.pids()
    cpu0, uas0 = cpu_seconds(server_pids), cpu_seconds(uas_pids)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine0, own0, drops0 = machine_busy_seconds(), own_cpu_seconds(), udp_receive_drops()
    probe = Probe(server.port_for("udp"), probe_users, args.probe_rate) if args.probe_rate > 0 else None
    started = time.monotonic()
    if probe is not None:
        probe.start()
    cmd = uac_command(calls_csv, server.port_for(args.transport), farm.mode, calls, rate, args.hold_ms)
    budget = args.step_seconds * 3 + args.hold_ms / 1000 + RECV_TIMEOUT_S * 3 + 30
    try:
        done = subprocess.run(
            [*cmd, "-timeout", f"{int(budget)}s"], cwd=workdir, capture_output=True, text=True, timeout=budget + 30
        )
        stdout = done.stdout
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        step.note = "sipp overran its time"
    finally:
        if probe is not None:
            step.setup_ms, step.probe_failures = probe.stop()
    wall = time.monotonic() - started
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    step.server_cpu = (cpu_seconds(server_pids) - cpu0) / wall
    step.uas_cpu = (cpu_seconds(uas_pids) - uas0) / wall
    step.uac_cpu = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime) / wall
    ours = step.server_cpu + step.uas_cpu + step.uac_cpu + (own_cpu_seconds() - own0) / wall
    step.other_cpu = max(0.0, (machine_busy_seconds() - machine0) / wall - ours)
    step.udp_drops = udp_receive_drops() - drops0
    # the UAS writes its statistics every second: let it write one that covers the whole step
    time.sleep(1.5)
    uas_after = farm.stats()
    stats = last_stats(workdir)
    # sipp's final screen first (written as it exits), else its last statistics line
    if re.search(r"Successful call\s*\|", stdout):
        step.ok = last_int(stdout, r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)")
        step.failed = last_int(stdout, r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)")
    else:
        step.ok, step.failed = counter(stats, "SuccessfulCall(C)"), counter(stats, "FailedCall(C)")
    if step.ok + step.failed < calls:
        step.failed = calls - step.ok
        step.note = step.note or "calls unfinished"
    uas_failed = counter(uas_after, "FailedCall(C)") - counter(uas_before, "FailedCall(C)")
    step.failed += max(0, uas_failed) + len(step.probe_failures)
    step.retransmissions = counter(stats, "Retransmissions(C)") + max(
        0, counter(uas_after, "Retransmissions(C)") - counter(uas_before, "Retransmissions(C)")
    )
    if not server.alive():
        step.note = "THE SERVER EXITED"
        step.failed = max(step.failed, 1)
    step.rtd_ms, stamps = setup_times(workdir)
    if len(stamps) >= 2 and max(stamps) > min(stamps):
        step.answered_rate = (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000)
    elif step.ok:
        step.answered_rate = step.ok / max(wall - args.hold_ms / 1000, 1e-3)
    return step


@dataclass
class Memory:
    idle_pss_kb: int = 0
    idle_rss_kb: int = 0
    busy_pss_kb: int = 0
    busy_rss_kb: int = 0
    concurrent: int = 0
    failed: int = 0

    @property
    def per_1000_mb(self) -> float:
        if not self.concurrent:
            return float("nan")
        return (self.busy_pss_kb - self.idle_pss_kb) / 1024 * 1000 / self.concurrent

    @property
    def per_1000_rss_mb(self) -> float:
        if not self.concurrent:
            return float("nan")
        return (self.busy_rss_kb - self.idle_rss_kb) / 1024 * 1000 / self.concurrent

    def row(self) -> str:
        return (
            f"   idle PSS {self.idle_pss_kb / 1024:.1f} MB (RSS sum {self.idle_rss_kb / 1024:.1f} MB); "
            f"with {self.concurrent} calls up PSS {self.busy_pss_kb / 1024:.1f} MB "
            f"(RSS sum {self.busy_rss_kb / 1024:.1f} MB), {self.failed} failed: "
            f"{self.per_1000_mb:.2f} MB per 1,000 concurrent calls (RSS sums: {self.per_1000_rss_mb:.2f} MB)"
        )


def measure_memory(server: Server, farm: CalleeFarm, calls_csv: Path, workdir: Path,
                   args: argparse.Namespace) -> Memory:  # fmt: skip
    """Hold calls open until about args.concurrent are up; the server's memory before and then."""
    workdir.mkdir(parents=True, exist_ok=True)
    time.sleep(1.0)
    mem = Memory()
    mem.idle_pss_kb, mem.idle_rss_kb = memory_kb(server.pids())
    ramp = args.concurrent / args.concurrent_rate
    hold_ms = int((ramp + 30) * 1000)
    cmd = uac_command(calls_csv, server.port_for(args.transport), farm.mode, args.concurrent, args.concurrent_rate,
                      hold_ms)  # fmt: skip
    with (workdir / "uac.out").open("w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=out, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + ramp + 20
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            stats = last_stats(workdir)
            # up: every call placed and answered (none waits for its 200 any more)
            answered = counter(stats, "OutgoingCall(C)") >= args.concurrent and len(setup_times(workdir)[0]) >= (
                args.concurrent - counter(stats, "FailedCall(C)")
            )
            if answered:
                break
        time.sleep(2.0)  # let the server's transactions of the last calls settle a little
        stats = last_stats(workdir)
        mem.concurrent = counter(stats, "CurrentCall")
        mem.failed = counter(stats, "FailedCall(C)")
        mem.busy_pss_kb, mem.busy_rss_kb = memory_kb(server.pids())
    finally:
        stop_group(proc)
    return mem


# --- the setup-time probe ---------------------------------------------------------------------


PROBE_TIMEOUT = 8.0  # seconds a probe request waits for its final response


class Probe(ProbeThread):
    """Calls placed one after another at `rate` per second beside sipp's load, over UDP, each setup
    timed with the monotonic clock: first INVITE sent to 200 received (INVITE, 407, ACK, INVITE with
    digest, 100/180, 200), then ACK and, 20 ms later, BYE.

    sipp's own response times ("rtd") are not fit for this: sipp stamps events with a clock it
    reads once per pass of its event loop, so a 200 handled in the same pass as the INVITE's send
    reads 0 ms and most readings fall on a 4 ms grid; they are printed too ("sipp rtd").
    """

    def __init__(self, server_port: int, users: Users, rate: float) -> None:
        super().__init__(server_port, rate)
        (self.user, self.password), (self.callee, _) = users.callers[0], users.callees[0]
        self.domain = users.domain

    # one call

    def once(self) -> float:
        call_id, tag = f"probe-{uuid.uuid4().hex}", uuid.uuid4().hex[:10]
        uri = f"sip:{self.callee}@{self.domain}"
        started = time.perf_counter()
        branch = self._branch()
        challenge = self.transact(self.invite(uri, call_id, tag, branch, 1, ""), call_id, "INVITE", 1, PROBE_TIMEOUT)
        if challenge.status not in (401, 407):
            raise ProbeError(f"first INVITE: {challenge.status} instead of 407")
        self.send(self.request("ACK", uri, call_id, tag, branch, 1, to_tag=challenge.to_tag))
        name = "Proxy-Authorization" if challenge.status == 407 else "Authorization"
        auth = f"{name}: {digest(self.user, self.password, 'INVITE', uri, challenge.challenge)}\r\n"
        answer = self.transact(
            self.invite(uri, call_id, tag, self._branch(), 2, auth), call_id, "INVITE", 2, PROBE_TIMEOUT
        )
        setup_ms = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise ProbeError(f"INVITE with credentials: {answer.status}")
        target = answer.contact or uri
        routes = "".join(f"Route: {r}\r\n" for r in reversed(answer.record_route))
        self.send(self.request("ACK", target, call_id, tag, self._branch(), 2, to_tag=answer.to_tag, extra=routes))
        time.sleep(0.02)  # a moment of call: a BYE on the ACK's heels may overtake it through a proxy
        bye = self.request("BYE", target, call_id, tag, self._branch(), 3, to_tag=answer.to_tag, extra=routes)
        done = self.transact(bye, call_id, "BYE", 3, PROBE_TIMEOUT)
        if done.status != 200:
            raise ProbeError(f"BYE: {done.status}")
        return setup_ms

    @staticmethod
    def _branch() -> str:
        return f"z9hG4bK{uuid.uuid4().hex[:16]}"

    def request(self, method: str, uri: str, call_id: str, tag: str, branch: str, cseq: int, *,
                to_tag: str | None = None, extra: str = "", body: str = "") -> str:  # fmt: skip
        host, port = self.local
        to = f"<sip:{self.callee}@{self.domain}>" + (f";tag={to_tag}" if to_tag else "")
        content = "Content-Type: application/sdp\r\n" if body else ""
        return (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{self.user}@{self.domain}>;tag={tag}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{self.user}@{host}:{port}>\r\n"
            f"{extra}User-Agent: sipline-bench-probe\r\n{content}Content-Length: {len(body)}\r\n\r\n{body}"
        )

    def invite(self, uri: str, call_id: str, tag: str, branch: str, cseq: int, auth: str) -> str:
        host, port = self.local
        sdp = (
            f"v=0\r\no=probe 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port + 2} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
        )
        return self.request("INVITE", uri, call_id, tag, branch, cseq, extra=auth, body=sdp)


# --- running one server -----------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    steps: list[Step] = field(default_factory=list)
    memory: Memory | None = None

    @property
    def capacity_step(self) -> Step | None:
        clean = [s for s in self.steps if s.clean]
        return max(clean, key=lambda s: s.answered_rate) if clean else None

    @property
    def capacity(self) -> float:
        step = self.capacity_step
        return step.answered_rate if step else 0.0


def farm_for(server: Server, workdir: Path, callees_csv: Path, users: Users, args: argparse.Namespace) -> CalleeFarm:
    return CalleeFarm(workdir, server.port_for(args.transport), callees_csv, len(users.callees), args.transport)


def bench_server(
    name: str, make_server: Callable[[], Server], users: Users, tmp: Path, args: argparse.Namespace
) -> Outcome:
    """The rate sweep on one server process, then the memory figure on a fresh one."""
    callees_csv, calls_csv = users.write(tmp)
    outcome = Outcome(name)
    print(f"\n== {name}: rate sweep ({args.transport})", flush=True)
    print(Step.header(), flush=True)
    with make_server() as server, farm_for(server, tmp / f"{name}-uas", callees_csv, users, args) as farm:
        for index, rate in enumerate(args.rates):
            # A directory per step, even for a rate given twice: a step reads every trace in its own.
            workdir = tmp / f"{name}-step-{index}-{rate:g}"
            step = run_step(server, farm, calls_csv, users, workdir, rate, args)
            outcome.steps.append(step)
            print(step.row(), flush=True)
            if not step.clean or step.saturated or not server.alive():
                break
            time.sleep(1.0)
        farm.unregister()
    if args.concurrent > 0:
        print(f"== {name}: memory with {args.concurrent} calls up ({args.concurrent_rate:g} calls/s)", flush=True)
        with make_server() as server, farm_for(server, tmp / f"{name}-uas-mem", callees_csv, users, args) as farm:
            outcome.memory = measure_memory(server, farm, calls_csv, tmp / f"{name}-memory", args)
            farm.unregister()
        print(outcome.memory.row(), flush=True)
    return outcome


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(
        f"\n{args.users} callers, {args.users} callees, {args.transport.upper()}, steps of {args.step_seconds:g} s, "
        f"calls held {args.hold_ms} ms; capacity = highest answered rate with no failed call and < 1 % retransmissions"
    )
    for o in outcomes:
        step = o.capacity_step
        print(f"\n{o.name}:")
        if step is None:
            print("  capacity: no clean step")
        else:
            print(
                f"  capacity {o.capacity:.0f} calls/s (offered {step.offered:g}/s): setup p50 {step.pct(50):.1f} ms, "
                f"p99 {step.pct(99):.1f} ms; server CPU {step.server_cpu:.0%} of a core"
            )
            if o.steps and o.steps[-1].clean and not o.steps[-1].saturated:
                print("  (the sweep ended before the server did: offer higher --rates for its real capacity)")
        if o.steps:
            first = o.steps[0]
            print(f"  at {first.offered:g} calls/s: setup p50 {first.pct(50):.1f} ms, p99 {first.pct(99):.1f} ms")
        if o.memory is not None:
            print(f"  memory: {o.memory.per_1000_mb:.2f} MB per 1,000 concurrent calls ({o.memory.concurrent} up)")
    by_name = {o.name: o for o in outcomes}
    if "sipline" in by_name and "kamailio" in by_name:
        s, k = by_name["sipline"], by_name["kamailio"]
        print("\nsipline / kamailio:")
        print(f"  capacity            {ratio(s.capacity, k.capacity)}")
        if s.steps and k.steps and s.steps[0].offered == k.steps[0].offered:
            rate = s.steps[0].offered
            print(f"  setup p50 at {rate:g}/s   {ratio(s.steps[0].pct(50), k.steps[0].pct(50))}")
            print(f"  setup p99 at {rate:g}/s   {ratio(s.steps[0].pct(99), k.steps[0].pct(99))}")
        if s.memory and k.memory:
            print(f"  memory per call     {ratio(s.memory.per_1000_mb, k.memory.per_1000_mb)}")


def run_all(tmp: Path, args: argparse.Namespace, database_url: str | None) -> list[Outcome]:
    """Each server's sweep; sipline's on `database_url` (SQLite in `tmp` when None)."""
    outcomes: list[Outcome] = []
    if args.server in ("both", "sipline"):
        data_dir = tmp / "sipline"
        domain, creds = asyncio.run(seed(data_dir, database_url, 2 * args.users))
        users = Users.split(domain, creds)
    else:
        users = Users.split(KAMAILIO_DOMAIN, bench_creds(2 * args.users))
    if args.server in ("both", "kamailio"):
        outcomes.append(
            bench_server("kamailio", lambda: Kamailio(tmp, users, dialog=args.kamailio_dialog), users, tmp, args)
        )
    if args.server in ("both", "sipline"):
        outcomes.append(
            bench_server(
                "sipline",
                lambda: SiplineServer(tmp / "sipline", database_url, shlex.split(args.sipline_args)),
                users,
                tmp,
                args,
            )
        )
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["both", "kamailio", "sipline"], default="both")
    parser.add_argument("--users", type=int, default=1000, help="caller endpoints, and as many callee endpoints")
    parser.add_argument("--rates", default="100,200,400,700,1000,1500,2000,3000,4000",
                        help="offered calls per second, one sweep step each")  # fmt: skip
    parser.add_argument("--step-seconds", type=float, default=5.0, help="calls placed per step: rate x this")
    parser.add_argument("--hold-ms", type=int, default=1000, help="how long each call of the sweep lasts")
    parser.add_argument("--concurrent", type=int, default=4000, help="calls held up for the memory figure (0: skip)")
    parser.add_argument("--concurrent-rate", type=float, default=200.0, help="calls/s while they build up")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp", help="sipp's (the probe uses UDP)")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="timed calls/s beside sipp's (0: none)")
    parser.add_argument("--kamailio-dialog", action="store_true",
                        help="Kamailio also tracks each dialog (dialog module), as a B2BUA must")  # fmt: skip
    parser.add_argument("--sipline-args", default="", help='extra `sipline serve` arguments, e.g. "--workers 2"')
    parser.add_argument(
        "--database-url",
        help="sipline's database (default SQLite in a temp dir; PostgreSQL: "
        "a database of the bench's own is created on that server and dropped)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, sipp traces)")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    needed = ["sipp"] + (["kamailio"] if args.server in ("both", "kamailio") else [])
    for binary in needed:
        if not shutil.which(binary):
            print(f"bench/calls.py needs {binary} (apt-get install sip-tester kamailio)", file=sys.stderr)
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="sipline-calls-bench-"))
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the runs: other work shares these CPUs", file=sys.stderr)
    try:
        with own_database(args.database_url) as database_url:
            outcomes = run_all(tmp, args, database_url)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"working directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(outcomes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
