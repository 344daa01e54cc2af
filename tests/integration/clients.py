"""Real SIP clients for the integration tests: sipp (scripted) and baresip (a softphone), headless."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.integration.sipline_process import need

SCENARIOS = Path(__file__).parent / "sipp"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sipp_register(
    workdir: Path, server_port: int, users: list[tuple[str, str, str]], *, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Register each (username, password, domain) once over UDP; returncode 0 when all got 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv = workdir / "users.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{u};{p};{d}\n" for u, p, d in users))
    cmd = [
        need("sipp"), "-sf", str(SCENARIOS / "register_digest.xml"), "-inf", str(csv),
        "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-m", str(len(users)), "-r", "50",
        "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
        f"127.0.0.1:{server_port}",
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 10)


class Baresip:
    """baresip with a generated config dir: no audio device, one account, an outbound proxy."""

    def __init__(
        self,
        workdir: Path,
        *,
        username: str,
        password: str,
        domain: str,
        server_port: int,
        transport: str = "udp",
        cafile: Path | None = None,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{self.port}",
            "audio_player nothing",
            "audio_source nothing",
            "audio_alert nothing",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module account.so",
        ]
        if cafile is not None:
            config.append(f"sip_cafile {cafile}")  # baresip 1.0 does not verify, newer ones do
        (self.dir / "config").write_text("\n".join(config) + "\n")
        (self.dir / "accounts").write_text(
            f"<sip:{username}@{domain};transport={transport}>;auth_pass={password};"
            f'outbound="sip:127.0.0.1:{server_port};transport={transport}";regint=3600\n'
        )
        self.log = self.dir / "baresip.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Baresip:
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                [need("baresip"), "-f", str(self.dir)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            time.sleep(0.1)
        return False

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
