"""MQTT packets to bytes: `encode` for any packet, `encode_publish` for the hot path."""

from __future__ import annotations

import struct
from collections.abc import Callable

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
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
)
from broker.subprotocols.mqtt.properties import (
    WILL_PROPERTIES,
    encode_binary,
    encode_properties,
    encode_string,
    encode_vbi,
    is_empty,
)
from broker.subprotocols.mqtt.rules import (
    PROTOCOLS,
    RC_ACK,
    RC_AUTH,
    RC_CONNACK,
    RC_DISCONNECT,
    RC_SUBACK,
    RC_SUBACK_3,
    RC_UNSUBACK,
)

__all__ = ["encode", "encode_publish"]

_pack_u16 = struct.Struct("!H").pack
_pack_small_publish_header = struct.Struct("!BBH").pack  # b0, remaining length < 128, topic length


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
    if p.protocol_level != version or (p.protocol_name, version) not in PROTOCOLS:
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
        _check_code(p.reason_code, RC_CONNACK, "CONNACK")
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
    _check_code(p.reason_code, RC_ACK[ptype], type(p).__name__)
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
    valid = RC_SUBACK if version == MQTT_5 else RC_SUBACK_3
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
        _check_code(code, RC_UNSUBACK, "UNSUBACK")
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
    _check_code(p.reason_code, RC_DISCONNECT, "DISCONNECT")
    if is_empty(p.properties):
        return b"\xe0\x01" + bytes((p.reason_code,)) if p.reason_code else b"\xe0\x00"
    props = encode_properties(p.properties, PacketType.DISCONNECT)
    return _frame(0xE0, bytes((p.reason_code,)) + props)


def _encode_auth(p: Auth, version: int) -> bytes:
    if version != MQTT_5:
        raise ValueError("AUTH exists only in MQTT 5.0")
    _check_code(p.reason_code, RC_AUTH, "AUTH")
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
