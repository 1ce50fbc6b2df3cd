"""Raw fan-out: 1 publisher, N raw subscribers on one topic, 64-byte binary messages.

    python -m benchmarks.raw_fanout                 # starts a broker from this checkout
    python -m benchmarks.raw_fanout --url ws://127.0.0.1:8080 --broker-pid 1234

The publisher writes pre-encoded masked frames as fast as TCP flow control allows, but never
more than ``--window`` messages ahead of the subscribers (on average), so the figure measures
delivery throughput, not how much the broker can buffer. It prints delivered messages per second
(subscribers only; the publisher, subscribed to its own path too, is not counted), the broker's
CPU use and the load generator's own, both as % of one core, from /proc/<pid>/stat.

Bounded: at most ``--warmup + --seconds`` of publishing plus connection set-up and a short
drain, and at most ``--max-messages`` published; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from benchmarks.loadgen import (
    OP_BINARY,
    ClientProtocol,
    Counters,
    PublisherProtocol,
    check_local,
    connect_many,
    cpu_seconds,
    masked_frame,
)

PATH = "/topics/bench/fanout"


@dataclass
class Result:
    subscribers: int
    message_size: int
    seconds: float
    delivered: int
    delivered_per_s: float
    published_per_s: float
    broker_cpu_pct: float | None
    loadgen_cpu_pct: float
    presumed_dropped: int
    connections_lost: int
    slowest_subscriber: int
    fastest_subscriber: int


class FanoutRun:
    def __init__(self, args: argparse.Namespace, host: str, port: int) -> None:
        self.args = args
        self.host = host
        self.port = port
        self.n: int = args.subscribers
        self.window: int = args.window
        self.max_messages: int = args.max_messages
        self.counters = Counters()
        self.presumed_dropped = 0
        self.publisher: PublisherProtocol | None = None

    def lag(self) -> int:
        c = self.counters
        return c.published * self.n - c.received - self.presumed_dropped

    def may_send(self) -> bool:
        if self.counters.published >= self.max_messages:
            return False
        return self.lag() < self.window * self.n

    def wake(self) -> None:
        """Called on every receive: restart a publisher held back by the window once the
        subscribers are half-way through it (cheap check first: this is the hot path)."""
        p = self.publisher
        if p is not None and p.blocked and self.lag() < self.window * self.n // 2:
            p.kick()

    async def stall_watch(self) -> None:
        """If the window stays full with no delivery for 1 s, assume the broker dropped what
        is missing (it may drop for slow consumers) and let the publisher go on."""
        last, still = -1, 0
        while True:
            await asyncio.sleep(0.25)
            if self.counters.received == last and not self.may_send():
                still += 1
                if still >= 4:
                    self.presumed_dropped += self.lag()
                    still = 0
                    if self.publisher is not None:
                        self.publisher.kick()
            else:
                still = 0
            last = self.counters.received

    async def run(self, broker_pid: int | None) -> Result:
        a = self.args
        subs = await connect_many(
            lambda: ClientProtocol(self.host, self.port, PATH, self.counters, on_receive=self.wake),
            self.n,
            self.host,
            self.port,
        )
        frame = masked_frame(OP_BINARY, os.urandom(a.size))
        loop = asyncio.get_running_loop()
        _, pub = await loop.create_connection(
            lambda: PublisherProtocol(
                self.host, self.port, PATH, self.counters, frame, may_send=self.may_send
            ),
            self.host,
            self.port,
        )
        self.publisher = pub
        watcher = asyncio.create_task(self.stall_watch())
        try:
            await asyncio.wait_for(pub.upgraded, 10)
            pub.start()
            await asyncio.sleep(a.warmup)
            t0, r0, p0 = time.monotonic(), self.counters.received, self.counters.published
            b0 = cpu_seconds(broker_pid) if broker_pid else None
            s0 = cpu_seconds()
            await asyncio.sleep(a.seconds)
            t1, r1, p1 = time.monotonic(), self.counters.received, self.counters.published
            lost_during = self.counters.closed
            b1 = cpu_seconds(broker_pid) if broker_pid else None
            s1 = cpu_seconds()
            pub.stop()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            for p in [*subs, pub]:
                p.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    for p in [*subs, pub]:
                        await p.lost.wait()
        elapsed = t1 - t0
        counts = [s.received for s in subs]
        return Result(
            subscribers=self.n,
            message_size=a.size,
            seconds=round(elapsed, 3),
            delivered=r1 - r0,
            delivered_per_s=round((r1 - r0) / elapsed),
            published_per_s=round((p1 - p0) / elapsed),
            broker_cpu_pct=(
                round(100 * (b1 - b0) / elapsed, 1) if b0 is not None and b1 is not None else None
            ),
            loadgen_cpu_pct=round(100 * (s1 - s0) / elapsed, 1),
            presumed_dropped=self.presumed_dropped,
            connections_lost=lost_during,
            slowest_subscriber=min(counts),
            fastest_subscriber=max(counts),
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", help="an already running broker (127.0.0.1 only); default: start one")
    p.add_argument("--broker-pid", type=int, help="with --url: its pid, for the CPU figure")
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--size", type=int, default=64, help="payload bytes per message")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time")
    p.add_argument("--warmup", type=float, default=1.0, help="publishing before measuring")
    p.add_argument("--window", type=int, default=256, help="max messages in flight per sub")
    p.add_argument("--max-messages", type=int, default=50_000_000, help="publish at most this")
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio event loop")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--broker-arg", action="append", default=[], help="extra `broker serve` argument"
    )
    a = p.parse_args(argv)
    if not 1 <= a.subscribers <= 10_000 or not 0 < a.seconds <= 600 or not 0 <= a.warmup <= 60:
        p.error("out of range: subscribers 1..10000, seconds 0..600, warmup 0..60")
    return a


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[str, int | None]]:
    if args.url:
        yield args.url, args.broker_pid
        return
    from conformance.server import running_broker

    with running_broker(*args.broker_arg) as bp:
        yield bp.url, bp.pid


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loop_name = "asyncio"
    runner: contextlib.AbstractContextManager[asyncio.Runner]
    if args.no_uvloop:
        runner = asyncio.Runner()
    else:
        try:
            import uvloop
        except ImportError:
            runner = asyncio.Runner()
        else:
            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
            loop_name = "uvloop"
    with target(args) as (url, pid):
        host, port = check_local(url)
        with runner as r:
            result = r.run(FanoutRun(args, host, port).run(pid))
    if args.json:
        print(json.dumps({**asdict(result), "loop": loop_name, "url": url}))
    else:
        cpu = (
            "n/a (give --broker-pid)"
            if result.broker_cpu_pct is None
            else (f"{result.broker_cpu_pct}% of one core")
        )
        print(
            f"raw fan-out, {result.subscribers} subscribers, {result.message_size}-byte binary, "
            f"{result.seconds:.1f} s measured, loadgen on {loop_name}\n"
            f"  delivered:  {result.delivered_per_s:,} msg/s to subscribers "
            f"({result.published_per_s:,} published/s)\n"
            f"  broker CPU: {cpu}\n"
            f"  loadgen CPU: {result.loadgen_cpu_pct}% of one core\n"
            f"  per-subscriber totals: {result.slowest_subscriber:,} .. "
            f"{result.fastest_subscriber:,}; presumed dropped: {result.presumed_dropped:,}; "
            f"connections lost during the run: {result.connections_lost}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
