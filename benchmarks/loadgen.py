"""A cheap WebSocket load generator: asyncio Protocol clients, ideally on uvloop.

Cheap enough not to be the bottleneck: frames are encoded (and masked) once before the run and
written in batches; receivers count messages by walking frame headers only, never unmasking,
decoding or copying payloads. No task per connection and none per message.

- ``ClientProtocol``: upgrade, then count data messages (raw WebSocket pub/sub).
- ``StreamClient``: for a protocol riding on the data frames' byte stream (MQTT, STOMP): walks
  frame headers across reads and hands the subclass each piece of payload.
- ``FramePump``: the publishers' mixin, batches of pre-encoded frames under flow control.
- ``connect_many`` / ``close_all``: open many clients and wait until each one is ready; say
  goodbye to them all.

Only for 127.0.0.1: this is a tool to measure the broker on the machine it runs on.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast
from urllib.parse import urlsplit

__all__ = [
    "ClientProtocol",
    "Counters",
    "FramePump",
    "PublisherProtocol",
    "StreamClient",
    "check_local",
    "close_all",
    "connect_many",
    "cpu_seconds",
    "frame_header",
    "masked_frame",
]

OP_TEXT = 0x1
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
    """Upgrade, then count received data messages by walking frame headers only.

    ``ready`` resolves when the client may be used: here at the upgrade (``upgraded``); clients
    with a handshake of their own on top replace it. ``goodbye`` is written before the close frame.
    """

    goodbye = b""

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
        self.subprotocol = subprotocol
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
        self.ready: asyncio.Future[None] = self.upgraded
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
        """Refuse the 101 response (its status line and headers): say why. Here: a subprotocol
        was offered and the server did not select it."""
        if self.subprotocol is None:
            return None
        offered = self.subprotocol.encode()
        for line in head.lower().split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip() == b"sec-websocket-protocol" and value.strip() == offered:
                return None
        return f"the server did not select the {self.subprotocol} subprotocol"

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
        """``goodbye``, a close frame and FIN, without waiting for the server."""
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(self.goodbye + masked_frame(OP_CLOSE, struct.pack("!H", code)))
            t.close()


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class StreamClient(ClientProtocol):
    """Walks WebSocket frames; each data frame's payload, in pieces, goes to ``payload()``.

    A frame may span reads and a read may hold many frames: the walker carries the rest of a
    frame's length across reads, so ``payload`` sees the protocol's byte stream piece by piece.
    ``payload`` adds the messages it finds to ``_got`` and the answers it owes (acks) to
    ``_acks``: once per read, they are counted and written in one write (``acks_sent`` is for
    subclasses that count them as they queue them). ``ready`` is for the subclass to resolve when
    its own handshake is done; the connection's end fails it.
    """

    not_ready = "closed before ready"  # why ``ready`` failed if the connection ends first

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        counters: Counters,
        *,
        subprotocol: str,
        counted: bool = True,
        on_receive: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            host,
            port,
            path,
            counters,
            counted=counted,
            on_receive=on_receive,
            subprotocol=subprotocol,
        )
        self.ready = asyncio.get_running_loop().create_future()
        # Failures are reported through `ready`; never warn about unretrieved exceptions.
        self.upgraded.add_done_callback(_retrieve)
        self.ready.add_done_callback(_retrieve)
        self.acks_sent = 0
        self._wrem = 0  # bytes of the current WebSocket frame still to come
        self._wdata = False  # ... and whether they are payload (a data frame)
        self._got = 0  # messages found during the current read
        self._acks: list[bytes] = []  # frames to write at the end of the current read

    def payload(self, data: bytes, i: int, end: int) -> None:
        """``data[i:end]`` is the next piece of the data frames' byte stream."""
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ready.done():
            up = self.upgraded
            why = up.exception() if up.done() and not up.cancelled() else None
            self.ready.set_exception(why or exc or ConnectionError(self.not_ready))

    # The hot path: one ``payload`` call per data frame (or piece of one), no other call.
    def _count(self, data: bytes) -> None:
        n = len(data)
        i = 0
        if self._wrem:  # the rest of a frame begun in an earlier read
            i = min(self._wrem, n)
            self._wrem -= i
            if self._wdata:
                self.payload(data, 0, i)
        if i < n:
            if self._partial:  # a frame header cut by the last read
                data = self._partial + data[i:]
                self._partial = b""
                n = len(data)
                i = 0
            while n - i >= 2:
                header = frame_header(data, i, n)
                if header is None:
                    break
                pos, length = header
                if pos > n:
                    break
                opcode = data[i] & 0x0F
                end = pos + length
                if opcode < 0x8:
                    self.payload(data, pos, end if end < n else n)
                elif end <= n:
                    self._control(opcode, data, pos, length)
                if end > n:
                    self._wrem = end - n
                    self._wdata = opcode < 0x8
                    i = n
                    break
                i = end
            if i < n:
                self._partial = data[i:]
        got = self._got
        if got:
            self._got = 0
            self.received += got
            if self.counted:
                self.counters.received += got
            if self.on_receive is not None:
                self.on_receive()
        acks = self._acks
        if acks:
            t = self.transport
            if t is not None and not t.is_closing():
                t.write(b"".join(acks))
            acks.clear()


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


C = TypeVar("C", bound=ClientProtocol)


async def connect_many(
    factory: Callable[[], C],
    count: int,
    host: str,
    port: int,
    *,
    concurrency: int = 50,
    within: float = 10.0,
) -> list[C]:
    """Open ``count`` clients, at most ``concurrency`` in set-up at once, and wait until each
    is ``ready``; all within ``within`` seconds or TimeoutError."""
    loop = asyncio.get_running_loop()
    out: list[C] = []
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            _, proto = await loop.create_connection(factory, host, port)
            out.append(proto)
            await proto.ready

    async with asyncio.timeout(within), asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, count)):
            tg.create_task(worker())
    return out


async def close_all(clients: Sequence[ClientProtocol], within: float = 10.0) -> None:
    """Say goodbye on every client; wait (bounded) until each connection is gone, else abort."""
    for c in clients:
        c.close()
    try:
        async with asyncio.timeout(within):
            for c in clients:
                await c.lost.wait()
    except TimeoutError:
        for c in clients:
            if c.transport is not None:
                c.transport.abort()
