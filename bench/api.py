"""HTTP API benchmark: sipline against a bare ASGI app on the same server stack, in one run.

    .venv/bin/python bench/api.py [--endpoints 100000] [--duration 10] [--connections 32]

1. Starts `sipline serve --no-sip --http-port 0` on SQLite in a temp data dir once, to let it migrate
   and bootstrap a project; parses the printed project id and API token; stops it.
2. Seeds N endpoints directly through the store (sipline.runtime.Runtime, domain `change()` for
   validation, `Credentials.columns()` for the sealed password and HA1s, `store.endpoints.insert()`),
   the same steps the POST handler takes, minus HTTP. POST over HTTP is measured as its own scenario.
3. Starts sipline again (pinned to CPU 0 when taskset exists) and bench/asgi_bare.py the same way.
4. Drives both with wrk (pinned to CPU 1) over keep-alive connections: warm-up, then the measured run,
   per scenario; prints requests/s, p50, p99, ratio to the bare app, the targets, server RSS.
5. Stops every process it started, also on Ctrl-C or an error. All traffic goes to 127.0.0.1.

Exit status: 0 when every response was 2xx and no socket errors happened, 1 otherwise (targets that are
missed are reported, and make the status 2 only with --strict).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WRK_DIR = BENCH / "wrk"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PATH = "/api/relay/rest/endpoints/sip"

TARGET_LIST_P50_MS = 20.0
TARGET_RSS_MB = 300.0
TARGET_PUT_RATIO = 0.25
TARGET_GET_RATIO = 0.35


# ---------------------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    log: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid


_RUNNING: list[Proc] = []


def _pin(cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) <= cpu:
        return []
    return ["taskset", "-c", str(cpu)]


def start(name: str, argv: list[str], cpu: int | None) -> Proc:
    """Start a child in its own session (Ctrl-C reaches only us; we stop it) and drain its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    popen = subprocess.Popen(
        _pin(cpu) + argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    proc = Proc(name, popen)
    _RUNNING.append(proc)

    def drain() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            proc.log.append(line.rstrip("\n"))
            proc.lines.put(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    return proc


def wait_for_line(proc: Proc, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or (proc.popen.poll() is not None and proc.lines.empty()):
            tail = "\n".join(proc.log[-20:])
            raise RuntimeError(f"{proc.name}: no {marker!r} line within {timeout:.0f}s; output:\n{tail}")
        try:
            line = proc.lines.get(timeout=min(left, 0.2))
        except queue.Empty:
            continue
        if marker in line:
            return line


def stop(proc: Proc, timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL; only the process we started, by pid."""
    if proc in _RUNNING:
        _RUNNING.remove(proc)
    if proc.popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.popen.send_signal(signal.SIGTERM)
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.popen.kill()
        proc.popen.wait(5)


def stop_all() -> None:
    for proc in reversed(list(_RUNNING)):
        stop(proc)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


# -------------------------------------------------------------------------------------------- sipline


@dataclass
class Sipline:
    proc: Proc
    port: int


def start_sipline(data_dir: Path, cpu: int | None) -> tuple[Sipline, dict[str, str]]:
    """Start `sipline serve`; returns the server and the bootstrap credentials when it printed them."""
    argv = [
        str(VENV_BIN / "sipline"),
        "serve",
        "--no-sip",
        "--http-host",
        HOST,
        "--http-port",
        "0",
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
    ]
    proc = start("sipline", argv, cpu)
    line = wait_for_line(proc, "sipline: HTTP API on http://", 60)
    port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
    boot: dict[str, str] = {}
    for logged in proc.log:
        text = logged.strip()
        if text.startswith("project id:"):
            boot["project_id"] = text.split(":", 1)[1].strip()
        elif text.startswith("API token:"):
            boot["token"] = text.split(":", 1)[1].split()[0]
    return Sipline(proc, port), boot


def start_bare(cpu: int | None, loop: str = "uvloop") -> tuple[Proc, int]:
    argv = [sys.executable, str(BENCH / "asgi_bare.py"), "--host", HOST, "--port", "0", "--log-level", "warning"]
    argv += ["--loop", loop]
    proc = start(f"asgi_bare[{loop}]", argv, cpu)
    line = wait_for_line(proc, "asgi_bare: HTTP on http://", 30)
    return proc, int(line.rsplit(":", 1)[1])


def _http(method: str, port: int, path: str, auth: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    req.add_header("Authorization", auth)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# -------------------------------------------------------------------------------------------- seeding


def username(i: int) -> str:
    return f"ep{i:07d}"


def seed(data_dir: Path, project_id: str, n: int, batch: int = 5000) -> float:
    """Insert n endpoints exactly as create_endpoint does; returns the seconds taken.

    Each row goes through the domain's `change()` (validation), `Credentials.columns()` (sealed
    password, both HA1s) and `store.endpoints.insert()` on a live connection, `batch` rows per
    transaction: the API's own code path without HTTP. POST over HTTP is measured as its own scenario.
    """
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import Connection

    from sipline.config import Settings
    from sipline.domain import endpoint as rules
    from sipline.runtime import Runtime
    from sipline.store import endpoints as store
    from sipline.store import projects

    def insert_batch(conn: Connection, realm_of: str, first: int, last: int, credentials: Any) -> None:
        for i in range(first, last):
            raw = {"username": username(i), "password": f"pw-{i:07d}-bench", "caller_id": f"+1444{i:07d}"}
            record, patch = rules.change(None, raw)
            store.insert(conn, project_id, record, credentials.columns(record["username"], patch["password"], realm_of))

    async def go() -> float:
        rt = Runtime.from_settings(Settings(data_dir=data_dir))
        try:
            profile = await rt.db.read(projects.get, project_id)
            assert profile is not None, "bootstrap project not found"
            t0 = time.perf_counter()
            for start_at in range(0, n, batch):
                done = min(n, start_at + batch)
                await rt.db.write(insert_batch, profile["domain_identifier"], start_at, done, rt.credentials)
                if done % 25000 == 0 or done == n:
                    print(f"  seeded {done}/{n} ({time.perf_counter() - t0:.1f}s)", flush=True)
            return time.perf_counter() - t0
        finally:
            await rt.db.dispose()

    return asyncio.run(go())


def endpoint_ids(data_dir: Path) -> list[str]:
    import sqlite3

    con = sqlite3.connect(data_dir / "sipline.db")
    try:
        return [row[0] for row in con.execute("SELECT id FROM sip_endpoints ORDER BY seq")]
    finally:
        con.close()


def pick_filter(n: int) -> tuple[str, int]:
    """A filter_username value matching a few rows (about 10) wherever N is: 'p' + 6 of 7 digits."""
    if n < 10:
        return username(0)[1:], 1
    needle = "p" + f"{(n // 2):07d}"[:-1]
    return needle, sum(1 for i in range(n) if needle in username(i))


# ------------------------------------------------------------------------------------------------ wrk


@dataclass
class Result:
    scenario: str
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    server_cpu: float  # server process CPU seconds per wall second during the measured run
    raw: dict[str, Any]


def run_wrk(
    script: str, port: int, args: list[str], duration: float, connections: int, threads: int, cpu: int | None
) -> dict[str, Any]:
    argv = [
        *_pin(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        f"http://{HOST}:{port}",
        "--",
        *args,
    ]
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    wrk = Proc("wrk", popen)
    _RUNNING.append(wrk)
    try:
        out, _ = popen.communicate(timeout=duration + 60)
    finally:
        stop(wrk)
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise RuntimeError(f"wrk printed no result (exit {popen.returncode}):\n{out}")


def scenario(
    name: str,
    target: str,
    script: str,
    server: Proc,
    port: int,
    args: list[str],
    opts: argparse.Namespace,
    warm_args: list[str] | None = None,
    connections: int | None = None,
) -> Result:
    conns = connections or opts.connections
    threads = min(opts.threads, conns)
    if opts.warmup > 0:
        run_wrk(script, port, warm_args or args, opts.warmup, conns, threads, opts.wrk_cpu)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    raw = run_wrk(script, port, args, opts.duration, conns, threads, opts.wrk_cpu)
    cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
    sock = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    result = Result(
        name, target, raw["rps"], raw["p50_ms"], raw["p99_ms"], raw["requests"], raw["non2xx"], sock, cpu, raw
    )
    flag = "" if not (result.non2xx or sock) else f"   <-- {result.non2xx} non-2xx, {sock} socket errors"
    print(
        f"  {name:<34} {result.rps:>9.0f} req/s  p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms"
        f"  server CPU {cpu:4.0%}{flag}",
        flush=True,
    )
    return result


# ------------------------------------------------------------------------------------------- profiling


def profile_run(
    label: str, pid: int, script: str, port: int, args: list[str], opts: argparse.Namespace, out_dir: Path
) -> Path:
    """An extra, unmeasured wrk run with py-spy sampling the server; writes collapsed stacks."""
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = out_dir / f"{label}.collapsed.txt"
    seconds = max(2, round(opts.duration))
    spy = start(
        "py-spy",
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--duration",
            str(seconds + 2),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--threads",
        ],
        None,
    )
    time.sleep(1.0)
    run_wrk(script, port, args, seconds, opts.connections, opts.threads, opts.wrk_cpu)
    try:
        spy.popen.wait(seconds + 30)
    finally:
        stop(spy)
    return out


def summarize_profile(path: Path, top: int = 22) -> str:
    """Where the server's non-idle samples go (py-spy collapsed output, idle threads excluded).

    Shares are of the event-loop thread's samples (the one running Python request code); the SQLite
    writer thread (used only when another process holds the write lock) is totalled apart.
    """
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    loop_total = 0
    worker_total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if any("concurrent/futures/thread.py" in f and f.startswith("_worker") for f in frames):
            worker_total += count
            continue
        loop_total += count
        self_c[_short(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            incl[name] += count
    total = max(loop_total, 1)
    lines = [
        f"{path.name}: event-loop thread {loop_total} samples; writer thread {worker_total} samples",
        "  top self (share of event-loop thread samples):",
    ]
    lines += [f"    {100 * c / total:5.1f}%  {name}" for name, c in self_c.most_common(top)]
    lines.append("  top inclusive:")
    lines += [f"    {100 * c / total:5.1f}%  {name}" for name, c in incl.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/site-packages/pkg/mod.py:123)" -> "func (pkg/mod.py)"
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{func} ({file})"


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoints", type=int, default=100_000, help="endpoints seeded before the runs (default 100000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured scenario (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each scenario (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: wrk has one core)")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU for the servers (taskset; default 0)")
    p.add_argument("--wrk-cpu", type=int, default=1, help="CPU for wrk (taskset; default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--no-post", action="store_true", help="skip the POST (create) scenario")
    p.add_argument(
        "--no-variants", action="store_true", help="skip the informational bare runs (sipline's socket; uvloop)"
    )
    p.add_argument("--profile", type=Path, help="after the runs, profile PUT and GET with py-spy into this dir")
    p.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    p.add_argument("--keep", action="store_true", help="keep the temp data dir")
    opts = p.parse_args(argv)
    if opts.no_pin:
        opts.server_cpu = opts.wrk_cpu = None
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 1

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    data_dir = Path(tempfile.mkdtemp(prefix="sipline-bench-"))
    try:
        return _main(opts, data_dir)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what was started", file=sys.stderr)
        return 130
    finally:
        stop_all()
        if opts.keep:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _main(opts: argparse.Namespace, data_dir: Path) -> int:
    pinned = opts.server_cpu is not None and bool(_pin(opts.server_cpu))
    print(
        f"sipline API bench: N={opts.endpoints} endpoints, "
        f"{opts.duration:g}s per scenario (+{opts.warmup:g}s warm-up), "
        f"wrk -t{opts.threads} -c{opts.connections}, "
        + (f"server on CPU {opts.server_cpu}, wrk on CPU {opts.wrk_cpu}" if pinned else "not pinned")
        + f", {os.cpu_count()} CPUs; data dir {data_dir}",
        flush=True,
    )

    # 1. bootstrap: migrate, create the project and a token; then stop.
    server, boot = start_sipline(data_dir, None)
    stop(server.proc)
    if "project_id" not in boot or "token" not in boot:
        raise RuntimeError(
            "sipline did not print the bootstrap project id and API token:\n" + "\n".join(server.proc.log)
        )
    project_id, token = boot["project_id"], boot["token"]
    auth = "Basic " + base64.b64encode(f"{project_id}:{token}".encode()).decode()

    # 2. seed through the store, with the server stopped.
    print(f"seeding {opts.endpoints} endpoints through sipline.store (validate, seal + HA1, insert) ...", flush=True)
    seed_s = seed(data_dir, project_id, opts.endpoints) if opts.endpoints else 0.0
    print(f"  seeded in {seed_s:.1f}s ({opts.endpoints / max(seed_s, 1e-9):.0f} rows/s)", flush=True)
    ids = endpoint_ids(data_dir)
    if len(ids) != opts.endpoints:
        raise RuntimeError(f"expected {opts.endpoints} rows, found {len(ids)}")
    ids_file = data_dir / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    needle, expected = pick_filter(opts.endpoints)

    # 3. the two servers, on the server CPU.
    server, _ = start_sipline(data_dir, opts.server_cpu)
    bare, bare_port = start_bare(opts.server_cpu)  # uvloop, as sipline serve
    status, body = _http("GET", server.port, f"{PATH}?filter_username={needle}", auth)
    if status != 200 or len(body["data"]) != min(expected, 50):
        raise RuntimeError(f"sanity list failed: {status} {str(body)[:300]} (expected {expected} rows)")
    status, body = _http("GET", server.port, f"{PATH}/{ids[0]}", auth)
    if status != 200 or body.get("username") != username(0):
        raise RuntimeError(f"sanity get failed: {status} {str(body)[:300]}")
    print(f"sipline pid {server.proc.pid} on :{server.port}; bare ASGI pid {bare.pid} on :{bare_port}", flush=True)
    print(f"filter_username={needle} matches {expected} of {opts.endpoints} rows", flush=True)

    load1 = float(Path("/proc/loadavg").read_text().split()[0])
    if load1 > 0.5:
        print(f"warning: 1-min load average {load1:.2f} before the runs: other work shares these CPUs", flush=True)
    id_args = [str(ids_file), auth]
    results: list[Result] = []
    print("runs:", flush=True)
    results.append(scenario("bare PUT", "bare", "put.lua", bare, bare_port, id_args, opts))
    results.append(scenario("bare GET", "bare", "get.lua", bare, bare_port, id_args, opts))
    if not opts.no_variants:
        # Informational rows: the bare app on plain asyncio (what the ratios would be against it).
        aio, aio_port = start_bare(opts.server_cpu, loop="asyncio")
        results.append(scenario("bare PUT (asyncio, info)", "bare-variant", "put.lua", aio, aio_port, id_args, opts))
        results.append(scenario("bare GET (asyncio, info)", "bare-variant", "get.lua", aio, aio_port, id_args, opts))
        stop(aio)
    rss_idle = rss_mb(server.proc.pid)[0]
    # The floor: Litestar, uvicorn and one trivial query, no auth, no endpoint logic.
    results.append(
        scenario(
            "sipline GET /healthz (floor)", "sipline", "path.lua", server.proc, server.port, ["/healthz", auth], opts
        )
    )
    results.append(scenario("sipline PUT /sip/{id}", "sipline", "put.lua", server.proc, server.port, id_args, opts))
    results.append(scenario("sipline GET /sip/{id}", "sipline", "get.lua", server.proc, server.port, id_args, opts))
    results.append(
        scenario(
            f"sipline GET list ?filter={needle}", "sipline", "list.lua", server.proc, server.port, [needle, auth], opts
        )
    )
    # Latency of one filtered list request on its own: at 32 closed-loop connections a CPU-bound
    # server's p50 is about 32 times its service time, which measures throughput, not the query.
    results.append(
        scenario(
            "sipline GET list, 1 connection",
            "sipline-latency",
            "list.lua",
            server.proc,
            server.port,
            [needle, auth],
            opts,
            connections=1,
        )
    )
    if not opts.no_post:
        run_tag = f"b{random.randrange(16**6):06x}"
        results.append(
            scenario(
                "sipline POST (create)",
                "sipline",
                "post.lua",
                server.proc,
                server.port,
                [run_tag + "m", auth],
                opts,
                warm_args=[run_tag + "w", auth],
            )
        )
    rss, hwm = rss_mb(server.proc.pid)

    profiles: list[str] = []
    if opts.profile:
        opts.profile.mkdir(parents=True, exist_ok=True)
        print(f"profiling (py-spy, unmeasured extra runs) into {opts.profile} ...", flush=True)
        for label, script, args in (
            ("put", "put.lua", id_args),
            ("get", "get.lua", id_args),
            ("list", "list.lua", [needle, auth]),
        ):
            path = profile_run(label, server.proc.pid, script, server.port, args, opts, opts.profile)
            profiles.append(summarize_profile(path))

    stop(bare)
    stop(server.proc)
    return report(opts, results, seed_s, rss_idle, rss, hwm, needle, expected, profiles)


def cpu_per_request(r: Result) -> float:
    return r.server_cpu / r.rps * 1e6 if r.rps else 0.0


def report(
    opts: argparse.Namespace,
    results: list[Result],
    seed_s: float,
    rss_idle: float,
    rss: float,
    hwm: float,
    needle: str,
    expected: int,
    profiles: list[str],
) -> int:
    bare = {r.scenario.split()[1]: r.rps for r in results if r.target == "bare"}

    def baseline(r: Result) -> float | None:
        if r.target != "sipline":
            return bare.get(r.scenario.split()[1]) if r.target == "bare-variant" else None
        method = r.scenario.split()[1]
        return bare.get("GET") if method == "GET" else bare.get("PUT")

    print()
    header = (
        f"{'scenario':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'srv CPU':>8}"
        f" {'µs/req':>7} {'non-2xx':>8} {'sock err':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        base = baseline(r)
        ratio = f"{r.rps / base:7.1%}" if base else "    --  "
        print(
            f"{r.scenario:<36} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {ratio:>8} {r.server_cpu:>8.0%}"
            f" {cpu_per_request(r):>7.0f} {r.non2xx:>8} {r.socket_errors:>8}"
        )
    print("-" * len(header))
    print("ratios: sipline GET (item and list) vs bare GET; sipline PUT and POST vs bare PUT; same wrk settings.")
    print("srv CPU: server process CPU time / wall time in the measured run (100% = its one pinned core busy).")
    print("µs/req: server CPU per request (srv CPU / req/s), which other work on the machine moves little.")
    starved = [r.scenario for r in results if r.target == "bare" and r.server_cpu < 0.9]
    if starved:
        print(
            f"warning: {', '.join(starved)} not CPU-bound (srv CPU < 90%): the load generator or other work was the"
            " limit, and the ratios to it flatter sipline; compare µs/req instead."
        )

    by_name = {r.scenario: r for r in results}
    put = by_name["sipline PUT /sip/{id}"]
    get = by_name["sipline GET /sip/{id}"]
    lst = next(r for r in results if r.target == "sipline" and r.scenario.startswith("sipline GET list"))
    alone = next(r for r in results if r.target == "sipline-latency")
    put_ratio = put.rps / bare["PUT"]
    get_ratio = get.rps / bare["GET"]
    checks = [
        (
            f"filtered list p50, 1 connection, N={opts.endpoints} ({expected} matches)",
            f"{alone.p50_ms:.2f} ms",
            "< 20 ms",
            alone.p50_ms < TARGET_LIST_P50_MS,
        ),
        (
            f"filtered list p50, {opts.connections} connections (throughput-bound)",
            f"{lst.p50_ms:.2f} ms",
            "< 20 ms",
            lst.p50_ms < TARGET_LIST_P50_MS,
        ),
        (
            f"server RSS at N={opts.endpoints} after the runs",
            f"{rss:.0f} MiB (peak {hwm:.0f}, idle-start {rss_idle:.0f})",
            "< 300 MB",
            rss * 1.048576 < TARGET_RSS_MB,
        ),
        ("PUT rate vs bare PUT", f"{put_ratio:.1%}", ">= 25%", put_ratio >= TARGET_PUT_RATIO),
        ("GET rate vs bare GET", f"{get_ratio:.1%}", ">= 35%", get_ratio >= TARGET_GET_RATIO),
    ]
    print()
    for name, value, target, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name:<48} {value:<36} target {target}")
    failures = [r for r in results if r.non2xx or r.socket_errors]
    for r in failures:
        print(f"FAIL  {r.scenario}: {r.non2xx} non-2xx responses, {r.socket_errors} socket errors")
    if not failures:
        print("OK    every response 2xx, no socket errors")
    print(f"seeding: {opts.endpoints} rows through the store in {seed_s:.1f}s", end="")
    post = by_name.get("sipline POST (create)")
    if post and post.rps:
        print(
            f"; over HTTP POST at the measured {post.rps:.0f}/s it would take {opts.endpoints / post.rps:.0f}s", end=""
        )
    print()
    for text in profiles:
        print()
        print(text)
    if failures:
        return 1
    if opts.strict and not all(ok for *_, ok in checks):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
