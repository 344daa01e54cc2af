"""baresip as a softphone that places and answers calls, driven through its ctrl_tcp module.

ctrl_tcp speaks netstrings of JSON: commands in (`dial`, `hangup`, `accept`), and responses and
events out (`CALL_RINGING`, `CALL_ESTABLISHED`, `CALL_CLOSED`...), which the tests wait on. The
audio devices are files (silence in, a file out), so no sound card is needed; media flows
directly between the phones, as sipline handles signalling only.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import wave
from pathlib import Path
from typing import Any

from tests.integration.clients import free_baresip_port, free_port
from tests.integration.sipline_process import need


def _silence(path: Path) -> Path:
    if not path.exists():
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 8000 * 120)  # baresip ends a call when its audio file does
    return path


class Softphone:
    def __init__(
        self,
        workdir: Path,
        *,
        username: str,
        password: str,
        domain: str,
        server_port: int,
        transport: str = "udp",
        srtp: bool = False,
        auto_answer: bool = True,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.port = free_baresip_port()  # baresip listens for UDP, TCP and (on the next port) TLS alike
        self.control_port = free_port(socket.SOCK_STREAM)
        silence = _silence(self.dir / "silence.wav")
        # srtp before account: an account naming a media encryption not loaded yet gets none.
        modules = ["g711.so", "aufile.so", *(["srtp.so"] if srtp else []), "account.so", "menu.so", "ctrl_tcp.so"]
        config = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{self.port}",
            f"audio_source aufile,{silence}",
            f"audio_player aufile,{self.dir / 'heard.wav'}",
            f"audio_alert aufile,{self.dir / 'alert.wav'}",
            "module_path /usr/lib/baresip/modules",
            *(f"module {m}" for m in modules),
            f"ctrl_tcp_listen 127.0.0.1:{self.control_port}",
        ]
        (self.dir / "config").write_text("\n".join(config) + "\n")
        params = [
            f"auth_pass={password}",
            f'outbound="sip:127.0.0.1:{server_port};transport={transport}"',
            "regint=3600",
            f"answermode={'auto' if auto_answer else 'manual'}",
        ]
        if srtp:
            params.append("mediaenc=srtp-mand")
        (self.dir / "accounts").write_text(f"<sip:{username}@{domain};transport={transport}>;{';'.join(params)}\n")
        self.log = self.dir / "baresip.log"
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def __enter__(self) -> Softphone:
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                [need("baresip"), "-f", str(self.dir)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 10
        while self._control is None:
            try:
                self._control = socket.create_connection(("127.0.0.1", self.control_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"baresip control port did not open: {self.output()}") from None
                time.sleep(0.05)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._control is not None:
            self._control.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _read(self) -> None:
        assert self._control is not None
        buffer = b""
        self._control.settimeout(None)
        while True:
            try:
                data = self._control.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b":" in buffer:
                length, _, rest = buffer.partition(b":")
                if not length.isdigit() or len(rest) < int(length) + 1:
                    break
                payload, buffer = rest[: int(length)], rest[int(length) + 1 :]
                with self._lock:
                    self.events.append(json.loads(payload))
                    self._lock.notify_all()

    def command(self, command: str, params: str = "") -> None:
        assert self._control is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._control.sendall(str(len(body)).encode() + b":" + body + b",")

    def wait_for(self, event_type: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first event of that type (since the start), waiting for it to come."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for event in self.events:
                    if event.get("type") == event_type:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e.get("type") for e in self.events]
                    raise AssertionError(f"{self.username}: no {event_type} within {timeout} s (saw {seen})")
                self._lock.wait(remaining)

    def wait_registered(self, timeout: float = 15.0) -> None:
        """Registered (baresip registers as it starts, before the control connection is up, so its
        own log says it: "<aor>: {0/UDP/v4} 200 OK ... [1 binding]")."""
        deadline = time.monotonic() + timeout
        while "[1 binding]" not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.username} did not register: {self.output()[-2000:]}")
            time.sleep(0.05)

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def hang_up(self) -> None:
        self.command("hangup")
