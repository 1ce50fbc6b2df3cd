"""Run the MQTT conformance suite against a local Mosquitto.

    python -m conformance.mqtt.run_against_mosquitto [pytest arguments...]

Writes a mosquitto.conf into a temporary directory (a WebSocket listener on a free port, plus a
plain MQTT listener on another one: Mosquitto 2.0.11 refuses to start with a WebSocket listener
alone), starts ``mosquitto -c`` with it, waits until it logs that it is running, runs
``python -m pytest conformance/mqtt`` with ``WSBROKER_URL`` and friends pointing at it, then stops
Mosquitto by its pid. The exit status is pytest's.

``MOSQUITTO`` overrides the binary (default ``mosquitto`` on PATH).

Mosquitto 2.0.x built against a libwebsockets without external-poll support (Debian's, among
others) only services WebSocket connections when its main loop wakes up, which it does at least
every ~100 ms when idle: every WebSocket handshake then takes 100-200 ms and large messages
crawl out in 4 KiB pieces, one per wake-up. Only the harness is affected, not the behaviour under
test, so by default a "waker" keeps the loop turning: a plain MQTT client on the side listener
that sends a PINGREQ every 10 ms (and waits for each PINGRESP). ``--no-waker`` runs without it
(the suite then takes more than twice as long).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from conformance.mqtt import codec
from conformance.server import REPO_ROOT, free_port

SYS_INTERVAL = 1
MAX_KEEPALIVE = 60
MAX_QUEUED = 100
MAX_PACKET_SIZE = 262_144
START_TIMEOUT = 10.0


def write_config(directory: Path, ws_port: int, mqtt_port: int) -> Path:
    conf = directory / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "allow_anonymous true",
                "persistence false",
                f"sys_interval {SYS_INTERVAL}",
                f"max_keepalive {MAX_KEEPALIVE}",
                f"max_queued_messages {MAX_QUEUED}",
                f"max_packet_size {MAX_PACKET_SIZE}",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
                # Mosquitto 2.0.11 with libwebsockets will not start with only a websockets
                # listener (eclipse/mosquitto#2284); this one is only there to let it start.
                f"listener {mqtt_port} 127.0.0.1",
                "protocol mqtt",
                # libwebsockets binds to all interfaces whatever address is given here.
                f"listener {ws_port}",
                "protocol websockets",
                "",
            ]
        )
    )
    return conf


WAKE_INTERVAL = 0.01


@contextlib.contextmanager
def waker(port: int) -> Iterator[None]:
    """A plain MQTT client on ``port`` that pings every WAKE_INTERVAL s until the block ends."""
    stop = threading.Event()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def recv_exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("mosquitto closed the waker connection")
            data += chunk
        return data

    sock.sendall(codec.connect("conformance-waker", version=codec.MQTT_3_1_1, keepalive=30))
    assert recv_exactly(4) == b"\x20\x02\x00\x00", "waker not accepted"

    def run() -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while not stop.wait(WAKE_INTERVAL):
                sock.sendall(codec.pingreq())
                recv_exactly(2)

    thread = threading.Thread(target=run, name="mosquitto-waker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        with contextlib.suppress(OSError):
            sock.sendall(codec.disconnect())
        sock.close()


def main(argv: list[str]) -> int:
    use_waker = "--no-waker" not in argv
    argv = [a for a in argv if a != "--no-waker"]
    binary = os.environ.get("MOSQUITTO", "mosquitto")
    if shutil.which(binary) is None:
        print(f"{binary} not found; set MOSQUITTO=/path/to/mosquitto", file=sys.stderr)
        return 2
    ws_port, mqtt_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="mosquitto-conf-") as tmp:
        conf = write_config(Path(tmp), ws_port, mqtt_port)
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        log: list[str] = []

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                log.append(line)
                if " running" in line:
                    ready.set()
            ready.set()  # end of output: woken up either way

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            if not ready.wait(START_TIMEOUT) or proc.poll() is not None:
                print("mosquitto did not start:\n" + "".join(log), file=sys.stderr)
                return 2
            env = dict(os.environ)
            env.update(
                WSBROKER_URL=f"ws://127.0.0.1:{ws_port}",
                WSBROKER_TARGET="mosquitto",
                WSBROKER_SYS_INTERVAL=str(SYS_INTERVAL),
                WSBROKER_MQTT_MAX_KEEPALIVE=str(MAX_KEEPALIVE),
                WSBROKER_MQTT_MAX_QUEUED=str(MAX_QUEUED),
            )
            cmd = [sys.executable, "-m", "pytest", "conformance/mqtt", *argv]
            with waker(mqtt_port) if use_waker else contextlib.nullcontext():
                return subprocess.call(cmd, cwd=REPO_ROOT, env=env)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            reader.join(5)
            if proc.stderr is not None:
                proc.stderr.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
