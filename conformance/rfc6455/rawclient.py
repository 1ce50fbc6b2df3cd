"""A tiny, deliberately naive WebSocket client for conformance tests (RFC 6455, RFC 7692).

It does the HTTP/1.1 upgrade by hand, sends frames built byte by byte (so tests can send any
malformed frame they like) and parses what the server sends without hiding anything: every frame
comes back with its header bits, its mask bit and the length encoding the server chose.

Everything that waits, waits on an ``asyncio.Event`` set by the socket's reader task, with a
deadline; nothing sleeps. Bytes the server sent before closing or resetting the TCP connection are
kept and can still be read after the close (asyncio streams and transports lose them when a write
fails or the connection is reset, see ``_Conn``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import struct
import zlib
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

__all__ = [
    "CLOSE",
    "CONT",
    "GUID",
    "OP_BINARY",
    "OP_TEXT",
    "PING",
    "PONG",
    "CloseInfo",
    "ConnectionGone",
    "Frame",
    "HandshakeError",
    "HttpResponse",
    "Message",
    "RawClient",
    "accept_key",
    "assert_closed_with",
    "build_request",
    "check_server_frame",
    "close_payload",
    "deflate",
    "encode_frame",
    "http_exchange",
    "length_field_for",
    "parse_close_payload",
    "parse_extensions",
    "parse_frame",
    "upgrade_headers",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, OP_TEXT, OP_BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DEFAULT_TIMEOUT = 5.0
DEFLATE_TAIL = b"\x00\x00\xff\xff"


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    payload: bytes
    length_field: int  # the 7-bit length field as sent: the length itself, or 126, or 127

    @property
    def is_control(self) -> bool:
        return self.opcode >= 0x8

    def __repr__(self) -> str:
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        bits = "".join(n for n, b in (("1", self.rsv1), ("2", self.rsv2), ("3", self.rsv3)) if b)
        return (
            f"Frame(op={self.opcode:#x}, fin={self.fin}, rsv={bits or '-'}, masked={self.masked}, "
            f"len={len(self.payload)}, payload={p!r})"
        )


def length_field_for(n: int) -> int:
    """The 7-bit length field the RFC requires for a payload of ``n`` bytes (minimal encoding)."""
    if n <= 125:
        return n
    if n <= 0xFFFF:
        return 126
    return 127


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool = True,
    mask_key: bytes | None = None,
    announced_length: int | None = None,
) -> bytes:
    """Build one frame. ``announced_length`` lies about the payload length in the header."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    b0 |= (0x10 if rsv3 else 0) | (opcode & 0x0F)
    n = len(payload) if announced_length is None else announced_length
    mbit = 0x80 if mask else 0
    if n <= 125:
        header = struct.pack("!BB", b0, mbit | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        header = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return header + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return header + key + _mask(payload, key)


def _mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    repeated = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def parse_frame(buf: bytes | bytearray) -> tuple[Frame, int] | None:
    """Parse one frame at the start of ``buf``: (frame, bytes used), or None if incomplete."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    masked = bool(b1 & 0x80)
    lf = b1 & 0x7F
    pos = 2
    if lf == 126:
        if len(buf) < 4:
            return None
        (n,) = struct.unpack_from("!H", buf, 2)
        pos = 4
    elif lf == 127:
        if len(buf) < 10:
            return None
        (n,) = struct.unpack_from("!Q", buf, 2)
        pos = 10
    else:
        n = lf
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key = bytes(buf[pos : pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos : pos + n])
    if masked:
        payload = _mask(payload, key)
    frame = Frame(
        fin=bool(b0 & 0x80),
        rsv1=bool(b0 & 0x40),
        rsv2=bool(b0 & 0x20),
        rsv3=bool(b0 & 0x10),
        opcode=b0 & 0x0F,
        masked=masked,
        payload=payload,
        length_field=lf,
    )
    return frame, pos + n


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


@dataclass(frozen=True)
class CloseInfo:
    code: int | None  # None: the close frame had no body
    reason: bytes
    frame: Frame
    before: tuple[Frame, ...] = ()  # frames skipped by expect_close before this one


def parse_close_payload(frame: Frame) -> CloseInfo:
    if len(frame.payload) >= 2:
        (code,) = struct.unpack_from("!H", frame.payload)
        return CloseInfo(code, frame.payload[2:], frame)
    return CloseInfo(None, frame.payload, frame)


# --------------------------------------------------------------------------- deflate (RFC 7692)


def deflate(data: bytes, compressor: zlib._Compress | None = None, wbits: int = 15) -> bytes:
    """Compress one message for permessage-deflate: raw deflate, sync flush, tail removed.

    Pass the same ``compressor`` to successive calls for context takeover.
    """
    c = compressor if compressor is not None else zlib.compressobj(wbits=-wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(DEFLATE_TAIL)
    return out[: -len(DEFLATE_TAIL)]


def parse_extensions(value: str | None) -> list[tuple[str, dict[str, str | None]]]:
    """``Sec-WebSocket-Extensions`` into [(name, {param: value or None})]."""
    result: list[tuple[str, dict[str, str | None]]] = []
    if not value:
        return result
    for ext in value.split(","):
        parts = [p.strip() for p in ext.split(";")]
        if not parts[0]:
            continue
        params: dict[str, str | None] = {}
        for p in parts[1:]:
            if not p:
                continue
            k, sep, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') if sep else None
        result.append((parts[0].lower(), params))
    return result


# --------------------------------------------------------------------------- connection


class ConnectionGone(Exception):
    """The TCP connection ended before what we waited for arrived."""


class HandshakeError(Exception):
    def __init__(self, message: str, response: HttpResponse | None) -> None:
        super().__init__(message)
        self.response = response


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def header_tokens(self, name: str) -> list[str]:
        v = self.header(name)
        return [t.strip().lower() for t in v.split(",")] if v else []


@dataclass
class Message:
    opcode: int  # OP_TEXT or OP_BINARY
    payload: bytes  # decompressed when it was compressed
    frames: list[Frame] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


class _Conn:
    """A non-blocking socket with a reader task and a writer task.

    Not an asyncio transport on purpose: when a write fails (the server closed and reset the
    connection while we were still sending, which tests provoke all the time), an asyncio
    transport drops the connection at once, losing the bytes the server had sent before, its
    close frame among them. Here a failed write only stops writing; reading goes on until the
    kernel has handed over everything that arrived.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.changed = asyncio.Event()  # set whenever bytes arrive or the read side ends
        self.eof = False  # the peer sent FIN, or the connection was reset
        self.error: OSError | None = None  # why reading ended, if not a clean FIN
        self.write_error: OSError | None = None
        self.lost = asyncio.Event()
        self._out: deque[bytes | None] = deque()  # None: shut down the write side
        self._out_ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_loop()), loop.create_task(self._write_loop())]

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self.sock, 1 << 18)
                if not data:
                    break
                self.buf += data
                self.changed.set()
        except OSError as e:
            self.error = e
        finally:
            self.eof = True
            self.changed.set()
            self.lost.set()

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._out_ready.wait()
            self._out_ready.clear()
            while self._out:
                item = self._out.popleft()
                try:
                    if item is None:
                        self.sock.shutdown(socket.SHUT_WR)
                    else:
                        await loop.sock_sendall(self.sock, item)
                except OSError as e:
                    self.write_error = e
                    self._out.clear()
                    return

    def write(self, data: bytes | None) -> None:
        if self.write_error is None and self.sock.fileno() >= 0:
            self._out.append(data)
            self._out_ready.set()

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.sock.close()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def _host_port(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    if u.scheme not in ("ws", "http"):
        raise ValueError(f"only ws:// URLs are supported here, not {url!r}")
    return u.hostname or "127.0.0.1", u.port or 80


class RawClient:
    """One TCP connection; the HTTP exchange and WebSocket frames both go through it."""

    def __init__(self, conn: _Conn, host: str, port: int) -> None:
        self._proto = conn
        self.host = host
        self.port = port
        self.response: HttpResponse | None = None
        self.extensions: list[tuple[str, dict[str, str | None]]] = []
        self._inflater: zlib._Decompress | None = None

    # ----- opening

    @classmethod
    async def open_tcp(cls, url: str, within: float = DEFAULT_TIMEOUT) -> RawClient:
        host, port = _host_port(url)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, type_, proto, _, addr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.wait_for(loop.sock_connect(sock, addr), within)
        except BaseException:
            sock.close()
            raise
        return cls(_Conn(sock), host, port)

    @classmethod
    async def connect(
        cls,
        url: str,
        path: str = "/topics/echo",
        *,
        extensions: str | None = None,
        protocols: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        within: float = DEFAULT_TIMEOUT,
    ) -> RawClient:
        """Open a connection and complete the upgrade; raise HandshakeError unless it is valid."""
        client = await cls.open_tcp(url, within)
        try:
            await client.handshake(
                path,
                extensions=extensions,
                protocols=protocols,
                extra_headers=extra_headers,
                within=within,
            )
        except BaseException:
            await client.aclose()
            raise
        return client

    async def handshake(
        self,
        path: str,
        *,
        extensions: str | None = None,
        protocols: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        within: float = DEFAULT_TIMEOUT,
    ) -> HttpResponse:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [
            ("Host", f"{self.host}:{self.port}"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if extensions is not None:
            headers.append(("Sec-WebSocket-Extensions", extensions))
        if protocols is not None:
            headers.append(("Sec-WebSocket-Protocol", protocols))
        headers += extra_headers or []
        self.send_raw(build_request("GET", path, headers))
        resp = await self.read_response(within, read_body=False)
        self.response = resp
        if resp.status != 101:
            raise HandshakeError(f"expected 101, got {resp.status} {resp.reason}", resp)
        if "websocket" not in resp.header_tokens("Upgrade"):
            raise HandshakeError(f"bad Upgrade header: {resp.header('Upgrade')!r}", resp)
        if "upgrade" not in resp.header_tokens("Connection"):
            raise HandshakeError(f"bad Connection header: {resp.header('Connection')!r}", resp)
        if resp.header("Sec-WebSocket-Accept") != accept_key(key):
            raise HandshakeError(
                f"bad Sec-WebSocket-Accept {resp.header('Sec-WebSocket-Accept')!r}, "
                f"expected {accept_key(key)!r}",
                resp,
            )
        self.extensions = parse_extensions(resp.header("Sec-WebSocket-Extensions"))
        if self.deflate_params is not None:
            self._inflater = zlib.decompressobj(wbits=-15)
        return resp

    @property
    def deflate_params(self) -> dict[str, str | None] | None:
        for name, params in self.extensions:
            if name == "permessage-deflate":
                return params
        return None

    # ----- low-level I/O

    @property
    def closed(self) -> bool:
        """The peer closed the TCP connection (FIN or reset), or we did."""
        return self._proto.eof

    def send_raw(self, data: bytes) -> None:
        """Queue bytes for sending. Errors are kept, not raised: the server may legitimately be
        gone already, and tests look at what it sent before."""
        self._proto.write(data)

    def write_eof(self) -> None:
        """Half-close: send FIN after everything queued so far."""
        self._proto.write(None)

    async def _wait(self, deadline: float) -> None:
        """Wait until more bytes arrive or the connection ends, or raise TimeoutError."""
        p = self._proto
        if p.eof:
            raise ConnectionGone("TCP connection closed by the server")
        p.changed.clear()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        await asyncio.wait_for(p.changed.wait(), remaining)

    def _deadline(self, within: float) -> float:
        return asyncio.get_running_loop().time() + within

    async def read_response(
        self, within: float = DEFAULT_TIMEOUT, *, read_body: bool = True
    ) -> HttpResponse:
        """Read an HTTP response head (and its body, per Content-Length or until EOF)."""
        deadline = self._deadline(within)
        buf = self._proto.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            try:
                await self._wait(deadline)
            except ConnectionGone:
                msg = f"connection closed mid-response: {bytes(buf)!r}"
                raise HandshakeError(msg, None) from None
        head = bytes(buf[:end])
        del buf[: end + 4]
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status_s, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not status_s.isdigit():
            raise HandshakeError(f"not an HTTP response: {head!r}", None)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = HttpResponse(int(status_s), reason, headers, b"", head)
        if read_body and resp.status != 101:
            length = resp.header("Content-Length")
            with contextlib.suppress(TimeoutError, ConnectionGone):
                while length is None or len(buf) < int(length):
                    await self._wait(deadline)
            n = len(buf) if length is None else int(length)
            resp.body = bytes(buf[:n])
            del buf[:n]
        return resp

    # ----- frames

    def send_frame(self, opcode: int, payload: bytes = b"", **kw: object) -> None:
        self.send_raw(encode_frame(opcode, payload, **kw))  # type: ignore[arg-type]

    def send_text(self, text: str | bytes, *, fin: bool = True) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, fin=fin)

    def send_binary(self, data: bytes, *, fin: bool = True) -> None:
        self.send_frame(OP_BINARY, data, fin=fin)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> None:
        self.send_frame(CLOSE, close_payload(code, reason))

    def send_compressed(
        self,
        opcode: int,
        data: bytes,
        compressor: zlib._Compress | None = None,
        *,
        fragments: int = 1,
    ) -> None:
        """Send a permessage-deflate message, optionally split into ``fragments`` frames."""
        body = deflate(data, compressor)
        if fragments <= 1:
            self.send_frame(opcode, body, rsv1=True)
            return
        step = max(1, -(-len(body) // fragments))
        chunks = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            # RSV1 only on the first frame of the message (RFC 7692 section 6.1).
            self.send_frame(opcode if i == 0 else CONT, chunk, fin=last, rsv1=i == 0)

    async def recv_frame(self, within: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame, exactly as sent. Raises ConnectionGone or TimeoutError."""
        deadline = self._deadline(within)
        while True:
            parsed = parse_frame(self._proto.buf)
            if parsed is not None:
                frame, used = parsed
                del self._proto.buf[:used]
                return frame
            if self._proto.eof and self._proto.buf:
                raise ConnectionGone(f"TCP closed inside a frame: {bytes(self._proto.buf[:64])!r}")
            await self._wait(deadline)

    async def recv_message(self, within: float = DEFAULT_TIMEOUT) -> Message:
        """The next data message, reassembled and decompressed.

        Pings are answered, pongs skipped. A close frame raises AssertionError with its code.
        """
        deadline = self._deadline(within)
        frames: list[Frame] = []
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            f = await self.recv_frame(max(remaining, 0.001))
            if f.opcode == PING:
                self.send_frame(PONG, f.payload)
                continue
            if f.opcode == PONG:
                continue
            if f.opcode == CLOSE:
                info = parse_close_payload(f)
                raise AssertionError(
                    f"server closed instead of sending a message: code={info.code} "
                    f"reason={info.reason!r} (frames so far: {frames})"
                )
            frames.append(f)
            if f.fin:
                break
        return Message(frames[0].opcode, self._decode(frames), frames)

    def _decode(self, frames: list[Frame]) -> bytes:
        data = b"".join(f.payload for f in frames)
        if frames[0].rsv1:
            if self._inflater is None:
                raise AssertionError(f"server set RSV1 without permessage-deflate: {frames}")
            return self._inflater.decompress(data + DEFLATE_TAIL)
        return data

    async def expect_close(self, within: float = DEFAULT_TIMEOUT) -> CloseInfo:
        """Read until the server's close frame; data, ping and pong frames before it are skipped.

        Raises AssertionError if the TCP connection ends without a close frame.
        """
        deadline = self._deadline(within)
        skipped: list[Frame] = []
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                f = await self.recv_frame(max(remaining, 0.001))
            except ConnectionGone as e:
                raise AssertionError(
                    f"server closed TCP without a close frame ({e}); frames before: {skipped}"
                ) from None
            except TimeoutError:
                raise AssertionError(
                    f"no close frame within {within} s; frames before: {skipped}"
                ) from None
            if f.opcode == CLOSE:
                info = parse_close_payload(f)
                return CloseInfo(info.code, info.reason, f, tuple(skipped))
            skipped.append(f)

    async def wait_tcp_closed(self, within: float = DEFAULT_TIMEOUT) -> bytes:
        """Wait until the server closes TCP; return whatever it sent meanwhile."""
        deadline = self._deadline(within)
        while not self._proto.eof:
            try:
                await self._wait(deadline)
            except ConnectionGone:
                break
        data = bytes(self._proto.buf)
        self._proto.buf.clear()
        return data

    async def aclose(self) -> None:
        """Drop the connection (no closing handshake) and release the socket."""
        await self._proto.close()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def build_request(method: str, path: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def http_exchange(url: str, request: bytes, within: float = DEFAULT_TIMEOUT) -> HttpResponse:
    """Send a hand-written HTTP request; return the response with its body."""
    client = await RawClient.open_tcp(url, within)
    try:
        client.send_raw(request)
        return await client.read_response(within)
    finally:
        await client.aclose()


def upgrade_headers(
    host: str, key: str | None = None, version: str = "13"
) -> list[tuple[str, str]]:
    """The usual upgrade headers, to build deliberately broken requests from."""
    headers = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if key is not None:
        headers.append(("Sec-WebSocket-Key", key))
    headers.append(("Sec-WebSocket-Version", version))
    return headers


# --------------------------------------------------------------------------- checks used by tests


def check_server_frame(frame: Frame, *, deflate: bool = False) -> None:
    """What every frame from a server must look like (RFC 6455 section 5)."""
    assert not frame.masked, f"server frames must not be masked (5.1): {frame}"
    assert not frame.rsv2, f"RSV2 set without an extension: {frame}"
    assert not frame.rsv3, f"RSV3 set without an extension: {frame}"
    if frame.rsv1:
        assert deflate, f"RSV1 set but permessage-deflate was not negotiated: {frame}"
        assert frame.opcode in (OP_TEXT, OP_BINARY), f"RSV1 only on a first frame: {frame}"
    assert frame.opcode in (CONT, OP_TEXT, OP_BINARY, CLOSE, PING, PONG), frame
    if frame.is_control:
        assert frame.fin, f"control frames must not be fragmented (5.5): {frame}"
        assert len(frame.payload) <= 125, f"control frame payload > 125 bytes (5.5): {frame}"
    assert frame.length_field == length_field_for(len(frame.payload)), (
        f"length not in the minimal encoding (5.2): field {frame.length_field} "
        f"for {len(frame.payload)} bytes"
    )


async def assert_closed_with(
    client: RawClient, *codes: int | None, within: float = DEFAULT_TIMEOUT
) -> CloseInfo:
    """The server sends a close frame with one of ``codes``, then closes TCP.

    We answer its close frame as a client should (section 5.5.1), so a server that waits for
    the reply before closing TCP passes as well as one that closes at once (section 7.1.1).
    """
    info = await client.expect_close(within)
    assert info.code in codes, (
        f"expected close code {' or '.join(map(str, codes))}, "
        f"got {info.code} reason={info.reason!r}"
    )
    check_server_frame(info.frame)
    assert len(info.frame.payload) != 1, "close payload of 1 byte (5.5.1)"
    if info.code is not None:
        assert info.code not in (1005, 1006, 1015), f"{info.code} must never be sent (7.4.1)"
        info.reason.decode("utf-8")  # the reason must be UTF-8 (5.5.1)
    client.send_close(info.code if info.code is not None else None)
    await client.wait_tcp_closed(within)
    assert client.closed, f"server did not close TCP within {within} s after closing handshake"
    return info
