"""The broker's per-message CPU cost in process, without sockets: µs per delivered message.

    python -m benchmarks.hotpath [--messages N] [--repeat R]

Real `ClientConnection`s (transport, MQTT adapter, core) on fake transports that swallow
writes, fed the same bytes a socket would give them. No network, no second process, no kernel:
the figures move only with the code, so they show what a hot-path change is worth before the
noisy side-by-side runs of `mqtt_bench` (which remain the measure that counts).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import time
from collections.abc import Callable

from benchmarks.loadgen import OP_BINARY, masked_frame
from benchmarks.mqtt_load import connect_packet, publish_frames, subscribe_packet
from broker.config import Settings
from broker.core.broker import Broker
from broker.store.memory import MemoryRetainedStore
from broker.subprotocols.base import AdapterContext
from broker.transport.connection import ClientConnection
from broker.transport.server import Listener

PAYLOAD = b"x" * 64


class NullTransport(asyncio.Transport):
    """Swallows writes; counts bytes so nothing is optimised away."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    ).encode()


class Bench:
    """A listener with connected MQTT clients on null transports."""

    def __init__(self) -> None:
        settings = Settings(compression=False)
        core = Broker(
            realms=settings.realms,
            default_realm=settings.default_realm,
            retained_factory=lambda: MemoryRetainedStore(
                max_messages=settings.retained_max_messages
            ),
        )
        from broker.app import default_registry

        self.listener = Listener(settings, AdapterContext(core, settings), default_registry())
        self.loop = asyncio.get_running_loop()

    def client(self, name: str, topic_filter: str | None = None, qos: int = 0) -> ClientConnection:
        conn = ClientConnection(self.listener)
        conn.connection_made(NullTransport())
        conn.data_received(upgrade_request())
        conn.data_received(masked_frame(OP_BINARY, connect_packet(name)))
        if topic_filter is not None:
            conn.data_received(masked_frame(OP_BINARY, subscribe_packet(1, topic_filter, qos)))
        self.flush()
        return conn

    def flush(self) -> None:
        # The listener flushes from call_soon; a benchmark runs it now, reaching in on purpose.
        self.listener._flush_all()
        self.listener._dirty.clear()


def puback(packet_id: int) -> bytes:
    return bytes((0x40, 2)) + packet_id.to_bytes(2, "big")


def measure(feed: Callable[[], int], repeat: int) -> float:
    """Best of `repeat` runs of `feed` (which returns deliveries made): µs per delivery."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        deliveries = feed()
        best = min(best, (time.perf_counter() - start) / deliveries * 1e6)
    return best


async def scenarios(messages: int, repeat: int) -> dict[str, float]:
    results: dict[str, float] = {}

    bench = Bench()
    bench.client("sub", "sensors/+/temp")
    publishers = [bench.client(f"pub{i}") for i in range(100)]
    per_chunk = 10  # frames per read, as a busy publisher's socket delivers them
    chunks = [publish_frames(f"sensors/{i}/temp", PAYLOAD, 0, per_chunk) for i in range(100)]
    rounds = max(1, messages // (100 * per_chunk))

    def fanin() -> int:
        for _ in range(rounds):
            for pub, chunk in zip(publishers, chunks, strict=True):
                pub.data_received(chunk)
            bench.flush()
        return rounds * 100 * per_chunk

    results["fan-in 100->1, 10 frames per read"] = measure(fanin, repeat)

    lone = [publish_frames(f"sensors/{i}/temp", PAYLOAD, 0, 1) for i in range(100)]

    def fanin_lone() -> int:
        n = rounds * per_chunk
        for _ in range(n):
            for pub, frame in zip(publishers, lone, strict=True):
                pub.data_received(frame)
            bench.flush()
        return n * 100

    results["fan-in 100->1, 1 frame per read"] = measure(fanin_lone, repeat)

    bench = Bench()
    for i in range(100):
        bench.client(f"sub{i}", "fan/out")
    publisher = bench.client("pub")
    frame = publish_frames("fan/out", PAYLOAD, 0, 1)
    count = max(1, messages // 100)

    def fanout() -> int:
        for _ in range(count):
            publisher.data_received(frame)
            bench.flush()
        return count * 100

    results["fan-out 1->100"] = measure(fanout, repeat)

    bench = Bench()
    subscribers = [bench.client(f"sub{i}", "fan/qos1", qos=1) for i in range(100)]
    publisher = bench.client("pub")
    batch = 10  # messages per round, each acknowledged by every subscriber (in-flight cap 20)
    chunk = publish_frames("fan/qos1", PAYLOAD, 1, batch)
    next_id = 0
    puback_rounds: list[bytes] = []
    for first in range(0, 65535 * 2, batch):  # the ids each round's deliveries get, wrapping
        ids = [(first + k) % 65535 + 1 for k in range(batch)]
        puback_rounds.append(b"".join(masked_frame(OP_BINARY, puback(i)) for i in ids))
    count = max(1, messages // (100 * batch))

    def qos1() -> int:
        nonlocal next_id
        for _ in range(count):
            publisher.data_received(chunk)
            bench.flush()
            acks = puback_rounds[next_id]
            next_id = (next_id + 1) % len(puback_rounds)
            for sub in subscribers:
                sub.data_received(acks)
            bench.flush()
        return count * batch * 100

    results["QoS 1 fan-out 1->100, PUBACKed"] = measure(qos1, repeat)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000, help="deliveries per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is shown")
    args = parser.parse_args()
    results = asyncio.run(scenarios(args.messages, args.repeat))
    for name, us in results.items():
        print(f"{name:40} {us:6.3f} µs per delivery")


if __name__ == "__main__":
    main()
