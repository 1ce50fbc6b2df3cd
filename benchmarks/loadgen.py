"""A cheap WebSocket load generator: asyncio Protocol clients, ideally on uvloop.

Cheap enough not to be the bottleneck: frames are encoded (and masked) once before the run and
written in batches; receivers count messages by walking frame headers only, never unmasking,
decoding or copying payloads. No task per connection and none per message.

Only for 127.0.0.1: this is a tool to measure the broker on the machine it runs on.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

__all__ = [
    "ClientProtocol",
    "Counters",
    "FramePump",
    "PublisherProtocol",
    "check_local",
    "connect_many",
    "cpu_seconds",
    "frame_header",
    "masked_frame",
]

OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_local(url: str) -> tuple[str, int]:
    """(host, port) of a ws:// URL, refusing anything but the loopback interface."""
    u = urlsplit(url)
    if u.scheme != "ws":
        raise SystemExit(f"only ws:// URLs: {url!r}")
    host = u.hostname or ""
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to load anything but 127.0.0.1, not {host!r}")
    return host, u.port or 80


def masked_frame(opcode: int, payload: bytes, key: bytes = b"\x5a\xc3\x3c\xa5") -> bytes:
    """One complete, masked client frame, built once and reused for every send."""
    n = len(payload)
    if n <= 125:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    repeated = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    return header + key + (body if n else b"")


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process, in seconds, from /proc/<pid>/stat (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Counters:
    """Shared by every connection of a run; plain ints, updated from the callbacks."""

    received: int = 0  # data messages received by counted (subscriber) connections
    published: int = 0  # data messages written by publishers
    closed: int = 0  # connections the server closed or reset
    close_frames: int = 0  # close frames received
    pings: int = 0  # pings received (and answered)


def frame_header(data: bytes, i: int, n: int) -> tuple[int, int] | None:
    """(payload offset, payload length) of the server frame at `i`, or None if cut short."""
    if n - i < 2:
        return None
    b1 = data[i + 1]
    length = b1 & 0x7F
    pos = i + 2
    if length == 126:
        if n - i < 4:
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        pos = i + 4
    elif length == 127:
        if n - i < 10:
            return None
        length = int.from_bytes(data[i + 2 : i + 10], "big")
        pos = i + 10
    if b1 & 0x80:  # servers never mask, but be exact if one does
        pos += 4
    return pos, length


class ClientProtocol(asyncio.Protocol):
    """Upgrade, then count received data messages by walking frame headers only."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        counters: Counters,
        *,
        counted: bool = True,
        on_receive: Callable[[], None] | None = None,
        subprotocol: str | None = None,
    ) -> None:
        offer = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
        ).encode()
        self.counters = counters
        self.counted = counted
        self.on_receive = on_receive
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = asyncio.Event()
        self.received = 0  # this connection's data messages
        self._head = b""
        self._skip = 0  # payload bytes of the current frame still to skip
        self._partial = b""  # an incomplete frame header carried to the next chunk

    # --- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._head[:end]
            status = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            rest = self._head[end + 4 :]
            self._head = b""
            problem = None if b" 101 " in status + b" " else f"upgrade refused: {status!r}"
            problem = problem or self.check_upgrade(head)
            if problem:
                self.upgraded.set_exception(ConnectionError(problem))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded.set_result(None)
            self.opened()
            if not rest:
                return
            data = rest
        self._count(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.counters.closed += 1
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed during the upgrade"))
        self.lost.set()

    def check_upgrade(self, head: bytes) -> str | None:
        """Subclasses may refuse the 101 response (its status line and headers): say why."""
        return None

    def opened(self) -> None:
        """Called once the upgrade succeeded, before any frame is read (for subclasses)."""

    # --- frame walking

    def _count(self, data: bytes) -> None:
        n = len(data)
        i = self._skip
        if i >= n:
            self._skip = i - n
            return
        self._skip = 0
        if self._partial:
            data = self._partial + data[i:]
            self._partial = b""
            n = len(data)
            i = 0
        messages = 0
        while i < n:
            header = frame_header(data, i, n)
            if header is None:
                break
            pos, length = header
            b0 = data[i]
            opcode = b0 & 0x0F
            if opcode < 0x8:
                if b0 & 0x80:  # FIN: one more complete data message
                    messages += 1
            else:
                self._control(opcode, data, pos, length)
            i = pos + length
        if i > n:
            self._skip = i - n
        elif i < n:
            self._partial = data[i:]
        if messages:
            self.received += messages
            if self.counted:
                self.counters.received += messages
            if self.on_receive is not None:
                self.on_receive()

    def _control(self, opcode: int, data: bytes, pos: int, length: int) -> None:
        if opcode == OP_PING:
            self.counters.pings += 1
            payload = data[pos : pos + length]
            if len(payload) == length and self.transport is not None:
                self.transport.write(masked_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.counters.close_frames += 1

    # --- closing

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(OP_CLOSE, struct.pack("!H", code)))
            self.transport.close()


class FramePump:
    """Writes batches of pre-encoded frames as fast as flow control and ``may_write()`` allow.

    A mixin for a client protocol: ``pump()`` runs again whenever writing may resume (the
    transport drained, or ``kick()`` because receivers caught up). Subclasses give the batches.
    """

    transport: asyncio.Transport | None
    counters: Counters
    batch_frames: int  # frames in each batch
    batches_per_pump: int = 64  # bounded, so reads get their turn on the loop

    def _init_pump(self) -> None:
        self.published = 0
        self.running = False
        self.paused = False
        self.blocked = False  # may_write() said no: kick() again when it may say yes
        self._scheduled = False

    def next_batch(self) -> bytes:
        raise NotImplementedError

    def may_write(self) -> bool:
        raise NotImplementedError

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.kick()

    def start(self) -> None:
        self.running = True
        self.kick()

    def stop(self) -> None:
        self.running = False

    def kick(self) -> None:
        """Schedule a pump (never re-entrantly from inside another callback)."""
        if not self._scheduled and self.running:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def pump(self) -> None:
        self._scheduled = False
        self.blocked = False
        t = self.transport
        if t is None or t.is_closing():
            return
        for _ in range(self.batches_per_pump):
            if not self.running or self.paused:
                return
            if not self.may_write():
                self.blocked = True
                return
            t.write(self.next_batch())
            self.published += self.batch_frames
            self.counters.published += self.batch_frames
        self.kick()


class PublisherProtocol(FramePump, ClientProtocol):
    """A client that also writes one pre-encoded frame, in batches, as fast as it may.

    ``may_send()`` is asked before each batch.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        counters: Counters,
        frame: bytes,
        *,
        batch: int = 64,
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(host, port, path, counters, counted=False)
        self._init_pump()
        self.batch_frames = batch
        self.batch = frame * batch
        self.may_send = may_send

    def next_batch(self) -> bytes:
        return self.batch

    def may_write(self) -> bool:
        return self.may_send()


async def connect_many(
    factory: Callable[[], ClientProtocol],
    count: int,
    host: str,
    port: int,
    *,
    concurrency: int = 50,
    within: float = 10.0,
) -> list[ClientProtocol]:
    """Open ``count`` connections and wait for every upgrade (bounded concurrency and time)."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    out: list[ClientProtocol] = []

    async def one() -> None:
        async with sem:
            _, proto = await loop.create_connection(factory, host, port)
            out.append(proto)
            await proto.upgraded

    async with asyncio.timeout(within), asyncio.TaskGroup() as tg:
        for _ in range(count):
            tg.create_task(one())
    return out
