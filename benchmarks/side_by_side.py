"""What the side-by-side benchmarks share (wsbroker against a peer broker, one protocol each:
``mqtt_bench`` against Mosquitto, ``stomp_bench`` against RabbitMQ); the clients are in
``loadgen`` and the protocol modules (``mqtt_load``, ``stomp_load``).

- brokers: ``Broker``; ``serve`` runs one from a command line until its port answers and stops
  it after (``stop``, ``wait_port``); ``launch_wsbroker``; ``profiled`` (py-spy);
  ``raise_nofile``.
- ``open_ready``: clients to a broker, each one's handshake done.
- ``Window``: keeps publishers at most a window of deliveries ahead of the subscribers;
  ``measure`` and ``throughput_figures``: the measured part of a throughput run and its figures.
- ``Metric``, ``Results``, ``ratio_table``, ``describe``: every run's figures, and the table of
  medians with the ratio wsbroker / peer.
- ``run_all``: pinning, the event loop, a fresh broker for every run in the alternating
  ``run_order``; ``add_run_args``, ``add_broker_args``, ``parse``: the options all runners have.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from benchmarks.loadgen import ClientProtocol, Counters, StreamClient, connect_many, cpu_seconds
from conformance.server import REPO_ROOT, free_port

__all__ = [
    "HOST",
    "STOP_TIMEOUT",
    "Broker",
    "Metric",
    "Results",
    "Sample",
    "Scenario",
    "Window",
    "add_broker_args",
    "add_run_args",
    "describe",
    "launch_wsbroker",
    "load_generator_runner",
    "measure",
    "open_ready",
    "parse",
    "pinned",
    "profiled",
    "raise_nofile",
    "ratio_table",
    "run_all",
    "run_order",
    "serve",
    "stop",
    "throughput_figures",
    "wait_port",
]

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


# --- brokers ---------------------------------------------------------------------------------


@dataclass
class Broker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The process to measure (CPU, memory)."""
        return self.proc.pid


Launch = Callable[[argparse.Namespace], contextlib.AbstractContextManager[Broker]]


def pinned(opts: argparse.Namespace) -> list[str]:
    """The command prefix that pins a broker to core 0, unless --no-pin."""
    return [] if opts.no_pin else ["taskset", "-c", "0"]


def wait_port(proc: subprocess.Popen[bytes], port: int, log: Path, within: float) -> None:
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


def stop(proc: subprocess.Popen[bytes], within: float = STOP_TIMEOUT) -> None:
    """SIGTERM, and SIGKILL if it is still there after ``within`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def serve(name: str, cmd: list[str], port: int, tmp: str) -> Iterator[Broker]:
    """Run ``cmd`` (its stderr to a log in ``tmp``) until ``port`` answers, yield it, stop it."""
    log = Path(tmp, "stderr.log")
    with log.open("wb") as err:
        # The broker inherits this process's raised RLIMIT_NOFILE (see raise_nofile).
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        wait_port(proc, port, log, START_TIMEOUT)
        yield Broker(name, port, proc)
    finally:
        stop(proc)


@contextlib.contextmanager
def launch_wsbroker(opts: argparse.Namespace) -> Iterator[Broker]:
    """``broker serve`` from this checkout on a free port, with the --broker-arg options."""
    with tempfile.TemporaryDirectory(prefix="bench-wsbroker-") as tmp:
        port = free_port()
        cmd = [*pinned(opts), sys.executable, "-m", "broker", "serve", "--host", HOST]
        cmd += ["--port", str(port), "--log-level", "warning", "--data-dir", f"{tmp}/data"]
        cmd += opts.broker_arg
        with serve("wsbroker", cmd, port, tmp) as b:
            yield b


@contextlib.contextmanager
def profiled(b: Broker, opts: argparse.Namespace, name: str) -> Iterator[None]:
    """With --profile, sample wsbroker with py-spy for the whole scenario run."""
    if opts.profile is None or b.name != "wsbroker":
        yield
        return
    opts.profile.mkdir(parents=True, exist_ok=True)
    out = opts.profile / f"{name}.txt"
    cmd = ["py-spy", "record", "-r", "250", "--format", "raw", "-o", str(out), "--pid"]
    spy = subprocess.Popen([*cmd, str(b.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(STOP_TIMEOUT)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


C = TypeVar("C", bound=ClientProtocol)


async def open_ready(
    factory: Callable[[], C], count: int, b: Broker, *, concurrency: int = 100, within: float = 60
) -> list[C]:
    """``connect_many`` to ``b``: ``count`` clients, each ready (its handshake done)."""
    return await connect_many(factory, count, HOST, b.port, concurrency=concurrency, within=within)


# --- flow control and throughput -------------------------------------------------------------


class Pumped(Protocol):
    """A publisher as ``Window`` sees it (``loadgen.FramePump`` and its subclasses)."""

    published: int
    acked: int  # acknowledged by the broker (QoS 1 PUBACKs); 0 for fire-and-forget
    blocked: bool

    def kick(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Window:
    """Publishers may run at most ``window`` deliveries ahead of the subscribers (and, with
    ``inflight``, that many unacknowledged messages each), at most ``most`` messages in all."""

    def __init__(self, counters: Counters, fan: int, window: int, inflight: int, most: int) -> None:
        self.counters = counters
        self.fan = fan  # deliveries per published message
        self.window = window
        self.inflight = inflight
        self.most = most
        self.presumed_dropped = 0
        self.stalled = False
        self.publishers: Sequence[Pumped] = ()

    def lag(self) -> int:
        c = self.counters
        return c.published * self.fan - c.received - self.presumed_dropped

    def may_send(self, pub: Pumped) -> bool:
        if self.counters.published >= self.most:
            return False
        if self.inflight and pub.published - pub.acked >= self.inflight:
            return False  # its own acknowledgements kick it again
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
        by the broker (it may drop for slow consumers) and go on."""
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


@dataclass(frozen=True)
class Sample:
    """The counters, the acks the subscribers sent and both processes' CPU time, at a time."""

    at: float
    received: int
    published: int
    acked: int
    closed: int
    broker_cpu: float
    own_cpu: float

    @classmethod
    def take(cls, b: Broker, c: Counters, subs: Sequence[StreamClient]) -> Sample:
        acked = sum(s.acks_sent for s in subs)
        t, broker, own = time.monotonic(), cpu_seconds(b.pid), cpu_seconds()
        return cls(t, c.received, c.published, acked, c.closed, broker, own)


async def measure(
    b: Broker, o: argparse.Namespace, flow: Window, subs: Sequence[StreamClient]
) -> tuple[Sample, Sample]:
    """Start ``flow``'s publishers, warm up for --warmup, measure for --seconds, stop them."""
    watcher = asyncio.create_task(flow.watch())
    try:
        for p in flow.publishers:
            p.start()
        await asyncio.sleep(o.warmup)
        before = Sample.take(b, flow.counters, subs)
        await asyncio.sleep(o.seconds)
        after = Sample.take(b, flow.counters, subs)
        for p in flow.publishers:
            p.stop()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return before, after


def throughput_figures(
    run: tuple[Sample, Sample],
    flow: Window,
    subs: Sequence[StreamClient],
    *,
    acked: bool = False,
    cost: bool = False,
    more: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Rates per second of the measured time; with ``acked`` the subscribers' acks too, with
    ``cost`` the broker's CPU time per delivery; ``more`` goes before the subscribers' range."""
    s0, s1 = run
    dt = s1.at - s0.at
    delivered = s1.received - s0.received
    broker = s1.broker_cpu - s0.broker_cpu
    figures: dict[str, Any] = {"delivered_per_s": delivered / dt}
    if acked:
        figures["acked_per_s"] = (s1.acked - s0.acked) / dt
    figures["published_per_s"] = (s1.published - s0.published) / dt
    figures["broker_cpu_pct"] = 100 * broker / dt
    figures["loadgen_cpu_pct"] = 100 * (s1.own_cpu - s0.own_cpu) / dt
    if cost:
        figures["broker_us_per_msg"] = 1e6 * broker / delivered if delivered else None
    figures["presumed_dropped"] = flow.presumed_dropped
    figures["connections_lost"] = s1.closed - s0.closed
    figures.update(more or {})
    counts = [s.received for s in subs]
    figures["subscriber_min_max"] = [min(counts), max(counts)]
    return figures


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One line of the table."""

    scenario: str
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None  # the ratio wsbroker / peer we aim for


@dataclass
class Results:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, scenario: str, target: str, figures: dict[str, Any]) -> None:
        self.runs.setdefault((scenario, target), []).append(figures)

    def median(self, scenario: str, target: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get((scenario, target), []) if key in r]
        return statistics.median(values) if values else None

    def write_json(self, path: Path) -> None:
        runs = {f"{s}/{t}": figures for (s, t), figures in self.runs.items()}
        path.write_text(json.dumps(runs, indent=1, default=str))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "KiB", "µs", "%"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def ratio_table(
    results: Results,
    metrics: Sequence[Metric],
    scenarios: Sequence[str],
    peer: str,
    ours: str = "wsbroker",
) -> str:
    """Medians per target, the ratio ours / peer, the better direction and the target, if any."""
    rows = [
        f"| metric | unit | {peer} | {ours} | {ours} / {peer} | better | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in metrics:
        if m.scenario not in scenarios:
            continue
        theirs = results.median(m.scenario, peer, m.key)
        mine = results.median(m.scenario, ours, m.key)
        ratio = mine / theirs if mine is not None and theirs else None
        better = "higher" if m.higher_is_better else "lower"
        target = "-" if m.target is None else ("≥ " if m.higher_is_better else "≤ ") + f"{m.target}"
        met = "-"
        if ratio is not None and m.target is not None:
            ok = ratio >= m.target if m.higher_is_better else ratio <= m.target
            met = "yes" if ok else "NO"
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        rows.append(
            f"| {m.label} | {m.unit} | {_fmt(theirs, m.unit)} | {_fmt(mine, m.unit)} | {shown} "
            f"| {better} | {target} | {met} |"
        )
    return "\n".join(rows)


def describe(figures: dict[str, Any]) -> str:
    parts = []
    for k, v in figures.items():
        shown = f"{v:,.2f}" if isinstance(v, float) else str(v)
        parts.append(f"{k}={shown}")
    return " ".join(parts)


# --- running ---------------------------------------------------------------------------------

Scenario = Callable[[Broker, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]
Probe = Callable[[Broker], Coroutine[Any, Any, str | None]]


def load_generator_runner(pin: bool) -> tuple[asyncio.Runner, str]:
    """Pin this process to core 1 (brokers get core 0) and give a runner, on uvloop if there."""
    if pin:
        if not {0, 1} <= os.sched_getaffinity(0):
            raise SystemExit("pinning needs cores 0 and 1 (or give --no-pin)")
        os.sched_setaffinity(0, {1})
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner(), "asyncio"
    return asyncio.Runner(loop_factory=uvloop.new_event_loop), "uvloop"


def run_order(
    scenarios: Sequence[str], targets: Sequence[str], runs: int
) -> Iterator[tuple[str, int, str]]:
    """(scenario, run, target) for every run, the targets' order alternating from run to run."""
    for scenario in scenarios:
        for run in range(1, runs + 1):
            for target in targets if run % 2 else targets[::-1]:
                yield scenario, run, target


def run_all(
    o: argparse.Namespace,
    launch_peer: Launch,
    scenarios: Mapping[str, Scenario],
    *,
    note: str = "",
    probe: Probe | None = None,
) -> Results:
    """Every run of ``o.scenarios`` on ``o.targets``, each on a fresh broker, garbage collection
    off while it runs, its figures printed as it ends. ``note`` ends the first line printed.
    ``probe``, if any, is asked first whether wsbroker speaks the protocol (None), or why not:
    then wsbroker is left out."""
    nofile = raise_nofile()
    runner, loop_name = load_generator_runner(not o.no_pin)
    print(
        f"load generator: {loop_name}, pid {os.getpid()}, cores {sorted(os.sched_getaffinity(0))}, "
        f"RLIMIT_NOFILE {nofile}; brokers: {'taskset -c 0' if not o.no_pin else 'unpinned'}{note}",
        flush=True,
    )
    results = Results()
    with runner:
        if probe is not None and "wsbroker" in o.targets:
            with launch_wsbroker(o) as b:
                why = runner.run(probe(b))
            if why is not None:
                print(why)
                o.targets.remove("wsbroker")
        for scenario, run, target in run_order(o.scenarios, o.targets, o.runs):
            launch = launch_wsbroker if target == "wsbroker" else launch_peer
            with launch(o) as b, profiled(b, o, f"{scenario}-{run}"):
                gc.collect()
                gc.disable()
                try:
                    figures = runner.run(scenarios[scenario](b, o))
                finally:
                    gc.enable()
            results.add(scenario, target, figures)
            print(f"{scenario:8} {target:10} run {run}: {describe(figures)}", flush=True)
    print()
    return results


# --- command line ----------------------------------------------------------------------------


def add_run_args(
    p: argparse.ArgumentParser, targets: Sequence[str], scenarios: Sequence[str]
) -> None:
    """The first options: --target, --scenario, --runs."""
    p.add_argument("--target", choices=[*targets, "both"], default="both")
    p.add_argument(
        "--scenario", choices=[*scenarios, "all"], action="append", help="repeatable; default: all"
    )
    p.add_argument("--runs", type=int, default=3, help="runs per scenario per target (median)")


def add_broker_args(p: argparse.ArgumentParser) -> None:
    """The last options: --broker-arg, --no-pin, --json, --profile."""
    p.add_argument("--broker-arg", action="append", default=[], help="extra `broker serve` arg")
    p.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    p.add_argument("--json", type=Path, help="also write every run's figures to this file")
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy each wsbroker run into this folder (raw collapsed stacks, 250 Hz)",
    )


def parse(
    p: argparse.ArgumentParser,
    argv: list[str] | None,
    targets: Sequence[str],
    scenarios: Sequence[str],
    in_range: Callable[[argparse.Namespace], bool],
) -> argparse.Namespace:
    """Parse, resolve ``targets`` and ``scenarios`` ("both", "all"), check the ranges of the
    options every runner has (--runs, --seconds, --warmup, --size, --concurrency) and the
    runner's own (``in_range``)."""
    a = p.parse_args(argv)
    a.targets = list(targets) if a.target == "both" else [a.target]
    a.scenarios = list(scenarios) if not a.scenario or "all" in a.scenario else a.scenario
    if not (
        1 <= a.runs <= 20
        and 0 < a.seconds <= 120
        and 0 <= a.warmup <= 10
        and 8 <= a.size <= 65_536
        and 1 <= a.concurrency <= 1000
        and in_range(a)
    ):
        p.error("an argument is out of range (see --help)")
    return a
