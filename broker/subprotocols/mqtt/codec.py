"""Sans-I/O MQTT 3.1/3.1.1/5.0 codec: bytes in, packets out; `encoder.py` goes the other way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.subprotocols.mqtt.encoder import encode, encode_publish
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
    encode_properties,
)
from broker.subprotocols.mqtt.rules import (
    FROM_CLIENT,
    FROM_SERVER,
    PROTOCOLS,
    RC_ACK,
    RC_AUTH,
    RC_CONNACK,
    RC_DISCONNECT_FROM_CLIENT,
    RC_DISCONNECT_FROM_SERVER,
    RC_SUBACK,
    RC_SUBACK_3,
    RC_UNSUBACK,
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
    if code not in RC_ACK[ptype]:
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
    valid = RC_SUBACK_3
    if version == MQTT_5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBACK, from_server)
        valid = RC_SUBACK
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
        if code not in RC_UNSUBACK:
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
    valid = RC_DISCONNECT_FROM_SERVER if from_server else RC_DISCONNECT_FROM_CLIENT
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
    if code not in RC_AUTH:
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
        if ptype not in (FROM_SERVER if from_server else FROM_CLIENT) or (
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
        if (name, level) not in PROTOCOLS:
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
            if code not in RC_CONNACK:
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
