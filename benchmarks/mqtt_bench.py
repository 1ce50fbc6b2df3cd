"""MQTT over WebSocket, wsbroker and Mosquitto side by side, on this machine.

    python -m benchmarks.mqtt_bench --target both --scenario all
    python -m benchmarks.mqtt_bench --target mosquitto --scenario fanout --runs 1

Each run starts a fresh broker on a free port on 127.0.0.1, pinned to core 0 with
``taskset -c 0``; the load generator pins itself to core 1. Scenarios (64-byte payloads):

  fanout   1 publisher -> 100 subscribers on one topic, QoS 0: delivered msg/s
  fanin    100 publishers on sensors/<i>/temp -> 1 subscriber on sensors/+/temp: delivered msg/s
  qos1     1 publisher at QoS 1 -> 100 subscribers at QoS 1 that PUBACK: delivered msg/s
  latency  1 publisher at 20 msg/s -> 100 subscribers: end-to-end p50 / p99 in ms
  idle     5,000 connected MQTT clients doing nothing: broker RSS growth per connection, KiB
  connect  2,000 x (TCP, WebSocket upgrade, CONNECT/CONNACK, close), 100 at a time: conn/s

Throughput scenarios never let publishers run more than a window of deliveries ahead of the
subscribers, so they measure delivery, not buffering. Every run is bounded in time and count.
Each scenario runs ``--runs`` times per target (alternating targets); the table shows medians
and the ratio wsbroker / mosquitto with the direction that is better.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.loadgen import OP_BINARY, Counters, cpu_seconds, masked_frame
from benchmarks.mqtt_load import (
    Keepalive,
    MqttClient,
    MqttPublisher,
    close_all,
    open_clients,
    publish_frames,
    publish_packet,
)
from conformance.server import REPO_ROOT, free_port

HOST = "127.0.0.1"
TARGETS = ("mosquitto", "wsbroker")
SCENARIOS = ("fanout", "fanin", "qos1", "latency", "idle", "connect")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Mosquitto 2.0.11 (Debian) exits with "Unable to start any listening sockets" when its only
# listener is a websockets one, so it also gets a plain MQTT listener that nobody uses;
# socket_domain ipv4 keeps libwebsockets from binding [::] instead of 127.0.0.1.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
protocol websockets
socket_domain ipv4
listener {spare} 127.0.0.1
protocol mqtt
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 1000
log_type error
log_dest stderr
"""


# --- brokers ---------------------------------------------------------------------------------


@dataclass
class Broker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid


def _wait_port(proc: subprocess.Popen[bytes], port: int, log: Path, within: float) -> None:
    """Connect attempts until the port answers, the process dies or the deadline passes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"broker did not listen on {port}: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def launch(name: str, opts: argparse.Namespace) -> Iterator[Broker]:
    """Start one broker (pinned to core 0 unless --no-pin), yield it, SIGTERM it after."""
    pin = [] if opts.no_pin else ["taskset", "-c", "0"]
    with tempfile.TemporaryDirectory(prefix=f"mqtt-bench-{name}-") as tmp:
        port = free_port()
        if name == "mosquitto":
            conf = Path(tmp, "mosquitto.conf")
            conf.write_text(MOSQUITTO_CONF.format(port=port, spare=free_port()))
            cmd = [*pin, opts.mosquitto, "-c", str(conf)]
        else:
            cmd = [*pin, sys.executable, "-m", "broker", "serve", "--host", HOST]
            cmd += ["--port", str(port), "--log-level", "warning", "--data-dir", f"{tmp}/data"]
            cmd += opts.broker_arg
        log = Path(tmp, "stderr.log")
        with log.open("wb") as err:
            # The broker inherits this process's raised RLIMIT_NOFILE (see raise_nofile).
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        try:
            _wait_port(proc, port, log, START_TIMEOUT)
            yield Broker(name, port, proc)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def profiled(b: Broker, opts: argparse.Namespace, name: str) -> Iterator[None]:
    """With --profile, sample wsbroker with py-spy for the whole scenario run."""
    if opts.profile is None or b.name != "wsbroker":
        yield
        return
    opts.profile.mkdir(parents=True, exist_ok=True)
    out = opts.profile / f"{name}.txt"
    cmd = ["py-spy", "record", "-r", "250", "--format", "raw", "-o", str(out), "--pid"]
    spy = subprocess.Popen(
        [*cmd, str(b.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(STOP_TIMEOUT)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- throughput ------------------------------------------------------------------------------


class Flow:
    """Publishers may run at most ``window`` deliveries ahead of the subscribers (and, at
    QoS 1, ``inflight`` unacknowledged PUBLISHes each)."""

    def __init__(self, counters: Counters, fan: int, window: int, inflight: int, most: int) -> None:
        self.counters = counters
        self.fan = fan  # deliveries per published message
        self.window = window
        self.inflight = inflight
        self.most = most
        self.presumed_dropped = 0
        self.stalled = False
        self.publishers: list[MqttPublisher] = []

    def lag(self) -> int:
        c = self.counters
        return c.published * self.fan - c.received - self.presumed_dropped

    def may_send(self, pub: MqttPublisher) -> bool:
        if self.counters.published >= self.most:
            return False
        if self.inflight and pub.published - pub.acked >= self.inflight:
            return False  # its own PUBACKs kick it again
        if self.lag() >= self.window:
            self.stalled = True
            return False
        return True

    def wake(self) -> None:
        """On every read of a subscriber: restart held-back publishers once half the window
        is free (one flag test when nothing is held back: this is the hot path)."""
        if self.stalled and self.lag() < self.window // 2:
            self.stalled = False
            for p in self.publishers:
                if p.blocked:
                    p.kick()

    async def watch(self) -> None:
        """If the window stays full with no delivery for 1 s, count what is missing as dropped
        by the broker (QoS 0 may be dropped for slow consumers) and go on."""
        last, still = -1, 0
        while True:
            await asyncio.sleep(0.25)
            if self.counters.received == last and self.stalled:
                still += 1
                if still >= 4:
                    self.presumed_dropped += max(self.lag(), 0)
                    still = 0
                    self.wake()
            else:
                still = 0
            last = self.counters.received


async def throughput(
    b: Broker,
    o: argparse.Namespace,
    *,
    topics: list[str],
    filters: list[str],
    qos: int,
    window: int,
    batch: int,
    batches_per_pump: int,
) -> dict[str, Any]:
    """Subscribers on ``filters`` (one each), publishers on ``topics`` (one each)."""
    counters = Counters()
    fan = len(filters) if len(topics) == 1 else 1
    flow = Flow(counters, fan, window, o.inflight if qos else 0, o.max_messages)
    subs_todo = iter(filters)
    subs = await open_clients(
        lambda: MqttClient(
            HOST, b.port, counters, subscribe=(next(subs_todo), qos), on_receive=flow.wake
        ),
        len(filters),
        HOST,
        b.port,
        concurrency=o.concurrency,
    )
    payload = os.urandom(o.size)
    rings = iter([publish_frames(t, payload, qos, 65535 if qos else batch) for t in topics])
    pubs = await open_clients(
        lambda: MqttPublisher(
            HOST,
            b.port,
            counters,
            next(rings),
            65535 if qos else batch,
            batch=batch,
            may_send=flow.may_send,
            batches_per_pump=batches_per_pump,
        ),
        len(topics),
        HOST,
        b.port,
        concurrency=o.concurrency,
    )
    flow.publishers = [p for p in pubs if isinstance(p, MqttPublisher)]
    everyone = [*subs, *pubs]
    ka = Keepalive(everyone)
    watcher = asyncio.create_task(flow.watch())
    try:
        for p in flow.publishers:
            p.start()
        await asyncio.sleep(o.warmup)
        t0, r0, p0, d0 = time.monotonic(), counters.received, counters.published, counters.closed
        b0, s0 = cpu_seconds(b.pid), cpu_seconds()
        await asyncio.sleep(o.seconds)
        t1, r1, p1, d1 = time.monotonic(), counters.received, counters.published, counters.closed
        b1, s1 = cpu_seconds(b.pid), cpu_seconds()
        for p in flow.publishers:
            p.stop()
    finally:
        ka.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await close_all(everyone)
    dt = t1 - t0
    counts = [s.received for s in subs]
    return {
        "delivered_per_s": (r1 - r0) / dt,
        "published_per_s": (p1 - p0) / dt,
        "broker_cpu_pct": 100 * (b1 - b0) / dt,
        "loadgen_cpu_pct": 100 * (s1 - s0) / dt,
        "presumed_dropped": flow.presumed_dropped,
        "connections_lost": d1 - d0,
        "subscriber_min_max": [min(counts), max(counts)],
    }


async def fanout(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    n = o.subscribers
    return await throughput(
        b,
        o,
        topics=["bench/fanout"],
        filters=["bench/fanout"] * n,
        qos=0,
        window=o.window * n,
        batch=64,
        batches_per_pump=64,
    )


async def fanin(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    topics = [f"sensors/{i}/temp" for i in range(o.publishers)]
    return await throughput(
        b,
        o,
        topics=topics,
        filters=["sensors/+/temp"],
        qos=0,
        window=o.fanin_window,
        batch=16,
        batches_per_pump=1,
    )


async def qos1(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    n = o.subscribers
    return await throughput(
        b,
        o,
        topics=["bench/qos1"],
        filters=["bench/qos1"] * n,
        qos=1,
        window=o.window * n,
        batch=16,
        batches_per_pump=64,
    )


# --- latency, memory, connection set-up ------------------------------------------------------


async def latency(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    """One publisher paced by the loop's clock (call_at on a fixed schedule, no drift)."""
    counters = Counters()
    topic = "bench/latency"
    warm = round(o.rate * o.warmup)
    total = warm + round(o.rate * o.latency_seconds)
    all_in = asyncio.Event()  # every message reached every subscriber
    need = total * o.subscribers

    def arrived() -> None:
        if counters.received >= need:
            all_in.set()

    subs = await open_clients(
        lambda: MqttClient(HOST, b.port, counters, subscribe=(topic, 0), on_receive=arrived),
        o.subscribers,
        HOST,
        b.port,
        concurrency=o.concurrency,
    )
    (pub,) = await open_clients(lambda: MqttClient(HOST, b.port, counters), 1, HOST, b.port)
    everyone = [*subs, pub]
    ka = Keepalive(everyone)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    samples: list[int] = []
    packet = bytearray(publish_packet(topic, os.urandom(max(o.size, 8))))
    at = len(packet) - max(o.size, 8)  # the payload's first 8 bytes: the time stamp
    start = loop.time() + 0.1

    def tick(k: int) -> None:
        if k == warm:
            for s in subs:
                s.stamps = samples
        if k >= total or pub.transport is None or pub.transport.is_closing():
            if not done.done():
                done.set_result(None)
            return
        packet[at : at + 8] = time.perf_counter_ns().to_bytes(8, "big")
        pub.transport.write(masked_frame(OP_BINARY, bytes(packet)))
        counters.published += 1
        loop.call_at(start + (k + 1) / o.rate, tick, k + 1)

    s0, b0, t0 = cpu_seconds(), cpu_seconds(b.pid), time.monotonic()
    loop.call_at(start, tick, 0)
    try:
        await asyncio.wait_for(done, o.warmup + o.latency_seconds + 10)
        expected = (total - warm) * len(subs)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 2)
    finally:
        for s in subs:
            s.stamps = None
        dt = time.monotonic() - t0
        s1, b1 = cpu_seconds(), cpu_seconds(b.pid)
        ka.cancel()
        await close_all(everyone)
    if not samples:
        raise RuntimeError("no message was delivered")
    ms = sorted(x / 1e6 for x in samples)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, max(0, round(q * len(ms)) - 1))]

    return {
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": ms[-1],
        "samples": len(ms),
        "expected": expected,
        "broker_cpu_pct": 100 * (b1 - b0) / dt,
        "loadgen_cpu_pct": 100 * (s1 - s0) / dt,
    }


async def idle(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    counters = Counters()
    # One client first, so one-time costs (lazy imports, first allocations) are not counted.
    first = await open_clients(lambda: MqttClient(HOST, b.port, Counters()), 1, HOST, b.port)
    await close_all(first)
    await asyncio.sleep(0.5)
    before = rss_kib(b.pid)
    t0, s0 = time.monotonic(), cpu_seconds()
    clients = await open_clients(
        lambda: MqttClient(HOST, b.port, counters),
        o.idle_connections,
        HOST,
        b.port,
        concurrency=o.concurrency,
        within=180,
    )
    setup = time.monotonic() - t0
    s1 = cpu_seconds()
    ka = Keepalive(clients)
    try:
        await asyncio.sleep(1.0)
        after = rss_kib(b.pid)
        lost = counters.closed
    finally:
        ka.cancel()
        await close_all(clients, within=30)
    return {
        "kib_per_conn": (after - before) / len(clients),
        "rss_before_mib": before / 1024,
        "rss_after_mib": after / 1024,
        "connections": len(clients),
        "lost_while_idle": lost,
        "setup_s": setup,
        "loadgen_cpu_pct": 100 * (s1 - s0) / setup,
    }


async def connect(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    counters = Counters()
    loop = asyncio.get_running_loop()
    todo = iter(range(o.connect_count))
    opened: list[MqttClient] = []
    failures: list[str] = []

    async def worker() -> None:
        for _ in todo:
            try:
                _, c = await loop.create_connection(
                    lambda: MqttClient(HOST, b.port, counters), HOST, b.port
                )
                opened.append(c)
                await c.ready
            except (OSError, ConnectionError) as exc:
                failures.append(repr(exc))
                if len(failures) > 50:
                    raise
                continue
            c.disconnect()

    t0, s0, b0 = time.monotonic(), cpu_seconds(), cpu_seconds(b.pid)
    async with asyncio.timeout(120), asyncio.TaskGroup() as tg:
        for _ in range(o.concurrency):
            tg.create_task(worker())
    dt = time.monotonic() - t0
    s1, b1 = cpu_seconds(), cpu_seconds(b.pid)
    await close_all(opened)
    ok = o.connect_count - len(failures)
    return {
        "conn_per_s": ok / dt,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "broker_cpu_pct": 100 * (b1 - b0) / dt,
        "loadgen_cpu_pct": 100 * (s1 - s0) / dt,
    }


async def probe(b: Broker) -> str | None:
    """None when the broker answers CONNECT over ws://.../mqtt with a CONNACK, else why not."""
    try:
        clients = await open_clients(
            lambda: MqttClient(HOST, b.port, Counters()), 1, HOST, b.port, within=5
        )
    except (OSError, ConnectionError, TimeoutError) as exc:
        return repr(exc)
    await close_all(clients)
    return None


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    scenario: str
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None  # the ratio wsbroker / mosquitto we aim for


METRICS = (
    Metric("fanout", "delivered_per_s", "fan-out 1->100, QoS 0", "msg/s", True, 1.5),
    Metric("fanin", "delivered_per_s", "fan-in 100->1, QoS 0", "msg/s", True, 1.0),
    Metric("qos1", "delivered_per_s", "fan-out 1->100, QoS 1", "msg/s", True, 1.0),
    Metric("latency", "p50_ms", "latency p50, 20 msg/s -> 100", "ms", False, None),
    Metric("latency", "p99_ms", "latency p99, 20 msg/s -> 100", "ms", False, 1.0),
    Metric("idle", "kib_per_conn", "memory per idle connection", "KiB", False, 1.7),
    Metric("connect", "conn_per_s", "connection set-up", "conn/s", True, 1.0),
)

Scenario = Callable[[Broker, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]
SCENARIO_FUNCS: dict[str, Scenario] = {
    "fanout": fanout,
    "fanin": fanin,
    "qos1": qos1,
    "latency": latency,
    "idle": idle,
    "connect": connect,
}


@dataclass
class Results:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, scenario: str, target: str, figures: dict[str, Any]) -> None:
        self.runs.setdefault((scenario, target), []).append(figures)

    def median(self, scenario: str, target: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get((scenario, target), []) if key in r]
        return statistics.median(values) if values else None


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "KiB"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(results: Results, scenarios: list[str]) -> str:
    rows = [
        "| metric | unit | mosquitto | wsbroker | wsbroker / mosquitto | better | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in METRICS:
        if m.scenario not in scenarios:
            continue
        mq = results.median(m.scenario, "mosquitto", m.key)
        ws = results.median(m.scenario, "wsbroker", m.key)
        ratio = ws / mq if ws is not None and mq else None
        better = "higher" if m.higher_is_better else "lower"
        target = "-" if m.target is None else ("≥ " if m.higher_is_better else "≤ ") + f"{m.target}"
        met = "-"
        if ratio is not None and m.target is not None:
            ok = ratio >= m.target if m.higher_is_better else ratio <= m.target
            met = "yes" if ok else "NO"
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        rows.append(
            f"| {m.label} | {m.unit} | {_fmt(mq, m.unit)} | {_fmt(ws, m.unit)} | {shown} "
            f"| {better} | {target} | {met} |"
        )
    return "\n".join(rows)


def describe(figures: dict[str, Any]) -> str:
    parts = []
    for k, v in figures.items():
        shown = f"{v:,.2f}" if isinstance(v, float) else str(v)
        parts.append(f"{k}={shown}")
    return " ".join(parts)


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--target", choices=[*TARGETS, "both"], default="both")
    p.add_argument(
        "--scenario", choices=[*SCENARIOS, "all"], action="append", help="repeatable; default: all"
    )
    p.add_argument("--runs", type=int, default=3, help="runs per scenario per target (median)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time, throughput")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="measured, latency")
    p.add_argument("--rate", type=float, default=20.0, help="latency: messages per second")
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--publishers", type=int, default=100, help="fan-in publishers")
    p.add_argument("--size", type=int, default=64, help="payload bytes")
    p.add_argument("--window", type=int, default=256, help="deliveries in flight per subscriber")
    p.add_argument(
        "--fanin-window",
        type=int,
        default=900,
        help="fan-in deliveries in flight (stay under Mosquitto's max_queued_messages 1000)",
    )
    p.add_argument("--inflight", type=int, default=256, help="QoS 1 unacked PUBLISHes")
    p.add_argument("--max-messages", type=int, default=50_000_000, help="publish at most this")
    p.add_argument("--idle-connections", type=int, default=5000)
    p.add_argument("--connect-count", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=100, help="connections in set-up at once")
    p.add_argument("--mosquitto", default="mosquitto", help="the mosquitto binary")
    p.add_argument("--broker-arg", action="append", default=[], help="extra `broker serve` arg")
    p.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    p.add_argument("--json", type=Path, help="also write every run's figures to this file")
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy each wsbroker run into this folder (raw collapsed stacks, 250 Hz)",
    )
    a = p.parse_args(argv)
    a.scenarios = list(SCENARIOS) if not a.scenario or "all" in a.scenario else a.scenario
    if not (
        1 <= a.runs <= 20
        and 0 < a.seconds <= 120
        and 0 < a.latency_seconds <= 50
        and 0 < a.rate <= 1000
        and 0 <= a.warmup <= 10
        and 1 <= a.subscribers <= 10_000
        and 1 <= a.publishers <= 10_000
        and 8 <= a.size <= 65_536
        and 1 <= a.idle_connections <= 50_000
        and 1 <= a.connect_count <= 20_000
        and 1 <= a.concurrency <= 1000
    ):
        p.error("an argument is out of range (see --help)")
    return a


def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    targets = list(TARGETS) if o.target == "both" else [o.target]
    if "mosquitto" in targets and shutil.which(o.mosquitto) is None:
        raise SystemExit(f"no {o.mosquitto!r} on PATH")
    nofile = raise_nofile()
    if not o.no_pin:
        if not {0, 1} <= os.sched_getaffinity(0):
            raise SystemExit("pinning needs cores 0 and 1 (or give --no-pin)")
        os.sched_setaffinity(0, {1})
    try:
        import uvloop
    except ImportError:
        runner = asyncio.Runner()
        loop_name = "asyncio"
    else:
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        loop_name = "uvloop"
    print(
        f"load generator: {loop_name}, pid {os.getpid()}, cores {sorted(os.sched_getaffinity(0))}, "
        f"RLIMIT_NOFILE {nofile}; brokers: {'taskset -c 0' if not o.no_pin else 'unpinned'}",
        flush=True,
    )
    results = Results()
    with runner:
        if "wsbroker" in targets:
            with launch("wsbroker", o) as b:
                why = runner.run(probe(b))
            if why is not None:
                print(f"wsbroker does not answer MQTT over WebSocket yet ({why}); skipped")
                targets.remove("wsbroker")
        for scenario in o.scenarios:
            for run in range(1, o.runs + 1):
                for target in targets if run % 2 else targets[::-1]:
                    with launch(target, o) as b, profiled(b, o, f"{scenario}-{run}"):
                        gc.collect()
                        gc.disable()
                        try:
                            figures = runner.run(SCENARIO_FUNCS[scenario](b, o))
                        finally:
                            gc.enable()
                    results.add(scenario, target, figures)
                    print(f"{scenario:8} {target:10} run {run}: {describe(figures)}", flush=True)
    print()
    print(table(results, o.scenarios))
    if o.json:
        o.json.write_text(
            json.dumps(
                {f"{s}/{t}": runs for (s, t), runs in results.runs.items()}, indent=1, default=str
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
