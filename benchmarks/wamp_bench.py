"""WAMP over WebSocket, wsbroker and Crossbar.io side by side, on this machine.

    python -m benchmarks.wamp_bench --target both --scenario all
    python -m benchmarks.wamp_bench --target crossbar --scenario rpc --runs 1

Each run starts a fresh broker on free ports on 127.0.0.1, pinned to core 0 with
``taskset -c 0``, and stops it after; the load generator pins itself to core 1. Scenarios
(``wamp.2.json``, realm ``realm1``, path ``/ws``, a 64-byte string argument):

  fanout  1 publisher PUBLISHing to bench.fanout -> 100 subscribers: delivered events/s
  rpc     10 callers, 32 CALLs in flight each -> 1 callee of bench.echo: completed calls/s

The publisher never runs more than a window of deliveries ahead of the subscribers, so fan-out
is delivery, not buffering. Each scenario runs ``--runs`` times per target (alternating which
goes first); the table shows medians and the ratio wsbroker / crossbar.

Crossbar: ``crossbar start`` on a node directory written to a temporary folder (a router worker
with realm1, role anonymous allowed everything, a web transport with a WebSocket service on
/ws). Crossbar runs a controller process and a router worker process (its child, pinned to core 0
too: taskset's affinity is inherited); the broker CPU shown is the sum of both (of every process
in the broker's tree, for either target).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.loadgen import Counters, close_all, cpu_seconds
from benchmarks.side_by_side import (
    HOST,
    STOP_TIMEOUT,
    Broker,
    Metric,
    Sample,
    Scenario,
    Window,
    add_broker_args,
    add_run_args,
    open_ready,
    parse,
    pinned,
    ratio_table,
    run_all,
    throughput_figures,
    wait_port,
)
from benchmarks.wamp_load import (
    SUBSCRIBE,
    WampCallee,
    WampCaller,
    WampClient,
    WampPublisher,
    call_ring,
    publish_batches,
)
from conformance.server import free_port

TARGETS = ("crossbar", "wsbroker")
SCENARIOS = ("fanout", "rpc")
PATH = "/ws"  # wsbroker speaks WAMP on any path given the subprotocol; Crossbar's service path
REALM = "realm1"
TOPIC = "bench.fanout"
PROCEDURE = "bench.echo"
CROSSBAR_START_TIMEOUT = 90.0
CROSSBAR_STOP_TIMEOUT = 20.0


def crossbar_config(port: int) -> dict[str, Any]:
    """A router worker: realm1, anonymous may do everything, WebSocket (JSON) on /ws."""
    anyone = {
        "uri": "",
        "match": "prefix",
        "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
        "disclose": {"caller": False, "publisher": False},
        "cache": True,
    }
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [
                    {"name": REALM, "roles": [{"name": "anonymous", "permissions": [anyone]}]}
                ],
                "transports": [
                    {
                        "type": "web",
                        "endpoint": {"type": "tcp", "interface": HOST, "port": port},
                        "paths": {
                            "/": {
                                "type": "static",
                                "directory": ".",
                                "options": {"enable_directory_listing": False},
                            },
                            PATH.strip("/"): {
                                "type": "websocket",
                                "serializers": ["json", "msgpack"],
                                "options": {"max_message_size": 1048576},
                                "auth": {"anonymous": {"type": "static", "role": "anonymous"}},
                            },
                        },
                    }
                ],
            }
        ],
    }


# --- processes -------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def tree_cpu(pids: Sequence[int]) -> float:
    """utime + stime of these processes, in seconds (0 for one that is gone)."""
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


@contextlib.contextmanager
def launch_crossbar(opts: argparse.Namespace) -> Iterator[Broker]:
    """A fresh Crossbar node of our own, pinned to core 0; SIGTERM after (the controller stops
    its worker), SIGKILL for whatever of its tree is still there after the deadline."""
    with tempfile.TemporaryDirectory(prefix="wamp-bench-crossbar-") as tmp:
        cbdir = Path(tmp, ".crossbar")
        cbdir.mkdir()
        port = free_port()
        (cbdir / "config.json").write_text(json.dumps(crossbar_config(port), indent=1))
        log = Path(tmp, "crossbar.log")
        cmd = [*pinned(opts), opts.crossbar, "start", "--cbdir", str(cbdir)]
        cmd += ["--loglevel", "warn"]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        tree = [proc.pid]
        try:
            wait_port(proc, port, log, CROSSBAR_START_TIMEOUT)
            tree = process_tree(proc.pid)
            yield Broker("crossbar", port, proc)
        finally:
            tree = sorted(set(tree) | set(process_tree(proc.pid)))
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(CROSSBAR_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(STOP_TIMEOUT)
            deadline = time.monotonic() + STOP_TIMEOUT
            while any(Path(f"/proc/{p}").exists() for p in tree) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_all(
                [p for p in tree if p != proc.pid and Path(f"/proc/{p}").exists()], signal.SIGKILL
            )


# --- measuring -------------------------------------------------------------------------------


def take(pids: Sequence[int], c: Counters, subs: Sequence[WampClient]) -> Sample:
    """``side_by_side.Sample.take`` with the broker's CPU summed over its processes."""
    acked = sum(s.acks_sent for s in subs)
    t, broker, own = time.monotonic(), tree_cpu(pids), cpu_seconds()
    return Sample(t, c.received, c.published, acked, c.closed, broker, own)


async def measure(
    b: Broker, o: argparse.Namespace, flow: Window, subs: Sequence[WampClient]
) -> tuple[Sample, Sample]:
    """``side_by_side.measure``, sampling every process of the broker's tree."""
    pids = process_tree(b.pid)
    watcher = asyncio.create_task(flow.watch())
    try:
        for p in flow.publishers:
            p.start()
        await asyncio.sleep(o.warmup)
        before = take(pids, flow.counters, subs)
        await asyncio.sleep(o.seconds)
        after = take(pids, flow.counters, subs)
        for p in flow.publishers:
            p.stop()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return before, after


def argument(size: int) -> str:
    """Random base64 text: a JSON string with nothing to escape."""
    return base64.b64encode(os.urandom(size)).decode()[:size]


def _errors(clients: Sequence[WampClient]) -> dict[str, Any]:
    errors = [e for c in clients for e in c.errors]
    return {"errors": len(errors), "first_error": errors[0] if errors else None}


# --- scenarios -------------------------------------------------------------------------------


async def fanout(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    n = o.subscribers
    counters = Counters()
    flow = Window(counters, n, o.window * n, 0, o.max_messages)
    subs = await open_ready(
        lambda: WampClient(
            HOST,
            b.port,
            counters,
            path=PATH,
            realm=REALM,
            setup=[SUBSCRIBE, 1, {}, TOPIC],
            on_receive=flow.wake,
        ),
        n,
        b,
        concurrency=o.concurrency,
    )
    batch = 64
    batches = publish_batches(TOPIC, argument(o.size), batch)
    pubs = await open_ready(
        lambda: WampPublisher(
            HOST,
            b.port,
            counters,
            path=PATH,
            realm=REALM,
            batches=batches,
            batch=batch,
            may_send=flow.may_send,
        ),
        1,
        b,
    )
    flow.publishers = pubs
    everyone: list[WampClient] = [*subs, *pubs]
    try:
        run = await measure(b, o, flow, subs)
    finally:
        await close_all(everyone)
    return throughput_figures(run, flow, subs, cost=True, more=_errors(everyone))


async def rpc(b: Broker, o: argparse.Namespace) -> dict[str, Any]:
    counters = Counters()
    arg = argument(o.size)
    callees = await open_ready(
        lambda: WampCallee(
            HOST, b.port, counters, path=PATH, realm=REALM, procedure=PROCEDURE, result=arg
        ),
        1,
        b,
    )
    ring = call_ring(PROCEDURE, arg)
    callers = await open_ready(
        lambda: WampCaller(
            HOST, b.port, counters, path=PATH, realm=REALM, ring=ring, inflight=o.inflight
        ),
        o.callers,
        b,
        concurrency=o.concurrency,
    )
    # Callers pace themselves (a CALL per RESULT): the window is never the limit.
    flow = Window(counters, 1, 1 << 62, 0, o.max_messages)
    flow.publishers = callers
    everyone: list[WampClient] = [*callees, *callers]
    try:
        s0, s1 = await measure(b, o, flow, callers)
        invocations, yields = callees[0].received, callees[0].acks_sent
    finally:
        await close_all(everyone)
    dt = s1.at - s0.at
    more = {
        "invocations": invocations,
        "yields": yields,
        "inflight_at_end": s1.published - s1.received,
        **_errors(everyone),
    }
    figures = throughput_figures((s0, s1), flow, callers, cost=True, more=more)
    figures["calls_per_s"] = figures.pop("delivered_per_s")
    figures["calls_sent_per_s"] = figures.pop("published_per_s")
    figures["broker_us_per_call"] = figures.pop("broker_us_per_msg")
    figures["measured_s"] = dt
    return figures


SCENARIO_FUNCS: dict[str, Scenario] = {"fanout": fanout, "rpc": rpc}

METRICS = (
    Metric("fanout", "delivered_per_s", "WAMP fan-out 1->100, events", "msg/s", True, None),
    Metric("fanout", "broker_us_per_msg", "  broker CPU per delivery", "µs", False, None),
    Metric("fanout", "broker_cpu_pct", "  broker CPU", "%", False, None),
    Metric("fanout", "loadgen_cpu_pct", "  load generator CPU", "%", False, None),
    Metric("rpc", "calls_per_s", "WAMP RPC 10 callers -> 1 callee", "calls/s", True, None),
    Metric("rpc", "broker_us_per_call", "  broker CPU per call", "µs", False, None),
    Metric("rpc", "broker_cpu_pct", "  broker CPU", "%", False, None),
    Metric("rpc", "loadgen_cpu_pct", "  load generator CPU", "%", False, None),
)


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_run_args(p, TARGETS, SCENARIOS)
    p.add_argument("--seconds", type=float, default=10.0, help="measured time")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--subscribers", type=int, default=100, help="fan-out subscribers")
    p.add_argument("--window", type=int, default=256, help="fan-out deliveries per subscriber")
    p.add_argument("--callers", type=int, default=10, help="RPC callers")
    p.add_argument("--inflight", type=int, default=32, help="CALLs in flight per caller")
    p.add_argument("--size", type=int, default=64, help="argument (and result) characters")
    p.add_argument("--max-messages", type=int, default=50_000_000, help="publish at most this")
    p.add_argument("--concurrency", type=int, default=100, help="connections in set-up at once")
    p.add_argument(
        "--crossbar", default="/tmp/crossbar-venv/bin/crossbar", help="the crossbar executable"
    )
    add_broker_args(p)
    return parse(
        p,
        argv,
        TARGETS,
        SCENARIOS,
        lambda a: (
            1 <= a.subscribers <= 10_000
            and 1 <= a.window <= 100_000
            and 1 <= a.callers <= 1000
            and 1 <= a.inflight <= 10_000
        ),
    )


def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    if "crossbar" in o.targets and not os.access(o.crossbar, os.X_OK):
        raise SystemExit(
            f"no {o.crossbar}: python3 -m venv /tmp/crossbar-venv && "
            "/tmp/crossbar-venv/bin/pip install crossbar"
        )
    results = run_all(o, launch_crossbar, SCENARIO_FUNCS, note=f"; Crossbar {o.crossbar}")
    if len(o.targets) == 2:
        print(ratio_table(results, METRICS, o.scenarios, peer="crossbar"))
    if o.json:
        results.write_json(o.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
