"""MQTT codec: byte-exact packets of every version, every rejection rule, splits, fuzzing."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.subprotocols.mqtt.codec import (
    PacketReader,
    ProtocolViolation,
    encode,
    encode_publish,
)
from broker.subprotocols.mqtt.packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
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
from broker.subprotocols.mqtt.properties import PROPERTY_TABLE, WILL_PROPERTIES

MALFORMED = ReasonCode.MALFORMED_PACKET
PROTOCOL = ReasonCode.PROTOCOL_ERROR
UNSUPPORTED = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
TOO_LARGE = ReasonCode.PACKET_TOO_LARGE
TOPIC_INVALID = ReasonCode.TOPIC_NAME_INVALID

CONNACK_BYTES = {MQTT_3_1: b"\x20\x02\x00\x00", MQTT_3_1_1: b"\x20\x02\x00\x00"}
CONNACK_BYTES[MQTT_5] = b"\x20\x03\x00\x00\x00"

Item = Packet | ProtocolViolation


def h(text: str) -> bytes:
    """Hex with spaces and quoted ASCII, e.g. h('00 03 "a/b"')."""
    out = bytearray()
    for i, part in enumerate(text.split('"')):
        out += part.encode() if i % 2 else bytes.fromhex(part)
    return bytes(out)


def server_reader(version: int, **kw: Any) -> PacketReader:
    """Reads what a client sends, the CONNECT already handled."""
    return PacketReader(server=True, version=version, **kw)


def client_reader(version: int, **kw: Any) -> PacketReader:
    """Reads what a server sends, the CONNACK already consumed."""
    reader = PacketReader(server=False, version=version, **kw)
    assert reader.receive_data(CONNACK_BYTES[version]) == [ConnAck(False, 0)]
    return reader


def check_stream(items: list[Item]) -> None:
    """At most one ProtocolViolation, and only last."""
    for item in items[:-1]:
        assert not isinstance(item, ProtocolViolation)


def violation(items: list[Item]) -> ProtocolViolation:
    assert items, "expected a ProtocolViolation, got nothing"
    last = items[-1]
    assert isinstance(last, ProtocolViolation), items
    check_stream(items)
    return last


# --- byte-exact cases, written from the specification ----------------------------------------

CONNECT_311 = h('10 0D 0004 "MQTT" 04 02 003C 0001 "c"')
CONNECT_5 = h('10 0E 0004 "MQTT" 05 02 003C 00 0001 "c"')
CONNECT_31 = h('10 0F 0006 "MQIsdp" 03 02 003C 0001 "c"')

# (direction, version, packet, bytes): "c" = client to server, "s" = server to client.
CASES: list[tuple[str, int, Packet, bytes]] = [
    # CONNECT
    ("c", 4, Connect("MQTT", 4, True, 60, "c"), CONNECT_311),
    ("c", 5, Connect("MQTT", 5, True, 60, "c"), CONNECT_5),
    ("c", 3, Connect("MQIsdp", 3, True, 60, "c"), CONNECT_31),
    (
        "c",
        4,
        Connect("MQTT", 4, False, 0, "", Will("w", b"x", 1, True), "u", b"p"),
        h('10 18 0004 "MQTT" 04 EC 0000 0000 0001 "w" 0001 "x" 0001 "u" 0001 "p"'),
    ),
    (
        "c",
        5,
        Connect(
            "MQTT",
            5,
            True,
            10,
            "id",
            Will("w/t", b"", 2, False, Properties(will_delay_interval=5)),
            None,
            b"pw",
            Properties(session_expiry_interval=10, receive_maximum=20),
        ),
        h(
            '10 28 0004 "MQTT" 05 56 000A'
            " 08 11 0000000A 21 0014"
            ' 0002 "id"'
            ' 05 18 00000005 0003 "w/t" 0000'
            ' 0002 "pw"'
        ),
    ),
    # CONNACK
    ("s", 4, ConnAck(True, 0), h("20 02 01 00")),
    ("s", 4, ConnAck(False, 5), h("20 02 00 05")),
    ("s", 5, ConnAck(False, 0), h("20 03 00 00 00")),
    (
        "s",
        5,
        ConnAck(False, 0x87, Properties(maximum_qos=1, retain_available=0)),
        h("20 07 00 87 04 24 01 25 00"),
    ),
    # PUBLISH
    ("c", 4, Publish("a/b", b"hi"), h('30 07 0003 "a/b" "hi"')),
    ("s", 4, Publish("a/b", b"hi", 1, True, True, 10), h('3B 09 0003 "a/b" 000A "hi"')),
    ("c", 4, Publish("a", b"", 2, False, False, 0xFFFF), h('34 05 0001 "a" FFFF')),
    ("c", 5, Publish("a/b", b"hi"), h('30 08 0003 "a/b" 00 "hi"')),
    (
        "c",
        5,
        Publish(
            "", b"x", 1, False, False, 1, Properties(payload_format_indicator=1, topic_alias=5)
        ),
        h('32 0B 0000 0001 05 01 01 23 0005 "x"'),
    ),
    (
        "s",
        5,
        Publish("t", b"", 0, False, False, None, Properties(subscription_identifiers=(1, 200))),
        h('30 09 0001 "t" 05 0B 01 0B C801'),
    ),
    # PUBACK, PUBREC, PUBREL, PUBCOMP
    ("c", 4, PubAck(10), h("40 02 000A")),
    ("s", 4, PubRec(10), h("50 02 000A")),
    ("c", 4, PubRel(10), h("62 02 000A")),
    ("s", 4, PubComp(10), h("70 02 000A")),
    ("c", 5, PubAck(10), h("40 02 000A")),
    ("c", 5, PubAck(10, 0x10), h("40 03 000A 10")),
    ("s", 5, PubRec(10, 0x80, Properties(reason_string="x")), h('50 08 000A 80 04 1F 0001 "x"')),
    ("c", 5, PubRel(10, 0x92), h("62 03 000A 92")),
    (
        "s",
        5,
        PubComp(10, 0, Properties(user_properties=(("k", "v"),))),
        h('70 0B 000A 00 07 26 0001 "k" 0001 "v"'),
    ),
    # SUBSCRIBE, SUBACK
    ("c", 4, Subscribe(1, (SubscriptionRequest("a", 1),)), h('82 06 0001 0001 "a" 01')),
    (
        "c",
        4,
        Subscribe(2, (SubscriptionRequest("a/+", 0), SubscriptionRequest("#", 2))),
        h('82 0C 0002 0003 "a/+" 00 0001 "#" 02'),
    ),
    (
        "c",
        5,
        Subscribe(1, (SubscriptionRequest("a", 1, True, True, 1),)),
        h('82 07 0001 00 0001 "a" 1D'),
    ),
    (
        "c",
        5,
        Subscribe(
            1,
            (SubscriptionRequest("a", 0, False, False, 2),),
            Properties(subscription_identifiers=(5,)),
        ),
        h('82 09 0001 02 0B 05 0001 "a" 20'),
    ),
    ("s", 4, SubAck(1, (1, 0x80)), h("90 04 0001 01 80")),
    ("s", 5, SubAck(1, (0, 0xA2)), h("90 05 0001 00 00 A2")),
    # UNSUBSCRIBE, UNSUBACK
    ("c", 4, Unsubscribe(2, ("a",)), h('A2 05 0002 0001 "a"')),
    ("c", 5, Unsubscribe(2, ("a", "b/#")), h('A2 0B 0002 00 0001 "a" 0003 "b/#"')),
    ("s", 4, UnsubAck(2), h("B0 02 0002")),
    ("s", 5, UnsubAck(2, (0, 0x11)), h("B0 05 0002 00 00 11")),
    # PINGREQ, PINGRESP
    ("c", 4, PingReq(), h("C0 00")),
    ("c", 5, PingReq(), h("C0 00")),
    ("s", 4, PingResp(), h("D0 00")),
    ("s", 5, PingResp(), h("D0 00")),
    # DISCONNECT
    ("c", 4, Disconnect(), h("E0 00")),
    ("c", 5, Disconnect(), h("E0 00")),
    ("c", 5, Disconnect(4), h("E0 01 04")),
    ("s", 5, Disconnect(0x8E), h("E0 01 8E")),
    ("c", 5, Disconnect(0, Properties(session_expiry_interval=0)), h("E0 07 00 05 11 00000000")),
    ("s", 5, Disconnect(0x9C, Properties(server_reference="s")), h('E0 06 9C 04 1C 0001 "s"')),
    # AUTH
    ("c", 5, Auth(), h("F0 00")),
    ("s", 5, Auth(0x18, Properties(authentication_method="m")), h('F0 06 18 04 15 0001 "m"')),
    ("c", 5, Auth(0x19, Properties()), h("F0 02 19 00")),
]


def reader_for(direction: str, version: int, packet: Packet) -> PacketReader:
    if isinstance(packet, Connect):
        return PacketReader(server=True)
    if isinstance(packet, ConnAck):
        return PacketReader(server=False, version=version)
    return server_reader(version) if direction == "c" else client_reader(version)


@pytest.mark.parametrize(("direction", "version", "packet", "wire"), CASES)
def test_encode_exact(direction: str, version: int, packet: Packet, wire: bytes) -> None:
    assert encode(packet, version) == wire


@pytest.mark.parametrize(("direction", "version", "packet", "wire"), CASES)
def test_decode_exact(direction: str, version: int, packet: Packet, wire: bytes) -> None:
    reader = reader_for(direction, version, packet)
    assert reader.receive_data(wire) == [packet]


@pytest.mark.parametrize(("direction", "version", "packet", "wire"), CASES)
def test_decode_every_split(direction: str, version: int, packet: Packet, wire: bytes) -> None:
    for cut in range(len(wire) + 1):
        reader = reader_for(direction, version, packet)
        assert reader.receive_data(wire[:cut]) + reader.receive_data(wire[cut:]) == [packet]
    reader = reader_for(direction, version, packet)
    got: list[Item] = []
    for i in range(len(wire)):
        got += reader.receive_data(wire[i : i + 1])
    assert got == [packet]


def test_connect_sets_version() -> None:
    for wire, version in ((CONNECT_31, 3), (CONNECT_311, 4), (CONNECT_5, 5)):
        reader = PacketReader()
        assert reader.version is None
        reader.receive_data(wire)
        assert reader.version == version


def test_client_reader_infers_version_from_connack() -> None:
    reader = PacketReader(server=False)
    assert reader.receive_data(CONNACK_BYTES[4]) == [ConnAck(False, 0)]
    assert reader.version == 4
    reader = PacketReader(server=False)
    assert reader.receive_data(CONNACK_BYTES[5]) == [ConnAck(False, 0)]
    assert reader.version == 5
    reader = PacketReader(server=False)
    assert reader.receive_data(h("F0 00")) == [Auth()]
    assert reader.version == 5


# --- 5.0 short forms and lenient receive ------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        (h("40 04 000A 00 00"), PubAck(10)),
        (h("40 03 000A 00"), PubAck(10)),
        (h("E0 02 00 00"), Disconnect()),
        (h("F0 01 18"), Auth(0x18)),
        (h('30 88 00 0003 "a/b" 00 "hi"'), Publish("a/b", b"hi")),  # non-minimal length
    ],
)
def test_lenient_forms(wire: bytes, packet: Packet) -> None:
    assert server_reader(5).receive_data(wire) == [packet]


def test_control_characters_allowed_in_strings() -> None:
    wire = encode(Publish("a\x01\x1f\x7f\x9f", b""), 4)
    assert server_reader(4).receive_data(wire) == [Publish("a\x01\x1f\x7f\x9f", b"")]


# --- every rejection rule --------------------------------------------------------------------

CONNECT_REJECTS: list[tuple[str, bytes, int]] = [
    ("protocol level 6", h('10 0D 0004 "MQTT" 06 02 003C 0001 "c"'), UNSUPPORTED),
    ("MQTT level 3", h('10 0D 0004 "MQTT" 03 02 003C 0001 "c"'), UNSUPPORTED),
    ("MQIsdp level 4", h('10 0F 0006 "MQIsdp" 04 02 003C 0001 "c"'), UNSUPPORTED),
    ("other name", h('10 0D 0004 "MQTX" 04 02 003C 0001 "c"'), UNSUPPORTED),
    ("reserved flag", h('10 0D 0004 "MQTT" 04 03 003C 0001 "c"'), MALFORMED),
    ("will qos without will", h('10 0D 0004 "MQTT" 04 0A 003C 0001 "c"'), MALFORMED),
    ("will retain without will", h('10 0D 0004 "MQTT" 04 22 003C 0001 "c"'), MALFORMED),
    (
        "will qos 3",
        h('10 12 0004 "MQTT" 04 1E 003C 0001 "c" 0001 "w" 0000'),
        MALFORMED,
    ),
    (
        "password without user name in 3.1.1",
        h('10 10 0004 "MQTT" 04 42 003C 0001 "c" 0001 "p"'),
        MALFORMED,
    ),
    (
        "will topic with wildcard",
        h('10 12 0004 "MQTT" 04 06 003C 0001 "c" 0001 "#" 0000'),
        TOPIC_INVALID,
    ),
    ("fixed header flags", h('11 0D 0004 "MQTT" 04 02 003C 0001 "c"'), MALFORMED),
    ("trailing bytes", h('10 0E 0004 "MQTT" 04 02 003C 0001 "c" 00'), MALFORMED),
    ("truncated", h('10 0B 0004 "MQTT" 04 02 003C 00'), MALFORMED),
    ("client id bad UTF-8", h('10 0D 0004 "MQTT" 04 02 003C 0001 FF'), MALFORMED),
    ("client id NUL", h('10 0D 0004 "MQTT" 04 02 003C 0001 00'), MALFORMED),
    ("client id surrogate", h('10 0F 0004 "MQTT" 04 02 003C 0003 EDA080'), MALFORMED),
    ("client id overlong", h('10 0E 0004 "MQTT" 04 02 003C 0002 C080'), MALFORMED),
    (
        "5.0 property not allowed in CONNECT",
        h('10 10 0004 "MQTT" 05 02 003C 02 24 01 0001 "c"'),
        MALFORMED,
    ),
    (
        "5.0 auth data without method",
        h('10 12 0004 "MQTT" 05 02 003C 04 16 0001 "x" 0001 "c"'),
        PROTOCOL,
    ),
    (
        "5.0 property not allowed in will",
        h('10 16 0004 "MQTT" 05 06 003C 00 0001 "c" 02 23 01 0001 "w" 0000'),
        MALFORMED,
    ),
    ("first packet not CONNECT", h("C0 00"), PROTOCOL),
    ("HTTP instead of MQTT", b"GET / HTTP/1.1\r\n\r\n", PROTOCOL),
]


@pytest.mark.parametrize(("why", "wire", "code"), CONNECT_REJECTS)
def test_connect_rejected(why: str, wire: bytes, code: int) -> None:
    assert violation(PacketReader().receive_data(wire)).reason_code == code


def test_password_without_user_name_allowed_in_5() -> None:
    wire = h('10 11 0004 "MQTT" 05 42 003C 00 0001 "c" 0001 "p"')
    assert PacketReader().receive_data(wire) == [Connect("MQTT", 5, True, 60, "c", password=b"p")]


def test_second_connect_rejected() -> None:
    reader = PacketReader()
    items = reader.receive_data(CONNECT_311 + CONNECT_311)
    assert items[0] == Connect("MQTT", 4, True, 60, "c")
    assert violation(items).reason_code == PROTOCOL
    assert "CONNECT" in violation(items).message


def test_broken_connect_still_reports_version() -> None:
    reader = PacketReader()
    violation(reader.receive_data(h('10 0E 0004 "MQTT" 05 03 003C 00 0001 "c"')))
    assert reader.version == 5


# (version, bytes from a client after CONNECT, reason code)
SERVER_REJECTS: list[tuple[str, int, bytes, int]] = [
    ("type 0", 4, h("00 00"), MALFORMED),
    ("AUTH in 3.1.1", 4, h("F0 00"), MALFORMED),
    ("CONNACK from client", 4, h("20 02 00 00"), PROTOCOL),
    ("SUBACK from client", 5, h("90 04 0001 00 00"), PROTOCOL),
    ("UNSUBACK from client", 4, h("B0 02 0001"), PROTOCOL),
    ("PINGRESP from client", 4, h("D0 00"), PROTOCOL),
    ("remaining length 5 bytes", 4, h("30 FF FF FF FF 01"), MALFORMED),
    ("PUBLISH qos 3", 4, h('36 03 0001 "a"'), MALFORMED),
    ("PUBLISH qos 0 dup", 4, h('38 03 0001 "a"'), MALFORMED),
    ("PUBLISH qos 0 dup 5.0", 5, h('38 04 0001 "a" 00'), MALFORMED),
    ("PUBLISH wildcard +", 4, h('30 05 0003 "a/+"'), TOPIC_INVALID),
    ("PUBLISH wildcard #", 5, h('30 04 0001 "#" 00'), TOPIC_INVALID),
    ("PUBLISH empty topic 3.1.1", 4, h("30 02 0000"), TOPIC_INVALID),
    ("PUBLISH empty topic without alias", 5, h("30 03 0000 00"), PROTOCOL),
    ("PUBLISH packet id 0", 4, h('32 05 0001 "a" 0000'), PROTOCOL),
    ("PUBLISH missing packet id", 4, h('32 03 0001 "a"'), MALFORMED),
    ("PUBLISH topic past end", 4, h('30 03 0005 "a"'), MALFORMED),
    ("PUBLISH topic bad UTF-8", 4, h("30 03 0001 C3"), MALFORMED),
    ("PUBLISH topic NUL", 4, h("30 04 0002 6100"), MALFORMED),
    ("PUBLISH sub id from client", 5, h('30 06 0001 "a" 02 0B 01'), PROTOCOL),
    ("PUBLISH topic alias 0", 5, h('30 07 0001 "a" 03 23 0000'), PROTOCOL),
    ("PUBLISH payload format 2", 5, h('30 06 0001 "a" 02 01 02'), PROTOCOL),
    ("PUBLISH duplicate property", 5, h('30 08 0001 "a" 04 01 01 01 01'), PROTOCOL),
    ("PUBLISH unknown property", 5, h('30 06 0001 "a" 02 07 00'), MALFORMED),
    ("PUBLISH disallowed property", 5, h('30 06 0001 "a" 02 24 00'), MALFORMED),
    ("PUBLISH property length past end", 5, h('30 05 0001 "a" 05'), MALFORMED),
    ("PUBLISH truncated property", 5, h('30 06 0001 "a" 02 02 00'), MALFORMED),
    ("PUBACK flags", 4, h("41 02 0001"), MALFORMED),
    ("PUBACK length 3 in 3.1.1", 4, h("40 03 0001 00"), MALFORMED),
    ("PUBACK length 1", 5, h("40 01 00"), MALFORMED),
    ("PUBACK packet id 0", 4, h("40 02 0000"), PROTOCOL),
    ("PUBACK bad reason code", 5, h("40 03 0001 92"), MALFORMED),
    ("PUBACK trailing after properties", 5, h("40 05 0001 00 00 00"), MALFORMED),
    ("PUBREC flags", 4, h("52 02 0001"), MALFORMED),
    ("PUBREL flags 0", 4, h("60 02 0001"), MALFORMED),
    ("PUBREL bad reason code", 5, h("62 03 0001 10"), MALFORMED),
    ("PUBCOMP flags", 5, h("72 02 0001"), MALFORMED),
    ("PUBCOMP bad reason code", 5, h("70 03 0001 80"), MALFORMED),
    ("SUBSCRIBE flags 0", 4, h('80 06 0001 0001 "a" 00'), MALFORMED),
    ("SUBSCRIBE no filters", 4, h("82 02 0001"), PROTOCOL),
    ("SUBSCRIBE no filters 5.0", 5, h("82 03 0001 00"), PROTOCOL),
    ("SUBSCRIBE packet id 0", 4, h('82 06 0000 0001 "a" 00'), PROTOCOL),
    ("SUBSCRIBE missing options", 4, h('82 05 0001 0001 "a"'), MALFORMED),
    ("SUBSCRIBE qos 3 in 3.1.1", 4, h('82 06 0001 0001 "a" 03'), MALFORMED),
    ("SUBSCRIBE reserved bits 3.1.1", 4, h('82 06 0001 0001 "a" 04'), MALFORMED),
    ("SUBSCRIBE reserved bits 5.0", 5, h('82 07 0001 00 0001 "a" 40'), MALFORMED),
    ("SUBSCRIBE qos 3 in 5.0", 5, h('82 07 0001 00 0001 "a" 03'), PROTOCOL),
    ("SUBSCRIBE retain handling 3", 5, h('82 07 0001 00 0001 "a" 30'), PROTOCOL),
    ("SUBSCRIBE two sub ids", 5, h('82 0B 0001 04 0B 01 0B 02 0001 "a" 00'), PROTOCOL),
    ("SUBSCRIBE sub id 0", 5, h('82 09 0001 02 0B 00 0001 "a" 00'), PROTOCOL),
    ("SUBSCRIBE filter bad UTF-8", 4, h("82 06 0001 0001 FF 00"), MALFORMED),
    ("UNSUBSCRIBE flags", 4, h('A0 05 0001 0001 "a"'), MALFORMED),
    ("UNSUBSCRIBE no filters", 4, h("A2 02 0001"), PROTOCOL),
    ("UNSUBSCRIBE no filters 5.0", 5, h("A2 03 0001 00"), PROTOCOL),
    ("UNSUBSCRIBE truncated filter", 4, h('A2 05 0001 0002 "a"'), MALFORMED),
    ("UNSUBSCRIBE sub id", 5, h('A2 07 0001 02 0B 01 0001 "a"'), MALFORMED),
    ("PINGREQ flags", 4, h("C1 00"), MALFORMED),
    ("PINGREQ with body", 4, h("C0 01 00"), MALFORMED),
    ("DISCONNECT body in 3.1.1", 4, h("E0 01 00"), MALFORMED),
    ("DISCONNECT flags", 5, h("E1 00"), MALFORMED),
    ("DISCONNECT server-only reason", 5, h("E0 01 8E"), MALFORMED),
    ("DISCONNECT unknown reason", 5, h("E0 01 05"), MALFORMED),
    ("DISCONNECT disallowed property", 5, h("E0 04 00 02 24 01"), MALFORMED),
    ("AUTH bad reason", 5, h("F0 01 01"), MALFORMED),
    ("AUTH flags", 5, h("F1 00"), MALFORMED),
    ("AUTH disallowed property", 5, h("F0 04 18 02 01 01"), MALFORMED),
    ("CONNECT after CONNECT", 4, CONNECT_311, PROTOCOL),
]


@pytest.mark.parametrize(("why", "version", "wire", "code"), SERVER_REJECTS)
def test_server_side_rejected(why: str, version: int, wire: bytes, code: int) -> None:
    good = encode(PingReq(), version)
    reader = server_reader(version)
    items = reader.receive_data(good + wire + good)
    assert items[0] == PingReq()
    assert len(items) == 2
    assert violation(items).reason_code == code
    assert violation(items).message
    # The reader ignores everything after a violation.
    assert reader.receive_data(good) == []


CLIENT_REJECTS: list[tuple[str, int, bytes, int]] = [
    ("CONNECT from server", 4, CONNECT_311, PROTOCOL),
    ("SUBSCRIBE from server", 4, h('82 06 0001 0001 "a" 00'), PROTOCOL),
    ("PINGREQ from server", 5, h("C0 00"), PROTOCOL),
    ("DISCONNECT from server in 3.1.1", 4, h("E0 00"), PROTOCOL),
    ("second CONNACK", 4, h("20 02 00 00"), PROTOCOL),
    ("SUBACK bad code 3.1.1", 4, h("90 03 0001 03"), MALFORMED),
    ("SUBACK bad code 5.0", 5, h("90 04 0001 00 03"), MALFORMED),
    ("SUBACK empty", 4, h("90 02 0001"), PROTOCOL),
    ("SUBACK flags", 4, h("92 03 0001 00"), MALFORMED),
    ("UNSUBACK body in 3.1.1", 4, h("B0 03 0001 00"), MALFORMED),
    ("UNSUBACK bad code", 5, h("B0 04 0001 00 01"), MALFORMED),
    ("UNSUBACK empty in 5.0", 5, h("B0 03 0001 00"), PROTOCOL),
    ("PINGRESP with body", 4, h("D0 01 00"), MALFORMED),
    ("DISCONNECT client-only reason", 5, h("E0 01 04"), MALFORMED),
    ("DISCONNECT session expiry", 5, h("E0 07 00 05 11 00000001"), PROTOCOL),
    ("SUBACK duplicate reason string", 5, h('90 0C 0001 08 1F 0001 "a" 1F 0001 "b" 00'), PROTOCOL),
]


@pytest.mark.parametrize(("why", "version", "wire", "code"), CLIENT_REJECTS)
def test_client_side_rejected(why: str, version: int, wire: bytes, code: int) -> None:
    reader = client_reader(version)
    assert violation(reader.receive_data(wire)).reason_code == code


CONNACK_REJECTS: list[tuple[str, int | None, bytes, int]] = [
    ("first packet not CONNACK", 4, h("D0 00"), PROTOCOL),
    ("AUTH first in 3.1.1", 4, h("F0 00"), PROTOCOL),
    ("reserved flags", 4, h("20 02 02 00"), MALFORMED),
    ("header flags", 4, h("21 02 00 00"), MALFORMED),
    ("reserved return code", 4, h("20 02 00 06"), MALFORMED),
    ("length 3 in 3.1.1", 4, h("20 03 00 00 00"), MALFORMED),
    ("length 2 in 5.0", 5, h("20 02 00 00"), MALFORMED),
    ("session present with error", 4, h("20 02 01 05"), PROTOCOL),
    ("bad 5.0 reason code", 5, h("20 03 00 01 00"), MALFORMED),
    ("topic alias in CONNACK", 5, h("20 06 00 00 03 23 0001"), MALFORMED),
    ("maximum qos 2", 5, h("20 05 00 00 02 24 02"), PROTOCOL),
    ("receive maximum 0", 5, h("20 06 00 00 03 21 0000"), PROTOCOL),
    ("maximum packet size 0", 5, h("20 08 00 00 05 27 00000000"), PROTOCOL),
    ("retain available 2", 5, h("20 05 00 00 02 25 02"), PROTOCOL),
    ("wildcard available 2", 5, h("20 05 00 00 02 28 02"), PROTOCOL),
    ("sub ids available 2", 5, h("20 05 00 00 02 29 02"), PROTOCOL),
    ("shared available 2", 5, h("20 05 00 00 02 2A 02"), PROTOCOL),
    ("truncated", None, h("20 01 00"), MALFORMED),
]


@pytest.mark.parametrize(("why", "version", "wire", "code"), CONNACK_REJECTS)
def test_connack_rejected(why: str, version: int | None, wire: bytes, code: int) -> None:
    reader = PacketReader(server=False, version=version)
    assert violation(reader.receive_data(wire)).reason_code == code


def test_server_publish_may_carry_several_subscription_identifiers() -> None:
    wire = h('30 09 0001 "t" 04 0B 01 0B 02 "x"')
    assert client_reader(5).receive_data(wire) == [
        Publish("t", b"x", properties=Properties(subscription_identifiers=(1, 2)))
    ]


def test_user_properties_keep_order_and_duplicates() -> None:
    props = Properties(user_properties=(("b", "1"), ("a", "2"), ("b", "3")))
    packet = Publish("t", b"", properties=props)
    assert server_reader(5).receive_data(encode(packet, 5)) == [packet]


# --- size limit -------------------------------------------------------------------------------


def test_max_packet_size_counts_the_whole_packet() -> None:
    ok = encode_publish(4, "t", b"x" * 95, 0, False, False, None, None)
    assert len(ok) == 100
    assert server_reader(4, max_packet_size=100).receive_data(ok) == [Publish("t", b"x" * 95)]
    big = encode_publish(4, "t", b"x" * 96, 0, False, False, None, None)
    items = server_reader(4, max_packet_size=100).receive_data(big)
    assert violation(items).reason_code == TOO_LARGE


def test_too_large_reported_from_the_header_alone() -> None:
    reader = server_reader(4, max_packet_size=1000)
    assert violation(reader.receive_data(h("30 E9 07"))).reason_code == TOO_LARGE  # 1001
    reader = server_reader(4, max_packet_size=1000)
    assert reader.receive_data(h("30")) == []
    assert reader.receive_data(h("E9")) == []
    assert violation(reader.receive_data(h("07"))).reason_code == TOO_LARGE


def test_large_packet_in_many_chunks() -> None:
    payload = bytes(range(256)) * 1000
    wire = encode(Publish("big", payload, 1, packet_id=7), 5)
    reader = server_reader(5, max_packet_size=1 << 20)
    got: list[Item] = []
    for i in range(0, len(wire), 1000):
        got += reader.receive_data(wire[i : i + 1000])
    assert got == [Publish("big", payload, 1, packet_id=7)]
    assert len(reader._buf) == 0


def test_many_packets_in_one_chunk() -> None:
    packets = [
        Publish(f"t/{i}", b"p" * (i % 300), i % 3, packet_id=i % 3 and i + 1) for i in range(2000)
    ]
    packets = [p if p.qos else Publish(p.topic, p.payload) for p in packets]
    for version in (4, 5):
        wire = b"".join(encode(p, version) for p in packets)
        assert server_reader(version).receive_data(wire) == packets
        reader = server_reader(version)
        got: list[Item] = []
        for i in range(0, len(wire), 777):
            got += reader.receive_data(wire[i : i + 777])
        assert got == packets


def test_payload_is_bytes_even_from_bytearray_input() -> None:
    items = server_reader(4).receive_data(bytearray(h('30 07 0003 "a/b" "hi"')))  # type: ignore[arg-type]
    assert items == [Publish("a/b", b"hi")]
    assert type(items[0].payload) is bytes  # type: ignore[union-attr]


# --- encoding rejects packets that cannot exist ----------------------------------------------

ENCODE_REJECTS: list[tuple[Packet, int]] = [
    (Auth(), 4),
    (Disconnect(4), 4),
    (Disconnect(0, Properties(reason_string="x")), 4),
    (PubAck(1, 0x10), 4),
    (PubAck(0), 4),
    (PubAck(1, 0x92), 5),
    (UnsubAck(1, (0,)), 4),
    (UnsubAck(1), 5),
    (SubAck(1, ()), 4),
    (SubAck(1, (0x8F,)), 4),
    (Subscribe(1, ()), 4),
    (Subscribe(1, (SubscriptionRequest("a", 1, no_local=True),)), 4),
    (Subscribe(1, (SubscriptionRequest("a", 3),)), 4),
    (Unsubscribe(1, ()), 5),
    (Publish("a", b"", 1), 4),
    (Publish("a", b"", 0, packet_id=1), 4),
    (Publish("a", b"", 0, dup=True), 4),
    (Publish("a/+", b""), 4),
    (Publish("", b""), 4),
    (Publish("", b""), 5),
    (Publish("a", b"", properties=Properties(content_type="x")), 4),
    (Publish("a", b"", properties=Properties(maximum_qos=1)), 5),
    (Publish("a", b"", properties=Properties(payload_format_indicator=2)), 5),
    (ConnAck(False, 0x84), 4),
    (ConnAck(True, 0x80), 5),
    (Connect("MQTT", 4, True, 0, "c"), 5),
    (Connect("MQTT", 3, True, 0, "c"), 3),
    (Connect("MQTT", 4, True, 0, "c", password=b"p"), 4),
    (Connect("MQTT", 4, True, 0, "c\x00"), 4),
    (Connect("MQTT", 4, True, 0, "c", Will("#", b"")), 4),
    (Connect("MQTT", 5, True, 0, "c", Will("w", b"", properties=Properties(topic_alias=1))), 5),
    (PingReq(), 6),
]


@pytest.mark.parametrize(("packet", "version"), ENCODE_REJECTS)
def test_encode_rejects_impossible_packets(packet: Packet, version: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        encode(packet, version)


def test_encode_publish_matches_encode() -> None:
    props = Properties(message_expiry_interval=60, content_type="text/plain")
    assert encode_publish(5, "a/b", b"x", 1, True, False, 3, props) == encode(
        Publish("a/b", b"x", 1, True, False, 3, props), 5
    )
    long = b"y" * 70000
    wire = encode_publish(4, "a", long, 0, False, False, None, None)
    assert wire[:6] == h("30 F3 A2 04 0001")  # 70003 as a variable byte integer
    assert server_reader(4).receive_data(wire) == [Publish("a", long)]


# --- hypothesis round trips -------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
TOPIC = TEXT.filter(lambda s: bool(s) and "+" not in s and "#" not in s)
PID = st.integers(1, 0xFFFF)
KIND_INTS = {0: 0xFF, 1: 0xFFFF, 2: 0xFFFF_FFFF, 3: 268_435_455}


@st.composite
def properties(draw: st.DrawFn, context: int, from_server: bool = False) -> Properties:
    fields: dict[str, Any] = {}
    for prop in PROPERTY_TABLE:
        if not prop.contexts >> context & 1 or not draw(st.booleans()):
            continue
        if prop.id == 0x0B:
            if context == PacketType.SUBSCRIBE:
                fields[prop.name] = (draw(st.integers(prop.lo, prop.hi)),)
            elif from_server:
                fields[prop.name] = tuple(draw(st.lists(st.integers(prop.lo, prop.hi), max_size=3)))
        elif prop.id == 0x26:
            fields[prop.name] = tuple(draw(st.lists(st.tuples(TEXT, TEXT), max_size=3)))
        elif prop.kind == 4:
            fields[prop.name] = draw(TEXT)
        elif prop.kind == 5:
            fields[prop.name] = draw(st.binary(max_size=10))
        else:
            fields[prop.name] = draw(st.integers(prop.lo, min(prop.hi, KIND_INTS[prop.kind])))
    if fields.get("authentication_data") is not None:
        fields.setdefault("authentication_method", "m")
    if context == PacketType.DISCONNECT and from_server:
        fields.pop("session_expiry_interval", None)
    return Properties(**fields)


def props_for(
    version: int, context: int, from_server: bool = False
) -> st.SearchStrategy[Properties]:
    return properties(context, from_server) if version == MQTT_5 else st.just(Properties())


@st.composite
def publishes(draw: st.DrawFn, version: int, from_server: bool) -> Publish:
    qos = draw(st.integers(0, 2))
    return Publish(
        draw(TOPIC),
        draw(st.binary(max_size=40)),
        qos,
        draw(st.booleans()),
        draw(st.booleans()) if qos else False,
        draw(PID) if qos else None,
        draw(props_for(version, PacketType.PUBLISH, from_server)),
    )


@st.composite
def acks(draw: st.DrawFn, version: int, from_server: bool) -> Packet:
    ptype = draw(st.integers(4, 7))
    pid = draw(PID)
    code = 0
    props = Properties()
    if version == MQTT_5:
        codes = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99] if ptype < 6 else [0, 0x92]
        code = draw(st.sampled_from(codes))
        props = draw(props_for(version, ptype, from_server))
    if ptype == 4:
        return PubAck(pid, code, props)
    if ptype == 5:
        return PubRec(pid, code, props)
    if ptype == 6:
        return PubRel(pid, code, props)
    return PubComp(pid, code, props)


@st.composite
def client_packets(draw: st.DrawFn, version: int) -> Packet:
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(publishes(version, False))
    if kind == 1:
        return draw(acks(version, False))
    if kind == 2:
        subs = st.builds(
            SubscriptionRequest,
            TEXT,
            st.integers(0, 2),
            st.booleans() if version == MQTT_5 else st.just(False),
            st.booleans() if version == MQTT_5 else st.just(False),
            st.integers(0, 2) if version == MQTT_5 else st.just(0),
        )
        return Subscribe(
            draw(PID),
            tuple(draw(st.lists(subs, min_size=1, max_size=4))),
            draw(props_for(version, PacketType.SUBSCRIBE)),
        )
    if kind == 3:
        return Unsubscribe(
            draw(PID),
            tuple(draw(st.lists(TEXT, min_size=1, max_size=4))),
            draw(props_for(version, PacketType.UNSUBSCRIBE)),
        )
    if kind == 4:
        return PingReq()
    if kind == 5 and version == MQTT_5:
        codes = [0, 4, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99]
        return Disconnect(
            draw(st.sampled_from(codes)), draw(props_for(version, PacketType.DISCONNECT))
        )
    if kind == 6 and version == MQTT_5:
        return Auth(draw(st.sampled_from([0, 0x18, 0x19])), draw(properties(PacketType.AUTH)))
    return Disconnect()


@st.composite
def server_packets(draw: st.DrawFn, version: int) -> Packet:
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(publishes(version, True))
    if kind == 1:
        return draw(acks(version, True))
    if kind == 2:
        codes = (
            [0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]
            if version == MQTT_5
            else [0, 1, 2, 0x80]
        )
        return SubAck(
            draw(PID),
            tuple(draw(st.lists(st.sampled_from(codes), min_size=1, max_size=5))),
            draw(props_for(version, PacketType.SUBACK, True)),
        )
    if kind == 3:
        if version != MQTT_5:
            return UnsubAck(draw(PID))
        codes = [0, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
        return UnsubAck(
            draw(PID),
            tuple(draw(st.lists(st.sampled_from(codes), min_size=1, max_size=5))),
            draw(properties(PacketType.UNSUBACK, True)),
        )
    if kind == 5 and version == MQTT_5:
        return Disconnect(
            draw(st.sampled_from([0, 0x80, 0x8B, 0x8E, 0x9C, 0xA2])),
            draw(properties(PacketType.DISCONNECT, True)),
        )
    if kind == 6 and version == MQTT_5:
        return Auth(draw(st.sampled_from([0, 0x18, 0x19])), draw(properties(PacketType.AUTH, True)))
    return PingResp()


@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(
            draw(TOPIC),
            draw(st.binary(max_size=20)),
            draw(st.integers(0, 2)),
            draw(st.booleans()),
            draw(props_for(version, WILL_PROPERTIES)),
        )
    username = draw(st.none() | TEXT)
    password = draw(st.none() | st.binary(max_size=10))
    if username is None and version != MQTT_5:
        password = None
    return Connect(
        "MQIsdp" if version == MQTT_3_1 else "MQTT",
        version,
        draw(st.booleans()),
        draw(st.integers(0, 0xFFFF)),
        draw(TEXT),
        will,
        username,
        password,
        draw(props_for(version, PacketType.CONNECT)),
    )


@st.composite
def connacks(draw: st.DrawFn, version: int) -> ConnAck:
    if version == MQTT_5:
        code = draw(st.sampled_from([0, 0x80, 0x81, 0x84, 0x87, 0x8C, 0x9C, 0x9F]))
        props = draw(properties(PacketType.CONNACK, True))
    else:
        code = draw(st.integers(0, 5))
        props = Properties()
    return ConnAck(draw(st.booleans()) if not code else False, code, props)


VERSIONS = st.sampled_from([MQTT_3_1, MQTT_3_1_1, MQTT_5])
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.data())
def test_roundtrip_client_packets(data: st.DataObject) -> None:
    version = data.draw(VERSIONS)
    connect = data.draw(connects(version))
    packets = data.draw(st.lists(client_packets(version), max_size=5))
    wire = b"".join(encode(p, version) for p in [connect, *packets])
    reader = PacketReader()
    assert reader.receive_data(wire) == [connect, *packets]
    cut = data.draw(st.integers(0, len(wire)))
    reader = PacketReader()
    assert reader.receive_data(wire[:cut]) + reader.receive_data(wire[cut:]) == [
        connect,
        *packets,
    ]


@FAST
@given(st.data())
def test_roundtrip_server_packets(data: st.DataObject) -> None:
    version = data.draw(VERSIONS)
    connack = data.draw(connacks(version))
    packets = data.draw(st.lists(server_packets(version), max_size=5))
    wire = b"".join(encode(p, version) for p in [connack, *packets])
    reader = PacketReader(server=False, version=version)
    assert reader.receive_data(wire) == [connack, *packets]
    cut = data.draw(st.integers(0, len(wire)))
    reader = PacketReader(server=False, version=version)
    assert reader.receive_data(wire[:cut]) + reader.receive_data(wire[cut:]) == [
        connack,
        *packets,
    ]


# --- fuzzing: never raise; packets, then at most one violation --------------------------------


def fuzz_readers() -> list[PacketReader]:
    return [
        PacketReader(),
        PacketReader(server=False),
        server_reader(4, max_packet_size=300),
        server_reader(5, max_packet_size=300),
        PacketReader(server=False, version=4),
        PacketReader(server=False, version=5),
    ]


def feed(reader: PacketReader, chunks: list[bytes]) -> None:
    items: list[Item] = []
    for chunk in chunks:
        items += reader.receive_data(chunk)
    check_stream(items)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_fuzz_random_bytes(chunks: list[bytes]) -> None:
    for reader in fuzz_readers():
        feed(reader, chunks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_packets(data: st.DataObject) -> None:
    version = data.draw(VERSIONS)
    client = [
        data.draw(connects(version)),
        *data.draw(st.lists(client_packets(version), max_size=4)),
    ]
    server = [
        data.draw(connacks(version)),
        *data.draw(st.lists(server_packets(version), max_size=4)),
    ]
    for server_side, packets in ((True, client), (False, server)):
        wire = bytearray(b"".join(encode(p, version) for p in packets))
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(wire) - 1))
            op = data.draw(st.integers(0, 2))
            if op == 0:
                wire[i] = data.draw(st.integers(0, 255))
            elif op == 1:
                del wire[i]
            else:
                wire.insert(i, data.draw(st.integers(0, 255)))
        cut = data.draw(st.integers(0, len(wire)))
        reader = PacketReader(server=server_side, version=None if server_side else version)
        feed(reader, [bytes(wire[:cut]), bytes(wire[cut:])])


def test_fuzz_seeded_mutations_of_every_case() -> None:
    rng = random.Random(1234)
    for direction, version, packet, wire in CASES:
        for _ in range(200):
            mutated = bytearray(wire)
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            reader = reader_for(direction, version, packet)
            items = reader.receive_data(bytes(mutated))
            check_stream(items)


def test_publish_keeps_its_raw_bytes_only_when_they_can_be_forwarded_as_they_are() -> None:
    def parse(data: bytes, version: int) -> Publish:
        reader = PacketReader(server=True, version=version)
        (packet,) = reader.receive_data(data)
        assert isinstance(packet, Publish)
        return packet

    plain = b"\x30\x06\x00\x01tabc"
    assert parse(plain, 4).raw == plain
    qos1 = b"\x32\x07\x00\x01t\x00\x05ab"
    assert parse(qos1, 4).raw == qos1
    assert parse(b"\x3a\x07\x00\x01t\x00\x05ab", 4).raw is None  # DUP set
    assert parse(b"\x30\x86\x00\x00\x01tabc", 4).raw is None  # non-minimal length
    assert parse(b"\x30\x06\x00\x01t\x00ab", 5).raw == b"\x30\x06\x00\x01t\x00ab"
    assert parse(b"\x30\x07\x00\x01t\x02\x01\x01a", 5).raw is None  # with properties


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x30\x06\x00\x01tabc", ("t", b"abc")),
        (b"\x30\x03\x00\x01t", ("t", b"")),
        (b"\x31\x06\x00\x01tabc", None),  # retain
        (b"\x32\x08\x00\x01t\x00\x01ab", None),  # QoS 1
        (b"\x30\x07\x00\x01tabc", None),  # length says more than there is
        (b"\x30\x06\x00\x01tabc\x30", None),  # a second packet follows
        (b"\x30\x06\x00\x01+abc", None),  # wildcard: receive_data reports it
        (b"\x30\x06\x00\x01\x00abc", None),  # NUL
        (b"\x30\x06\x00\x01\xffabc", None),  # not UTF-8
        (b"\x30\x04\x00\x00ab", None),  # empty topic
        (b"\x30\x06\x00\x05tabc", None),  # topic runs past the end
    ],
)
def test_plain_publish_takes_only_what_needs_no_packet(
    data: bytes, expected: tuple[str, bytes] | None
) -> None:
    reader = PacketReader(server=True, version=4)
    assert reader.plain_publish(data) == expected
    assert PacketReader(server=True, version=5).plain_publish(data) is None


def test_plain_publish_waits_for_pending_bytes() -> None:
    reader = PacketReader(server=True, version=4)
    reader.receive_data(b"\x30\x06\x00")
    assert reader.plain_publish(b"\x30\x06\x00\x01tabc") is None
    assert PacketReader(server=True).plain_publish(b"\x30\x06\x00\x01tabc") is None  # no CONNECT
