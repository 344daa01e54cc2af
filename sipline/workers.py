"""`sipline serve --workers N`: one node served by N processes sharing its ports.

The parent prepares everything once (the store migrated, the first project, the TLS certificate,
the calls its last run left unfinished), binds every socket, then forks the workers and watches
over them: it does no serving itself. Each worker is a whole `sipline serve` on the inherited
sockets (sipline.serve.serve), with its own event loop, database pool and SIP state; how the
workers share the SIP ports is told in sipline.sipserver.siblings. A worker that dies is started
again; the parent stops them all on SIGINT or SIGTERM, and they stop by themselves if the parent
is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import metrics
from .config import Settings
from .net import StartupError, bind_tcp
from .runtime import Runtime
from .serve import Worker, announce_bootstrap, banner, base_url, loop_factory, open_runtime, prepare, serve

if TYPE_CHECKING:
    from .sipserver.server import Sockets

log = logging.getLogger("sipline.workers")

STOP_GRACE = 15.0  # seconds a worker has to finish its calls' cleanup before it is killed
RESTARTS = 5  # a worker that dies this many times within RESTART_WINDOW is not started again
RESTART_WINDOW = 60.0


def run_workers(settings: Settings, *, sip: bool = True) -> int:
    try:
        node = _Node.prepare(settings, sip=sip)
    except StartupError as exc:
        print(f"sipline: {exc}", file=sys.stderr, flush=True)
        return 1
    # The workers' metrics, in files a scrape of any of them adds up (sipline.metrics): a fresh
    # directory for each run of the node, so that no count of an earlier one is added in.
    directory = tempfile.mkdtemp(prefix="sipline-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = directory
    try:
        return node.run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class _Node:
    settings: Settings
    http: socket.socket
    sip: Sockets | None
    node_id: str | None
    database: str
    instances: list[str] = field(default_factory=list)
    node_instance: str = ""
    channels: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    relays: list[socket.socket] = field(default_factory=list)
    children: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    deaths: list[float] = field(default_factory=list)

    @classmethod
    def prepare(cls, settings: Settings, *, sip: bool) -> _Node:
        rt = open_runtime(settings)
        http = bind_tcp(settings.http_host, settings.http_port, what="http:")
        sockets = node_id = None
        if sip:
            from .sipserver.local import Local
            from .sipserver.server import Sockets, certificate_files

            sockets = Sockets.bind(settings)
            certificate_files(settings)  # made once, here, rather than by racing workers
            local = Local(settings.advertised_host, ports={"udp": sockets.udp.getsockname()[1]})
            node_id = local.node_id
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            created = runner.run(_prepare_store(rt, node_id))
        if created is not None:
            announce_bootstrap(*created, base_url(settings, http))
        node = cls(settings, http, sockets, node_id, rt.db.describe())
        node.node_instance = secrets.token_hex(4)
        node.instances = [f"{node.node_instance}w{i}" for i in range(settings.workers)]
        if sip:
            from .net import bind_udp
            from .sipserver.server import UDP_RECEIVE_BUFFER

            node.channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in node.instances]
            node.relays = [bind_udp(settings.sip_host, 0, receive_buffer=UDP_RECEIVE_BUFFER) for _ in node.instances]
        return node

    # --- the parent ------------------------------------------------------------------------------

    def run(self) -> int:
        received: list[int] = []
        wakeup_r, wakeup_w = os.pipe()
        ready_r, ready_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        for fd in (wakeup_r, wakeup_w, ready_r):
            os.set_blocking(fd, False)

        def note(signum: int, _frame: Any) -> None:
            received.append(signum)

        previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
        signal.set_wakeup_fd(wakeup_w)
        inherited = (wakeup_r, wakeup_w, ready_r, lifeline_w)
        ready = 0  # workers that said they serve, at the start
        stopping_since: float | None = None
        code = 0
        try:
            for index in range(self.settings.workers):
                self._spawn(index, ready_w, lifeline_r, inherited)
            with selectors.DefaultSelector() as selector:
                selector.register(wakeup_r, selectors.EVENT_READ)
                selector.register(ready_r, selectors.EVENT_READ)
                while self.children:
                    selector.select(timeout=1.0)
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wakeup_r, 512):
                            pass
                    with contextlib.suppress(BlockingIOError):
                        said = os.read(ready_r, 512).count(b"\n")  # one line each, and short: never split
                        started = ready < self.settings.workers
                        ready += said
                        if started and ready >= self.settings.workers and stopping_since is None:
                            self._banner()
                    for signum in received:
                        if signum in (signal.SIGINT, signal.SIGTERM) and stopping_since is None:
                            stopping_since = time.monotonic()
                            self._signal_all(signal.SIGTERM)
                    received.clear()
                    for index, status in self._reap():
                        if stopping_since is not None:
                            continue
                        if ready < self.settings.workers:
                            code = 1  # a worker could not start: it said why on stderr
                            stopping_since = time.monotonic()
                            self._signal_all(signal.SIGTERM)
                        elif self._may_restart():
                            log.warning("worker %d exited (%s); starting it again", index, status)
                            self._spawn(index, ready_w, lifeline_r, inherited)
                        else:
                            log.error("worker %d exited (%s), too often to start it again; stopping", index, status)
                            code = 1
                            stopping_since = time.monotonic()
                            self._signal_all(signal.SIGTERM)
                    if stopping_since is not None and time.monotonic() - stopping_since > STOP_GRACE:
                        self._signal_all(signal.SIGKILL)
        finally:
            signal.set_wakeup_fd(-1)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._signal_all(signal.SIGKILL)
            for fd in (wakeup_r, wakeup_w, ready_r, ready_w, lifeline_r, lifeline_w):
                os.close(fd)
        self._leave()
        return code

    def _banner(self) -> None:
        listening = None
        if self.sip is not None:
            from .sipserver.server import listening as describe

            ports = {
                "udp": self.sip.udp.getsockname()[1],
                "tcp": self.sip.tcp.getsockname()[1],
                "tls": self.sip.tls.getsockname()[1],
            }
            listening = describe(self.settings.sip_host, ports)
        banner(self.settings, self.database, listening, base_url(self.settings, self.http))

    def _spawn(self, index: int, ready: int, lifeline: int, inherited: tuple[int, ...]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        code = 1
        try:
            code = self._work(index, ready, lifeline, inherited)
        except BaseException:  # nothing may unwind into the parent's code
            log.exception("worker %d failed", index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self) -> list[tuple[int, str]]:
        reaped = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid == 0:
                break
            index = self.children.pop(pid, None)
            metrics.mark_process_dead(pid)
            if index is not None:
                reaped.append((index, _describe(status)))
        return reaped

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < RESTART_WINDOW] + [now]
        return len(self.deaths) < RESTARTS

    def _leave(self) -> None:
        """The node is gone: other nodes skip its UDP devices at once rather than ring them."""
        if self.node_id is None:
            return
        with contextlib.suppress(Exception):
            rt = open_runtime(self.settings)
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(_leave(rt, self.node_id))

    # --- a worker --------------------------------------------------------------------------------

    def _work(self, index: int, ready: int, lifeline: int, inherited: tuple[int, ...]) -> int:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
        for fd in inherited:
            os.close(fd)
        relays = [_reachable(relay.getsockname()) for relay in self.relays]
        for i, (reading, _) in enumerate(self.channels):
            if i != index:
                reading.close()
        for i, relay in enumerate(self.relays):
            if i != index:
                relay.close()
        worker = Worker(self.http, None, None, ready, lifeline)
        if self.sip is not None:
            from .sipserver.server import Sockets
            from .sipserver.siblings import Siblings

            sip = self.sip
            worker.sip = Sockets(sip.udp, sip.tcp, sip.tls, self.relays[index])
            worker.siblings = Siblings(index, self.node_instance, self.instances, self.channels, relays)
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(serve(self.settings, sip=self.sip is not None, worker=worker))
        except StartupError as exc:
            print(f"sipline: worker {index}: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0


async def _prepare_store(rt: Runtime, node_id: str | None) -> tuple[dict[str, Any], str] | None:
    """The store ready for the workers, and this node's calls from its last run closed."""
    try:
        created = await prepare(rt)
        if node_id is not None:
            from .store import calls

            closed = await rt.db.write(
                calls.close_unfinished, time.time(), "the node running the call stopped", node_id, workers=True
            )
            if closed:
                log.warning("SIP: %d calls were cut off when this node last stopped; their records say so", closed)
        return created
    finally:
        await rt.db.dispose()


async def _leave(rt: Runtime, node_id: str) -> None:
    from .store import nodes

    try:
        await rt.db.write(nodes.leave, node_id)
    finally:
        await rt.db.dispose()


def _reachable(address: tuple[str, int]) -> tuple[str, int]:
    """Where a socket bound to `address` is reached from this machine (a wildcard: loopback)."""
    host, port = address[0], address[1]
    return ({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
