"""STOMP 1.2 over WebSocket for the load generator: hand-encoded frames and cheap clients.

Same rules as ``loadgen.py``: asyncio ``Protocol`` clients, no task per connection or message,
SEND frames encoded and masked once before the run and written in batches. Every STOMP frame
travels in its own text WebSocket frame, as stomp.js sends them.

Receivers walk WebSocket frame headers (``loadgen.StreamClient``) and, in the data frames'
byte stream, STOMP frames by their NUL terminators: a STOMP frame may span WebSocket frames and
reads, and a WebSocket frame may hold several. A MESSAGE whose bytes are not needed (ack:auto) is
only searched for its NUL; with client acknowledgements its ``ack`` header is read (bytes are
copied only when such a frame is cut) and answered with an ACK, all those of one read in one
write. Bodies must not hold NUL bytes (the benchmarks send base64 text): ``content-length`` is not
used to skip them.

Only for 127.0.0.1, like the rest of the load generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.loadgen import OP_TEXT, Counters, FramePump, StreamClient, masked_frame

__all__ = [
    "StompClient",
    "StompPublisher",
    "Subscribe",
    "connect_frame",
    "send_frame",
    "stomp_frame",
    "subscribe_frame",
]

SUBPROTOCOL = "v12.stomp"
_M = ord("M")  # only MESSAGE, of the server's frames, starts with it


def stomp_frame(command: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """One STOMP frame; the header values here never need 1.2 escaping."""
    head = "".join(f"{name}:{value}\n" for name, value in headers)
    return f"{command}\n{head}\n".encode() + body + b"\x00"


def connect_frame(vhost: str, login: str, passcode: str) -> bytes:
    """CONNECT for 1.2 only, no heart-beats (nothing but MESSAGE frames during a run)."""
    return stomp_frame(
        "CONNECT",
        (
            ("accept-version", "1.2"),
            ("host", vhost),
            ("login", login),
            ("passcode", passcode),
            ("heart-beat", "0,0"),
        ),
    )


@dataclass(frozen=True)
class Subscribe:
    destination: str
    ack: str = "auto"
    prefetch: int | None = None  # RabbitMQ's prefetch-count header, which wsbroker shares
    id: str = "0"


def subscribe_frame(sub: Subscribe, receipt: str) -> bytes:
    headers = [("id", sub.id), ("destination", sub.destination), ("ack", sub.ack)]
    if sub.prefetch is not None:
        headers.append(("prefetch-count", str(sub.prefetch)))
    headers.append(("receipt", receipt))
    return stomp_frame("SUBSCRIBE", headers)


def send_frame(destination: str, body: bytes) -> bytes:
    """SEND with content-length, as stomp.js writes it."""
    return stomp_frame(
        "SEND", (("destination", destination), ("content-length", str(len(body)))), body
    )


def _text(frame: bytes) -> bytes:
    return masked_frame(OP_TEXT, frame)


class StompClient(StreamClient):
    """Upgrade with ``v12.stomp``, CONNECT (then SUBSCRIBE), then count MESSAGE frames.

    ``ready`` resolves at CONNECTED, or at the RECEIPT of the SUBSCRIBE. With a client ack
    mode, every MESSAGE is answered with an ACK of its ``ack`` header. ERROR frames are kept
    in ``errors``.
    """

    goodbye = _text(stomp_frame("DISCONNECT", ()))

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        vhost: str,
        subscribe: Subscribe | None = None,
        counted: bool = True,
        on_receive: Callable[[], None] | None = None,
        login: str = "guest",
        passcode: str = "guest",
    ) -> None:
        super().__init__(
            host,
            port,
            path,
            counters,
            subprotocol=SUBPROTOCOL,
            counted=counted,
            on_receive=on_receive,
        )
        self.hello = _text(connect_frame(vhost, login, passcode))
        self.subscription = subscribe
        self.acking = subscribe is not None and subscribe.ack != "auto"
        self.errors: list[str] = []
        self._buf = b""  # the start of a cut frame whose bytes are needed
        self._skipping = False  # inside a MESSAGE whose bytes are not needed: find its NUL

    def opened(self) -> None:
        assert self.transport is not None
        self.transport.write(self.hello)

    # --- the hot path: STOMP frames in the data frames' byte stream

    def payload(self, data: bytes, i: int, end: int) -> None:
        if self._buf:
            z = data.find(b"\x00", i, end)
            if z < 0:
                self._buf += data[i:end]
                return
            whole = self._buf + data[i:z]
            self._buf = b""
            self._got += self._frame(whole, 0, len(whole))
            i = z + 1
        elif self._skipping:
            z = data.find(b"\x00", i, end)
            if z < 0:
                return
            self._skipping = False
            self._got += 1
            i = z + 1
        got = 0
        acking = self.acking
        while i < end:
            c = data[i]
            if c in (0x0A, 0x0D):  # heart-beat EOLs (LF, CR) between frames
                i += 1
                continue
            z = data.find(b"\x00", i, end)
            if c == _M and not acking:
                if z < 0:
                    self._skipping = True
                    break
                got += 1
            elif z < 0:
                self._buf = data[i:end]
                break
            else:
                got += self._frame(data, i, z)
            i = z + 1
        self._got += got

    def _frame(self, data: bytes, i: int, z: int) -> int:
        """A whole frame, ``data[i:z]`` (without its NUL): 1 if it was a MESSAGE, else 0."""
        if data.startswith(b"MESSAGE\n", i):
            if self.acking:
                a = data.find(b"\nack:", i, z)
                if a < 0:
                    self.errors.append("a MESSAGE without an ack header")
                    return 1
                e = data.find(b"\n", a + 5, z)
                self._acks.append(_text(b"ACK\nid:" + data[a + 5 : e] + b"\n\n\x00"))
                self.acks_sent += 1
            return 1
        self._reply(data[i:z])
        return 0

    def _reply(self, frame: bytes) -> None:
        """CONNECTED, RECEIPT and ERROR (rare, off the hot path)."""
        head, _, body = frame.partition(b"\n\n")
        command, *lines = head.replace(b"\r\n", b"\n").split(b"\n")
        if command == b"ERROR":
            why = next((line[8:] for line in lines if line.startswith(b"message:")), b"").decode(
                errors="replace"
            )
            self.errors.append(f"{why}: {body.decode(errors='replace')[:200]}")
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"ERROR {why}"))
        elif self.ready.done():
            return
        elif command == b"CONNECTED":
            if self.subscription is None:
                self.ready.set_result(None)
            else:
                assert self.transport is not None
                self.transport.write(_text(subscribe_frame(self.subscription, "subscribed")))
        elif command == b"RECEIPT":
            self.ready.set_result(None)


class StompPublisher(FramePump, StompClient):
    """Writes one pre-encoded SEND frame, in batches, as fast as flow control and
    ``may_send()`` allow. No receipts: nothing is acknowledged (``acked`` stays 0)."""

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        vhost: str,
        send: bytes,
        batch: int,
        may_send: Callable[[StompPublisher], bool],
        batches_per_pump: int = 64,
    ) -> None:
        super().__init__(host, port, counters, path=path, vhost=vhost, counted=False)
        self._init_pump()
        self.acked = 0
        self.batch_frames = batch
        self.batches_per_pump = batches_per_pump
        self.batch = _text(send) * batch
        self.may_send = may_send

    def next_batch(self) -> bytes:
        return self.batch

    def may_write(self) -> bool:
        return self.may_send(self)
