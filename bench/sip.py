"""SIP registrar benchmark: sipline against Kamailio, the same sipp command lines, in one run.

    .venv/bin/python bench/sip.py [--server all|sipline|bare|kamailio|kamailio-db[,...]] [--users 10000]
                                  [--rates 500,1000,2000,...] [--step-seconds 10] [--prime-rate 1000]
                                  [--probe-rate 50] [--storm-rate R] [--storm-seconds 30] [--recovery-rate R]
                                  [--recovery-seconds 60] [--no-storm] [--database-url URL]
                                  [--sipline-args "..."] [--kamailio-children 2] [--kamailio-db sqlite|text]
                                  [--bare-workers N] [--strict] [--keep]

One registration is tests/integration/sipp/register_digest.xml: REGISTER, 401, REGISTER with digest,
200. The servers run unpinned on the same 2 cores as sipp (whose CPU is accounted for), with the
same sipp command lines; sipp's call limit (-l) is set so high that it never throttles a server.
`--server all` (the default; `both` is its old name) runs sipline, the bare Python registrar of
bench/sip_bare.py (the ceiling of a CPython registrar, as asgi_bare.py is for the API: --bare-workers
processes, as many as sipline's --workers by default), then Kamailio as the issue measured it
(bindings in memory), then `kamailio-db`: the same Kamailio with its bindings in the database
(usrloc's DB-only mode: each binding written before its 200, and every node reading the same table),
the guarantees sipline gives, on sipline's kind of database (a SQLite file in WAL mode, with one
child, as db_sqlite cannot share its write lock; or with --database-url PostgreSQL, auth_db included).

For each server (sipline first, then the bare one, then Kamailio, then kamailio-db):

1. Users: N endpoints (bench00000..). sipline: seeded through the store (bench/common.py `seed`,
   sipline stopped). Kamailio: bench/kamailio/kamailio.cfg (2 UDP workers, auth_db on SQLite with
   HA1 precomputed, usrloc in memory), 2 GB of shm reserved and UDP buffers up to 4 MB;
   kamailio-db the same with usrloc in the database, its schema the one Kamailio ships.
2. Devices: one sipp local port per server stands for the N devices (Contact user@127.0.0.1:PORT),
   the same port in every run, so that every registration after the first refreshes a binding. The
   server starts and every device registers once (`prime`: --prime-rate, slower for the failed; not
   the bare server, which keeps no bindings).
3. Rate sweep: for each offered rate R, one sipp places R x --step-seconds registrations at R/s,
   cycling through the N devices (so each device re-registers every N / R seconds: refreshes, the
   registrar's steady state). Per step: registrations ok and failed, retransmissions, the achieved
   rate (from the times the 200s came back), registration time p50/p99 (first REGISTER sent to 200
   received) of the Probe's registrations (one more device, timed precisely, --probe-rate/s beside
   sipp) and of every registration (sipp's 1 ms clock), CPU of the server and of sipp, UDP
   receive-buffer drops. Capacity = the highest achieved rate of a step with no failed registration
   and < 1 % retransmissions; the sweep stops after the first step that fails that, plus one more.
4. A fresh server: every device registered (prime), then the latency step at half of the server's
   capacity, then the storm: --storm-rate (default 3 x sipline's capacity, the same rate for
   Kamailio) for --storm-seconds, tests/integration/sipp/register_logged.xml (the same registration,
   plus a log line naming the device that got its 200: register_digest.xml cannot say whose
   registration failed). Goodput = 200s received per second while the storm lasts. Then recovery:
   the devices whose last attempt of the storm failed (their phones would say "not registered")
   register again at --recovery-rate, pass after pass for the ones still failing, until all are
   registered or --recovery-seconds after the storm's end. The bare server gets the latency step
   only: it answers whatever it reads, and has no failure mode for a storm to show.
5. Prints the tables, the storm summaries, then the goals LAST: the ratio sipline / Kamailio, with
   bare Python / Kamailio, sipline / bare Python, sipline / kamailio-db, kamailio-db / Kamailio and
   each server's CPU per registration at capacity.

Exit status: 1 on a crash (the bench's or a server's), 0 otherwise; with --strict, 2 when a goal is
missed. Every process started is stopped, also on Ctrl-C or an error; working files live in a temp
dir (--keep keeps it), a PostgreSQL database of the bench's own is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import math
import os
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    SIPP_DIR,
    SIPP_TUNING,
    KamailioProcess,
    ProbeError,
    ProbeThread,
    Response,
    ServerProcess,
    SiplineServer,
    bench_creds,
    counter,
    cpu_seconds,
    digest,
    free_port,
    ha1,
    last_int,
    last_stats,
    machine_busy_seconds,
    own_cpu_seconds,
    own_database,
    percentile,
    ratio,
    seed,
    udp_receive_drops,
    write_subscribers,
)
from tests.postgres import create_database, drop_database  # noqa: E402

SCENARIO = SIPP_DIR / "register_digest.xml"
LOGGED = SIPP_DIR / "register_logged.xml"
SIP_BARE = ROOT / "bench" / "sip_bare.py"
SERVERS = ("sipline", "bare", "kamailio", "kamailio-db")  # --server all, in this order
KAMAILIO_CFG = ROOT / "bench" / "kamailio" / "kamailio.cfg"
KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
KAMAILIO_SCHEMA = Path("/usr/share/kamailio")  # the schema scripts Kamailio's database modules ship
KAMAILIO_DOMAIN = "default.sip.localhost"  # only when sipline is not run (its domain otherwise)
# A registration lives at most two receive timeouts of the scenario (5 s each) plus a margin: sipp's
# call limit above rate x this never throttles the server, it only bounds sipp's memory.
CALL_LIFETIME_S = 12
GOAL_RATIO, FLOOR_RATIO = 1.0, 0.5  # sipline's capacity / Kamailio's
GOAL_STORM = 0.9  # goodput during a storm of 3 x capacity, as a share of capacity
GOAL_RECOVERY_S = 60.0
GOAL_P99_MS = 20.0


# --- one sipp run -----------------------------------------------------------------------------


@dataclass
class Run:
    """One sipp process placing `calls` registrations at `offered`/s, and what the machine did meanwhile."""

    label: str
    offered: float
    calls: int
    ok: int = 0
    failed: int = 0
    placed: int = 0  # registrations sipp started (ok + failed, and any cut short by the deadline)
    timeouts: int = 0  # failed for want of a response (5 s)
    unexpected: int = 0  # failed on another response than 401 / 200 (503 and the like)
    statuses: dict[str, int] = field(default_factory=dict)  # the unexpected responses sipp logged, by status
    retry_after: int = 0  # of those, how many carried Retry-After
    retransmissions: int = 0
    times_ms: list[float] = field(default_factory=list)  # first REGISTER to 200, each success
    stamps_ms: list[float] = field(default_factory=list)  # sipp's clock when each 200 came (0 = its start)
    registered: dict[int, str] = field(default_factory=dict)  # call number -> user (logged scenario)
    wall: float = 0.0
    server_cpu: float = 0.0  # share of one core over the run, all the server's processes
    sipp_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine, in cores
    udp_drops: int = 0
    probe_ms: list[float] = field(default_factory=list)  # the Probe's registration times, if it ran
    probe_failures: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def retrans_pct(self) -> float:
        return 100.0 * self.retransmissions / self.calls if self.calls else 0.0

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.retrans_pct < 1.0 and self.ok > 0

    @property
    def achieved(self) -> float:
        """Registrations per second, from the times the 200s came back."""
        stamps = self.stamps_ms
        if len(stamps) >= 2 and max(stamps) > min(stamps):
            return (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000)
        return self.ok / self.wall if self.wall else 0.0

    @property
    def saturated(self) -> bool:
        return self.achieved < 0.9 * self.offered

    @property
    def sipp_busy(self) -> bool:
        """sipp above 85 % of a core: sipp, not the server, may be the limit."""
        return self.sipp_cpu > 0.85

    def pct(self, p: float) -> float:
        return percentile(self.times_ms, p)

    def probe_pct(self, p: float) -> float:
        return percentile(self.probe_ms, p)

    def goodput(self, start_s: float, end_s: float) -> float:
        """200s received per second between two instants of sipp's clock."""
        n = sum(1 for s in self.stamps_ms if start_s * 1000 <= s < end_s * 1000)
        return n / (end_s - start_s) if end_s > start_s else 0.0

    @staticmethod
    def header() -> str:
        return (
            f"{'':<10} {'offered/s':>9} {'regs':>7} {'ok':>7} {'failed':>7} {'retrans':>7} {'retr%':>6} "
            f"{'reg/s':>7} {'p50 ms':>6} {'p99 ms':>6} {'probes':>6} {'sipp p50':>8} {'sipp p99':>8} "
            f"{'srv CPU':>7} {'sipp CPU':>8} {'other':>5} {'drops':>6}"
        )

    def row(self) -> str:
        flags = []
        if not self.clean:
            flags.append("FAILED" if self.failed else "RETRANS")
        if self.failed:
            flags.append(f"({self.failure_text()})")
        if self.saturated:
            flags.append("saturated")
        if self.sipp_busy:
            flags.append("sipp busy")
        if self.other_cpu > 0.25:
            flags.append("machine shared")
        if self.note:
            flags.append(self.note)
        return (
            f"{self.label:<10} {self.offered:>9g} {self.calls:>7} {self.ok:>7} {self.failed:>7} "
            f"{self.retransmissions:>7} {self.retrans_pct:>6.2f} {self.achieved:>7.0f} {ms(self.probe_pct(50), 1, 6)} "
            f"{ms(self.probe_pct(99), 1, 6)} {len(self.probe_ms):>6} {ms(self.pct(50), 0, 8)} {ms(self.pct(99), 0, 8)} "
            f"{self.server_cpu:>7.0%} {self.sipp_cpu:>8.0%} {self.other_cpu:>5.0%} {self.udp_drops:>6}  "
            + " ".join(flags)
        ).rstrip()

    def failure_text(self) -> str:
        parts = []
        if self.timeouts:
            parts.append(f"{self.timeouts} timed out")
        if self.unexpected:
            seen = ", ".join(f"{n} x {status}" for status, n in sorted(self.statuses.items(), key=lambda kv: -kv[1]))
            parts.append(f"{self.unexpected} answered otherwise" + (f": logged {seen}" if seen else ""))
            if self.retry_after:
                parts.append(f"{self.retry_after} with Retry-After")
        if self.probe_failures:
            parts.append(f"{len(self.probe_failures)} of the probe's")
        other = self.failed - self.timeouts - self.unexpected - len(self.probe_failures)
        if other > 0:
            parts.append(f"{other} other")
        return ", ".join(parts)


def ms(value: float, decimals: int, width: int) -> str:
    return f"{'-' if value != value else f'{value:.{decimals}f}':>{width}}"  # NaN: no sample


class Devices:
    """The N devices: their credentials and the sipp local port that stands for all of them."""

    def __init__(self, domain: str, creds: list[tuple[str, str]], probe: tuple[str, str], tmp: Path) -> None:
        self.domain = domain
        self.creds = creds
        self.probe = probe  # one more endpoint, outside sipp's pool: the Probe's
        self.index = {user: i for i, (user, _) in enumerate(creds)}
        self.csv = self.write(tmp / "users.csv", list(range(len(creds))))
        self.port = 0

    def write(self, path: Path, which: list[int]) -> Path:
        path.write_text(
            "SEQUENTIAL\n" + "".join(f"{self.creds[i][0]};{self.creds[i][1]};{self.domain}\n" for i in which)
        )
        return path


def sipp(
    server: Server,
    devices: Devices,
    workdir: Path,
    *,
    label: str,
    rate: float,
    calls: int,
    csv: Path | None = None,
    logged: bool = False,
    deadline: float | None = None,
    probe_rate: float = 0.0,
) -> Run:
    """One sipp run from the devices' port; its figures, with the CPU of everyone meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(label, rate, calls)
    # a run lasts calls / rate plus the last registrations' lifetime; `deadline` (monotonic) cuts it
    budget = calls / rate + CALL_LIFETIME_S + 5
    if deadline is not None:
        budget = max(1.0, min(budget, deadline - time.monotonic()))
    limit = max(100, math.ceil(rate * CALL_LIFETIME_S))
    cmd = [
        "sipp", "-sf", str(LOGGED if logged else SCENARIO), "-inf", str(csv or devices.csv),
        "-i", "127.0.0.1", "-p", str(devices.port), "-t", "u1",
        "-m", str(calls), "-r", f"{rate:g}", "-l", str(limit), "-nostdin",
        "-timeout", f"{budget:.0f}s", "-trace_stat", "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
        "-trace_err", "-max_log_size", "20000000", *(["-trace_logs"] if logged else []), *SIPP_TUNING,
        f"127.0.0.1:{server.port}",
    ]  # fmt: skip
    server_pids = server.pids()
    cpu0, children0 = cpu_seconds(server_pids), resource.getrusage(resource.RUSAGE_CHILDREN)
    machine0, own0, drops0 = machine_busy_seconds(), own_cpu_seconds(), udp_receive_drops()
    probe = Probe(server.port, *devices.probe, devices.domain, probe_rate) if probe_rate > 0 else None
    started = time.monotonic()
    if probe is not None:
        probe.start()
    try:
        done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=budget + 30)
        stdout = done.stdout
        if done.returncode not in (0, 1) and not re.search(r"Successful call\s*\|", stdout):
            raise RuntimeError(f"sipp exited {done.returncode}: {stdout[-1500:]}{done.stderr[-1500:]}")
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        run.note = "sipp overran its time"
    finally:
        if probe is not None:
            run.probe_ms, run.probe_failures = probe.stop()
    run.wall = time.monotonic() - started
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.server_cpu = (cpu_seconds(server_pids) - cpu0) / run.wall
    run.sipp_cpu = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime) / run.wall
    ours = run.server_cpu + run.sipp_cpu + (own_cpu_seconds() - own0) / run.wall
    run.other_cpu = max(0.0, (machine_busy_seconds() - machine0) / run.wall - ours)
    run.udp_drops = udp_receive_drops() - drops0
    stats = last_stats(workdir)
    # sipp's final screen first (written as it exits), else its last statistics line
    if re.search(r"Successful call\s*\|", stdout):
        run.ok = last_int(stdout, r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)")
        run.failed = last_int(stdout, r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)")
    else:
        run.ok, run.failed = counter(stats, "SuccessfulCall(C)"), counter(stats, "FailedCall(C)")
    if run.ok + run.failed < calls and deadline is None:
        run.note = run.note or f"{calls - run.ok - run.failed} registrations unfinished"
        run.failed = calls - run.ok
    run.placed = max(counter(stats, "OutgoingCall(C)"), run.ok + run.failed)
    run.retransmissions = counter(stats, "Retransmissions(C)")
    run.timeouts = counter(stats, "FailedTimeoutOnRecv(C)") + counter(stats, "FailedMaxUDPRetrans(C)")
    run.unexpected = counter(stats, "FailedUnexpectedMessage(C)")
    run.statuses, run.retry_after = unexpected_responses(workdir)
    if run.probe_failures:
        run.failed += len(run.probe_failures)
        run.note = run.note or f"probe: {run.probe_failures[0]}"
    run.times_ms, run.stamps_ms = response_times(workdir)
    if logged:
        run.registered = registered(workdir)
    if not server.alive():
        run.note = "THE SERVER EXITED"
        run.failed = max(run.failed, 1)
    return run


def response_times(workdir: Path) -> tuple[list[float], list[float]]:
    """(registration times in ms, sipp's clock in ms when each 200 arrived) from -trace_rtt."""
    times, stamps = [], []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            fields = line.split(";")
            with contextlib.suppress(ValueError, IndexError):
                stamps.append(float(fields[0]))
                times.append(float(fields[1]))
    return times, stamps


def unexpected_responses(workdir: Path) -> tuple[dict[str, int], int]:
    """The status codes of the responses sipp logged as unexpected (-trace_err, capped at 20 MB: a
    sample under a storm), and how many of them carried Retry-After."""
    statuses: dict[str, int] = {}
    retry_after = 0
    for path in workdir.glob("*_errors.log"):
        text = path.read_text(errors="replace")
        for status in re.findall(r"^SIP/2\.0 (\d{3})", text, re.M):
            if status not in ("200", "401"):  # those are late copies for calls already over
                statuses[status] = statuses.get(status, 0) + 1
        retry_after += len(re.findall(r"^Retry-After\s*:", text, re.M | re.I))
    return statuses, retry_after


def registered(workdir: Path) -> dict[int, str]:
    """{call number: user} of the registrations that got their 200 (register_logged.xml's log)."""
    done = {}
    for path in workdir.glob("*_logs.log"):
        for m in re.finditer(r"^registered (\d+) (\S+)", path.read_text(errors="replace"), re.M):
            done[int(m[1])] = m[2]
    return done


def unregistered_after(run: Run, which: list[int], devices: Devices) -> list[int]:
    """The devices (indexes into `devices`) whose last registration attempt in `run` failed.

    `run` placed its calls through a file listing `which` in order: call c registered which[(c-1) % len].
    A device not attempted keeps the state it had; sipp's log line names the user, which is checked.
    """
    n = len(which)
    for c, user in run.registered.items():
        if which[(c - 1) % n] != devices.index.get(user):
            raise RuntimeError(f"sipp call {c} registered {user}, not line {(c - 1) % n}: the mapping is wrong")
    placed = run.placed
    last_call = {which[(c - 1) % n]: c for c in range(max(1, placed - n + 1), placed + 1)}
    return sorted(i for i, c in last_call.items() if c not in run.registered)


@dataclass
class Registering:
    """Passes of sipp over the devices not yet registered, until none is left or the deadline."""

    passes: list[Run] = field(default_factory=list)
    remaining: int = 0
    seconds: float = 0.0  # from the start to the end of the pass that left none


def register_all(
    server: Server,
    devices: Devices,
    which: list[int],
    workdir: Path,
    rate: float,
    deadline: float,
    label: str,
    *,
    slow_down: bool = False,
) -> Registering:
    """`slow_down` (registering every device before measuring): after a pass with failures, wait for
    the server to go idle and halve the rate. The recovery keeps its rate: it is the devices' load."""
    result = Registering(remaining=len(which))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    while which and time.monotonic() < deadline - 1:
        n = len(result.passes) + 1
        if n > 1 and slow_down:
            settle(server)
            rate = max(50.0, rate / 2)
        csv = devices.write(workdir / f"{label}-{n}.csv", which)
        run = sipp(
            server,
            devices,
            workdir / f"{label}-{n}",
            label=f"{label} {n}",
            rate=rate,
            calls=len(which),
            csv=csv,
            logged=True,
            deadline=deadline,
        )
        result.passes.append(run)
        which = unregistered_after(run, which, devices)
        result.remaining = len(which)
        if not server.alive():
            break
    result.seconds = time.monotonic() - started
    return result


# --- the registration-time probe --------------------------------------------------------------


class Probe(ProbeThread):
    """One more device registering `rate` times a second beside sipp's load, each registration timed
    with the monotonic clock: first REGISTER sent to 200 received (REGISTER, 401, REGISTER with
    digest, 200), retransmitted as RFC 3261 17.1.2 says (T1 = 500 ms, doubling).

    sipp's registration times cover every registration but fall on its 1 ms clock, which it reads
    once per pass of its event loop: a 200 handled in the pass that sent the REGISTER reads 0 ms.
    """

    def __init__(self, server_port: int, user: str, password: str, domain: str, rate: float) -> None:
        super().__init__(server_port, rate)
        self.user, self.password, self.domain = user, password, domain
        self.call_id = f"probe-{uuid.uuid4().hex}"
        self.cseq = 0

    def once(self) -> float:
        """One refresh of the probe's binding (one device: the same Call-ID, the next CSeq)."""
        started = time.perf_counter()
        challenge = self.register("")
        if challenge.status != 401:
            raise ProbeError(f"REGISTER: {challenge.status} instead of 401")
        auth = digest(self.user, self.password, "REGISTER", f"sip:{self.domain}", challenge.challenge)
        answer = self.register(f"Authorization: {auth}\r\n")
        if answer.status != 200:
            raise ProbeError(f"REGISTER with credentials: {answer.status}")
        return (time.perf_counter() - started) * 1000

    def register(self, auth: str) -> Response:
        self.cseq += 1
        host, port = self.local
        message = (
            f"REGISTER sip:{self.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:{self.user}@{self.domain}>;tag={self.call_id[-8:]}\r\nTo: <sip:{self.user}@{self.domain}>\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} REGISTER\r\n"
            f"Contact: <sip:{self.user}@{host}:{port}>\r\n{auth}Expires: 3600\r\nUser-Agent: sipline-bench-probe\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        return self.transact(message, self.call_id, "REGISTER", self.cseq, timeout=5.0)


# --- the servers ------------------------------------------------------------------------------


class Kamailio(KamailioProcess):
    """bench/kamailio/kamailio.cfg: UDP, `children` workers, auth_db on SQLite or db_text, bindings in
    memory; with `bindings_in_db` (`kamailio-db`), usrloc's DB-only mode: the bindings in that SQLite
    file (WAL), or, with `postgres` (a database `kamailio_database` made), everything in PostgreSQL."""

    def __init__(
        self,
        tmp: Path,
        devices: Devices,
        children: int,
        backend: str,
        *,
        bindings_in_db: bool = False,
        postgres: str | None = None,
    ) -> None:
        super().__init__(tmp)
        self.children = children
        self.postgres = postgres
        users = [*devices.creds, devices.probe]
        if postgres:
            self.defines = ["-A", f'DBURL="{postgres}"', "-A", "WITH_POSTGRES"]
        elif backend == "sqlite":
            db = tmp / ("kamailio-db.sqlite" if bindings_in_db else "kamailio.sqlite")
            if not db.exists():
                write_sqlite_subscribers(db, devices.domain, users, with_location=bindings_in_db)
            # db_sqlite drops "sqlite:///" and one more "/" makes the path absolute: sqlite:////tmp/...
            self.defines = ["-A", f'DBURL="sqlite:///{db}"', "-A", "WITH_SQLITE"]
            if bindings_in_db:
                self.defines += ["-A", f'SQLITE_JOURNAL="{db}=WAL"']
        else:
            db = tmp / "kamailio-db"
            if not db.exists():
                write_subscribers(db, devices.domain, users)
            self.defines = ["-A", f'DBURL="text://{db}"']
        if bindings_in_db:
            self.defines += ["-A", "USRLOC_DB_ONLY"]

    def arguments(self, port: int) -> list[str]:
        return [
            "-f",
            str(KAMAILIO_CFG),
            "-l",
            f"udp:127.0.0.1:{port}",
            *self.defines,
            "-A",
            f"CHILDREN={self.children}",
        ]

    def pids(self) -> list[int]:
        """Its processes, and on PostgreSQL the backends serving its database, as for sipline."""
        database = self.postgres.rsplit("/", 1)[-1] if self.postgres else ""
        return super().pids() + (postgres_backends(database) if database else [])


@contextlib.contextmanager
def kamailio_database(url: str, domain: str, creds: list[tuple[str, str]]) -> Iterator[str]:
    """A PostgreSQL database of Kamailio's own beside `url`'s, with the schema Kamailio ships
    (version, subscriber, location) and the subscribers; its postgres:// URL. Dropped at the end."""
    own = asyncio.run(create_database(url, "kamailio_bench"))

    async def load() -> None:
        u = make_url(own)
        conn = await asyncpg.connect(
            host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
        )
        try:
            for script in ("standard", "auth_db", "usrloc"):
                await conn.execute((KAMAILIO_SCHEMA / "postgres" / f"{script}-create.sql").read_text())
            await conn.copy_records_to_table(
                "subscriber",
                records=[(u, domain, p, ha1(u, domain, p)) for u, p in creds],
                columns=["username", "domain", "password", "ha1"],
            )
        finally:
            await conn.close()

    try:
        asyncio.run(load())
        u = make_url(own)
        yield f"postgres://{u.username}@{u.host}:{u.port or 5432}/{u.database}"
    finally:
        asyncio.run(drop_database(own, make_url(url).database))


def write_sqlite_subscribers(db: Path, domain: str, creds: list[tuple[str, str]], *, with_location: bool) -> None:
    """The SQLite schema Kamailio ships (`version`, `subscriber`; `location` too when the bindings are
    kept there, then in WAL mode, as sipline's database), the subscribers with HA1 precomputed."""
    scripts = ["standard", "auth_db", *(["usrloc"] if with_location else [])]
    conn = sqlite3.connect(db)
    try:
        for script in scripts:
            conn.executescript((KAMAILIO_SCHEMA / "db_sqlite" / f"{script}-create.sql").read_text())
        conn.executemany(
            "INSERT INTO subscriber (username, domain, password, ha1) VALUES (?, ?, ?, ?)",
            [(u, domain, p, ha1(u, domain, p)) for u, p in creds],
        )
        conn.commit()
        if with_location:
            conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


class Sipline(SiplineServer):
    """`sipline serve`; with PostgreSQL on this machine its CPU includes the database backends serving it."""

    @property
    def port(self) -> int:
        return self.port_for("udp")

    def pids(self) -> list[int]:
        url = self.env.get("SIPLINE_DATABASE_URL", "")
        database = url.rsplit("/", 1)[-1].split("?")[0] if url.startswith("postgresql") else ""
        return super().pids() + (postgres_backends(database) if database else [])


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL's processes serving `database` (their title: "postgres: ... USER DATABASE HOST(PORT) ...")."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres: ") and f" {database} " in title:
                    pids.append(int(entry.name))
    return pids


class Bare(ServerProcess):
    """bench/sip_bare.py: the bare Python registrar, `workers` processes on one UDP socket."""

    name = "bare"

    def __init__(self, tmp: Path, workers: int) -> None:
        super().__init__(tmp)
        self.workers = workers

    def __enter__(self) -> Bare:
        self.port = free_port()
        self.log = self.tmp / f"sip_bare-{self.port}.log"
        cmd = [sys.executable, str(SIP_BARE), "--port", str(self.port), "--workers", str(self.workers)]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 15
        while self.log.read_text().count("sip_bare: worker ") < self.workers:  # one line a worker serving
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"sip_bare did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self


Server = Kamailio | Sipline | Bare


def settle(server: Server, timeout: float = 15.0) -> None:
    """Until the server is idle (under 5 % of a core over 0.5 s): what it queued is drained."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.alive():
        pids = server.pids()
        before = cpu_seconds(pids)
        time.sleep(0.5)
        if cpu_seconds(pids) - before < 0.025:
            return


# --- one server, start to end -----------------------------------------------------------------


@dataclass
class Storm:
    rate: float
    seconds: float
    prime: Registering | None = None
    latency: Run | None = None
    run: Run | None = None
    unregistered: int = 0  # devices whose last attempt in the storm failed
    recovery: Registering | None = None
    recovered_after: float | None = None  # seconds from the storm's end until every device is registered

    @property
    def goodput(self) -> float:
        return self.run.goodput(0, self.seconds) if self.run else 0.0


@dataclass
class Outcome:
    name: str
    processes: str = ""  # how many serve: "2 workers"
    steps: list[Run] = field(default_factory=list)
    prime: Registering | None = None
    storm: Storm | None = None
    crashed: str = ""

    @property
    def capacity_step(self) -> Run | None:
        clean = [s for s in self.steps if s.clean]
        return max(clean, key=lambda s: s.achieved) if clean else None

    @property
    def capacity(self) -> float:
        step = self.capacity_step
        return step.achieved if step else 0.0

    @property
    def at_least(self) -> str:
        """The words "at least " when the capacity is a lower bound: the sweep's last step was still
        clean, or sipp was busy in the first step that was not (the load generator's limit, perhaps)."""
        over = [step for step in self.steps if not step.clean]
        return "at least " if self.steps and (not over or over[0].sipp_busy) else ""


def prime(server: Server, devices: Devices, workdir: Path, rate: float) -> Registering | None:
    """Every device registered once (passes until all are, at most 120 s); not the bare server's,
    which keeps no bindings."""
    if isinstance(server, Bare):
        print("  no devices registered first: the bare server keeps no bindings", flush=True)
        return None
    everyone = list(range(len(devices.creds)))
    result = register_all(server, devices, everyone, workdir, rate, time.monotonic() + 120, "prime", slow_down=True)
    passes = ", ".join(f"{r.offered:g}/s: {r.ok} ok, {r.failed} failed" for r in result.passes)
    print(
        f"  every device registered: {len(devices.creds) - result.remaining} of {len(devices.creds)} "
        f"in {result.seconds:.1f} s ({passes})",
        flush=True,
    )
    return result


def sweep(
    name: str,
    make_server: Callable[[], Server],
    devices: Devices,
    tmp: Path,
    args: argparse.Namespace,
    outcome: Outcome,
) -> None:
    print(f"\n== {name}: rate sweep, {args.step_seconds:g} s a step, {len(devices.creds)} devices", flush=True)
    with make_server() as server:
        outcome.prime = prime(server, devices, tmp / f"{name}-prime", args.prime_rate)
        print(Run.header(), flush=True)
        failing = 0
        for index, rate in enumerate(args.rates):
            settle(server)
            calls = max(1, round(rate * args.step_seconds))
            # A directory per step, even for a rate given twice: a step reads every trace in its own.
            step = sipp(server, devices, tmp / f"{name}-step-{index}-{rate:g}", label="step", rate=rate, calls=calls,
                        probe_rate=args.probe_rate)  # fmt: skip
            outcome.steps.append(step)
            print(step.row(), flush=True)
            if not server.alive():
                outcome.crashed = f"{name} exited during the sweep"
                break
            failing += not step.clean
            if failing >= 2:  # the first step over capacity, and one more
                break
        if outcome.steps and outcome.steps[-1].clean:
            print("  (the sweep ended before the server did: offer higher --rates for its capacity)", flush=True)
        elif outcome.capacity_step and next(step for step in outcome.steps if not step.clean).sipp_busy:
            print("  (sipp was busy in the first step that failed: the capacity may be sipp's, not the server's)")
        elif outcome.steps and outcome.capacity_step is None:
            print(f"  (no clean step: the capacity is under {args.rates[0]:g}/s, offer lower --rates)", flush=True)


def storm(
    name: str,
    make_server: Callable[[], Server],
    devices: Devices,
    tmp: Path,
    args: argparse.Namespace,
    outcome: Outcome,
    storm_rate: float,
    recovery_rate: float,
) -> None:
    """A fresh server, every device registered, the latency step at half of capacity, the storm and
    the recovery; the bare server only gets the latency step (it has no failure mode to storm)."""
    result = outcome.storm = Storm(storm_rate, args.storm_seconds)
    half = outcome.capacity / 2
    if name == "bare":
        print(f"\n== {name}: a fresh server, latency at half of capacity", flush=True)
    else:
        print(f"\n== {name}: a fresh server, every device registered, latency at half of capacity, storm", flush=True)
    with make_server() as server:
        rate = min(args.prime_rate, max(50, round(0.8 * outcome.capacity))) if outcome.capacity else args.prime_rate
        result.prime = prime(server, devices, tmp / f"{name}-storm-prime", rate)
        print(Run.header(), flush=True)
        if half >= 1:
            settle(server)
            rate = round(half)
            result.latency = sipp(
                server,
                devices,
                tmp / f"{name}-latency",
                label="half cap",
                rate=rate,
                calls=max(1, round(rate * args.step_seconds)),
                probe_rate=args.probe_rate,
            )
            print(result.latency.row(), flush=True)
        if name == "bare":
            print("  (no storm and no recovery for the bare server: it answers whatever it reads)", flush=True)
            return
        settle(server)
        calls = max(1, round(storm_rate * args.storm_seconds))
        started = time.monotonic()
        result.run = sipp(
            server, devices, tmp / f"{name}-storm", label="storm", rate=storm_rate, calls=calls, logged=True
        )
        print(result.run.row(), flush=True)
        storm_end = started + calls / storm_rate
        if not server.alive():
            outcome.crashed = f"{name} exited during the storm"
            print_storm(name, result, outcome.capacity, outcome.capacity_step)
            return
        which = unregistered_after(result.run, list(range(len(devices.creds))), devices)
        result.unregistered = len(which)
        if which:
            result.recovery = register_all(
                server,
                devices,
                which,
                tmp / f"{name}-recovery",
                recovery_rate,
                storm_end + args.recovery_seconds,
                "recovery",
            )
            for run in result.recovery.passes:
                print(run.row(), flush=True)
            if result.recovery.remaining == 0:
                result.recovered_after = time.monotonic() - storm_end
        else:
            result.recovered_after = 0.0
        if not server.alive():
            outcome.crashed = f"{name} exited during the recovery"
        print_storm(name, result, outcome.capacity, outcome.capacity_step)  # before the server stops (and may complain)


def cpu_ms_per_registration(run: Run) -> float:
    """Server CPU per registration served (ms): what each 200 cost, the work wasted on the rest included."""
    return run.server_cpu * run.wall * 1000 / run.ok if run.ok else float("nan")


def print_storm(name: str, s: Storm, capacity: float, capacity_step: Run | None) -> None:
    run = s.run
    if run is None:
        return
    windows = max(1, round(s.seconds / 5))
    width = s.seconds / windows
    timeline = " ".join(f"{run.goodput(i * width, (i + 1) * width):.0f}" for i in range(windows))
    late = sum(1 for t in run.stamps_ms if t >= s.seconds * 1000)
    times = f" = {s.rate / capacity:.1f} x its capacity" if capacity else ""
    share = f" = {s.goodput / s.rate:.0%} of offered" + (
        f", {s.goodput / capacity:.0%} of its capacity" if capacity else ""
    )
    print(
        f"  {name} storm: {s.rate:g}/s offered{times} for {s.seconds:g} s ({run.calls} registrations, "
        f"sipp CPU {run.sipp_cpu:.0%}): goodput {s.goodput:.0f}/s{share}",
        flush=True,
    )
    print(f"    goodput per {width:g} s: {timeline} /s; {late} more 200s after the storm's end")
    print(
        f"    {run.failed} failed ({run.failure_text() or 'none'}); {run.retransmissions} retransmissions "
        f"({run.retransmissions / max(run.calls, 1):.2f} per registration), {run.udp_drops} UDP drops, "
        f"server CPU {run.server_cpu:.0%}"
    )
    at_capacity = f" ({cpu_ms_per_registration(capacity_step):.2f} ms at capacity)" if capacity_step else ""
    print(f"    server CPU per registration served: {cpu_ms_per_registration(run):.2f} ms{at_capacity}")
    if s.recovered_after is not None:
        what = "none unregistered" if not s.unregistered else f"{s.unregistered} devices unregistered at the end"
        print(f"    recovery: {what}; every device registered {s.recovered_after:.1f} s after the storm's end")
    else:
        left = s.recovery.remaining if s.recovery else s.unregistered
        print(
            f"    recovery: {s.unregistered} devices unregistered at the end; {left} still not registered "
            f"{GOAL_RECOVERY_S:g} s after it"
        )


# --- the report -------------------------------------------------------------------------------


def latencies(run: Run) -> str:
    probe = f"p50 {run.probe_pct(50):.1f} ms, p99 {run.probe_pct(99):.1f} ms (probe), " if run.probe_ms else ""
    return f"{probe}p50 {run.pct(50):.0f} ms, p99 {run.pct(99):.0f} ms (sipp, every registration)"


def summary(o: Outcome) -> None:
    step = o.capacity_step
    print(f"\n{o.name} ({o.processes}):")
    if step is None:
        print("  capacity: no clean step")
    else:
        print(
            f"  capacity {o.at_least}{o.capacity:.0f} registrations/s (offered {step.offered:g}/s): {latencies(step)}; "
            f"server CPU {step.server_cpu:.0%} of a core ({cpu_ms_per_registration(step):.3f} ms a registration), "
            f"sipp {step.sipp_cpu:.0%}"
        )
    s = o.storm
    if s is not None and s.latency is not None:
        lat = s.latency
        print(f"  at half of capacity ({lat.offered:g}/s): {latencies(lat)}; {lat.failed} failed")
    if o.crashed:
        print(f"  CRASH: {o.crashed}")


def label(o: Outcome) -> str:
    return {"bare": "bare Python", "kamailio-db": "kamailio (bindings in the database)"}.get(o.name, o.name)


def report(outcomes: list[Outcome], args: argparse.Namespace) -> list[bool]:
    print(
        f"\n{args.users} devices, UDP, steps of {args.step_seconds:g} s; registration = REGISTER, 401, REGISTER "
        "with digest, 200; capacity = highest achieved rate of a step with no failed registration and < 1 % "
        "retransmissions"
    )
    for o in outcomes:
        summary(o)
    by_name = {o.name: o for o in outcomes}
    s, b, k = by_name.get("sipline"), by_name.get("bare"), by_name.get("kamailio")
    kd = by_name.get("kamailio-db")
    checks: list[bool] = []

    def check(text: str, ok: bool | None) -> None:
        if ok is None:
            print(f"  [n/a] {text}")
            return
        checks.append(ok)
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")

    print("\nsipline / kamailio:" if s and k else "\ngoals:")
    if s and k:
        r = s.capacity / k.capacity if k.capacity else float("nan")
        # Rounded down, so that a ratio just short of a target never reads as the target (0.4999: 0.49).
        shown = f"{math.floor(r * 100) / 100:.2f}" if k.capacity else "n/a"
        check(
            f"capacity ratio {shown} ({s.capacity:.0f} / {k.capacity:.0f} registrations/s) >= {GOAL_RATIO:.2f} (goal)",
            r >= GOAL_RATIO if k.capacity else None,
        )
        check(f"capacity ratio {shown} >= {FLOOR_RATIO:.2f} (floor)", r >= FLOOR_RATIO if k.capacity else None)
    # the bare Python registrar: how much of the gap is CPython's floor, how much sipline's own work;
    # Kamailio with its bindings in the database: the same guarantees as sipline's, the same kind of store
    for over, under, what in (
        (b, k, "the ceiling of a CPython registrar against Kamailio (above 1: CPython's floor is none of the gap)"),
        (s, b, "the share of that ceiling left after sipline's own work"),
        (s, kd, "against Kamailio writing each binding to the database before its 200, as sipline does"),
        (kd, k, "what writing the bindings to the database costs Kamailio"),
    ):
        if over and under:
            figures = f"{over.at_least}{over.capacity:.0f} / {under.at_least}{under.capacity:.0f} registrations/s"
            print(
                f"  [info] {label(over)} / {label(under)}: capacity ratio {ratio(over.capacity, under.capacity)} "
                f"({figures}): {what}"
            )
    cpu = [f"{label(o)} {cpu_ms_per_registration(o.capacity_step):.3f} ms" for o in outcomes if o.capacity_step]
    if cpu:
        print(f"  [info] server CPU per registration at capacity: {', '.join(cpu)}")
    for o in outcomes if not (s and k) else [s]:
        if o is b and (s or k):
            continue  # a ceiling, not a server with goals
        if not (s and k):
            check(f"{o.name} capacity {o.capacity:.0f} registrations/s", o.capacity > 0)
        st = o.storm
        if st is None or st.run is None:
            continue
        cap = o.capacity
        share = st.goodput / cap if cap else float("nan")
        check(
            f"{o.name} storm goodput {st.goodput:.0f}/s at {st.rate:g}/s offered = {share:.0%} of capacity "
            f">= {GOAL_STORM:.0%}",
            share >= GOAL_STORM if cap else None,
        )
        after = st.recovered_after
        check(
            f"{o.name} every device registered {'not' if after is None else f'{after:.1f} s'} after the "
            f"storm, <= {GOAL_RECOVERY_S:g} s",
            after is not None and after <= GOAL_RECOVERY_S,
        )
        lat = st.latency
        if lat is not None:
            check(
                f"{o.name} p99 at half of capacity ({lat.offered:g}/s): sipp {lat.pct(99):.0f} ms"
                + (f", probe {lat.probe_pct(99):.1f} ms" if lat.probe_ms else "")
                + f" < {GOAL_P99_MS:g} ms",
                max(lat.pct(99), lat.probe_pct(99) if lat.probe_ms else 0.0) < GOAL_P99_MS and lat.failed == 0,
            )
    if s and k and k.storm and k.storm.run and s.storm and s.storm.run:
        ks = k.storm
        print(
            f"  (kamailio under the same storm, {ks.rate:g}/s: goodput {ks.goodput:.0f}/s, {ks.run.failed} failed, "
            f"every device registered "
            f"{'not' if ks.recovered_after is None else f'{ks.recovered_after:.1f} s'} after it)"
        )
    return checks


# --- main -------------------------------------------------------------------------------------


def run_all(tmp: Path, args: argparse.Namespace, database_url: str | None) -> list[Outcome]:
    names = args.server
    if "sipline" in names:
        domain, creds = asyncio.run(seed(tmp / "sipline", database_url, args.users + 1))
    else:
        domain, creds = KAMAILIO_DOMAIN, bench_creds(args.users + 1)
    outcomes: list[Outcome] = []
    sipline_capacity = 0.0
    with contextlib.ExitStack() as databases:
        for name in names:
            sipline_capacity = run_one(name, tmp, args, database_url, domain, creds, outcomes, sipline_capacity,
                                       databases)  # fmt: skip
    return outcomes


def run_one(
    name: str,
    tmp: Path,
    args: argparse.Namespace,
    database_url: str | None,
    domain: str,
    creds: list[tuple[str, str]],
    outcomes: list[Outcome],
    sipline_capacity: float,
    databases: contextlib.ExitStack,
) -> float:
    """One server's sweep and storm, its outcome appended to `outcomes`; sipline's capacity, which
    sets every later server's storm."""
    devices = Devices(domain, creds[:-1], creds[-1], tmp)  # the last one is the Probe
    devices.port = free_port()  # the devices' address for this server, in every run
    make_server: Callable[[], Server]
    if name == "sipline":
        make_server = functools.partial(Sipline, tmp / "sipline", database_url, shlex.split(args.sipline_args))
        processes = plural(sipline_workers(args.sipline_args), "worker")
    elif name == "bare":
        make_server = functools.partial(Bare, tmp, args.bare_workers)
        processes = plural(args.bare_workers, "worker")
    elif name == "kamailio":
        make_server = functools.partial(Kamailio, tmp, devices, args.kamailio_children, args.kamailio_db)
        processes = plural(args.kamailio_children, "child", "children")
    else:  # kamailio-db: its bindings in sipline's kind of database
        postgres = databases.enter_context(kamailio_database(database_url, domain, creds)) if database_url else None
        # db_sqlite sets no busy timeout: a child writing while the other holds SQLite's write lock
        # fails at once ("database is locked", a 500), about half the REGISTERs with 2 children.
        children = args.kamailio_children if postgres else 1
        make_server = functools.partial(
            Kamailio, tmp, devices, children, "sqlite", bindings_in_db=True, postgres=postgres
        )
        processes = plural(children, "child", "children")
        if children != args.kamailio_children:
            print("\nkamailio-db on SQLite: 1 child (db_sqlite has no busy timeout: two children writing fail)")

    outcome = Outcome(name, processes)
    outcomes.append(outcome)
    try:
        sweep(name, make_server, devices, tmp, args, outcome)
        if name == "sipline":
            sipline_capacity = outcome.capacity
        if not args.no_storm and not outcome.crashed and (outcome.capacity or args.storm_rate):
            # sipline's capacity sets both servers' storm (the same storm), else this server's own
            base = sipline_capacity or outcome.capacity or args.storm_rate / 3
            storm_rate = args.storm_rate or round(3 * base)
            recovery_rate = args.recovery_rate or max(1, round(base / 2))
            storm(name, make_server, devices, tmp, args, outcome, storm_rate, recovery_rate)
    except (AssertionError, RuntimeError) as e:  # a server that died or logged a traceback
        outcome.crashed = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{name}: {e}", file=sys.stderr, flush=True)
    return sipline_capacity


def servers(text: str) -> list[str]:
    """--server: `all` (`both`, its name from before the bare server), or some of SERVERS, comma-separated."""
    if text in ("all", "both"):
        return list(SERVERS)
    names = {name.strip() for name in text.split(",") if name.strip()}
    if not names or names - set(SERVERS):
        raise argparse.ArgumentTypeError(f"{text!r}: all, or a comma-separated list of {', '.join(SERVERS)}")
    return [name for name in SERVERS if name in names]


def sipline_workers(sipline_args: str) -> int:
    """The `--workers N` of --sipline-args; 1, sipline's default, without it."""
    words = shlex.split(sipline_args)
    for i, word in enumerate(words):
        if word.startswith("--workers="):
            return int(word.partition("=")[2])
        if word == "--workers" and i + 1 < len(words):
            return int(words[i + 1])
    return 1


def plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        type=servers,
        default="all",
        metavar="all|sipline|bare|kamailio|kamailio-db[,...]",
        help="which servers, run in the order sipline, bare, kamailio, kamailio-db (default all; `both` is all)",
    )
    parser.add_argument("--users", type=int, default=10_000, help="devices (endpoints), each with its binding")
    parser.add_argument(
        "--rates",
        default="500,1000,2000,3000,4000,6000,8000,12000,16000,24000",
        help="offered registrations per second, one sweep step each",
    )
    parser.add_argument("--step-seconds", type=float, default=10.0, help="registrations per step: rate x this")
    parser.add_argument("--prime-rate", type=float, default=1000.0, help="registrations/s registering every device")
    parser.add_argument(
        "--storm-rate", type=float, help="registrations/s offered in the storm (3 x sipline's capacity)"
    )
    parser.add_argument("--storm-seconds", type=float, default=30.0)
    parser.add_argument(
        "--recovery-rate", type=float, help="registrations/s of the devices left unregistered (half sipline's capacity)"
    )
    parser.add_argument(
        "--recovery-seconds",
        type=float,
        default=GOAL_RECOVERY_S,
        help="how long after the storm the recovery may go on",
    )
    parser.add_argument("--probe-rate", type=float, default=50.0,
                        help="registrations/s of the timed probe in the latency step (0: none)")  # fmt: skip
    parser.add_argument("--no-storm", action="store_true", help="the sweep only")
    parser.add_argument(
        "--database-url",
        help="sipline's database (default SQLite in a temp dir; PostgreSQL: "
        "a database of the bench's own is created on that server and dropped)",
    )
    parser.add_argument("--sipline-args", default="", help='extra `sipline serve` arguments, e.g. "--workers 2"')
    parser.add_argument("--kamailio-children", type=int, default=2, help="Kamailio's UDP worker processes")
    parser.add_argument(
        "--bare-workers", type=int, help="the bare Python registrar's processes (default: as many as sipline's)"
    )
    has_sqlite = (KAMAILIO_MODULES / "db_sqlite.so").exists()
    parser.add_argument(
        "--kamailio-db",
        choices=["sqlite", "text"],
        default="sqlite" if has_sqlite else "text",
        help="auth_db's backend (sqlite when db_sqlite is installed)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 2 when a goal is missed")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, sipp traces)")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.bare_workers = args.bare_workers or sipline_workers(args.sipline_args)
    needed = ["sipp"] + (["kamailio"] if any(name.startswith("kamailio") for name in args.server) else [])
    module = "db_postgres" if args.database_url else "db_sqlite"
    if "kamailio-db" in args.server and not (KAMAILIO_MODULES / f"{module}.so").exists():
        package = "kamailio-postgres-modules" if args.database_url else "kamailio-sqlite-modules"
        print(f"bench/sip.py: kamailio-db needs Kamailio's {module} (apt-get install {package})", file=sys.stderr)
        return 1
    for binary in needed:
        if not shutil.which(binary):
            print(f"bench/sip.py needs {binary} (apt-get install sip-tester kamailio)", file=sys.stderr)
            return 1
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the runs: other work shares these CPUs", file=sys.stderr)
    # SIGTERM as Ctrl-C: the servers run in sessions of their own and must be stopped on the way out
    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="sipline-sip-bench-"))
    started = time.monotonic()
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
    checks = report(outcomes, args)
    print(f"\n(the run took {time.monotonic() - started:.0f} s)")
    if any(o.crashed for o in outcomes):
        return 1
    return 2 if args.strict and not all(checks) else 0


if __name__ == "__main__":
    sys.exit(main())
