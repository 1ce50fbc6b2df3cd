"""RFC 7692 permessage-deflate: offer negotiation and the per-connection (de)compressor."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = [
    "DeflateParams",
    "InvalidCompressedData",
    "MessageTooBig",
    "PerMessageDeflate",
    "negotiate",
]

# RFC 7692 section 7.2.1: the sender strips this; the receiver appends it before inflating.
_TAIL = b"\x00\x00\xff\xff"
_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class MessageTooBig(ValueError):
    """The inflated message would exceed the allowed size."""


class InvalidCompressedData(ValueError):
    """The peer sent data that is not a valid DEFLATE stream (raised from ``zlib.error``)."""


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """Negotiated parameters; window bits are what each side actually uses (15 = 32 KiB)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


class PerMessageDeflate:
    """One connection's compressor and decompressor, created lazily."""

    __slots__ = ("_compressor", "_decompressor", "_flush_mode", "_inflate_bits", "params")

    def __init__(self, params: DeflateParams | None = None) -> None:
        self.params = params if params is not None else DeflateParams()
        for bits in (self.params.server_max_window_bits, self.params.client_max_window_bits):
            if not 8 <= bits <= 15:
                raise ValueError("window bits must be between 8 and 15")
        if self.params.server_max_window_bits == 8:
            raise ValueError("zlib cannot compress raw DEFLATE with an 8-bit window")
        # A full flush resets the LZ77 window, so every message can be inflated on its own
        # without paying for a new compressor (zlib allocates ~256 KiB each) per message.
        self._flush_mode = (
            zlib.Z_FULL_FLUSH if self.params.server_no_context_takeover else zlib.Z_SYNC_FLUSH
        )
        # A larger inflate window accepts everything a smaller one does; zlib-based clients
        # asked for 8 bits really compress with 9.
        self._inflate_bits = max(self.params.client_max_window_bits, 9)
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes) -> bytes:
        """Compress one whole message payload (RFC 7692 section 7.2.1)."""
        c = self._compressor
        if c is None:
            c = self._compressor = zlib.compressobj(wbits=-self.params.server_max_window_bits)
        out = c.compress(data) + c.flush(self._flush_mode)
        # Section 7.2.3.6: an empty result is sent as a single 0x00 byte (an empty stored block).
        return out[:-4] or b"\x00"

    def decompress(self, data: bytes, *, max_size: int) -> bytes:
        """Inflate one whole message; raise MessageTooBig past ``max_size`` bytes of output."""
        d = self._decompressor
        if d is None:
            d = zlib.decompressobj(wbits=-self._inflate_bits)
            if not self.params.client_no_context_takeover:
                self._decompressor = d
        try:
            # With max_length = limit + 1, zlib stops early, so a bomb is never inflated whole.
            out = d.decompress(data, max_size + 1)
            if len(out) > max_size:
                raise MessageTooBig("message too big")
            more = d.decompress(_TAIL, max_size + 1 - len(out))
        except zlib.error as exc:
            self._decompressor = None
            raise InvalidCompressedData("invalid compressed data") from exc
        if more:
            out += more
            if len(out) > max_size:
                raise MessageTooBig("message too big")
        if d.eof:
            # The peer ended the DEFLATE stream (BFINAL); the next message starts a new one.
            self._decompressor = None
        return out


def negotiate(offer: str | None) -> tuple[str, PerMessageDeflate] | None:
    """Accept the first acceptable permessage-deflate offer: (response value, codec) or None."""
    if not offer:
        return None
    for element in _parse_extensions(offer):
        if element is None or element[0] != "permessage-deflate":
            continue
        accepted = _accept(element[1])
        if accepted is not None:
            return accepted
    return None


def _accept(params: list[tuple[str, str | None]]) -> tuple[str, PerMessageDeflate] | None:
    """Build the response for one offer, or None to decline it."""
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | None = None
    for key, value in params:
        if key in seen:
            return None
        seen.add(key)
        if key == "server_no_context_takeover" or key == "client_no_context_takeover":
            if value is not None:
                return None
            if key[0] == "s":
                server_nct = True
            else:
                client_nct = True
        elif key == "server_max_window_bits":
            server_bits = _window_bits(value)
            # zlib refuses raw DEFLATE compression with an 8-bit window, and compressing with 9
            # while promising 8 could emit distances the client cannot resolve: decline.
            if server_bits is None or server_bits == 8:
                return None
        elif key == "client_max_window_bits":
            if value is not None:
                client_bits = _window_bits(value)
                if client_bits is None:
                    return None
        else:
            return None
    response = ["permessage-deflate"]
    if server_nct:
        response.append("server_no_context_takeover")
    if client_nct:
        response.append("client_no_context_takeover")
    if server_bits is not None:
        response.append(f"server_max_window_bits={server_bits}")
    if client_bits is not None:
        # Confirming the client's own bound lets us inflate with that (smaller) window.
        response.append(f"client_max_window_bits={client_bits}")
    codec = PerMessageDeflate(
        DeflateParams(
            server_no_context_takeover=server_nct,
            client_no_context_takeover=client_nct,
            server_max_window_bits=server_bits if server_bits is not None else 15,
            client_max_window_bits=client_bits if client_bits is not None else 15,
        )
    )
    return "; ".join(response), codec


def _window_bits(value: str | None) -> int | None:
    """An RFC 7692 window-bits value: decimal 8..15, no leading zero."""
    if value is None or len(value) != 1 + (value[:1] == "1"):
        return None
    if not (value.isascii() and value.isdigit()):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def _is_token(s: str) -> bool:
    return bool(s) and all(ch in _TCHARS for ch in s)


def _split_unquoted(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings (an unclosed quote runs to the end)."""
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for i, ch in enumerate(s):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == sep:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _parse_param_value(raw: str) -> str | None:
    """A token or a quoted string holding a token (RFC 7692 section 7 / RFC 7230)."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            return None
        out: list[str] = []
        escaped = False
        for ch in raw[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                return None
            else:
                out.append(ch)
        if escaped:
            return None
        raw = "".join(out)
    return raw if _is_token(raw) else None


def _parse_extensions(
    header: str,
) -> list[tuple[str, list[tuple[str, str | None]]] | None]:
    """Parse Sec-WebSocket-Extensions; a malformed element becomes None (skipped, not fatal)."""
    result: list[tuple[str, list[tuple[str, str | None]]] | None] = []
    for element in _split_unquoted(header, ","):
        if not element.strip(" \t"):
            continue  # empty list elements are allowed by the HTTP list syntax
        pieces = _split_unquoted(element, ";")
        name = pieces[0].strip(" \t").lower()
        if not _is_token(name):
            result.append(None)
            continue
        params: list[tuple[str, str | None]] = []
        for piece in pieces[1:]:
            key, eq, raw = piece.partition("=")
            key = key.strip(" \t").lower()
            value = _parse_param_value(raw.strip(" \t")) if eq else None
            if not _is_token(key) or (eq and value is None):
                result.append(None)
                break
            params.append((key, value))
        else:
            result.append((name, params))
    return result
