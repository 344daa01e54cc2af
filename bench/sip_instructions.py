"""Instructions per registration, counted by callgrind: this checkout against a baseline commit, in one run.

    .venv/bin/python bench/sip_instructions.py [--baseline REV] [--registrations 2000] [--devices 300]

On a shared machine CPU time moves with other work: bench/sip_layers.py's rows varied by 2x between
rounds on a loaded machine, and bench/sip.py read the same code's capacity as 1,501 and 1,915/s.
Instruction counts barely move: valgrind counts them whatever else the machine does. Each tree,
this checkout and REV (checked out with `git worktree` into a temp dir, removed at the end), runs
bench/sip_layers.py's registrations (REGISTER, 401, REGISTER with an MD5 digest, 200, through
`SipService.receive` on a recording flow, SQLite, every device registered once first) under
`valgrind --tool=callgrind` twice: with 200 registrations and with 200 + `--registrations`. The
difference, divided by `--registrations`, is the count per registration, without start-up and
seeding. PYTHONHASHSEED=0 in both. Repeated runs of one tree agree within about 3 % (the nonces,
tags and UUIDs are random). It prints each tree's count and the ratio of this checkout to the
baseline. Needs valgrind. It takes about 10 minutes with the defaults (the four runs, two at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = 200  # registrations in the short run: what both runs share (start-up, seeding, warm-up) cancels out
_COLLECTED = re.compile(r"Collected : (\d+)")


def workload(root: Path, count: int, devices: int) -> None:
    """In the child, under valgrind: `count` registrations through the tree at `root`."""
    sys.path[:0] = [str(root)]
    import uvloop

    from bench.common import SECRET, seed
    from bench.sip_layers import Devices, sipline_registrations
    from sipline.config import Settings
    from sipline.runtime import Runtime
    from sipline.sipserver.service import SipService

    async def run(data_dir: Path) -> None:
        domain, creds = await seed(data_dir, None, devices)
        runtime = Runtime.from_settings(Settings(data_dir=data_dir, secret_key=SECRET))
        service = SipService(runtime, domain_cache_ttl=3600)  # no domain lookups midway
        try:
            registered = Devices(domain, creds)
            await sipline_registrations(service, registered, devices)
            await sipline_registrations(service, registered, count)
        finally:
            await service.close()
            await runtime.db.dispose()

    with (
        tempfile.TemporaryDirectory(prefix="sipline-instructions-") as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(run(Path(tmp)))


def counted(root: Path, count: int, devices: int) -> int:
    """Instructions of one child run (callgrind's total)."""
    with tempfile.TemporaryDirectory(prefix="sipline-callgrind-") as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(root),
            str(count),
            str(devices),
        ]
        environment = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run of {root} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(match[1])


def per_registration(root: Path, opts: argparse.Namespace, pool: ThreadPoolExecutor) -> float:
    short, long = pool.map(lambda n: counted(root, n, opts.devices), (BASE, BASE + opts.registrations))
    return (long - short) / opts.registrations


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        workload(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="HEAD~1", help="the commit compared against (default HEAD~1)")
    p.add_argument("--registrations", type=int, default=2000, help="registrations counted (default 2000)")
    p.add_argument("--devices", type=int, default=300, help="devices seeded and cycled through (default 300)")
    opts = p.parse_args()
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="sipline-baseline-") as tmp:
        baseline = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(baseline), opts.baseline], check=True
        )
        try:
            with ThreadPoolExecutor(2) as pool:
                base = per_registration(baseline, opts, pool)
                this = per_registration(ROOT, opts, pool)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False)
    what = f"{opts.registrations} registrations, {opts.devices} devices, SQLite"
    print(f"\nInstructions per registration (callgrind; {what})")
    print(f"  baseline {opts.baseline:<12} {base:12,.0f}")
    print(f"  this checkout         {this:12,.0f}")
    print(f"  this / baseline       {this / base:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
