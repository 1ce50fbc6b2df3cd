"""MQTT 5.0 properties (section 2.2.2): the table, and the primitive field encodings they share."""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from broker.subprotocols.mqtt.packets import NO_PROPERTIES, PacketType, Properties, ReasonCode

__all__ = [
    "WILL_PROPERTIES",
    "DecodeError",
    "decode_binary",
    "decode_properties",
    "decode_string",
    "decode_vbi",
    "encode_binary",
    "encode_properties",
    "encode_string",
    "encode_vbi",
    "is_empty",
]

# Context of the will properties inside a CONNECT payload; packet contexts are the packet types.
WILL_PROPERTIES = 0

MAX_VBI = 268_435_455

_MALFORMED = ReasonCode.MALFORMED_PACKET
_PROTOCOL_ERROR = ReasonCode.PROTOCOL_ERROR

_pack_u16 = struct.Struct("!H").pack
_pack_u32 = struct.Struct("!I").pack
_unpack_u32 = struct.Struct("!I").unpack_from


class DecodeError(Exception):
    """Internal: the packet being parsed breaks the protocol; becomes a ProtocolViolation."""

    def __init__(self, reason_code: int, message: str) -> None:
        super().__init__(reason_code, message)
        self.reason_code = reason_code
        self.message = message


# Data types (section 1.5).
_BYTE = 0
_U16 = 1
_U32 = 2
_VBI = 3
_STR = 4
_BIN = 5
_PAIR = 6


class _Prop(NamedTuple):
    id: int
    name: str  # the Properties field
    kind: int
    contexts: int  # bit n set: allowed in packet type n (bit 0: will properties)
    lo: int  # allowed integer range; anything outside is a Protocol Error
    hi: int


def _mask(*contexts: int) -> int:
    mask = 0
    for c in contexts:
        mask |= 1 << c
    return mask


_P = PacketType
_W = WILL_PROPERTIES
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF

# Section 2.2.2.2, table 2-4. The bounds encode the "It is a Protocol Error to ..." value rules.
_TABLE: tuple[_Prop, ...] = (
    _Prop(0x01, "payload_format_indicator", _BYTE, _mask(_P.PUBLISH, _W), 0, 1),
    _Prop(0x02, "message_expiry_interval", _U32, _mask(_P.PUBLISH, _W), 0, _U32_MAX),
    _Prop(0x03, "content_type", _STR, _mask(_P.PUBLISH, _W), 0, 0),
    _Prop(0x08, "response_topic", _STR, _mask(_P.PUBLISH, _W), 0, 0),
    _Prop(0x09, "correlation_data", _BIN, _mask(_P.PUBLISH, _W), 0, 0),
    _Prop(0x0B, "subscription_identifiers", _VBI, _mask(_P.PUBLISH, _P.SUBSCRIBE), 1, MAX_VBI),
    _Prop(
        0x11,
        "session_expiry_interval",
        _U32,
        _mask(_P.CONNECT, _P.CONNACK, _P.DISCONNECT),
        0,
        _U32_MAX,
    ),
    _Prop(0x12, "assigned_client_identifier", _STR, _mask(_P.CONNACK), 0, 0),
    _Prop(0x13, "server_keep_alive", _U16, _mask(_P.CONNACK), 0, _U16_MAX),
    _Prop(0x15, "authentication_method", _STR, _mask(_P.CONNECT, _P.CONNACK, _P.AUTH), 0, 0),
    _Prop(0x16, "authentication_data", _BIN, _mask(_P.CONNECT, _P.CONNACK, _P.AUTH), 0, 0),
    _Prop(0x17, "request_problem_information", _BYTE, _mask(_P.CONNECT), 0, 1),
    _Prop(0x18, "will_delay_interval", _U32, _mask(_W), 0, _U32_MAX),
    _Prop(0x19, "request_response_information", _BYTE, _mask(_P.CONNECT), 0, 1),
    _Prop(0x1A, "response_information", _STR, _mask(_P.CONNACK), 0, 0),
    _Prop(0x1C, "server_reference", _STR, _mask(_P.CONNACK, _P.DISCONNECT), 0, 0),
    _Prop(
        0x1F,
        "reason_string",
        _STR,
        _mask(
            _P.CONNACK,
            _P.PUBACK,
            _P.PUBREC,
            _P.PUBREL,
            _P.PUBCOMP,
            _P.SUBACK,
            _P.UNSUBACK,
            _P.DISCONNECT,
            _P.AUTH,
        ),
        0,
        0,
    ),
    _Prop(0x21, "receive_maximum", _U16, _mask(_P.CONNECT, _P.CONNACK), 1, _U16_MAX),
    _Prop(0x22, "topic_alias_maximum", _U16, _mask(_P.CONNECT, _P.CONNACK), 0, _U16_MAX),
    _Prop(0x23, "topic_alias", _U16, _mask(_P.PUBLISH), 1, _U16_MAX),
    _Prop(0x24, "maximum_qos", _BYTE, _mask(_P.CONNACK), 0, 1),
    _Prop(0x25, "retain_available", _BYTE, _mask(_P.CONNACK), 0, 1),
    _Prop(
        0x26,
        "user_properties",
        _PAIR,
        _mask(*range(16)) & ~_mask(_P.PINGREQ, _P.PINGRESP),
        0,
        0,
    ),
    _Prop(0x27, "maximum_packet_size", _U32, _mask(_P.CONNECT, _P.CONNACK), 1, _U32_MAX),
    _Prop(0x28, "wildcard_subscription_available", _BYTE, _mask(_P.CONNACK), 0, 1),
    _Prop(0x29, "subscription_identifier_available", _BYTE, _mask(_P.CONNACK), 0, 1),
    _Prop(0x2A, "shared_subscription_available", _BYTE, _mask(_P.CONNACK), 0, 1),
)

_BY_ID: dict[int, _Prop] = {p.id: p for p in _TABLE}
PROPERTY_TABLE = _TABLE  # read-only view for tests and docs

_SMALL_VBI = tuple(bytes((n,)) for n in range(128))


# --- primitive fields (section 1.5) ----------------------------------------------------------


def encode_vbi(n: int) -> bytes:
    """A Variable Byte Integer, in the minimum number of bytes."""
    if n < 128:
        if n < 0:
            raise ValueError("variable byte integer must be >= 0")
        return _SMALL_VBI[n]
    if n > MAX_VBI:
        raise ValueError(f"variable byte integer {n} exceeds {MAX_VBI}")
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_vbi(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, next position); non-minimal encodings are accepted, as most brokers do."""
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError(_MALFORMED, "truncated variable byte integer")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift == 28:
            raise DecodeError(_MALFORMED, "variable byte integer longer than 4 bytes")


def encode_string(s: str) -> bytes:
    """A UTF-8 Encoded String: two-byte length, then the bytes (1.5.4: no U+0000)."""
    raw = s.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, a ValueError
    if len(raw) > _U16_MAX:
        raise ValueError("UTF-8 string longer than 65535 bytes")
    if b"\x00" in raw:
        raise ValueError("UTF-8 string contains U+0000")
    return _pack_u16(len(raw)) + raw


def decode_string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """(string, next position); ill-formed UTF-8, surrogates and U+0000 are malformed."""
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1]) if pos + 2 <= end else end + 1
    if stop > end:
        raise DecodeError(_MALFORMED, "truncated UTF-8 string")
    try:
        # Python's strict decoder rejects overlong forms and encoded surrogates (1.5.4).
        s = data[pos + 2 : stop].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(_MALFORMED, "ill-formed UTF-8 string") from None
    if "\x00" in s:
        raise DecodeError(_MALFORMED, "UTF-8 string contains U+0000")
    return s, stop


def encode_binary(b: bytes) -> bytes:
    """Binary Data: two-byte length, then the bytes."""
    if len(b) > _U16_MAX:
        raise ValueError("binary data longer than 65535 bytes")
    return _pack_u16(len(b)) + b


def decode_binary(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """(bytes, next position)."""
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1]) if pos + 2 <= end else end + 1
    if stop > end:
        raise DecodeError(_MALFORMED, "truncated binary data")
    return data[pos + 2 : stop], stop


def is_empty(properties: Properties | None) -> bool:
    """True when no property is set."""
    return properties is None or properties is NO_PROPERTIES or properties == NO_PROPERTIES


# --- properties ------------------------------------------------------------------------------


def _context_name(context: int) -> str:
    return "will properties" if context == WILL_PROPERTIES else PacketType(context).name


def _encode_int(prop: _Prop, value: int) -> bytes:
    if not prop.lo <= value <= prop.hi:
        raise ValueError(f"{prop.name} {value} outside {prop.lo}..{prop.hi}")
    kind = prop.kind
    if kind == _BYTE:
        return bytes((prop.id, value))
    if kind == _U16:
        return bytes((prop.id,)) + _pack_u16(value)
    if kind == _U32:
        return bytes((prop.id,)) + _pack_u32(value)
    return bytes((prop.id,)) + encode_vbi(value)


def encode_properties(properties: Properties, packet_type: int) -> bytes:
    """Property Length, then the properties (5.0); ValueError if one is not allowed there."""
    if properties is NO_PROPERTIES:
        return b"\x00"
    parts: list[bytes] = []
    for prop in _TABLE:
        value = getattr(properties, prop.name)
        if value is None or value == ():
            continue
        if not prop.contexts >> packet_type & 1:
            raise ValueError(f"{prop.name} is not allowed in {_context_name(packet_type)}")
        kind = prop.kind
        if prop.id == 0x0B:
            if packet_type == PacketType.SUBSCRIBE and len(value) > 1:
                raise ValueError("SUBSCRIBE carries at most one subscription identifier")
            parts.extend(_encode_int(prop, v) for v in value)
        elif prop.id == 0x26:
            parts.extend(b"\x26" + encode_string(k) + encode_string(v) for k, v in value)
        elif kind == _STR:
            parts.append(bytes((prop.id,)) + encode_string(value))
        elif kind == _BIN:
            parts.append(bytes((prop.id,)) + encode_binary(value))
        else:
            parts.append(_encode_int(prop, value))
    body = b"".join(parts)
    return encode_vbi(len(body)) + body


def decode_properties(
    data: bytes, pos: int, end: int, context: int, from_server: bool
) -> tuple[Properties, int]:
    """(Properties, next position) from a Property Length at ``pos``; ``context`` as above."""
    length, pos = decode_vbi(data, pos, end)
    if not length:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise DecodeError(_MALFORMED, "property length exceeds the packet")
    fields: dict[str, Any] = {}
    users: list[tuple[str, str]] = []
    sub_ids: list[int] = []
    while pos < stop:
        # Identifiers are VBIs, but every defined one is below 0x80: a multi-byte one is unknown.
        pid = data[pos]
        pos += 1
        prop = _BY_ID.get(pid)
        if prop is None:
            raise DecodeError(_MALFORMED, f"unknown property 0x{pid:02X}")
        if not prop.contexts >> context & 1:
            raise DecodeError(_MALFORMED, f"{prop.name} is not allowed in {_context_name(context)}")
        kind = prop.kind
        value: Any
        if kind == _BYTE:
            if pos >= stop:
                raise DecodeError(_MALFORMED, f"truncated {prop.name}")
            value = data[pos]
            pos += 1
        elif kind == _U16:
            if pos + 2 > stop:
                raise DecodeError(_MALFORMED, f"truncated {prop.name}")
            value = (data[pos] << 8) | data[pos + 1]
            pos += 2
        elif kind == _U32:
            if pos + 4 > stop:
                raise DecodeError(_MALFORMED, f"truncated {prop.name}")
            value = _unpack_u32(data, pos)[0]
            pos += 4
        elif kind == _VBI:
            value, pos = decode_vbi(data, pos, stop)
        elif kind == _STR:
            value, pos = decode_string(data, pos, stop)
        elif kind == _BIN:
            value, pos = decode_binary(data, pos, stop)
        else:
            key, pos = decode_string(data, pos, stop)
            val, pos = decode_string(data, pos, stop)
            users.append((key, val))
            continue
        if kind <= _VBI and not prop.lo <= value <= prop.hi:
            raise DecodeError(_PROTOCOL_ERROR, f"{prop.name} value {value} is not allowed")
        if pid == 0x0B:
            if context == PacketType.PUBLISH and not from_server:
                # 3.3.4: only a server adds subscription identifiers to a PUBLISH.
                raise DecodeError(_PROTOCOL_ERROR, "subscription identifier in a client PUBLISH")
            if sub_ids and context == PacketType.SUBSCRIBE:
                raise DecodeError(_PROTOCOL_ERROR, "duplicate subscription_identifiers")
            sub_ids.append(value)
        elif prop.name in fields:
            raise DecodeError(_PROTOCOL_ERROR, f"duplicate {prop.name}")
        else:
            fields[prop.name] = value
    if users:
        fields["user_properties"] = tuple(users)
    if sub_ids:
        fields["subscription_identifiers"] = tuple(sub_ids)
    return Properties(**fields), pos
