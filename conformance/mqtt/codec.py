"""A small, deliberately literal MQTT 3.1 / 3.1.1 / 5.0 packet codec for the conformance tests.

It is independent of the broker's own codec (so that the two cannot share a misreading of the
spec) and it lets a test build any packet, including malformed ones: every builder takes the
pieces as given and does not validate them. ``encode_packet`` puts a fixed header in front of a
body; ``parse_packet`` turns one complete packet from the server into a :class:`Packet`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AUTH",
    "CONNACK",
    "CONNECT",
    "DISCONNECT",
    "MQTT_3_1",
    "MQTT_3_1_1",
    "MQTT_5",
    "PINGREQ",
    "PINGRESP",
    "PUBACK",
    "PUBCOMP",
    "PUBLISH",
    "PUBREC",
    "PUBREL",
    "SUBACK",
    "SUBSCRIBE",
    "UNSUBACK",
    "UNSUBSCRIBE",
    "Incomplete",
    "P",
    "Packet",
    "Props",
    "Will",
    "ack",
    "auth",
    "connect",
    "disconnect",
    "encode_packet",
    "encode_props",
    "encode_string",
    "encode_varint",
    "parse_packet",
    "pingreq",
    "publish",
    "split_packet",
    "sub_options",
    "subscribe",
    "unsubscribe",
]

MQTT_3_1, MQTT_3_1_1, MQTT_5 = 3, 4, 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
)

PACKET_NAMES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
    15: "AUTH",
}


class P:
    """MQTT 5.0 property identifiers (section 2.2.2.2)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
_PROP_TYPES = {
    P.PAYLOAD_FORMAT_INDICATOR: _BYTE,
    P.MESSAGE_EXPIRY_INTERVAL: _U32,
    P.CONTENT_TYPE: _STR,
    P.RESPONSE_TOPIC: _STR,
    P.CORRELATION_DATA: _BIN,
    P.SUBSCRIPTION_IDENTIFIER: _VARINT,
    P.SESSION_EXPIRY_INTERVAL: _U32,
    P.ASSIGNED_CLIENT_IDENTIFIER: _STR,
    P.SERVER_KEEP_ALIVE: _U16,
    P.AUTHENTICATION_METHOD: _STR,
    P.AUTHENTICATION_DATA: _BIN,
    P.REQUEST_PROBLEM_INFORMATION: _BYTE,
    P.WILL_DELAY_INTERVAL: _U32,
    P.REQUEST_RESPONSE_INFORMATION: _BYTE,
    P.RESPONSE_INFORMATION: _STR,
    P.SERVER_REFERENCE: _STR,
    P.REASON_STRING: _STR,
    P.RECEIVE_MAXIMUM: _U16,
    P.TOPIC_ALIAS_MAXIMUM: _U16,
    P.TOPIC_ALIAS: _U16,
    P.MAXIMUM_QOS: _BYTE,
    P.RETAIN_AVAILABLE: _BYTE,
    P.USER_PROPERTY: _PAIR,
    P.MAXIMUM_PACKET_SIZE: _U32,
    P.WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    P.SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    P.SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}


class Incomplete(Exception):
    """Not enough bytes for a whole packet yet."""


class MalformedFromServer(AssertionError):
    """The server sent bytes that are not a well-formed MQTT packet."""


# --------------------------------------------------------------------------- primitives


def encode_varint(n: int) -> bytes:
    """Variable Byte Integer (1.5.5), minimal length."""
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode_varint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position); raises Incomplete when the bytes stop inside the integer."""
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(data):
            raise Incomplete
        b = data[pos + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MalformedFromServer("variable byte integer longer than 4 bytes")


def encode_string(s: str | bytes) -> bytes:
    raw = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(raw)) + raw


def encode_binary(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


PropList = Sequence[tuple[int, Any]]


def encode_props(props: PropList | None) -> bytes:
    """Property Length + properties, in the order given (repeats allowed, as for User Property)."""
    body = bytearray()
    for pid, value in props or ():
        body += encode_varint(pid)
        kind = _PROP_TYPES.get(pid, _BIN)
        if kind == _BYTE:
            body.append(value)
        elif kind == _U16:
            body += struct.pack("!H", value)
        elif kind == _U32:
            body += struct.pack("!I", value)
        elif kind == _VARINT:
            body += encode_varint(value)
        elif kind == _STR:
            body += encode_string(value)
        elif kind == _PAIR:
            body += encode_string(value[0]) + encode_string(value[1])
        else:
            body += encode_binary(value)
    return encode_varint(len(body)) + bytes(body)


class Props:
    """The properties of a received packet, in wire order."""

    def __init__(self, items: list[tuple[int, Any]] | None = None) -> None:
        self.items: list[tuple[int, Any]] = items or []

    def get(self, pid: int, default: Any = None) -> Any:
        for k, v in self.items:
            if k == pid:
                return v
        return default

    def get_all(self, pid: int) -> list[Any]:
        return [v for k, v in self.items if k == pid]

    def __contains__(self, pid: int) -> bool:
        return any(k == pid for k, _ in self.items)

    @property
    def user(self) -> list[tuple[str, str]]:
        return self.get_all(P.USER_PROPERTY)

    def __repr__(self) -> str:
        return f"Props({self.items!r})"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise MalformedFromServer(f"packet ends {n - self.left()} bytes early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def varint(self) -> int:
        value, self.pos = decode_varint(self.data, self.pos)
        return value

    def string(self) -> str:
        raw = self.take(self.u16())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFromServer(f"server sent ill-formed UTF-8: {raw!r}") from exc

    def binary(self) -> bytes:
        return self.take(self.u16())

    def props(self) -> Props:
        length = self.varint()
        end = self.pos + length
        if end > len(self.data):
            raise MalformedFromServer("property length past the end of the packet")
        items: list[tuple[int, Any]] = []
        while self.pos < end:
            pid = self.varint()
            kind = _PROP_TYPES.get(pid)
            if kind is None:
                raise MalformedFromServer(f"server sent unknown property 0x{pid:02x}")
            value: Any
            if kind == _BYTE:
                value = self.byte()
            elif kind == _U16:
                value = self.u16()
            elif kind == _U32:
                value = self.u32()
            elif kind == _VARINT:
                value = self.varint()
            elif kind == _STR:
                value = self.string()
            elif kind == _PAIR:
                value = (self.string(), self.string())
            else:
                value = self.binary()
            items.append((pid, value))
        if self.pos != end:
            raise MalformedFromServer("properties overrun their length")
        return Props(items)


# --------------------------------------------------------------------------- received packets


@dataclass
class Packet:
    """One packet the server sent. Fields that a packet type does not have stay at defaults."""

    type: int
    flags: int
    raw: bytes
    packet_id: int | None = None
    reason_code: int | None = None  # CONNACK return/reason code, acks, DISCONNECT, AUTH
    reason_codes: list[int] = field(default_factory=list)  # SUBACK / UNSUBACK (5.0)
    session_present: bool = False
    topic: str = ""
    payload: bytes = b""
    props: Props = field(default_factory=Props)

    @property
    def name(self) -> str:
        return PACKET_NAMES.get(self.type, f"type {self.type}")

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    @property
    def dup(self) -> bool:
        return bool(self.flags & 8)

    @property
    def retain(self) -> bool:
        return bool(self.flags & 1)

    @property
    def size(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        parts = [self.name]
        if self.type == PUBLISH:
            parts.append(f"topic={self.topic!r} qos={self.qos} dup={self.dup} ret={self.retain}")
            parts.append(f"payload={self.payload[:40]!r}")
        if self.packet_id is not None:
            parts.append(f"pid={self.packet_id}")
        if self.reason_code is not None:
            parts.append(f"rc=0x{self.reason_code:02x}")
        if self.reason_codes:
            parts.append(f"rcs={[hex(c) for c in self.reason_codes]}")
        if self.props.items:
            parts.append(repr(self.props))
        return f"<{' '.join(parts)}>"


def split_packet(buf: bytes | bytearray) -> tuple[bytes, int]:
    """(the first whole packet in ``buf``, its length); Incomplete if there is none yet."""
    if len(buf) < 2:
        raise Incomplete
    remaining, pos = decode_varint(buf, 1)
    end = pos + remaining
    if end > len(buf):
        raise Incomplete
    return bytes(buf[:end]), end


def parse_packet(raw: bytes, version: int) -> Packet:
    """Decode one complete server-to-client packet of a connection speaking ``version``."""
    ptype, flags = raw[0] >> 4, raw[0] & 0x0F
    _, pos = decode_varint(raw, 1)
    r = _Reader(raw[pos:])
    v5 = version == MQTT_5
    pkt = Packet(type=ptype, flags=flags, raw=raw)
    if ptype == CONNACK:
        ack_flags = r.byte()
        pkt.session_present = bool(ack_flags & 1)
        pkt.reason_code = r.byte()
        if v5 and r.left():
            pkt.props = r.props()
    elif ptype == PUBLISH:
        pkt.topic = r.string()
        if pkt.qos:
            pkt.packet_id = r.u16()
        if v5:
            pkt.props = r.props()
        pkt.payload = r.take(r.left())
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        pkt.packet_id = r.u16()
        pkt.reason_code = 0
        if v5 and r.left():
            pkt.reason_code = r.byte()
            if r.left():
                pkt.props = r.props()
    elif ptype in (SUBACK, UNSUBACK):
        pkt.packet_id = r.u16()
        if v5:
            pkt.props = r.props()
        pkt.reason_codes = list(r.take(r.left()))
    elif ptype in (DISCONNECT, AUTH):
        pkt.reason_code = 0
        if r.left():
            pkt.reason_code = r.byte()
            if r.left():
                pkt.props = r.props()
    if r.left() and ptype not in (PINGRESP,):
        raise MalformedFromServer(f"{r.left()} unexpected bytes at the end of {pkt!r}")
    return pkt


# --------------------------------------------------------------------------- packets to send


def encode_packet(ptype: int, flags: int, body: bytes) -> bytes:
    """Fixed header (type, flags, Remaining Length) + body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + encode_varint(len(body)) + body


@dataclass
class Will:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    props: PropList | None = None


def connect(
    client_id: str = "",
    *,
    version: int = MQTT_5,
    clean: bool = True,
    keepalive: int = 60,
    props: PropList | None = None,
    will: Will | None = None,
    username: str | bytes | None = None,
    password: bytes | None = None,
    protocol_name: str | bytes | None = None,
    reserved_flag: bool = False,
    flags_override: int | None = None,
) -> bytes:
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == MQTT_3_1 else "MQTT"
    v5 = version == MQTT_5
    flags = 0x01 if reserved_flag else 0
    if clean:
        flags |= 0x02
    payload = bytearray(encode_string(client_id))
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        if v5:
            payload += encode_props(will.props)
        payload += encode_string(will.topic) + encode_binary(will.payload)
    if username is not None:
        flags |= 0x80
        payload += encode_string(username)
    if password is not None:
        flags |= 0x40
        payload += encode_binary(password)
    if flags_override is not None:
        flags = flags_override
    body = encode_string(protocol_name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if v5:
        body += encode_props(props)
    return encode_packet(CONNECT, 0, body + bytes(payload))


def publish(
    topic: str | bytes,
    payload: bytes = b"",
    *,
    qos: int = 0,
    retain: bool = False,
    dup: bool = False,
    packet_id: int | None = None,
    props: PropList | None = None,
    version: int = MQTT_5,
) -> bytes:
    flags = (8 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = bytearray(encode_string(topic))
    if qos or packet_id is not None:
        body += struct.pack("!H", packet_id if packet_id is not None else 1)
    if version == MQTT_5:
        body += encode_props(props)
    return encode_packet(PUBLISH, flags, bytes(body) + payload)


def ack(
    ptype: int,
    packet_id: int,
    reason_code: int | None = None,
    props: PropList | None = None,
    *,
    flags: int | None = None,
) -> bytes:
    """PUBACK / PUBREC / PUBREL / PUBCOMP (reason code and properties only when given)."""
    body = struct.pack("!H", packet_id)
    if reason_code is not None or props is not None:
        body += bytes([reason_code or 0])
        if props is not None:
            body += encode_props(props)
    if flags is None:
        flags = 2 if ptype == PUBREL else 0
    return encode_packet(ptype, flags, body)


def sub_options(
    qos: int = 0,
    *,
    no_local: bool = False,
    retain_as_published: bool = False,
    retain_handling: int = 0,
) -> int:
    """The 5.0 Subscription Options byte (3.8.3.1)."""
    return qos | (4 if no_local else 0) | (8 if retain_as_published else 0) | (retain_handling << 4)


def subscribe(
    packet_id: int,
    filters: Iterable[tuple[str | bytes, int]],
    *,
    props: PropList | None = None,
    version: int = MQTT_5,
    flags: int = 2,
) -> bytes:
    body = bytearray(struct.pack("!H", packet_id))
    if version == MQTT_5:
        body += encode_props(props)
    for topic_filter, options in filters:
        body += encode_string(topic_filter) + bytes([options])
    return encode_packet(SUBSCRIBE, flags, bytes(body))


def unsubscribe(
    packet_id: int,
    filters: Iterable[str | bytes],
    *,
    props: PropList | None = None,
    version: int = MQTT_5,
    flags: int = 2,
) -> bytes:
    body = bytearray(struct.pack("!H", packet_id))
    if version == MQTT_5:
        body += encode_props(props)
    for topic_filter in filters:
        body += encode_string(topic_filter)
    return encode_packet(UNSUBSCRIBE, flags, bytes(body))


def pingreq() -> bytes:
    return encode_packet(PINGREQ, 0, b"")


def disconnect(reason_code: int | None = None, props: PropList | None = None) -> bytes:
    body = b""
    if reason_code is not None or props is not None:
        body = bytes([reason_code or 0]) + (encode_props(props) if props is not None else b"")
    return encode_packet(DISCONNECT, 0, body)


def auth(reason_code: int = 0x18, props: PropList | None = None) -> bytes:
    return encode_packet(AUTH, 0, bytes([reason_code]) + encode_props(props))
