"""Sans-I/O RFC 6455 server-side codec: client bytes in, events out; messages in, frames out."""

from __future__ import annotations

import codecs
import enum
import struct
from dataclasses import dataclass
from typing import TypeAlias

from broker.transport.deflate import InvalidCompressedData, MessageTooBig, PerMessageDeflate
from broker.transport.mask import apply_mask

__all__ = [
    "BinaryMessage",
    "CloseCode",
    "CloseReceived",
    "ConnectionState",
    "Event",
    "Opcode",
    "Ping",
    "Pong",
    "ProtocolFailure",
    "ServerConnection",
    "TextMessage",
    "encode_frame",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 section 7.4 and the IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class ConnectionState(enum.Enum):
    """OPEN; CLOSING: our close is sent, the peer's awaited; CLOSED: done (or failed)."""

    OPEN = enum.auto()
    CLOSING = enum.auto()
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A whole text message; ``data`` is validated UTF-8, kept as bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A whole binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping from the peer; the matching pong is already queued."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong from the peer."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame; ``code`` is 1005 when it had no body."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolFailure:
    """The peer broke the protocol; our close frame is queued: flush it, then drop TCP."""

    code: int
    reason: str


Event: TypeAlias = TextMessage | BinaryMessage | Ping | Pong | CloseReceived | ProtocolFailure

_OPEN = ConnectionState.OPEN
_CLOSING = ConnectionState.CLOSING
_CLOSED = ConnectionState.CLOSED

_unpack_u16 = struct.Struct("!H").unpack_from
_unpack_u64 = struct.Struct("!Q").unpack_from
_pack_u16_hdr = struct.Struct("!BBH").pack
_pack_u64_hdr = struct.Struct("!BBQ").pack
_pack_close_code = struct.Struct("!H").pack

# Payloads at least this long are unmasked through a memoryview: no intermediate slice copy.
# Below it, slicing bytes is cheaper than creating a view (measured).
_VIEW_THRESHOLD = 4096

# Every 2-byte header for payloads < 126 bytes, per first byte, built on first use: the common
# case of encode_frame is then one dict lookup and one concatenation.
_SMALL_HEADERS: dict[int, tuple[bytes, ...]] = {}


def _small_headers(b0: int) -> tuple[bytes, ...]:
    headers = _SMALL_HEADERS[b0] = tuple(bytes((b0, n)) for n in range(126))
    return headers


for _b0 in (0x81, 0x82, 0x88, 0x89, 0x8A, 0xC1, 0xC2):
    _small_headers(_b0)


def encode_frame(opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """Build one unmasked server-to-client frame."""
    b0 = opcode | 0x80 if fin else opcode
    if rsv1:
        b0 |= 0x40
    n = len(payload)
    if opcode >= 8 and (n > 125 or not fin):
        raise ValueError("control frames must be final and carry at most 125 bytes")
    if n < 126:
        headers = _SMALL_HEADERS.get(b0)
        if headers is None:
            headers = _small_headers(b0)
        return headers[n] + payload
    if n < 65536:
        return _pack_u16_hdr(b0, 126, n) + payload
    return _pack_u64_hdr(b0, 127, n) + payload


def _valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` (RFC 6455 section 7.4; 1004-1006, 1015 are reserved)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_frame(code: int, reason: str) -> bytes:
    """A close frame; codes that must never be sent (1005, 1006, 1015) give an empty body."""
    if code in (1005, 1006, 1015):
        return b"\x88\x00"
    raw = reason.encode("utf-8")
    if len(raw) > 123:
        # Cut at 123 bytes, then drop a trailing partial character so the reason stays UTF-8.
        raw = raw[:123].decode("utf-8", "ignore").encode("utf-8")
    return encode_frame(Opcode.CLOSE, _pack_close_code(code) + raw)


def _compressed_limit(max_size: int) -> int:
    """Largest compressed payload that can hold ``max_size`` bytes (zlib's deflateBound)."""
    return max_size + (max_size >> 12) + (max_size >> 14) + (max_size >> 25) + 13


class _Fail(Exception):
    """Internal: abort parsing with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def _check_utf8_chunk(decoder: codecs.IncrementalDecoder, chunk: bytes) -> None:
    """Feed one fragment of a text message; raise _Fail(1007) as soon as it is invalid."""
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError:
        raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8") from None
    pending = decoder.getstate()[0]
    # CPython keeps ED A0..BF (a UTF-16 surrogate) pending until its third byte; it can never
    # become valid, so fail now.
    if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8")


class ServerConnection:
    """One WebSocket connection, server side: parses client frames, builds server frames."""

    __slots__ = (
        "_buf",
        "_deflate",
        "_frag_compressed",
        "_frag_limit",
        "_frag_opcode",
        "_frag_parts",
        "_frag_size",
        "_max_size",
        "_max_wire",
        "_out",
        "_state",
        "_utf8",
    )

    def __init__(
        self, *, max_message_size: int = 1 << 20, deflate: PerMessageDeflate | None = None
    ) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        self._state = _OPEN
        self._max_size = max_message_size
        self._max_wire = _compressed_limit(max_message_size)
        self._deflate = deflate
        self._buf = bytearray()
        self._out = bytearray()
        # State of a data message spanning several frames (opcode 0: none open).
        self._frag_opcode = 0
        self._frag_compressed = False
        self._frag_limit = 0
        self._frag_size = 0
        self._frag_parts: list[bytes] = []
        self._utf8: codecs.IncrementalDecoder | None = None

    @property
    def state(self) -> ConnectionState:
        """The closing handshake's progress."""
        return self._state

    @property
    def compressed(self) -> bool:
        """True when permessage-deflate is on, so messages must be framed per connection."""
        return self._deflate is not None

    def lone_binary(self, data: bytes) -> bytes | None:
        """The payload if `data` is exactly one whole, short, uncompressed binary frame; else None.

        The common case of a small-packet protocol (one MQTT PUBLISH per frame), taken without
        an event object; None means "use receive_data", which handles everything.
        """
        n = len(data)
        if n < 6 or n > 131 or self._buf or self._frag_opcode or self._state is not _OPEN:
            return None
        # FIN + binary, no RSV bits; masked; a 7-bit length that ends the chunk exactly.
        if data[0] != 0x82 or data[1] != 0x80 | (n - 6) or n - 6 > self._max_size:
            return None
        return apply_mask(data[6:], data[2:6])

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse any split of the client's byte stream into events."""
        if self._state is _CLOSED:
            return []
        buf = self._buf
        src: bytes | bytearray
        if buf:
            buf += data
            src = buf
        else:
            # Nothing pending: parse the caller's bytes in place, keep only an incomplete tail.
            src = data
        end = len(src)
        pos = 0
        events: list[Event] = []
        append = events.append
        rsv1_ok = self._deflate is not None
        try:
            while end - pos >= 2:
                b0 = src[pos]
                b1 = src[pos + 1]
                if b0 == 0x82 and 0x80 <= b1 < 0xFE and not self._frag_opcode:
                    # Fast path: a short, whole, uncompressed binary message, the usual frame
                    # of packet protocols; it needs none of the checks below.
                    length = b1 & 0x7F
                    if length > self._max_size:
                        raise _Fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                    start = pos + 6
                    stop = start + length
                    if stop > end:
                        break
                    append(BinaryMessage(apply_mask(src[start:stop], src[pos + 2 : start])))
                    pos = stop
                    continue
                if not b1 & 0x80:
                    raise _Fail(CloseCode.PROTOCOL_ERROR, "client frame not masked")
                length = b1 & 0x7F
                if length < 126:
                    mask_at = pos + 2
                elif length == 126:
                    if end - pos < 4:
                        break
                    length = _unpack_u16(src, pos + 2)[0]
                    mask_at = pos + 4
                else:
                    if end - pos < 10:
                        break
                    length = _unpack_u64(src, pos + 2)[0]
                    if length >> 63:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "invalid frame length")
                    mask_at = pos + 10
                opcode = b0 & 0x0F
                # Validate the header before waiting for its payload: fail fast, buffer little.
                if b0 & 0x70 and (b0 & 0x30 or not rsv1_ok or not 1 <= opcode <= 2):
                    raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved bits set")
                if opcode >= 8:
                    if opcode > 10:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "unknown opcode")
                    if not b0 & 0x80:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
                    if length > 125:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "control frame too long")
                elif opcode == 0:
                    if not self._frag_opcode:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
                    if self._frag_size + length > self._frag_limit:
                        raise _Fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                elif opcode <= 2:
                    if self._frag_opcode:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, "expected continuation frame")
                    if length > (self._max_wire if b0 & 0x40 else self._max_size):
                        raise _Fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                else:
                    raise _Fail(CloseCode.PROTOCOL_ERROR, "unknown opcode")
                start = mask_at + 4
                stop = start + length
                if stop > end:
                    break
                if length < _VIEW_THRESHOLD:
                    payload = apply_mask(src[start:stop], src[mask_at:start])
                else:
                    with memoryview(src) as view:
                        payload = apply_mask(view[start:stop], src[mask_at:start])
                pos = stop

                if opcode >= 8:
                    if opcode == 9:
                        # RFC 6455 5.5.2: answer unless the peer's close was received (then we
                        # are CLOSED and never get here); a pong after our close is allowed.
                        self._out += encode_frame(Opcode.PONG, payload)
                        append(Ping(payload))
                    elif opcode == 10:
                        append(Pong(payload))
                    else:
                        append(self._on_close(payload))
                        buf.clear()
                        return events
                elif opcode:
                    if b0 & 0xC0 == 0x80:
                        # Fast path: a whole uncompressed message in one frame.
                        if opcode == 1:
                            if not payload.isascii():
                                try:
                                    payload.decode("utf-8")
                                except UnicodeDecodeError:
                                    raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8") from None
                            append(TextMessage(payload))
                        else:
                            append(BinaryMessage(payload))
                    else:
                        self._start_message(opcode, bool(b0 & 0x40), payload)
                        if b0 & 0x80:
                            append(self._finish_message())
                else:
                    self._frag_size += length
                    self._frag_parts.append(payload)
                    if self._utf8 is not None:
                        _check_utf8_chunk(self._utf8, payload)
                    if b0 & 0x80:
                        append(self._finish_message())
        except _Fail as exc:
            self._out += self.fail(exc.code, exc.reason)
            append(ProtocolFailure(exc.code, exc.reason))
            return events
        if src is buf:
            if pos:
                # Deleting from the front of a bytearray only moves its start: no copy.
                del buf[:pos]
        elif pos < end:
            buf += memoryview(data)[pos:]
        return events

    def _start_message(self, opcode: int, compressed: bool, payload: bytes) -> None:
        self._frag_opcode = opcode
        self._frag_compressed = compressed
        self._frag_limit = self._max_wire if compressed else self._max_size
        self._frag_size = len(payload)
        self._frag_parts = [payload]
        if opcode == 1 and not compressed:
            self._utf8 = decoder = _utf8_decoder()
            _check_utf8_chunk(decoder, payload)

    def _finish_message(self) -> TextMessage | BinaryMessage:
        parts = self._frag_parts
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        text = self._frag_opcode == 1
        decoder = self._utf8
        self._frag_opcode = 0
        self._frag_parts = []
        self._frag_size = 0
        self._utf8 = None
        if self._frag_compressed:
            assert self._deflate is not None  # RSV1 is only accepted with deflate on
            try:
                data = self._deflate.decompress(data, max_size=self._max_size)
            except MessageTooBig:
                raise _Fail(CloseCode.MESSAGE_TOO_BIG, "message too big") from None
            except InvalidCompressedData:
                raise _Fail(CloseCode.INVALID_DATA, "invalid compressed data") from None
            if text and not data.isascii():
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8") from None
        elif decoder is not None:
            try:
                decoder.decode(b"", True)
            except UnicodeDecodeError:
                raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8") from None
        return TextMessage(data) if text else BinaryMessage(data)

    def _on_close(self, payload: bytes) -> CloseReceived:
        n = len(payload)
        if n == 0:
            code = 1005
            reason = ""
        elif n == 1:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "invalid close frame")
        else:
            code = payload[0] << 8 | payload[1]
            if not _valid_close_code(code):
                raise _Fail(CloseCode.PROTOCOL_ERROR, "invalid close code")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(CloseCode.INVALID_DATA, "invalid UTF-8 in close reason") from None
        if self._state is _OPEN:
            self._out += b"\x88\x00" if n == 0 else encode_frame(Opcode.CLOSE, payload[:2])
        self._closed()
        return CloseReceived(code, reason)

    def _closed(self) -> None:
        self._state = _CLOSED
        self._buf.clear()
        self._frag_opcode = 0
        self._frag_parts = []
        self._utf8 = None

    def data_to_send(self) -> bytes:
        """Pop what the codec queued on its own (pongs, close echoes, failure closes)."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def send_message(self, data: bytes, *, text: bool) -> bytes:
        """One complete data frame (compressed when deflate is on); b"" unless OPEN."""
        if self._state is not _OPEN:
            return b""
        opcode = Opcode.TEXT if text else Opcode.BINARY
        if self._deflate is not None:
            return encode_frame(opcode, self._deflate.compress(data), rsv1=True)
        return encode_frame(opcode, data)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping frame (payload at most 125 bytes); b"" unless OPEN."""
        if self._state is not _OPEN:
            return b""
        return encode_frame(Opcode.PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """An unsolicited pong frame (payload at most 125 bytes); b"" unless OPEN."""
        if self._state is not _OPEN:
            return b""
        return encode_frame(Opcode.PONG, payload)

    def send_close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start the closing handshake (OPEN -> CLOSING); b"" if not OPEN."""
        if self._state is not _OPEN:
            return b""
        if code != 1005 and not _valid_close_code(code):
            raise ValueError(f"close code {code} cannot be sent")
        self._state = _CLOSING
        return _close_frame(code, reason)

    def fail(self, code: int, reason: str) -> bytes:
        """Fail the connection: state -> CLOSED; the close frame to send (b"" if already sent)."""
        state = self._state
        self._closed()
        # While CLOSING our close frame is already out; RFC 6455 allows only one.
        return _close_frame(code, reason) if state is _OPEN else b""
