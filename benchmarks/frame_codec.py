"""WebSocket frame codecs compared without sockets: parsing masked client frames, building frames.

Run from the repository root (wsproto is needed only here: ``pip install wsproto``)::

    python benchmarks/frame_codec.py

Compares wsproto (WSConnection), the sans-I/O core of websockets (ServerProtocol), and
broker.transport.frames (ServerConnection / encode_frame), the latter with websockets' C
unmasking routine and with the pure-Python fallback. Results: docs/websocket-frames.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from broker.transport import frames
from broker.transport.frames import Opcode, ServerConnection, encode_frame
from broker.transport.mask import c_apply_mask, py_apply_mask

# One benchmark case: given the number of operations, run them and return that number.
Case = Callable[[int], int]


def masked_frames(count: int, size: int) -> bytes:
    """``count`` masked binary client frames of ``size`` payload bytes, back to back."""
    payload = os.urandom(size)
    out = bytearray()
    for _ in range(count):
        key = os.urandom(4)
        if size < 126:
            out += bytes((0x82, 0x80 | size))
        else:
            out += bytes((0x82, 0xFE)) + size.to_bytes(2, "big")
        out += key + py_apply_mask(payload, key)
    return bytes(out)


@contextmanager
def pure_python_mask() -> Iterator[None]:
    """Make the codec use the pure-Python unmasking fallback for the duration."""
    saved = getattr(frames, "apply_mask")  # noqa: B009 - not part of the module's exports
    setattr(frames, "apply_mask", py_apply_mask)  # noqa: B010
    try:
        yield
    finally:
        setattr(frames, "apply_mask", saved)  # noqa: B010


# --- parsing -------------------------------------------------------------------------------


def parse_ours(chunk: bytes, per_chunk: int) -> Case:
    def run(n: int) -> int:
        conn = ServerConnection()
        received = 0
        for _ in range(n // per_chunk):
            received += len(conn.receive_data(chunk))
        return received

    return run


def parse_websockets(chunk: bytes, per_chunk: int) -> Case:
    from websockets.client import ClientProtocol
    from websockets.http11 import Request
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri

    def open_server() -> ServerProtocol:
        client = ClientProtocol(parse_uri("ws://localhost/"))
        client.send_request(client.connect())
        server = ServerProtocol()
        server.receive_data(b"".join(client.data_to_send()))
        request = server.events_received()[0]
        assert isinstance(request, Request)
        server.send_response(server.accept(request))
        server.data_to_send()
        return server

    def run(n: int) -> int:
        server = open_server()
        received = 0
        for _ in range(n // per_chunk):
            server.receive_data(chunk)
            received += len(server.events_received())
        return received

    return run


def parse_wsproto(chunk: bytes, per_chunk: int) -> Case:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    def open_server() -> WSConnection:
        client = WSConnection(ConnectionType.CLIENT)
        server = WSConnection(ConnectionType.SERVER)
        server.receive_data(client.send(Request(host="localhost", target="/")))
        for _ in server.events():
            pass
        client.receive_data(server.send(AcceptConnection()))
        return server

    def run(n: int) -> int:
        server = open_server()
        received = 0
        for _ in range(n // per_chunk):
            server.receive_data(chunk)
            received += sum(1 for _ in server.events())
        return received

    return run


# --- building ------------------------------------------------------------------------------


def build_ours_encode(payload: bytes) -> Case:
    def run(n: int) -> int:
        encode = encode_frame
        binary = Opcode.BINARY
        for _ in range(n):
            encode(binary, payload)
        return n

    return run


def build_ours_connection(payload: bytes) -> Case:
    def run(n: int) -> int:
        send = ServerConnection().send_message
        for _ in range(n):
            send(payload, text=False)
        return n

    return run


def build_websockets(payload: bytes) -> Case:
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    def run(n: int) -> int:
        server = ServerProtocol()
        server.state = State.OPEN  # skip the handshake: only framing is measured
        for _ in range(n):
            server.send_binary(payload)
            server.data_to_send()
        return n

    return run


def build_wsproto(payload: bytes) -> Case:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request

    def run(n: int) -> int:
        client = WSConnection(ConnectionType.CLIENT)
        server = WSConnection(ConnectionType.SERVER)
        server.receive_data(client.send(Request(host="localhost", target="/")))
        for _ in server.events():
            pass
        server.send(AcceptConnection())
        for _ in range(n):
            server.send(BytesMessage(data=payload))
        return n

    return run


# --- harness -------------------------------------------------------------------------------


def best_rate(case: Case, ops: int, runs: int) -> float:
    """Best operations per second over ``runs`` timed runs of ``ops`` operations."""
    case(min(ops, 1000))  # warm up (imports, lazily built tables)
    best = 0.0
    for _ in range(runs):
        start = time.perf_counter()
        done = case(ops)
        elapsed = time.perf_counter() - start
        if done != ops:
            raise RuntimeError(f"expected {ops} operations, got {done}")
        best = max(best, done / elapsed)
    return best


def table(title: str, rows: list[tuple[str, float]]) -> str:
    """A Markdown table; ratios are against the first row."""
    base = rows[0][1]
    lines = [
        title,
        "",
        f"| {'codec':<42} | {'frames/s':>11} | {'ratio':>6} |",
        f"|{'-' * 44}|{'-' * 12}:|{'-' * 7}:|",
    ]
    lines += [f"| {name:<42} | {rate:>11,.0f} | {rate / base:>5.1f}x |" for name, rate in rows]
    return "\n".join(lines)


def parse_rows(
    size: int, per_chunk: int, frames_per_run: int, runs: int, with_wsproto: bool
) -> list[tuple[str, float]]:
    chunk = masked_frames(per_chunk, size)

    # The slow codecs get fewer frames per run; rates are per frame either way.
    def ops(divisor: int) -> int:
        return max(per_chunk, frames_per_run // divisor // per_chunk * per_chunk)

    rows: list[tuple[str, float]] = []
    if with_wsproto:
        rows.append(
            ("wsproto WSConnection", best_rate(parse_wsproto(chunk, per_chunk), ops(10), runs))
        )
    rows.append(
        ("websockets ServerProtocol", best_rate(parse_websockets(chunk, per_chunk), ops(3), runs))
    )
    rows.append(
        ("ours ServerConnection, C mask", best_rate(parse_ours(chunk, per_chunk), ops(1), runs))
    )
    with pure_python_mask():
        rows.append(
            (
                "ours ServerConnection, pure-Python mask",
                best_rate(parse_ours(chunk, per_chunk), ops(1), runs),
            )
        )
    return rows


def build_rows(
    size: int, frames_per_run: int, runs: int, with_wsproto: bool
) -> list[tuple[str, float]]:
    payload = os.urandom(size)
    rows: list[tuple[str, float]] = []
    if with_wsproto:
        rows.append(
            (
                "wsproto WSConnection.send",
                best_rate(build_wsproto(payload), frames_per_run // 5, runs),
            )
        )
    rows.append(
        (
            "websockets send_binary + data_to_send",
            best_rate(build_websockets(payload), frames_per_run // 2, runs),
        )
    )
    rows.append(
        ("ours encode_frame", best_rate(build_ours_encode(payload), frames_per_run * 5, runs))
    )
    rows.append(
        (
            "ours ServerConnection.send_message",
            best_rate(build_ours_connection(payload), frames_per_run * 2, runs),
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="payload bytes per frame")
    parser.add_argument("--frames", type=int, default=50_000, help="frames per run (scaled)")
    parser.add_argument("--batch", type=int, default=1000, help="frames per receive_data() call")
    parser.add_argument("--runs", type=int, default=20, help="runs per case; the best counts")
    args = parser.parse_args()

    from websockets.version import version as websockets_version

    try:
        import wsproto
    except ImportError:
        wsproto_version = "not installed"
    else:
        wsproto_version = wsproto.__version__
    with_wsproto = wsproto_version != "not installed"
    print(
        f"Python {platform.python_version()} on {platform.machine()};"
        f" websockets {websockets_version}; wsproto {wsproto_version};"
        f" C mask {'yes' if c_apply_mask is not None else 'no'}; best of {args.runs} runs\n"
    )
    size = args.size
    for per_chunk in (1, args.batch):
        rows = parse_rows(size, per_chunk, args.frames, args.runs, with_wsproto)
        print(
            table(f"Parsing masked {size}-byte client frames, {per_chunk} per receive_data()", rows)
        )
        print()
    print(
        table(
            f"Building {size}-byte server frames",
            build_rows(size, args.frames, args.runs, with_wsproto),
        )
    )


if __name__ == "__main__":
    main()
