"""Real SIP clients for the integration tests: sipp (scripted) and baresip (a softphone), headless."""

from __future__ import annotations

import functools
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.sipline_process import need

SCENARIOS = Path(__file__).parent / "sipp"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_baresip_port() -> int:
    """A loopback port free for UDP and TCP whose next port is free for TCP too: baresip listens
    on both at the port and for TLS on the next one (a taken neighbour failed a run: "SIP/TLS
    transport failed: Address already in use")."""
    for _ in range(100):
        port = free_port()
        held: list[socket.socket] = []
        try:
            for candidate in (port, port + 1):
                tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(tcp)
                tcp.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return port
    raise RuntimeError("no free loopback port for baresip")


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
        self.port = free_baresip_port()
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


# --- calls: sipp as caller and callee (scenarios in tests/integration/sipp/, see their headers) -------

SIPP_TRANSPORTS = {"udp": "u1", "tcp": "t1", "tls": "l1"}


@functools.cache
def sipp_has_tls() -> bool:
    """Whether this sipp was built with OpenSSL (its version line then names TLS, as in
    "SIPp v3.6.1-TLS-SCTP-PCAP-RTPSTREAM"): Debian's sip-tester 3.6 is not, and refuses `-t l1`
    ("To use a TLS transport you must compile SIPp with OpenSSL")."""
    done = subprocess.run([need("sipp"), "-v"], capture_output=True, text=True, timeout=10)
    version = (done.stdout + done.stderr).split("This program", 1)[0]
    return "TLS" in version.upper().split("-")


def _transport_args(transport: str, workdir: Path) -> list[str]:
    """sipp's -t for "udp", "tcp" or "tls" (sipp's own u1/t1/l1 accepted too); TLS also needs a
    certificate and key of its own, even as a client, and a sipp that has TLS at all (else: skip)."""
    mode = SIPP_TRANSPORTS.get(transport, transport)
    if mode not in SIPP_TRANSPORTS.values():
        raise ValueError(f"transport {transport!r}: one of {', '.join(SIPP_TRANSPORTS)}")
    if mode != "l1":
        return ["-t", mode]
    if not sipp_has_tls():
        pytest.skip("this sipp has no TLS (built without OpenSSL): `sipp -v` does not name TLS")
    cert, key = _self_signed(workdir)
    return ["-t", "l1", "-tls_cert", str(cert), "-tls_key", str(key)]


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = workdir / "sipp-cert.pem", workdir / "sipp-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sipp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _scenario(name: str | Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else SCENARIOS / path


class SippCallee:
    """A callee sipp that registered and now answers calls with its scenario, in the background."""

    def __init__(self, workdir: Path, port: int, transport: str, process: subprocess.Popen[str]) -> None:
        self.workdir = workdir
        self.port = port  # the local port it registered from and takes calls on
        self.transport = transport
        self.process = process

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for sipp to end by itself (`calls=N` over UDP: after N calls); its exit status,
        0 when every call went through the scenario."""
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        """sipp's final screen (once it ended) and its error log."""
        text = (self.workdir / "callee.out").read_text(errors="replace")
        for errors in sorted(self.workdir.glob("*_errors.log")):
            text += errors.read_text(errors="replace")[-4000:]
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def sipp_callee(
    workdir: Path,
    server_port: int,
    user: str,
    password: str,
    domain: str,
    scenario: str | Path = "uas_answer.xml",
    *,
    transport: str = "udp",
    calls: int | None = None,
    timeout: float = 120.0,
    unregister: bool = True,
) -> Iterator[SippCallee]:
    """A registered callee running `scenario` (uas_answer.xml, uas_busy.xml, uas_ring_forever.xml or
    a path) until the block ends; it registers first, so that the server knows where to reach it.

    UDP (a server reaches a UDP device at the source address it registered from): register_digest.xml
    from a free port, then the scenario in server mode on that same port, with `-m calls` when given
    (`SippCallee.wait()` then returns when that many calls are done).
    TCP and TLS (a server reaches a stream device over the connection it registered on): one sipp
    runs register_wait.xml as its main scenario and `scenario` as its out-of-call scenario, so the
    calls come in on the registration's connection; `calls` does not apply, it answers until the end.
    Either way sipp stops by itself after `timeout` seconds at the latest, and at the end the user's
    bindings are removed (unregister_digest.xml, Contact: *) unless `unregister=False`.
    Raises AssertionError when the registration fails.
    """
    sipp = need("sipp")
    workdir.mkdir(parents=True, exist_ok=True)
    mode = _transport_args(transport, workdir)
    stream = mode[1] != "u1"
    users = workdir / "callee.csv"
    users.write_text(f"SEQUENTIAL\n{user};{password};{domain}\n")
    port = free_port(socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)
    server = f"127.0.0.1:{server_port}"
    common = ["-i", "127.0.0.1", "-p", str(port), *mode, "-nostdin", "-trace_err"]
    if stream:
        cmd = [
            sipp, "-sf", str(SCENARIOS / "register_wait.xml"), "-oocsf", str(_scenario(scenario)),
            "-inf", str(users), *common, "-m", "1", "-d", str(int(timeout * 1000)), "-trace_logs",
            "-timeout", f"{int(timeout)}s", server,
        ]  # fmt: skip
    else:
        registered = subprocess.run(
            [sipp, "-sf", str(SCENARIOS / "register_digest.xml"), "-inf", str(users), *common, "-m", "1",
             "-timeout", "15s", "-timeout_error", server],
            cwd=workdir, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert registered.returncode == 0, f"{user} did not register: {registered.stdout[-2000:]}{registered.stderr}"
        cmd = [
            sipp, "-sf", str(_scenario(scenario)), *common, *(["-m", str(calls)] if calls else []),
            "-timeout", f"{int(timeout)}s", server,
        ]  # fmt: skip
    with (workdir / "callee.out").open("w") as out:
        process = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True)
    callee = SippCallee(workdir, port, transport, process)
    try:
        if stream:
            _wait_for_log(callee, f"registered {user}")
        else:
            _wait_until_bound(callee)
        yield callee
    finally:
        callee.stop()
        if unregister:
            (workdir / "unregister").mkdir(exist_ok=True)
            subprocess.run(
                [sipp, "-sf", str(SCENARIOS / "unregister_digest.xml"), "-inf", str(users), "-i", "127.0.0.1",
                 "-p", str(free_port(socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)), *mode, "-m", "1",
                 "-nostdin", "-timeout", "10s", "-timeout_error", server],
                cwd=workdir / "unregister", capture_output=True, text=True, timeout=20,
            )  # fmt: skip


def _wait_until_bound(callee: SippCallee, timeout: float = 10.0) -> None:
    """Until sipp holds its UDP port (binding it ourselves then fails): a call sent earlier is lost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callee.process.poll() is not None:
            raise AssertionError(f"the callee sipp exited: {callee.output()[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", callee.port))
            except OSError:
                return
        time.sleep(0.05)
    raise AssertionError(f"the callee sipp did not bind 127.0.0.1:{callee.port} within {timeout} s")


def _wait_for_log(callee: SippCallee, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in callee.workdir.glob("*_logs.log"):
            if text in log.read_text(errors="replace"):
                return
        if callee.process.poll() is not None:
            raise AssertionError(f"the callee sipp exited before registering: {callee.output()[-2000:]}")
        time.sleep(0.05)
    callee.stop()
    raise AssertionError(f"the callee did not register within {timeout} s: {callee.output()[-2000:]}")


def sipp_call(
    workdir: Path,
    server_port: int,
    caller: str,
    password: str,
    callee: str,
    domain: str,
    *,
    scenario: str | Path = "uac_call.xml",
    transport: str = "udp",
    expect: int | None = None,
    calls: int = 1,
    rate: float = 10.0,
    duration_ms: int = 200,
    timeout: float = 30.0,
    extra_args: list[str] | tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`caller` (digest `password`) calls sip:`callee`@`domain` `calls` times with a caller scenario:
    uac_call.xml (answered, held `duration_ms`, hung up), uac_cancel.xml (cancelled while ringing) or
    uac_expect.xml (fails with status `expect`: 486, 480, 404, ...). Runs to the end; returncode 0 when
    every call went as the scenario says. Setup times: `sipp_setup_times(workdir)` afterwards.
    """
    sipp = need("sipp")
    path = _scenario(scenario)
    if path.name == "uac_expect.xml" and expect is None:
        raise ValueError("uac_expect.xml needs the expected status (expect=486, ...)")
    workdir.mkdir(parents=True, exist_ok=True)
    mode = _transport_args(transport, workdir)
    csv = workdir / "calls.csv"
    line = f"{caller};{password};{callee};{domain}" + (f";{expect}" if expect is not None else "")
    csv.write_text(f"SEQUENTIAL\n{line}\n")
    port = free_port(socket.SOCK_DGRAM if mode[1] == "u1" else socket.SOCK_STREAM)
    cmd = [
        sipp, "-sf", str(path), "-inf", str(csv), "-i", "127.0.0.1", "-p", str(port), *mode,
        "-m", str(calls), "-r", f"{rate:g}", "-d", str(duration_ms), "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", "-trace_rtt", "-rtt_freq", "1",
        *extra_args, f"127.0.0.1:{server_port}",
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 10)


def sipp_setup_times(workdir: Path) -> list[float]:
    """Each answered call's setup time in ms (first INVITE to 200, sipp's 1 ms clock) from the
    *_rtt.csv files that sipp_call's runs left in `workdir`."""
    times = []
    for path in sorted(workdir.glob("*_rtt.csv")):
        for row in path.read_text().splitlines()[1:]:
            fields = row.split(";")
            if len(fields) >= 3 and fields[2] == "setup":
                times.append(float(fields[1]))
    return times
