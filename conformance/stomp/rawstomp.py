"""STOMP over :class:`conformance.rfc6455.rawclient.RawClient`: any bytes in any WebSocket frames,
and every frame that comes back with the opcode of the WebSocket message that carried it.

For codec-level and bad-input tests. It hides nothing: no automatic heart-beats, receipts or
acks. Every wait is on the socket reader's event with a deadline (RawClient), never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from conformance.rfc6455.rawclient import (
    CLOSE,
    CONT,
    OP_BINARY,
    OP_TEXT,
    PING,
    PONG,
    ConnectionGone,
    RawClient,
    parse_close_payload,
)
from conformance.stomp.frames import HEARTBEAT, Frame, FrameReader, Headers, encode

__all__ = ["TIMEOUT", "Closed", "RawStomp", "ServerClosed", "open_raw"]

TIMEOUT = 5.0


@dataclass
class Closed:
    """How the server ended the connection: a close frame (code, reason) or TCP alone."""

    code: int | None
    reason: str
    close_frame: bool


class ServerClosed(AssertionError):
    """The server closed while a frame was expected."""


class RawStomp:
    """One WebSocket connection; STOMP frames are built with :func:`frames.encode`."""

    def __init__(self, client: RawClient, version: str = "1.2") -> None:
        self.ws = client
        self.reader = FrameReader(version, keep_heartbeats=True)
        self.frames: deque[Frame] = deque()
        self.closed: Closed | None = None
        self._fragments: list[bytes] = []
        self._opcode: int | None = None

    @property
    def subprotocol(self) -> str | None:
        assert self.ws.response is not None
        return self.ws.response.header("Sec-WebSocket-Protocol")

    @property
    def version(self) -> str:
        return self.reader.version

    @version.setter
    def version(self, value: str) -> None:
        self.reader.version = value

    # ----- sending

    def send_bytes(self, data: bytes | str, *, binary: bool = False) -> None:
        """``data`` as one WebSocket message (text frame unless ``binary``)."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self.ws.send_frame(OP_BINARY if binary else OP_TEXT, payload)

    def send_fragments(self, *parts: bytes, binary: bool = False) -> None:
        """One WebSocket message split into frames at the given parts."""
        for i, part in enumerate(parts):
            op = (OP_BINARY if binary else OP_TEXT) if i == 0 else CONT
            self.ws.send_frame(op, part, fin=i == len(parts) - 1)

    def send(
        self,
        command: str,
        headers: Headers | None = None,
        body: bytes | str = b"",
        *,
        binary: bool = False,
        **kw: object,
    ) -> None:
        kw.setdefault("version", self.version)
        self.send_bytes(encode(command, headers, body, **kw), binary=binary)  # type: ignore[arg-type]

    # ----- receiving

    async def _read_message(self, deadline: float) -> None:
        """Read WebSocket frames until one whole data message has been fed to the reader."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = max(deadline - loop.time(), 0.001)
            try:
                f = await self.ws.recv_frame(remaining)
            except ConnectionGone:
                if self.closed is None:
                    self.closed = Closed(None, "", close_frame=False)
                raise
            if f.opcode == PING:
                self.ws.send_frame(PONG, f.payload)
                continue
            if f.opcode == PONG:
                continue
            if f.opcode == CLOSE:
                info = parse_close_payload(f)
                self.closed = Closed(info.code, info.reason.decode("utf-8", "replace"), True)
                with contextlib.suppress(Exception):
                    self.ws.send_close(info.code)
                raise ConnectionGone(f"close frame {info.code} {info.reason!r}")
            if f.opcode != CONT:
                self._opcode = f.opcode
            self._fragments.append(f.payload)
            if f.fin:
                data = b"".join(self._fragments)
                self._fragments.clear()
                self.frames.extend(self.reader.feed(data, self._opcode))
                return

    async def next_frame(self, within: float = TIMEOUT, *, heartbeats: bool = False) -> Frame:
        """The next frame (heart-beats skipped unless asked for). ServerClosed if the server
        closes first, TimeoutError if nothing comes in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            while self.frames:
                f = self.frames.popleft()
                if f is HEARTBEAT and not heartbeats:
                    continue
                return f
            try:
                await self._read_message(deadline)
            except ConnectionGone:
                raise ServerClosed(f"server closed: {self.closed}") from None

    async def expect(self, command: str, within: float = TIMEOUT) -> Frame:
        f = await self.next_frame(within)
        assert f.command == command, f"expected {command}, got {f!r}"
        return f

    async def expect_receipt(
        self, receipt_id: str, within: float = TIMEOUT, *, skip: tuple[str, ...] = ()
    ) -> Frame:
        """The RECEIPT for ``receipt_id`` next (frames of the ``skip`` commands may come first)."""
        while True:
            f = await self.next_frame(within)
            if f.command not in skip:
                break
        assert f.command == "RECEIPT", f"expected RECEIPT, got {f!r}"
        assert f.get("receipt-id") == receipt_id, f"receipt for {receipt_id!r} expected: {f!r}"
        return f

    async def expect_closed(self, within: float = TIMEOUT) -> tuple[list[Frame], Closed]:
        """Read until the server closes; the frames before the close (heart-beats left out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        before: list[Frame] = []
        while True:
            before.extend(f for f in self.frames if f is not HEARTBEAT)
            self.frames.clear()
            if self.closed is not None:
                await self.ws.wait_tcp_closed(max(deadline - loop.time(), 0.001))
                return before, self.closed
            try:
                await self._read_message(deadline)
            except ConnectionGone:
                continue
            except TimeoutError:
                raise AssertionError(
                    f"the server did not close within {within} s; frames: {before}"
                ) from None

    async def expect_error_and_close(
        self, within: float = TIMEOUT, *, close_required: bool = True
    ) -> Frame:
        """An ERROR frame, and (if ``close_required``) the connection closed right after it."""
        f = await self.next_frame(within)
        assert f.command == "ERROR", f"expected ERROR, got {f!r}"
        assert f.get("message"), f"ERROR without a message header: {f!r}"
        if close_required:
            after, _ = await self.expect_closed(within)
            assert not after, f"frames after ERROR: {after}"
        return f

    async def expect_nothing(self, within: float) -> None:
        """A bounded wait that must end without a frame (prefer a receipt as a barrier)."""
        with contextlib.suppress(TimeoutError):
            f = await self.next_frame(within)
            raise AssertionError(f"unexpected frame {f!r}")

    # ----- session helpers

    async def connect(
        self,
        version: str | None = "1.2",
        headers: Headers | None = None,
        *,
        command: str = "CONNECT",
        host: str | None = "localhost",
    ) -> Frame:
        """CONNECT (``accept-version`` unless ``version`` is None) and expect CONNECTED."""
        hdrs: list[tuple[str, str]] = []
        if version is not None:
            hdrs.append(("accept-version", version))
        if host is not None:
            hdrs.append(("host", host))
        if isinstance(headers, Mapping):
            hdrs += list(headers.items())
        elif headers is not None:
            hdrs += list(headers)
        self.send(command, hdrs)
        f = await self.expect("CONNECTED")
        self.version = f.get("version") or "1.0"
        return f

    async def subscribe(
        self, destination: str, sub_id: str = "s1", ack: str = "auto", **headers: str
    ) -> None:
        """SUBSCRIBE and wait for its RECEIPT."""
        rid = f"sub-{sub_id}"
        hdrs = {"destination": destination, "id": sub_id, "ack": ack, "receipt": rid, **headers}
        self.send("SUBSCRIBE", hdrs)
        await self.expect_receipt(rid)

    async def aclose(self) -> None:
        await self.ws.aclose()


@contextlib.asynccontextmanager
async def open_raw(
    url: str, path: str, protocols: str | None = "v12.stomp", *, version: str = "1.2"
) -> AsyncIterator[RawStomp]:
    """A RawStomp on ``url`` + ``path`` offering ``protocols``, closed at the end."""
    client = await RawClient.connect(url, path, protocols=protocols)
    conn = RawStomp(client, version)
    try:
        yield conn
    finally:
        await conn.aclose()
