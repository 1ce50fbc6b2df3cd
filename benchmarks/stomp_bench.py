"""STOMP over WebSocket, wsbroker and RabbitMQ Web-STOMP side by side, on this machine.

    python -m benchmarks.stomp_bench --target both --scenario all
    python -m benchmarks.stomp_bench --target rabbitmq --scenario queue --runs 1

Each run starts a fresh broker on free ports on 127.0.0.1, pinned to core 0 with
``taskset -c 0``, and stops it after; the load generator pins itself to core 1. Scenarios
(STOMP 1.2, 64-byte base64 bodies, one STOMP frame per text WebSocket frame):

  fanout  1 publisher SENDing to a /topic -> 100 subscribers, ack:auto: delivered msg/s
  queue   4 publishers SENDing to /queue/bench -> 10 consumers, ack:client-individual,
          prefetch-count 100, each MESSAGE ACKed: acked msg/s

Publishers never run more than a window of deliveries ahead of the subscribers, so the figures
are delivery, not buffering. Each scenario runs ``--runs`` times per target (alternating which
goes first); the table shows medians and the ratio wsbroker / rabbitmq.

RabbitMQ: a throw-away node per run (its own name, config, database, logs, Erlang cookie and
epmd, all in a temporary directory), rabbitmq_web_stomp on path /ws, topics with '.' separators.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.loadgen import Counters, close_all
from benchmarks.side_by_side import (
    HOST,
    Broker,
    Metric,
    Scenario,
    Window,
    add_broker_args,
    add_run_args,
    measure,
    open_ready,
    parse,
    pinned,
    ratio_table,
    run_all,
    stop,
    throughput_figures,
    wait_port,
)
from benchmarks.stomp_load import StompClient, StompPublisher, Subscribe, send_frame
from conformance.server import free_port

TARGETS = ("rabbitmq", "wsbroker")
SCENARIOS = ("fanout", "queue")
RABBITMQ_START_TIMEOUT = 120.0  # a cold node on one busy core takes 10-20 s
RABBITMQ_STOP_TIMEOUT = 60.0

# The STOMP TCP listener (a dependency of Web-STOMP) is off: its default port 61613 may be taken.
RABBITMQ_CONF = """\
listeners.tcp.1 = 127.0.0.1:{amqp}
stomp.listeners.tcp = none
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = {port}
log.console = false
log.file.level = warning
"""


@dataclass(frozen=True)
class Dialect:
    """Where a target serves STOMP and how it spells the benchmark's destinations."""

    path: str
    vhost: str  # the CONNECT `host` header: RabbitMQ's virtual host
    topic: str
    queue: str


DIALECTS = {
    "wsbroker": Dialect("/stomp", "/", "/topic/bench/fanout", "/queue/bench"),
    "rabbitmq": Dialect("/ws", "/", "/topic/bench.fanout", "/queue/bench"),
}


# --- brokers ---------------------------------------------------------------------------------


@dataclass
class RabbitNode(Broker):
    """A RabbitMQ node: ``proc`` is the rabbitmq-server script, ``pid`` its Erlang VM."""

    beam: int = 0

    @property
    def pid(self) -> int:
        return self.beam


def _beam_pid(pid_file: Path, within: float) -> int | None:
    """The Erlang VM's pid from the node's pid file, once it names a running VM."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if Path(f"/proc/{pid}/comm").read_text().startswith("beam"):
                return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@contextlib.contextmanager
def launch_rabbitmq(opts: argparse.Namespace) -> Iterator[RabbitNode]:
    """A fresh node of our own, pinned to core 0, stopped (and its epmd with it) after."""
    pin = pinned(opts)
    with tempfile.TemporaryDirectory(prefix="stomp-bench-rabbitmq-") as tmp:
        work = Path(tmp)
        port, amqp, dist, epmd_port = free_port(), free_port(), free_port(), free_port()
        node = f"bench-{port}@localhost"
        (work / "rabbitmq.conf").write_text(RABBITMQ_CONF.format(amqp=amqp, port=port))
        (work / "enabled_plugins").write_text("[rabbitmq_web_stomp].\n")
        (work / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        env = {
            **os.environ,
            "HOME": tmp,  # the Erlang cookie goes here, not in the real home
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(amqp),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_CONFIG_FILE": str(work / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(work / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(work / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(work / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(work / "mnesia"),
            "RABBITMQ_LOG_BASE": str(work / "log"),
            "RABBITMQ_PID_FILE": str(work / "beam.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": opts.erl_args,
            # A private epmd, so the shared one (other nodes may use it) is left alone.
            "ERL_EPMD_PORT": str(epmd_port),
        }
        log = work / "server.log"
        with log.open("wb") as out:
            epmd = subprocess.Popen(
                [*pin, "epmd", "-port", str(epmd_port), "-address", HOST],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            try:
                wait_port(epmd, epmd_port, log, 10)
                # The rabbitmq-server script, not Debian's /usr/sbin wrapper, which su's to the
                # rabbitmq user; it forwards SIGTERM to the VM and waits for it.
                proc = subprocess.Popen(
                    [*pin, opts.rabbitmq_server],
                    cwd=tmp,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                )
                pid_file = work / "beam.pid"
                beam = None
                try:
                    wait_port(proc, port, log, RABBITMQ_START_TIMEOUT)
                    beam = _beam_pid(pid_file, 10)
                    if beam is None:
                        raise RuntimeError(f"no Erlang VM pid in {pid_file}")
                    yield RabbitNode("rabbitmq", port, proc, beam)
                finally:
                    beam = beam or _beam_pid(pid_file, 0)
                    stop(proc, RABBITMQ_STOP_TIMEOUT)
                    if beam is not None and not _gone(beam):
                        os.kill(beam, signal.SIGKILL)  # the script was killed, not the VM
            finally:
                stop(epmd)


# --- scenarios -------------------------------------------------------------------------------


def payload(size: int) -> bytes:
    """Random base64 text: valid UTF-8 (text frames both ways) and no NUL byte."""
    return base64.b64encode(os.urandom(size))[:size]


async def throughput(
    b: Broker,
    o: argparse.Namespace,
    *,
    subscribe: Subscribe,
    subscribers: int,
    destination: str,
    publishers: int,
    fan: int,
    window: int,
    batch: int,
    batches_per_pump: int,
) -> dict[str, Any]:
    """``subscribers`` on one SUBSCRIBE each, then ``publishers`` SENDing to ``destination``."""
    d: Dialect = o.dialects[b.name]
    counters = Counters()
    flow = Window(counters, fan, window, 0, o.max_messages)
    subs = await open_ready(
        lambda: StompClient(
            HOST,
            b.port,
            counters,
            path=d.path,
            vhost=d.vhost,
            subscribe=subscribe,
            on_receive=flow.wake,
        ),
        subscribers,
        b,
        concurrency=o.concurrency,
    )
    send = send_frame(destination, payload(o.size))
    pubs = await open_ready(
        lambda: StompPublisher(
            HOST,
            b.port,
            counters,
            path=d.path,
            vhost=d.vhost,
            send=send,
            batch=batch,
            may_send=flow.may_send,
            batches_per_pump=batches_per_pump,
        ),
        publishers,
        b,
        concurrency=o.concurrency,
    )
    flow.publishers = pubs
    everyone = [*subs, *pubs]
    try:
        run = await measure(b, o, flow, subs)
    finally:
        await close_all(everyone)
    errors = [e for c in everyone for e in c.errors]
    more = {"errors": len(errors), "first_error": errors[0] if errors else None}
    return throughput_figures(run, flow, subs, acked=True, cost=True, more=more)


async def fanout(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    d: Dialect = o.dialects[b.name]
    n = o.subscribers
    return await throughput(
        b,
        o,
        subscribe=Subscribe(d.topic),
        subscribers=n,
        destination=d.topic,
        publishers=1,
        fan=n,
        window=o.window * n,
        batch=64,
        batches_per_pump=64,
    )


async def queue(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    d: Dialect = o.dialects[b.name]
    return await throughput(
        b,
        o,
        subscribe=Subscribe(d.queue, "client-individual", o.prefetch),
        subscribers=o.consumers,
        destination=d.queue,
        publishers=o.queue_publishers,
        fan=1,
        window=o.queue_window,
        batch=16,
        batches_per_pump=4,
    )


SCENARIO_FUNCS: dict[str, Scenario] = {"fanout": fanout, "queue": queue}

METRICS = (
    Metric(
        "fanout", "delivered_per_s", "STOMP fan-out 1->100, /topic, ack:auto", "msg/s", True, None
    ),
    Metric("fanout", "broker_us_per_msg", "  broker CPU per delivery", "µs", False, None),
    Metric("fanout", "broker_cpu_pct", "  broker CPU", "%", False, None),
    Metric("fanout", "loadgen_cpu_pct", "  load generator CPU", "%", False, None),
    Metric("queue", "acked_per_s", "STOMP /queue 4->10, client-individual", "msg/s", True, None),
    Metric("queue", "broker_us_per_msg", "  broker CPU per message", "µs", False, None),
    Metric("queue", "broker_cpu_pct", "  broker CPU", "%", False, None),
    Metric("queue", "loadgen_cpu_pct", "  load generator CPU", "%", False, None),
)


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_run_args(p, TARGETS, SCENARIOS)
    p.add_argument("--seconds", type=float, default=10.0, help="measured time")
    p.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds before measuring (RabbitMQ ramps up in ~1 s)",
    )
    p.add_argument("--subscribers", type=int, default=100, help="fan-out subscribers")
    p.add_argument("--window", type=int, default=256, help="fan-out deliveries per subscriber")
    p.add_argument("--consumers", type=int, default=10, help="queue consumers")
    p.add_argument("--queue-publishers", type=int, default=4)
    p.add_argument("--prefetch", type=int, default=100, help="queue consumers' prefetch-count")
    p.add_argument("--queue-window", type=int, default=2000, help="queue messages in flight")
    p.add_argument("--size", type=int, default=64, help="body bytes")
    p.add_argument("--max-messages", type=int, default=50_000_000, help="publish at most this")
    p.add_argument("--concurrency", type=int, default=100, help="connections in set-up at once")
    p.add_argument(
        "--rabbitmq-server",
        default="/usr/lib/rabbitmq/bin/rabbitmq-server",
        help="the rabbitmq-server script (not /usr/sbin's, which runs it as user rabbitmq)",
    )
    p.add_argument(
        "--erl-args",
        default="+S 1:1 +SDcpu 1:1",
        help="RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: one scheduler (and dirty CPU one) per core",
    )
    add_broker_args(p)
    a = parse(
        p,
        argv,
        TARGETS,
        SCENARIOS,
        lambda a: (
            1 <= a.subscribers <= 10_000
            and 1 <= a.consumers <= 1000
            and 1 <= a.queue_publishers <= 1000
            and 1 <= a.prefetch <= 1000
            and 1 <= a.window <= 100_000
            and 1 <= a.queue_window <= 1_000_000
        ),
    )
    a.dialects = DIALECTS
    return a


def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    if "rabbitmq" in o.targets and not (
        os.access(o.rabbitmq_server, os.X_OK) and shutil.which("epmd")
    ):
        raise SystemExit(f"no {o.rabbitmq_server} (or no epmd): apt-get install rabbitmq-server")
    results = run_all(
        o, launch_rabbitmq, SCENARIO_FUNCS, note=f"; RabbitMQ erl args {o.erl_args!r}"
    )
    if len(o.targets) == 2:
        print(ratio_table(results, METRICS, o.scenarios, peer="rabbitmq"))
    if o.json:
        results.write_json(o.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
