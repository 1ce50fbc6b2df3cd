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
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.loadgen import OP_BINARY, Counters, close_all, cpu_seconds, masked_frame
from benchmarks.mqtt_load import (
    Keepalive,
    MqttClient,
    MqttPublisher,
    StampedClient,
    publish_frames,
    publish_packet,
)
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
    serve,
    throughput_figures,
)
from conformance.server import free_port

TARGETS = ("mosquitto", "wsbroker")
SCENARIOS = ("fanout", "fanin", "qos1", "latency", "idle", "connect")

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


@contextlib.contextmanager
def launch_mosquitto(opts: argparse.Namespace) -> Iterator[Broker]:
    """Mosquitto on a free port (and a spare one), pinned to core 0 unless --no-pin."""
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-mosquitto-") as tmp:
        port = free_port()
        conf = Path(tmp, "mosquitto.conf")
        conf.write_text(MOSQUITTO_CONF.format(port=port, spare=free_port()))
        with serve("mosquitto", [*pinned(opts), opts.mosquitto, "-c", str(conf)], port, tmp) as b:
            yield b


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- throughput ------------------------------------------------------------------------------


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
    flow = Window(counters, fan, window, o.inflight if qos else 0, o.max_messages)
    subs_todo = iter(filters)
    subs = await open_ready(
        lambda: MqttClient(
            HOST, b.port, counters, subscribe=(next(subs_todo), qos), on_receive=flow.wake
        ),
        len(filters),
        b,
        concurrency=o.concurrency,
    )
    payload = os.urandom(o.size)
    rings = iter([publish_frames(t, payload, qos, 65535 if qos else batch) for t in topics])
    pubs = await open_ready(
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
        b,
        concurrency=o.concurrency,
    )
    flow.publishers = pubs
    everyone = [*subs, *pubs]
    ka = Keepalive(everyone)
    try:
        run = await measure(b, o, flow, subs)
    finally:
        ka.cancel()
        await close_all(everyone)
    return throughput_figures(run, flow, subs)


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

    subs = await open_ready(
        lambda: StampedClient(HOST, b.port, counters, subscribe=(topic, 0), on_receive=arrived),
        o.subscribers,
        b,
        concurrency=o.concurrency,
    )
    (pub,) = await open_ready(lambda: MqttClient(HOST, b.port, counters), 1, b)
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
    first = await open_ready(lambda: MqttClient(HOST, b.port, Counters()), 1, b)
    await close_all(first)
    await asyncio.sleep(0.5)
    before = rss_kib(b.pid)
    t0, s0 = time.monotonic(), cpu_seconds()
    clients = await open_ready(
        lambda: MqttClient(HOST, b.port, counters),
        o.idle_connections,
        b,
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
            c.close()

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
        clients = await open_ready(lambda: MqttClient(HOST, b.port, Counters()), 1, b, within=5)
    except (OSError, ConnectionError, TimeoutError) as exc:
        return f"wsbroker does not answer MQTT over WebSocket yet ({exc!r}); skipped"
    await close_all(clients)
    return None


# --- the table -------------------------------------------------------------------------------


METRICS = (
    Metric("fanout", "delivered_per_s", "fan-out 1->100, QoS 0", "msg/s", True, 1.5),
    Metric("fanin", "delivered_per_s", "fan-in 100->1, QoS 0", "msg/s", True, 1.0),
    Metric("qos1", "delivered_per_s", "fan-out 1->100, QoS 1", "msg/s", True, 1.0),
    Metric("latency", "p50_ms", "latency p50, 20 msg/s -> 100", "ms", False, None),
    Metric("latency", "p99_ms", "latency p99, 20 msg/s -> 100", "ms", False, 1.0),
    Metric("idle", "kib_per_conn", "memory per idle connection", "KiB", False, 1.7),
    Metric("connect", "conn_per_s", "connection set-up", "conn/s", True, 1.0),
)

SCENARIO_FUNCS: dict[str, Scenario] = {
    "fanout": fanout,
    "fanin": fanin,
    "qos1": qos1,
    "latency": latency,
    "idle": idle,
    "connect": connect,
}


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_run_args(p, TARGETS, SCENARIOS)
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
    add_broker_args(p)
    return parse(
        p,
        argv,
        TARGETS,
        SCENARIOS,
        lambda a: (
            0 < a.latency_seconds <= 50
            and 0 < a.rate <= 1000
            and 1 <= a.subscribers <= 10_000
            and 1 <= a.publishers <= 10_000
            and 1 <= a.idle_connections <= 50_000
            and 1 <= a.connect_count <= 20_000
        ),
    )


def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    if "mosquitto" in o.targets and shutil.which(o.mosquitto) is None:
        raise SystemExit(f"no {o.mosquitto!r} on PATH")
    results = run_all(o, launch_mosquitto, SCENARIO_FUNCS, probe=probe)
    print(ratio_table(results, METRICS, o.scenarios, peer="mosquitto"))
    if o.json:
        results.write_json(o.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
