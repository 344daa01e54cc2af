"""What bench/sip.py and bench/calls.py share: seeding, the server processes, CPU and drop accounting.

Both benchmarks run a server (sipline or Kamailio) and sipp on loopback, unpinned, and account for the
CPU of every process they start; the helpers here read /proc and sipp's statistics files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlalchemy.engine import make_url

from sipline.config import Settings
from sipline.domain.endpoint import empty_record
from sipline.runtime import Runtime
from sipline.serve import prepare
from sipline.store import projects
from sipline.store.schema import sip_endpoints
from tests.integration.sipline_process import Sipline
from tests.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
SIPP_DIR = ROOT / "tests" / "integration" / "sipp"
SECRET = "bench-secret-key"
TICK = os.sysconf("SC_CLK_TCK")
# Kamailio's shared memory pool (transactions live there: each call's INVITE and BYE transactions are
# kept for tm's 5 s wait timer, ~220 MB at 2,000 calls/s). It is reserved, not used: only the pages
# touched count in its memory. 256 MB ran out (and Kamailio crashed) near 1,800 calls/s.
KAMAILIO_SHM_MB = 2048
SIPP_TUNING = ["-max_recv_loops", "10000", "-max_sched_loops", "10000", "-buff_size", "4194304"]


# --- users ------------------------------------------------------------------------------------


async def seed(data_dir: Path, database_url: str | None, users: int) -> tuple[str, list[tuple[str, str]]]:
    """The bootstrap project's SIP domain and N (username, password) pairs stored as endpoints.

    Each row is built as create_endpoint builds it (Credentials.columns: sealed password and HA1s),
    all in one executemany, with sipline stopped.
    """
    rt = Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET))
    try:
        await prepare(rt)
        project = (await rt.db.read(projects.list_all))[0]
        now = time.time()
        creds = bench_creds(users)
        rows = []
        for i, (username, password) in enumerate(creds):
            record = {**empty_record(), "username": username}
            rows.append(
                {
                    **record,
                    **rt.credentials.columns(username, password, project["domain_identifier"]),
                    "id": f"00000000-0000-4000-8000-{i:012d}",
                    "project_id": project["id"],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await rt.db.write(lambda conn: conn.execute(sip_endpoints.insert(), rows))
        return rt.credentials.realm(project["domain_identifier"]), creds
    finally:
        await rt.db.dispose()


def bench_creds(count: int) -> list[tuple[str, str]]:
    """The (username, password) pairs `seed` creates, for a Kamailio-only run."""
    return [(f"bench{i:05d}", f"pw-{i:05d}-secret") for i in range(count)]


@contextlib.contextmanager
def own_database(url: str | None) -> Iterator[str | None]:
    """A PostgreSQL URL: a database of the bench's own on that server, dropped at the end."""
    if not url or not url.startswith("postgresql"):
        yield url
        return
    own = asyncio.run(create_database(url, "sipline_bench"))
    try:
        yield own
    finally:
        asyncio.run(drop_database(own, make_url(url).database))


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free for both UDP and TCP (Kamailio and sipp listen on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


def group_pids(leader: int) -> list[int]:
    """Every live process of the process group `leader` leads (servers start in a new session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == leader and fields[0] != "Z":  # fields[2]: pgrp
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped, machine-wide, for want of room in a socket's receive buffer."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    with contextlib.suppress(ValueError, IndexError):
        return int(lines[1][lines[0].index("RcvbufErrors")])
    return 0


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(PSS, RSS) in kB summed over `pids`."""
    pss = rss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
    return pss, rss


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class ServerProcess:
    """A server started in a session of its own (`proc`), for a `with` block: its CPU is that of
    its whole process group, and leaving the block stops the group."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return group_pids(self.proc.pid) if self.proc else []

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc)


class KamailioProcess(ServerProcess):
    """Kamailio in the foreground on a free loopback port, for a `with` block; each bench says
    which configuration and listeners (`arguments`). 2 GB of shm reserved (KAMAILIO_SHM_MB)."""

    name = "kamailio"

    def arguments(self, port: int) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        run_dir = Path(tempfile.mkdtemp(prefix="kamailio-run-", dir=self.tmp))
        self.port = free_port()
        cmd = [
            "kamailio", "-DD", "-E", *self.arguments(self.port),
            "-Y", str(run_dir), "-P", str(run_dir / "kamailio.pid"), "-w", str(run_dir),
            "-m", str(KAMAILIO_SHM_MB), "-M", "16",
        ]  # fmt: skip
        self.log = run_dir / "kamailio.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_until_answering(self.port, self.proc, self.log)
        except BaseException:
            self.__exit__()
            raise
        return self


def ha1(user: str, realm: str, password: str) -> str:
    """Digest's HA1 for MD5: what Kamailio's subscriber table stores, and what an answer starts from."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def write_subscribers(db: Path, domain: str, creds: list[tuple[str, str]]) -> None:
    """A db_text directory for auth_db: `version` and `subscriber` with HA1 = MD5(user:realm:password)."""
    db.mkdir(parents=True, exist_ok=True)
    (db / "version").write_text("table_name(str) table_version(int)\nsubscriber:7\nlocation:9\n")
    lines = ["id(int,auto) username(str) domain(str) password(str) ha1(str) ha1b(str,null)"]
    for i, (user, password) in enumerate(creds, 1):
        lines.append(f"{i}:{user}:{domain}:{password}:{ha1(user, domain, password)}:")
    (db / "subscriber").write_text("\n".join(lines) + "\n")


def wait_until_answering(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    """Until the server answers an OPTIONS over UDP (any response will do)."""
    probe = (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKprobe\r\n"
        "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kamailio exited: {log.read_text()[-2000:]}")
            s.sendto(probe, ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                s.recvfrom(4096)
                return
    raise RuntimeError(f"kamailio did not answer within {timeout} s: {log.read_text()[-2000:]}")


class SiplineServer:
    """`sipline serve` on a seeded data dir (`seed`), unpinned, MD5 challenges (sipp computes MD5 only)."""

    name = "sipline"

    def __init__(self, data_dir: Path, database_url: str | None, args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = list(args or [])  # extra `sipline serve` arguments (bench/sip.py --sipline-args)
        self.env = {
            "SIPLINE_SIP_DIGEST_ALGORITHMS": "MD5",
            "SIPLINE_SECRET_KEY": SECRET,
            "SIPLINE_LOG_LEVEL": "warning",
        }
        if database_url:
            self.env["SIPLINE_DATABASE_URL"] = database_url
        self.server: Sipline | None = None
        self.ports: dict[str, int] = {}

    def __enter__(self) -> SiplineServer:
        self.server = Sipline(self.data_dir, env=self.env, args=self.args).start()
        self.ports = dict(self.server.ports)
        return self

    def port_for(self, transport: str) -> int:
        return self.ports[transport]

    def alive(self) -> bool:
        pid = self.server.pid if self.server else None
        return pid is not None and Path(f"/proc/{pid}").exists() and pid in group_pids(pid)

    def pids(self) -> list[int]:
        pid = self.server.pid if self.server else None
        return group_pids(pid) if pid else []

    def __exit__(self, *exc: object) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.__exit__(None, None, None)  # stops it; raises if it logged a traceback


# --- sipp's statistics and figures ------------------------------------------------------------


def last_stats(workdir: Path) -> dict[str, str]:
    """The last line of sipp's statistics file (-trace_stat) as {column: value}."""
    for path in workdir.glob("*_.csv"):
        lines = path.read_text(errors="replace").strip().splitlines()
        if len(lines) >= 2:
            return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    return {}


def counter(stats: dict[str, str], name: str) -> int:
    with contextlib.suppress(ValueError):
        return int(stats.get(name, "0") or 0)
    return 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def last_int(text: str, pattern: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and b == b and a == a else "n/a"


# --- timed probes beside sipp (bench/sip.py: registrations, bench/calls.py: calls) -----------


class ProbeError(Exception):
    pass


class ProbeThread(threading.Thread):
    """One device of our own, on a UDP socket of its own, doing `once()` (timed, in ms) `rate`
    times a second until stopped; failures are kept as text. Requests are retransmitted as RFC 3261
    17.1 says (T1 = 500 ms doubling to 4 s; an INVITE not after a provisional response)."""

    def __init__(self, server_port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.server = ("127.0.0.1", server_port)
        self.rate = rate
        self.samples: list[float] = []
        self.failures: list[str] = []
        self.halt = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()

    def once(self) -> float:
        raise NotImplementedError

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.halt.is_set():
            try:
                self.samples.append(self.once())
            except (ProbeError, OSError) as e:
                self.failures.append(str(e))
            next_at += 1 / self.rate
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()
            elif self.halt.wait(delay):
                break
        self.sock.close()

    def stop(self) -> tuple[list[float], list[str]]:
        self.halt.set()
        self.join(timeout=30)
        return self.samples, self.failures

    def send(self, message: str) -> None:
        self.sock.sendto(message.encode(), self.server)

    def transact(self, message: str, call_id: str, method: str, cseq: int, timeout: float) -> Response:
        """Send, retransmit, and return the final response to this very request (Call-ID, CSeq:
        not a late copy of an earlier one's); ProbeError after `timeout` seconds."""
        self.send(message)
        deadline = time.monotonic() + timeout
        interval, resend_at, provisional = 0.5, time.monotonic() + 0.5, False
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise ProbeError(f"{method}: no final response in {timeout:g} s")
            if not provisional and now >= resend_at:
                self.send(message)
                interval = min(interval * 2, 4.0)
                resend_at = now + interval
            self.sock.settimeout(max(0.001, min(deadline, resend_at if not provisional else deadline) - now))
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            response = Response.parse(data)
            if response is None or (response.call_id, response.method, response.cseq) != (call_id, method, cseq):
                continue  # a late or stray message: a retransmitted 407 of the first INVITE, say
            if response.status < 200:
                provisional = method == "INVITE"
                continue
            return response


def digest(user: str, password: str, method: str, uri: str, params: dict[str, str]) -> str:
    """An MD5 digest Authorization value answering the challenge `params` (qop=auth when offered)."""
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    h1 = ha1(user, realm, password)
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"', "algorithm=MD5"]
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        response = hashlib.md5(f"{h1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
        fields += [f'cnonce="{cnonce}"', f"nc={nc}", "qop=auth"]
    else:
        response = hashlib.md5(f"{h1}:{nonce}:{ha2}".encode()).hexdigest()
    fields.append(f'response="{response}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


@dataclass
class Response:
    status: int
    call_id: str
    method: str
    cseq: int
    to_tag: str | None
    contact: str | None
    record_route: list[str]
    challenge: dict[str, str]

    @classmethod
    def parse(cls, data: bytes) -> Response | None:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        if not lines[0].startswith("SIP/2.0 "):
            return None
        status = int(lines[0].split()[1])
        call_id = method = ""
        cseq = 0
        to_tag = contact = None
        record_route: list[str] = []
        challenges: list[dict[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name in ("call-id", "i"):
                call_id = value
            elif name == "cseq":
                number, _, method = value.partition(" ")
                cseq = int(number) if number.isdigit() else 0
                method = method.strip()
            elif name in ("to", "t"):
                m = re.search(r";\s*tag=([^;>\s]+)", value.split(">")[-1])
                to_tag = m[1] if m else None
            elif name in ("contact", "m"):
                m = re.search(r"<([^>]+)>", value)
                contact = m[1] if m else value.split(";")[0]
            elif name == "record-route":
                record_route += [r.strip() for r in re.findall(r"<[^>]+>[^,]*", value)]
            elif name in ("proxy-authenticate", "www-authenticate") and value.lower().startswith("digest"):
                challenges.append(dict(re.findall(r'(\w+)="?([^",]*)"?', value[6:])))
        md5 = [c for c in challenges if c.get("algorithm", "MD5").upper() == "MD5"]
        return cls(status, call_id, method, cseq, to_tag, contact, record_route, (md5 or challenges or [{}])[0])
