"""Start `sipline` as a real process on loopback and read what it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SIPLINE = str(Path(sys.executable).with_name("sipline"))


def cli(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SIPLINE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Served:
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    http_url: str = ""
    project_id: str | None = None
    token: str | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(data_dir: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 30) -> Served:
    """`sipline serve` on free ports; returns once it prints its HTTP address (or fails loudly)."""
    proc = subprocess.Popen(
        [SIPLINE, "serve", "--http-port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    served = Served(proc)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        served.lines.append(line.rstrip("\n"))
        if m := re.search(r"project id:\s+(\S+)", line):
            served.project_id = m.group(1)
        if m := re.search(r"API token:\s+(\S+)", line):
            served.token = m.group(1)
        if m := re.search(r"HTTP API on (http://\S+)", line):
            served.http_url = m.group(1)
            return served
    served.stop()
    raise AssertionError("sipline serve did not start:\n" + "\n".join(served.lines))
