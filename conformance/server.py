"""Run a broker in a subprocess for tests and benchmarks.

``running_broker(*extra_args)`` starts ``python -m broker serve --host 127.0.0.1 --port P ...``
on a free port, waits (with a deadline, never by polling) until the broker logs
``listening on ws://127.0.0.1:P`` on stderr, and on exit sends SIGTERM and waits for the process,
killing it if it does not stop in time. A reader thread keeps draining stderr for the whole life
of the process, so the pipe never fills, and keeps every line for assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "REPO_ROOT",
    "BrokerProcess",
    "BrokerStartError",
    "external_url",
    "free_port",
    "looks_like_wsbroker",
    "running_broker",
    "suite_broker",
    "target_max_message_size",
    "target_name",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE_SIZE = 1_048_576


def external_url() -> str | None:
    """``WSBROKER_URL``: run the suites against that server instead of starting ours."""
    return os.environ.get("WSBROKER_URL") or None


def target_max_message_size() -> int:
    """Largest message (after decompression) the target accepts: WSBROKER_MAX_MESSAGE_SIZE."""
    return int(os.environ.get("WSBROKER_MAX_MESSAGE_SIZE") or DEFAULT_MAX_MESSAGE_SIZE)


class BrokerStartError(RuntimeError):
    """The broker exited or stayed silent instead of announcing that it listens."""


@dataclass
class BrokerProcess:
    port: int
    proc: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    eof: threading.Event = field(default_factory=threading.Event)
    # Set together with ``ready`` or ``eof``: whichever happens first wakes up the starter.
    _wake: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """Everything the broker wrote to stderr so far."""
        with self._lock:
            return "".join(self.lines)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        marker = f"listening on ws://{HOST}:{self.port}"
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                line = raw.decode("utf-8", "replace")
                with self._lock:
                    self.lines.append(line)
                if not self.ready.is_set() and marker in line:
                    self.ready.set()
                    self._wake.set()
        finally:
            self.eof.set()
            self._wake.set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait_ready(bp: BrokerProcess, timeout: float) -> None:
    # Wake up on whichever comes first: the "listening" line or the end of stderr (the process
    # died). The reader thread sets the event; no sleeping or polling of the process.
    bp._wake.wait(timeout)
    if bp.ready.is_set():
        return
    status = "exited" if bp.eof.is_set() else f"did not announce itself within {timeout:.0f} s"
    raise BrokerStartError(f"broker {status}; stderr:\n{bp.output()}")


def _stop(bp: BrokerProcess) -> None:
    proc = bp.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    if bp._reader is not None:
        bp._reader.join(STOP_TIMEOUT)
    if proc.stderr is not None:
        proc.stderr.close()


@contextlib.contextmanager
def running_broker(
    *extra_args: str,
    start_timeout: float = START_TIMEOUT,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    command: Sequence[str] | None = None,
) -> Iterator[BrokerProcess]:
    """Start ``python -m broker serve`` on a free port; yield it once it listens; stop it after.

    ``command`` replaces ``python -m broker`` (e.g. with the installed ``wsbroker`` script).
    ``cwd`` defaults to the repository root so that ``-m broker`` finds this checkout's package
    whether or not it is installed.
    """
    port = free_port()
    cmd = [
        *(command or (sys.executable, "-m", "broker")),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    cmd += extra_args
    proc = subprocess.Popen(
        cmd,
        cwd=str(cwd) if cwd is not None else str(REPO_ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    bp = BrokerProcess(port=port, proc=proc)
    bp._reader = threading.Thread(target=bp._drain, name=f"broker-stderr-{port}", daemon=True)
    bp._reader.start()
    try:
        _wait_ready(bp, start_timeout)
        yield bp
    finally:
        _stop(bp)


def looks_like_wsbroker(url: str) -> bool:
    """Whether the server at `url` is a wsbroker: its `GET /healthz` answers JSON with a status."""
    http = "http" + url.removeprefix("ws")
    try:
        with urllib.request.urlopen(http + "/healthz", timeout=3) as response:
            body = json.loads(response.read())
    except Exception:
        return False
    return isinstance(body, dict) and "status" in body


@contextlib.contextmanager
def suite_broker(*args: str) -> Iterator[BrokerProcess | None]:
    """A suite's own broker started with `args`, or None when WSBROKER_URL names the target."""
    if external_url() is not None:
        yield None
        return
    with running_broker(*args) as bp:
        yield bp


def target_name(broker_process: BrokerProcess | None, url: str) -> str:
    """WSBROKER_TARGET, else "wsbroker" for ours (started here, or answering /healthz)."""
    named = os.environ.get("WSBROKER_TARGET", "").lower()
    if named:
        return named
    return "wsbroker" if broker_process is not None or looks_like_wsbroker(url) else "other"
