"""SIP registrar benchmark: sipline against Kamailio, the same sipp scenario, in one run.

    .venv/bin/python bench/sip.py [--users 10000] [--rate 2000] [--limit 100] [--database-url URL]

1. Seeds N endpoints for the bootstrap project directly through the store (Credentials.columns for
   the sealed password and HA1s; one executemany), with sipline stopped.
2. Starts `sipline serve` (pinned to CPU 0 when taskset exists) with MD5 challenges (sipp computes
   MD5 only), runs tests/integration/sipp/register_digest.xml once per user (`-inf users.csv`,
   `-m N -r RATE -l LIMIT`, sipp pinned to CPU 1): REGISTER, 401, REGISTER with digest, 200.
3. Writes the same users into a db_text `subscriber` table (HA1 precomputed) and runs Kamailio
   (bench/kamailio/kamailio.cfg: auth_db + registrar, usrloc in memory) in the foreground on a free
   loopback port, pinned the same way, and runs the same sipp command against it.
4. Prints successful registrations per second, registration-time percentiles (first REGISTER sent
   to 200 received: two round trips), failures, and the ratio sipline/Kamailio. Targets: ratio >= 0.5,
   p99 < 20 ms, no failed registrations. All traffic goes to 127.0.0.1; every process is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sipline.config import Settings  # noqa: E402
from sipline.domain.endpoint import empty_record  # noqa: E402
from sipline.runtime import Runtime  # noqa: E402
from sipline.serve import prepare  # noqa: E402
from sipline.store import projects  # noqa: E402
from sipline.store.schema import sip_endpoints  # noqa: E402
from tests.integration.sipline_process import Sipline  # noqa: E402

SCENARIO = ROOT / "tests" / "integration" / "sipp" / "register_digest.xml"
KAMAILIO_CFG = ROOT / "bench" / "kamailio" / "kamailio.cfg"
SECRET = "bench-secret-key"
TARGET_RATIO, TARGET_P99_MS = 0.5, 20.0


@dataclass
class Result:
    name: str
    ok: int
    failed: int
    seconds: float
    times_ms: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.times_ms:
            return float("nan")
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


async def seed(data_dir: Path, database_url: str | None, users: int) -> tuple[str, list[tuple[str, str]]]:
    """The bootstrap project's SIP domain and N (username, password) pairs stored as endpoints."""
    rt = Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET))
    try:
        await prepare(rt)
        project = (await rt.db.read(projects.list_all))[0]
        now = time.time()
        creds = [(f"bench{i:05d}", f"pw-{i:05d}-secret") for i in range(users)]
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


def run_sipp(name: str, workdir: Path, port: int, csv_path: Path, args: argparse.Namespace) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = pinned(1, [
        "sipp", "-sf", str(SCENARIO), "-inf", str(csv_path), "-i", "127.0.0.1", "-p", str(free_port()),
        "-t", "u1", "-m", str(args.users), "-r", str(args.rate), "-l", str(args.limit),
        "-nostdin", "-timeout", f"{args.timeout}s", "-timeout_error", "-trace_rtt", "-rtt_freq", "1",
        "-trace_stat", "-fd", "1", "-max_recv_loops", "10000", "-max_sched_loops", "10000",
        f"127.0.0.1:{port}",
    ])  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=args.timeout + 30)
    seconds = time.monotonic() - started
    ok = _last_int(done.stdout, r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)")
    failed = _last_int(done.stdout, r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)")
    times: list[float] = []
    for rtt in workdir.glob("*_rtt.csv"):
        with rtt.open() as f:
            for row in csv.reader(f, delimiter=";"):
                with contextlib.suppress(ValueError, IndexError):
                    times.append(float(row[1]))
    # sipp's own clock covers only the calls; the process also spends a moment starting and exiting.
    elapsed = _elapsed(workdir) or seconds
    if ok + failed < args.users:
        print(f"{name}: sipp exited {done.returncode}: {done.stdout[-1500:]}{done.stderr[-1500:]}", file=sys.stderr)
        failed = args.users - ok
    return Result(name, ok, failed, elapsed, times)


def _last_int(text: str, pattern: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def _elapsed(workdir: Path) -> float | None:
    """Elapsed time of the run from sipp's statistics file (ElapsedTime(C), HH:MM:SS:micro)."""
    for stat in workdir.glob("*_.csv"):
        lines = stat.read_text().strip().splitlines()
        if len(lines) < 2:
            continue
        header, last = lines[0].split(";"), lines[-1].split(";")
        with contextlib.suppress(ValueError, IndexError):
            h, m, s, micro = last[header.index("ElapsedTime(C)")].split(":")
            return int(h) * 3600 + int(m) * 60 + int(s) + int(micro) / 1e6
    return None


def write_users(path: Path, domain: str, creds: list[tuple[str, str]]) -> None:
    path.write_text("SEQUENTIAL\n" + "".join(f"{u};{p};{domain}\n" for u, p in creds))


def bench_sipline(tmp: Path, args: argparse.Namespace) -> Result:
    data_dir = tmp / "sipline"
    domain, creds = asyncio.run(seed(data_dir, args.database_url, args.users))
    write_users(tmp / "users.csv", domain, creds)
    env = {"SIPLINE_SIP_DIGEST_ALGORITHMS": "MD5", "SIPLINE_SECRET_KEY": SECRET, "SIPLINE_LOG_LEVEL": "warning"}
    if args.database_url:
        env["SIPLINE_DATABASE_URL"] = args.database_url
    with Sipline(data_dir, env=env, prefix=pinned(0, [])) as server:
        profiler = None
        if args.profile:
            # .svg: flame graph; .json: speedscope; .txt: collapsed stacks (grep-able)
            fmt = {".json": "speedscope", ".txt": "raw"}.get(Path(args.profile).suffix, "flamegraph")
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            profiler = subprocess.Popen(
                [py_spy, "record", "-o", args.profile, "--pid", str(server.pid), "-r", "200", "-f", fmt],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        try:
            return run_sipp("sipline", tmp / "sipp-sipline", server.ports["udp"], tmp / "users.csv", args)
        finally:
            if profiler is not None:
                profiler.send_signal(2)
                profiler.wait(timeout=30)


def bench_kamailio(tmp: Path, args: argparse.Namespace) -> Result:
    import hashlib

    domain_line = (tmp / "users.csv").read_text().splitlines()[1]
    domain = domain_line.split(";")[2]
    db = tmp / "kamailio-db"
    db.mkdir()
    (db / "version").write_text("table_name(str) table_version(int)\nsubscriber:7\nlocation:9\n")
    lines = ["id(int,auto) username(str) domain(str) password(str) ha1(str) ha1b(str,null)"]
    for i, line in enumerate((tmp / "users.csv").read_text().splitlines()[1:], 1):
        user, password, _ = line.split(";")
        ha1 = hashlib.md5(f"{user}:{domain}:{password}".encode()).hexdigest()
        lines.append(f"{i}:{user}:{domain}:{password}:{ha1}:")
    (db / "subscriber").write_text("\n".join(lines) + "\n")
    run_dir = tmp / "kamailio-run"
    run_dir.mkdir()
    port = free_port()
    cmd = pinned(0, [
        "kamailio", "-DD", "-E", "-f", str(KAMAILIO_CFG), "-l", f"udp:127.0.0.1:{port}",
        "-A", f'DBURL="text://{db}"', "-Y", str(run_dir), "-P", str(run_dir / "kamailio.pid"),
        "-w", str(run_dir), "-m", "128", "-M", "16",
    ])  # fmt: skip
    log = (run_dir / "kamailio.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_until_answering(port, proc, run_dir / "kamailio.log")
        return run_sipp("kamailio", tmp / "sipp-kamailio", port, tmp / "users.csv", args)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)


def _wait_until_answering(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
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


def report(results: list[Result]) -> bool:
    print(
        f"\n{'server':<10} {'ok':>7} {'failed':>7} {'reg/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for r in results:
        print(
            f"{r.name:<10} {r.ok:>7} {r.failed:>7} {r.rate:>9.0f} {r.pct(50):>8.1f} {r.pct(90):>8.1f} "
            f"{r.pct(99):>8.1f} {max(r.times_ms, default=float('nan')):>8.1f}"
        )
    sipline, kamailio = results
    ratio = sipline.rate / kamailio.rate if kamailio.rate else float("nan")
    checks = [
        (f"sipline/kamailio rate {ratio:.2f} >= {TARGET_RATIO}", ratio >= TARGET_RATIO),
        (f"sipline p99 {sipline.pct(99):.1f} ms < {TARGET_P99_MS} ms", sipline.pct(99) < TARGET_P99_MS),
        (f"no failed registrations ({sipline.failed} failed)", sipline.failed == 0),
    ]
    print()
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    return all(ok for _, ok in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=2000, help="offered registrations per second (sipp -r)")
    parser.add_argument("--limit", type=int, default=100, help="registrations in flight at most (sipp -l)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a sipp run is abandoned")
    parser.add_argument("--profile", help="py-spy output for the sipline run (.svg flame graph or .json)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, sipp traces)")
    parser.add_argument("--database-url", help="sipline's database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    for binary in ("sipp", "kamailio"):
        if not shutil.which(binary):
            print(f"bench/sip.py needs {binary} (apt-get install sip-tester kamailio)", file=sys.stderr)
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="sipline-sip-bench-"))
    try:
        results = [bench_sipline(tmp, args), bench_kamailio(tmp, args)]
    finally:
        if args.keep:
            print(f"working directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.users} users, sipp -r {args.rate} -l {args.limit}, one registration (2 transactions) per user")
    return 0 if report(results) else 2


if __name__ == "__main__":
    sys.exit(main())
