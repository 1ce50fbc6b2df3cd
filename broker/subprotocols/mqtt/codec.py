"""Sans-I/O MQTT 3.1/3.1.1/5.0 codec: bytes in, packets out (PacketReader); packets in, bytes."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from broker.subprotocols.mqtt.packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from broker.subprotocols.mqtt.properties import (
    WILL_PROPERTIES,
    DecodeError,
    decode_binary,
    decode_properties,
    decode_string,
    encode_binary,
    encode_properties,
    encode_string,
    encode_vbi,
    is_empty,
)

__all__ = [
    "PacketReader",
    "ProtocolViolation",
    "encode",
    "encode_properties",
    "encode_publish",
]

# Choices where the specification leaves room (also in the report to the session owners):
# - A remaining length in more bytes than needed is accepted on receive (as Mosquitto does).
# - max_packet_size bounds the whole packet, fixed header included, as 5.0 counts it.
# - Topic names of PUBLISH and of wills are checked here (no wildcard, not empty unless a 5.0
#   topic alias stands for it): TOPIC_NAME_INVALID. Topic filters are the session's, since 5.0
#   answers a bad filter in SUBACK instead of disconnecting.
# - A reason code not listed for the packet is MALFORMED_PACKET; a packet type the other side
#   may not send is PROTOCOL_ERROR; packet type 0 (and 15 before 5.0) is MALFORMED_PACKET.
# - Packet identifier 0, SUBSCRIBE/UNSUBSCRIBE without filters, empty SUBACK/5.0 UNSUBACK:
#   PROTOCOL_ERROR. PUBLISH QoS 0 with DUP: MALFORMED_PACKET in every version.
_MALFORMED = ReasonCode.MALFORMED_PACKET
_PROTOCOL_ERROR = ReasonCode.PROTOCOL_ERROR
_TOPIC_NAME_INVALID = ReasonCode.TOPIC_NAME_INVALID

_pack_u16 = struct.Struct("!H").pack
_pack_small_publish_header = struct.Struct("!BBH").pack  # b0, remaining length < 128, topic length

# Valid reason codes per packet (5.0 sections 3.x.2.1); other values cannot be given a meaning,
# so they are treated as malformed.
_RC_CONNACK = frozenset(
    {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C}
    | {0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
)
_RC_PUBACK = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})  # and PUBREC
_RC_PUBREL = frozenset({0x00, 0x92})  # and PUBCOMP
_RC_SUBACK = frozenset({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2})
_RC_SUBACK_3 = frozenset({0x00, 0x01, 0x02, 0x80})
_RC_UNSUBACK = frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})
_RC_DISCONNECT_FROM_CLIENT = frozenset(
    {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99}
)
_RC_DISCONNECT_FROM_SERVER = frozenset(
    {0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94}
    | {0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}
)
_RC_DISCONNECT = _RC_DISCONNECT_FROM_CLIENT | _RC_DISCONNECT_FROM_SERVER
_RC_AUTH = frozenset({0x00, 0x18, 0x19})
_RC_ACK = {4: _RC_PUBACK, 5: _RC_PUBACK, 6: _RC_PUBREL, 7: _RC_PUBREL}

_FROM_CLIENT = frozenset({1, 3, 4, 5, 6, 7, 8, 10, 12, 14, 15})
_FROM_SERVER = frozenset({2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15})
_PROTOCOLS = {("MQTT", MQTT_3_1_1), ("MQTT", MQTT_5), ("MQIsdp", MQTT_3_1)}


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The input broke the protocol; always the last item: the reader ignores all input after it."""

    reason_code: int
    message: str


def _check_topic_name(topic: str, version: int, properties: Properties) -> None:
    """Topic names (4.7): no wildcards; empty only with a 5.0 topic alias."""
    if not topic:
        if version == MQTT_5:
            if properties.topic_alias is None:
                raise DecodeError(_PROTOCOL_ERROR, "empty topic name without a topic alias")
            return
        raise DecodeError(_TOPIC_NAME_INVALID, "empty topic name")
    if "+" in topic or "#" in topic:
        raise DecodeError(_TOPIC_NAME_INVALID, f"wildcard in topic name {topic!r}")


def _packet_id(data: bytes, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise DecodeError(_MALFORMED, "missing packet identifier")
    pid = (data[pos] << 8) | data[pos + 1]
    if not pid:
        raise DecodeError(_PROTOCOL_ERROR, "packet identifier 0")
    return pid


def _trailing(pos: int, end: int, name: str) -> None:
    if pos != end:
        raise DecodeError(_MALFORMED, f"{end - pos} unexpected bytes at the end of {name}")


def _vbi_size(value: int) -> int:
    """Bytes in the minimal variable byte integer encoding of `value`."""
    return 1 if value < 0x80 else 2 if value < 0x4000 else 3 if value < 0x200000 else 4


def _parse_publish(
    data: bytes,
    b0: int,
    pos: int,
    end: int,
    version: int,
    from_server: bool,
    head: int | None = None,  # where the fixed header starts, to keep the raw packet
) -> Publish:
    start = pos
    qos = (b0 >> 1) & 3
    if qos == 3:
        raise DecodeError(_MALFORMED, "PUBLISH with QoS 3")
    if b0 & 8 and not qos:
        raise DecodeError(_MALFORMED, "PUBLISH with QoS 0 and DUP set")
    if pos + 2 > end:
        raise DecodeError(_MALFORMED, "truncated PUBLISH topic")
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if stop > end:
        raise DecodeError(_MALFORMED, "truncated PUBLISH topic")
    try:
        topic = data[pos + 2 : stop].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(_MALFORMED, "ill-formed UTF-8 topic name") from None
    if "\x00" in topic:
        raise DecodeError(_MALFORMED, "UTF-8 string contains U+0000")
    pos = stop
    packet_id = None
    if qos:
        packet_id = _packet_id(data, pos, end)
        pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        if pos < end and not data[pos]:
            pos += 1  # the common empty property section, without a call
        else:
            properties, pos = decode_properties(data, pos, end, PacketType.PUBLISH, from_server)
    if not topic or "+" in topic or "#" in topic:
        _check_topic_name(topic, version, properties)
    # Without DUP or properties, and with a minimal remaining length (MQTT-1.5.5-1), the
    # packet is exactly what a broker forwards: keep it.
    raw = None
    if (
        head is not None
        and not b0 & 8
        and properties is NO_PROPERTIES
        and start - head == _vbi_size(end - start) + 1
    ):
        raw = data[head:end]
    return Publish(
        topic, data[pos:end], qos, bool(b0 & 1), bool(b0 & 8), packet_id, properties, raw
    )


def _parse_ack(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> PubAck | PubRec | PubRel | PubComp:
    ptype = b0 >> 4
    cls = _ACK_CLASSES[ptype]
    n = end - pos
    if version != MQTT_5:
        if n != 2:
            raise DecodeError(_MALFORMED, f"{cls.__name__} remaining length {n}, expected 2")
        return cls(_packet_id(data, pos, end))
    packet_id = _packet_id(data, pos, end)
    if n == 2:  # 5.0 short form: Success, no properties
        return cls(packet_id)
    code = data[pos + 2]
    if code not in _RC_ACK[ptype]:
        raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in {cls.__name__}")
    properties = NO_PROPERTIES
    if n > 3:
        properties, pos = decode_properties(data, pos + 3, end, ptype, from_server)
        _trailing(pos, end, cls.__name__)
    return cls(packet_id, code, properties)


_ACK_CLASSES: dict[int, type[PubAck] | type[PubRec] | type[PubRel] | type[PubComp]] = {
    4: PubAck,
    5: PubRec,
    6: PubRel,
    7: PubComp,
}


def _parse_subscribe(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> Subscribe:
    packet_id = _packet_id(data, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBSCRIBE, from_server)
    subscriptions: list[SubscriptionRequest] = []
    while pos < end:
        topic_filter, pos = decode_string(data, pos, end)
        if pos >= end:
            raise DecodeError(_MALFORMED, "SUBSCRIBE filter without options")
        options = data[pos]
        pos += 1
        if version == MQTT_5:
            if options & 0xC0:
                raise DecodeError(_MALFORMED, "reserved subscription option bits set")
            qos = options & 3
            retain_handling = (options >> 4) & 3
            if qos == 3:
                raise DecodeError(_PROTOCOL_ERROR, "subscription with QoS 3")
            if retain_handling == 3:
                raise DecodeError(_PROTOCOL_ERROR, "subscription with retain handling 3")
            subscriptions.append(
                SubscriptionRequest(
                    topic_filter, qos, bool(options & 4), bool(options & 8), retain_handling
                )
            )
        else:
            if options > 2:
                raise DecodeError(_MALFORMED, f"invalid requested QoS byte 0x{options:02X}")
            subscriptions.append(SubscriptionRequest(topic_filter, options))
    if not subscriptions:
        raise DecodeError(_PROTOCOL_ERROR, "SUBSCRIBE with no topic filters")
    return Subscribe(packet_id, tuple(subscriptions), properties)


def _parse_unsubscribe(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> Unsubscribe:
    packet_id = _packet_id(data, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        properties, pos = decode_properties(data, pos, end, PacketType.UNSUBSCRIBE, from_server)
    filters: list[str] = []
    while pos < end:
        topic_filter, pos = decode_string(data, pos, end)
        filters.append(topic_filter)
    if not filters:
        raise DecodeError(_PROTOCOL_ERROR, "UNSUBSCRIBE with no topic filters")
    return Unsubscribe(packet_id, tuple(filters), properties)


def _parse_suback(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> SubAck:
    packet_id = _packet_id(data, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    valid = _RC_SUBACK_3
    if version == MQTT_5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBACK, from_server)
        valid = _RC_SUBACK
    codes = tuple(data[pos:end])
    if not codes:
        raise DecodeError(_PROTOCOL_ERROR, "SUBACK with no reason codes")
    for code in codes:
        if code not in valid:
            raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in SUBACK")
    return SubAck(packet_id, codes, properties)


def _parse_unsuback(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> UnsubAck:
    if version != MQTT_5:
        if end - pos != 2:
            raise DecodeError(_MALFORMED, f"UNSUBACK remaining length {end - pos}, expected 2")
        return UnsubAck(_packet_id(data, pos, end))
    packet_id = _packet_id(data, pos, end)
    properties, pos = decode_properties(data, pos + 2, end, PacketType.UNSUBACK, from_server)
    codes = tuple(data[pos:end])
    if not codes:
        raise DecodeError(_PROTOCOL_ERROR, "UNSUBACK with no reason codes")
    for code in codes:
        if code not in _RC_UNSUBACK:
            raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in UNSUBACK")
    return UnsubAck(packet_id, codes, properties)


def _parse_ping(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> PingReq | PingResp:
    if end != pos:
        raise DecodeError(_MALFORMED, "PINGREQ/PINGRESP with a non-zero remaining length")
    return PingResp() if from_server else PingReq()


def _parse_disconnect(
    data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool
) -> Disconnect:
    if pos == end:
        return Disconnect()
    if version != MQTT_5:
        raise DecodeError(_MALFORMED, "DISCONNECT with a non-zero remaining length")
    code = data[pos]
    valid = _RC_DISCONNECT_FROM_SERVER if from_server else _RC_DISCONNECT_FROM_CLIENT
    if code not in valid:
        raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in DISCONNECT")
    properties = NO_PROPERTIES
    if end - pos > 1:  # 3.14.2.2: below 2, the property length is taken as 0
        properties, pos = decode_properties(data, pos + 1, end, PacketType.DISCONNECT, from_server)
        _trailing(pos, end, "DISCONNECT")
        if from_server and properties.session_expiry_interval is not None:
            raise DecodeError(_PROTOCOL_ERROR, "session expiry interval in a server DISCONNECT")
    return Disconnect(code, properties)


def _parse_auth(data: bytes, b0: int, pos: int, end: int, version: int, from_server: bool) -> Auth:
    if pos == end:
        return Auth()
    code = data[pos]
    if code not in _RC_AUTH:
        raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in AUTH")
    properties = NO_PROPERTIES
    if end - pos > 1:  # a lone reason code is accepted, as DISCONNECT allows
        properties, pos = decode_properties(data, pos + 1, end, PacketType.AUTH, from_server)
        _trailing(pos, end, "AUTH")
    return Auth(code, properties)


_Parser = Callable[[bytes, int, int, int, int, bool], Packet]
_PARSERS: dict[int, _Parser] = {
    3: _parse_publish,
    4: _parse_ack,
    5: _parse_ack,
    6: _parse_ack,
    7: _parse_ack,
    8: _parse_subscribe,
    9: _parse_suback,
    10: _parse_unsubscribe,
    11: _parse_unsuback,
    12: _parse_ping,
    13: _parse_ping,
    14: _parse_disconnect,
    15: _parse_auth,
}


def _remaining_length(data: bytes | bytearray, pos: int, n: int) -> tuple[int, int]:
    """(fixed header length, remaining length) of the packet at pos; (0, 0) if incomplete."""
    value = 0
    shift = 0
    i = pos + 1
    while i < n:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return i - pos, value
        shift += 7
        if shift == 28:
            raise DecodeError(_MALFORMED, "remaining length longer than 4 bytes")
    return 0, 0


class PacketReader:
    """Parses one direction of an MQTT byte stream into packets (``server``: the client's side)."""

    __slots__ = ("_buf", "_failed", "_from_server", "_max", "_ready", "version")

    def __init__(
        self, *, server: bool = True, version: int | None = None, max_packet_size: int = 1 << 20
    ) -> None:
        # server=True with a version: the CONNECT was handled elsewhere (any CONNECT is then a
        # second one). server=False: version is what our CONNECT asked for; None infers it from
        # the CONNACK's length (2 bytes only before 5.0). Either way a CONNACK is expected first.
        if version is not None and version not in (MQTT_3_1, MQTT_3_1_1, MQTT_5):
            raise ValueError(f"unknown MQTT protocol level {version}")
        if max_packet_size < 2:
            raise ValueError("max_packet_size must be >= 2")
        self.version = version
        self._from_server = not server
        self._ready = server and version is not None
        self._max = max_packet_size  # the whole packet, fixed header included (as 5.0 counts)
        self._buf = bytearray()
        self._failed = False

    def plain_publish(self, data: bytes) -> tuple[str, bytes] | None:
        """(topic, payload) when `data` is exactly one plain PUBLISH, else None.

        Plain: 3.1 or 3.1.1, QoS 0, no DUP, no retain, a one-byte remaining length, a well-formed
        topic name, and nothing pending in this reader. A broker forwards such a packet as it is,
        so it needs no packet object; anything else (or anything wrong) goes through
        receive_data, which says what is wrong.
        """
        n = len(data)
        if (
            n < 4
            or data[0] != 0x30
            or data[1] != n - 2
            or self._buf
            or not self._ready
            or self.version == MQTT_5
        ):
            return None
        stop = 4 + (data[2] << 8 | data[3])
        if stop > n:
            return None
        try:
            topic = data[4:stop].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not topic or "+" in topic or "#" in topic or "\x00" in topic:
            return None
        return topic, data[stop:]

    def receive_data(self, data: bytes) -> list[Packet | ProtocolViolation]:
        """Parse any split of the byte stream; a ProtocolViolation, if any, comes last."""
        out: list[Packet | ProtocolViolation] = []
        if self._failed:
            return out
        if type(data) is not bytes:
            data = bytes(data)
        buf = self._buf
        limit = self._max
        try:
            if buf:
                # Only copy the pending bytes out once the first pending packet is complete.
                buf += data
                if not self._ready:
                    self._check_first(buf[0])
                n = len(buf)
                hlen, length = _remaining_length(buf, 0, n)
                if not hlen:
                    return out
                if hlen + length > limit:
                    raise self._too_large(hlen + length)
                if hlen + length > n:
                    return out
                data = bytes(buf)
                buf.clear()
            n = len(data)
            pos = 0
            from_server = self._from_server
            ready = self._ready
            version = self.version
            append = out.append
            if n and not ready:
                self._check_first(data[0])
            while n - pos >= 2:
                b0 = data[pos]
                b1 = data[pos + 1]
                if b1 < 0x80:
                    start = pos + 2
                    end = start + b1
                else:
                    hlen, length = _remaining_length(data, pos, n)
                    if not hlen:
                        break
                    start = pos + hlen
                    end = start + length
                if end - pos > limit:
                    raise self._too_large(end - pos)
                if end > n:
                    break
                if b0 & 0xF0 == 0x30 and ready:
                    assert version is not None
                    append(_parse_publish(data, b0, start, end, version, from_server, pos))
                elif b0 == 0x40 and ready and end - start == 2 and (data[start] or data[end - 1]):
                    # The other hot packet: a plain PUBACK (QoS 1 fan-out gets one per message).
                    append(PubAck(data[start] << 8 | data[end - 1]))
                else:
                    append(self._parse_other(data, b0, start, end))
                    ready = self._ready
                    version = self.version
                pos = end
            if pos < n:
                buf += memoryview(data)[pos:]
        except DecodeError as exc:
            self._failed = True
            buf.clear()
            out.append(ProtocolViolation(exc.reason_code, exc.message))
        return out

    def _check_first(self, b0: int) -> None:
        """Reject a wrong first packet from its first byte, not after buffering its body."""
        ptype = b0 >> 4
        if not self._from_server:
            if ptype != PacketType.CONNECT:
                raise DecodeError(_PROTOCOL_ERROR, "first packet must be CONNECT")
        elif ptype != PacketType.CONNACK and (
            ptype != PacketType.AUTH or self.version not in (None, MQTT_5)
        ):
            raise DecodeError(_PROTOCOL_ERROR, "first packet must be CONNACK")

    def _too_large(self, size: int) -> DecodeError:
        return DecodeError(
            ReasonCode.PACKET_TOO_LARGE, f"packet of {size} bytes exceeds the limit of {self._max}"
        )

    def _parse_other(self, data: bytes, b0: int, pos: int, end: int) -> Packet:
        ptype = b0 >> 4
        flags = b0 & 0x0F
        from_server = self._from_server
        if not from_server:
            if ptype == PacketType.CONNECT:
                if self._ready:
                    raise DecodeError(_PROTOCOL_ERROR, "second CONNECT")
                if flags:
                    raise DecodeError(_MALFORMED, "reserved flags set in CONNECT")
                packet = self._parse_connect(data, pos, end)
                self._ready = True
                return packet
            if not self._ready:
                raise DecodeError(_PROTOCOL_ERROR, "first packet must be CONNECT")
        elif ptype == PacketType.CONNACK:
            if self._ready:
                raise DecodeError(_PROTOCOL_ERROR, "second CONNACK")
            if flags:
                raise DecodeError(_MALFORMED, "reserved flags set in CONNACK")
            connack = self._parse_connack(data, pos, end)
            self._ready = True
            return connack
        elif not self._ready:
            # 4.12: a 5.0 server may run an AUTH exchange before its CONNACK.
            if ptype != PacketType.AUTH or self.version not in (None, MQTT_5):
                raise DecodeError(_PROTOCOL_ERROR, "first packet must be CONNACK")
            self.version = MQTT_5
        version = self.version
        assert version is not None
        if ptype == 0 or (ptype == PacketType.AUTH and version != MQTT_5):
            raise DecodeError(_MALFORMED, f"reserved packet type {ptype}")
        if ptype not in (_FROM_SERVER if from_server else _FROM_CLIENT) or (
            from_server and ptype == PacketType.DISCONNECT and version != MQTT_5
        ):
            side = "server" if from_server else "client"
            raise DecodeError(_PROTOCOL_ERROR, f"a {side} may not send {PacketType(ptype).name}")
        if ptype == PacketType.PUBLISH:
            pass  # PUBLISH flags are checked by its parser
        elif flags != (2 if ptype in (6, 8, 10) else 0):
            raise DecodeError(
                _MALFORMED, f"invalid fixed header flags {flags:#06b} in {PacketType(ptype).name}"
            )
        return _PARSERS[ptype](data, b0, pos, end, version, from_server)

    def _parse_connect(self, data: bytes, pos: int, end: int) -> Connect:
        name, pos = decode_string(data, pos, end)
        if pos >= end:
            raise DecodeError(_MALFORMED, "CONNECT without a protocol level")
        level = data[pos]
        if (name, level) not in _PROTOCOLS:
            raise DecodeError(
                ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
                f"unsupported protocol {name!r} level {level}",
            )
        # Known from here on, so the session can answer a broken CONNECT in the right format.
        self.version = level
        if pos + 4 > end:
            raise DecodeError(_MALFORMED, "truncated CONNECT variable header")
        flags = data[pos + 1]
        keep_alive = (data[pos + 2] << 8) | data[pos + 3]
        pos += 4
        if flags & 1:
            raise DecodeError(_MALFORMED, "reserved CONNECT flag set")
        will_flag = flags & 4
        will_qos = (flags >> 3) & 3
        will_retain = bool(flags & 0x20)
        if not will_flag and (will_qos or will_retain):
            raise DecodeError(_MALFORMED, "will QoS or retain set without the will flag")
        if will_qos == 3:
            raise DecodeError(_MALFORMED, "will QoS 3")
        if flags & 0x40 and not flags & 0x80 and level != MQTT_5:
            raise DecodeError(_MALFORMED, "password flag without user name flag")
        v5 = level == MQTT_5
        properties = NO_PROPERTIES
        if v5:
            properties, pos = decode_properties(data, pos, end, PacketType.CONNECT, False)
            if (
                properties.authentication_data is not None
                and properties.authentication_method is None
            ):
                raise DecodeError(_PROTOCOL_ERROR, "authentication data without a method")
        client_id, pos = decode_string(data, pos, end)
        will = None
        if will_flag:
            will_properties = NO_PROPERTIES
            if v5:
                will_properties, pos = decode_properties(data, pos, end, WILL_PROPERTIES, False)
            will_topic, pos = decode_string(data, pos, end)
            # A will topic is a topic name; the 5.0 topic alias exception does not apply.
            _check_topic_name(will_topic, MQTT_3_1_1, NO_PROPERTIES)
            will_payload, pos = decode_binary(data, pos, end)
            will = Will(will_topic, will_payload, will_qos, will_retain, will_properties)
        username = password = None
        if flags & 0x80:
            username, pos = decode_string(data, pos, end)
        if flags & 0x40:
            password, pos = decode_binary(data, pos, end)
        _trailing(pos, end, "CONNECT")
        return Connect(
            name,
            level,
            bool(flags & 2),
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        )

    def _parse_connack(self, data: bytes, pos: int, end: int) -> ConnAck:
        n = end - pos
        version = self.version
        if version is None:
            version = self.version = MQTT_3_1_1 if n == 2 else MQTT_5
        if n < 2:
            raise DecodeError(_MALFORMED, "truncated CONNACK")
        flags = data[pos]
        code = data[pos + 1]
        if flags & 0xFE:
            raise DecodeError(_MALFORMED, "reserved CONNACK flags set")
        properties = NO_PROPERTIES
        if version == MQTT_5:
            if code not in _RC_CONNACK:
                raise DecodeError(_MALFORMED, f"reason code 0x{code:02X} is not valid in CONNACK")
            properties, pos = decode_properties(data, pos + 2, end, PacketType.CONNACK, True)
            _trailing(pos, end, "CONNACK")
        else:
            if n != 2:
                raise DecodeError(_MALFORMED, f"CONNACK remaining length {n}, expected 2")
            if code > 5:
                raise DecodeError(_MALFORMED, f"CONNACK return code {code} is reserved")
        if flags and code:
            raise DecodeError(_PROTOCOL_ERROR, "session present with a non-zero reason code")
        return ConnAck(bool(flags), code, properties)


# --- encoding ---------------------------------------------------------------------------------


def _frame(b0: int, body: bytes) -> bytes:
    return bytes((b0,)) + encode_vbi(len(body)) + body


def _check_packet_id(packet_id: int | None) -> int:
    if packet_id is None or not 0 < packet_id <= 0xFFFF:
        raise ValueError(f"packet identifier {packet_id} outside 1..65535")
    return packet_id


def _props(properties: Properties, packet_type: int, version: int) -> bytes:
    """The property section for 5.0; before 5.0, nothing, and no property may be set."""
    if version == MQTT_5:
        return encode_properties(properties, packet_type)
    if not is_empty(properties):
        raise ValueError("properties exist only in MQTT 5.0")
    return b""


def _check_code(code: int, valid: frozenset[int], name: str) -> None:
    if code not in valid:
        raise ValueError(f"reason code 0x{code:02X} is not valid in {name}")


# Fixed-header first bytes of PUBLISH by (dup, qos, retain): the hot path does no bit twiddling.
_PUBLISH_B0 = {
    (dup, qos, retain): 0x30 | dup << 3 | qos << 1 | retain
    for dup in (0, 1)
    for qos in (0, 1, 2)
    for retain in (0, 1)
}


def encode_publish(
    version: int,
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties | None,
) -> bytes:
    """One PUBLISH packet, built with a single join: the broker's hot path."""
    raw = topic.encode("utf-8")
    tlen = len(raw)
    if tlen > 0xFFFF:
        raise ValueError("topic name longer than 65535 bytes")
    if b"+" in raw or b"#" in raw or b"\x00" in raw:
        raise ValueError(f"invalid topic name {topic!r}")
    if qos:
        if qos not in (1, 2):
            raise ValueError(f"invalid QoS {qos}")
        pid = _pack_u16(_check_packet_id(packet_id))
    else:
        if packet_id is not None or dup:
            raise ValueError("a QoS 0 PUBLISH has no packet identifier and no DUP flag")
        pid = b""
    if version == MQTT_5:
        if properties is None or properties is NO_PROPERTIES:
            props = b"\x00"
            if not tlen:
                raise ValueError("empty topic name without a topic alias")
        else:
            props = encode_properties(properties, PacketType.PUBLISH)
            if not tlen and properties.topic_alias is None:
                raise ValueError("empty topic name without a topic alias")
    elif version in (MQTT_3_1_1, MQTT_3_1):
        if properties is not None and not is_empty(properties):
            raise ValueError("properties exist only in MQTT 5.0")
        if not tlen:
            raise ValueError("empty topic name")
        props = b""
    else:
        raise ValueError(f"unknown MQTT protocol level {version}")
    b0 = _PUBLISH_B0[dup, qos, retain]
    length = 2 + tlen + len(pid) + len(props) + len(payload)
    if length < 128:
        header = _pack_small_publish_header(b0, length, tlen)
    else:
        header = bytes((b0,)) + encode_vbi(length) + _pack_u16(tlen)
    return b"".join((header, raw, pid, props, payload))


def _encode_connect(p: Connect, version: int) -> bytes:
    if p.protocol_level != version or (p.protocol_name, version) not in _PROTOCOLS:
        raise ValueError(f"CONNECT {p.protocol_name!r} level {p.protocol_level} for {version}")
    flags = 2 if p.clean_start else 0
    parts = [encode_string(p.protocol_name), bytes((version,)), b"", _pack_u16(p.keep_alive)]
    parts.append(_props(p.properties, PacketType.CONNECT, version))
    parts.append(encode_string(p.client_id))
    if p.will is not None:
        will = p.will
        if will.qos not in (0, 1, 2):
            raise ValueError(f"invalid will QoS {will.qos}")
        flags |= 4 | will.qos << 3 | (0x20 if will.retain else 0)
        parts.append(_props(will.properties, WILL_PROPERTIES, version))
        if not will.topic or "+" in will.topic or "#" in will.topic:
            raise ValueError(f"invalid will topic {will.topic!r}")
        parts.append(encode_string(will.topic))
        parts.append(encode_binary(will.payload))
    if p.username is not None:
        flags |= 0x80
        parts.append(encode_string(p.username))
    if p.password is not None:
        if p.username is None and version != MQTT_5:
            raise ValueError("a password needs a user name before MQTT 5.0")
        flags |= 0x40
        parts.append(encode_binary(p.password))
    parts[2] = bytes((flags,))
    return _frame(0x10, b"".join(parts))


def _encode_connack(p: ConnAck, version: int) -> bytes:
    if version == MQTT_5:
        _check_code(p.reason_code, _RC_CONNACK, "CONNACK")
    elif not 0 <= p.reason_code <= 5:
        raise ValueError(f"CONNACK return code {p.reason_code} does not exist before 5.0")
    if p.session_present and p.reason_code:
        raise ValueError("session present with a non-zero reason code")
    head = bytes((1 if p.session_present else 0, p.reason_code))
    return _frame(0x20, head + _props(p.properties, PacketType.CONNACK, version))


def _encode_publish(p: Publish, version: int) -> bytes:
    return encode_publish(
        version, p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, p.properties
    )


def _encode_ack(p: PubAck | PubRec | PubRel | PubComp, version: int) -> bytes:
    ptype = _ACK_TYPES[type(p)]
    b0 = ptype << 4 | (2 if ptype == PacketType.PUBREL else 0)
    pid = _pack_u16(_check_packet_id(p.packet_id))
    if version != MQTT_5:
        if p.reason_code or not is_empty(p.properties):
            raise ValueError("reason codes and properties exist only in MQTT 5.0")
        return _frame(b0, pid)
    _check_code(p.reason_code, _RC_ACK[ptype], type(p).__name__)
    if is_empty(p.properties):
        # Shortest forms of 3.4.2: omit the reason code when Success, the properties when none.
        return _frame(b0, pid + bytes((p.reason_code,)) if p.reason_code else pid)
    return _frame(b0, pid + bytes((p.reason_code,)) + encode_properties(p.properties, ptype))


_ACK_TYPES: dict[type, int] = {
    PubAck: PacketType.PUBACK,
    PubRec: PacketType.PUBREC,
    PubRel: PacketType.PUBREL,
    PubComp: PacketType.PUBCOMP,
}


def _encode_subscribe(p: Subscribe, version: int) -> bytes:
    if not p.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    parts = [_pack_u16(_check_packet_id(p.packet_id))]
    parts.append(_props(p.properties, PacketType.SUBSCRIBE, version))
    for s in p.subscriptions:
        if s.qos not in (0, 1, 2) or s.retain_handling not in (0, 1, 2):
            raise ValueError(f"invalid subscription options {s}")
        options = s.qos | s.no_local << 2 | s.retain_as_published << 3 | s.retain_handling << 4
        if options > 3 and version != MQTT_5:
            raise ValueError("subscription options beyond QoS exist only in MQTT 5.0")
        parts.append(encode_string(s.topic_filter))
        parts.append(bytes((options,)))
    return _frame(0x82, b"".join(parts))


def _encode_suback(p: SubAck, version: int) -> bytes:
    if not p.reason_codes:
        raise ValueError("SUBACK needs at least one reason code")
    valid = _RC_SUBACK if version == MQTT_5 else _RC_SUBACK_3
    for code in p.reason_codes:
        _check_code(code, valid, "SUBACK")
    body = _pack_u16(_check_packet_id(p.packet_id)) + _props(
        p.properties, PacketType.SUBACK, version
    )
    return _frame(0x90, body + bytes(p.reason_codes))


def _encode_unsubscribe(p: Unsubscribe, version: int) -> bytes:
    if not p.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    parts = [_pack_u16(_check_packet_id(p.packet_id))]
    parts.append(_props(p.properties, PacketType.UNSUBSCRIBE, version))
    parts.extend(encode_string(f) for f in p.topic_filters)
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(p: UnsubAck, version: int) -> bytes:
    pid = _pack_u16(_check_packet_id(p.packet_id))
    if version != MQTT_5:
        if p.reason_codes or not is_empty(p.properties):
            raise ValueError("UNSUBACK reason codes and properties exist only in MQTT 5.0")
        return _frame(0xB0, pid)
    if not p.reason_codes:
        raise ValueError("a 5.0 UNSUBACK needs at least one reason code")
    for code in p.reason_codes:
        _check_code(code, _RC_UNSUBACK, "UNSUBACK")
    props = encode_properties(p.properties, PacketType.UNSUBACK)
    return _frame(0xB0, pid + props + bytes(p.reason_codes))


def _encode_pingreq(p: PingReq, version: int) -> bytes:
    return b"\xc0\x00"


def _encode_pingresp(p: PingResp, version: int) -> bytes:
    return b"\xd0\x00"


def _encode_disconnect(p: Disconnect, version: int) -> bytes:
    if version != MQTT_5:
        if p.reason_code or not is_empty(p.properties):
            raise ValueError("DISCONNECT reason codes and properties exist only in MQTT 5.0")
        return b"\xe0\x00"
    _check_code(p.reason_code, _RC_DISCONNECT, "DISCONNECT")
    if is_empty(p.properties):
        return b"\xe0\x01" + bytes((p.reason_code,)) if p.reason_code else b"\xe0\x00"
    props = encode_properties(p.properties, PacketType.DISCONNECT)
    return _frame(0xE0, bytes((p.reason_code,)) + props)


def _encode_auth(p: Auth, version: int) -> bytes:
    if version != MQTT_5:
        raise ValueError("AUTH exists only in MQTT 5.0")
    _check_code(p.reason_code, _RC_AUTH, "AUTH")
    if not p.reason_code and is_empty(p.properties):
        return b"\xf0\x00"
    # 3.15.2: only the fully omitted form is defined, so a reason code comes with its properties.
    props = encode_properties(p.properties, PacketType.AUTH)
    return _frame(0xF0, bytes((p.reason_code,)) + props)


_ENCODERS: dict[type, Callable[[object, int], bytes]] = {
    Connect: _encode_connect,  # type: ignore[dict-item]
    ConnAck: _encode_connack,  # type: ignore[dict-item]
    Publish: _encode_publish,  # type: ignore[dict-item]
    PubAck: _encode_ack,  # type: ignore[dict-item]
    PubRec: _encode_ack,  # type: ignore[dict-item]
    PubRel: _encode_ack,  # type: ignore[dict-item]
    PubComp: _encode_ack,  # type: ignore[dict-item]
    Subscribe: _encode_subscribe,  # type: ignore[dict-item]
    SubAck: _encode_suback,  # type: ignore[dict-item]
    Unsubscribe: _encode_unsubscribe,  # type: ignore[dict-item]
    UnsubAck: _encode_unsuback,  # type: ignore[dict-item]
    PingReq: _encode_pingreq,  # type: ignore[dict-item]
    PingResp: _encode_pingresp,  # type: ignore[dict-item]
    Disconnect: _encode_disconnect,  # type: ignore[dict-item]
    Auth: _encode_auth,  # type: ignore[dict-item]
}


def encode(packet: Packet, version: int) -> bytes:
    """The bytes of ``packet`` for protocol level ``version``; ValueError if it cannot exist."""
    if version not in (MQTT_3_1, MQTT_3_1_1, MQTT_5):
        raise ValueError(f"unknown MQTT protocol level {version}")
    return _ENCODERS[type(packet)](packet, version)
