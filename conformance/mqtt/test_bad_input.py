"""Bad input: every malformed packet or protocol error closes that connection, with the right
MQTT 5.0 reason code when a DISCONNECT/CONNACK says why (4.13; 3.1.1 just closes, 4.8), and
never disturbs other clients.

5.0 section 4.13: on a Malformed Packet or Protocol Error the server MUST close the connection
[MQTT-4.13.1-1] and SHOULD send a DISCONNECT with the reason code first (CONNACK for errors in
CONNECT). A DISCONNECT is required only of wsbroker (``strict``), where the issue asks for it.
A bystander connection, open for the whole module, must get its messages after every case.
"""

from __future__ import annotations

import contextlib
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.mqtt import codec
from conformance.mqtt.codec import (
    AUTH,
    CONNACK,
    MQTT_3_1_1,
    MQTT_5,
    PINGREQ,
    PUBREL,
    SUBACK,
    P,
    Will,
    encode_packet,
    encode_props,
    encode_string,
    sub_options,
)
from conformance.mqtt.conftest import RawFactory
from conformance.mqtt.rawclient import RawMqtt
from conformance.mqtt.support import observer


@dataclass
class Bystander:
    conn: RawMqtt
    topic: str


@pytest.fixture(scope="module")
def bystander(broker_url: str) -> Iterator[Bystander]:
    """A client connected for the whole module; it must keep working whatever others send."""
    c = RawMqtt(broker_url)
    c.connect(f"bystander-{uuid.uuid4().hex[:8]}")
    topic = f"conf/bystander/{uuid.uuid4().hex[:8]}"
    c.subscribe((topic, 1))
    yield Bystander(c, topic)
    c.disconnect()


@pytest.fixture(autouse=True)
def bystander_unaffected(bystander: Bystander) -> Iterator[None]:
    yield
    payload = uuid.uuid4().bytes
    bystander.conn.publish(bystander.topic, payload, qos=1)
    got = bystander.conn.receive_publish()
    assert got.payload == payload, "the bystander's round trip failed after the bad input"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    reasons: tuple[int, ...]  # acceptable 5.0 reason codes
    statement: str


def pub(topic: bytes | str, flags: int = 0, pid: bytes = b"", props: bytes = b"\x00") -> bytes:
    """A 5.0 PUBLISH built from raw pieces."""
    return encode_packet(codec.PUBLISH, flags, encode_string(topic) + pid + props + b"payload")


def pub311(topic: bytes | str, flags: int = 0, pid: bytes = b"") -> bytes:
    return encode_packet(codec.PUBLISH, flags, encode_string(topic) + pid + b"payload")


def sub5(options: int, topic: str = "conf/x", props: bytes = b"\x00", flags: int = 2) -> bytes:
    return encode_packet(
        codec.SUBSCRIBE, flags, b"\x00\x01" + props + encode_string(topic) + bytes([options])
    )


# A server that means to close does so at once; waiting longer only slows down failures.
CLOSE_WITHIN = 1.5
MALFORMED, PROTOCOL = (0x81,), (0x82,)
EITHER = (0x81, 0x82)
TOPIC_INVALID = (0x90, 0x81, 0x82)

V5_CASES = [
    Case("publish QoS 3", pub("conf/x", 0b0110, b"\x00\x01"), MALFORMED, "MQTT-3.3.1-4"),
    Case("publish topic with +", pub("conf/+/x"), TOPIC_INVALID, "MQTT-3.3.2-2"),
    Case("publish topic with #", pub("conf/#"), TOPIC_INVALID, "MQTT-3.3.2-2"),
    Case("publish empty topic, no alias", pub(""), PROTOCOL, "3.3.2.3.4 Protocol Error"),
    Case("publish QoS 0 with DUP", pub("conf/x", 0b1000), EITHER, "MQTT-3.3.1-2"),
    Case("publish QoS 1, packet id 0", pub("conf/x", 0b0010, b"\x00\x00"), EITHER, "MQTT-2.2.1-3"),
    Case("publish ill-formed UTF-8 topic", pub(b"conf/\xff\xfe"), MALFORMED, "MQTT-1.5.4-1"),
    Case("publish surrogate in topic", pub(b"conf/\xed\xa0\x80"), MALFORMED, "MQTT-1.5.4-1"),
    Case("publish NUL in topic", pub(b"conf/a\x00b"), MALFORMED, "MQTT-1.5.4-2"),
    Case(
        "publish with Subscription Identifier",
        pub("conf/x", props=encode_props([(P.SUBSCRIPTION_IDENTIFIER, 5)])),
        PROTOCOL,
        "MQTT-3.3.4-6",
    ),
    Case(
        "publish with a property twice",
        pub("conf/x", props=encode_props([(P.CONTENT_TYPE, "a"), (P.CONTENT_TYPE, "b")])),
        PROTOCOL,
        "2.2.2.2 / 3.3.2.3.9 Protocol Error",
    ),
    Case(
        "publish with unknown property",
        pub("conf/x", props=b"\x03\x7f\x00\x00"),
        MALFORMED,
        "2.2.2.2 Malformed",
    ),
    Case("property length past the end", pub("conf/x", props=b"\x7f"), MALFORMED, "2.2.2.1"),
    Case(
        "remaining length of 5 bytes",
        b"\x30\xff\xff\xff\xff\x01",
        MALFORMED,
        "1.5.5 (at most 4 bytes)",
    ),
    Case(
        "string longer than the packet",
        encode_packet(codec.PUBLISH, 0, b"\x00\x40conf"),
        MALFORMED,
        "1.5.4 / 2.1.4",
    ),
    Case("PUBREL flags 0000", encode_packet(PUBREL, 0, b"\x00\x01"), MALFORMED, "MQTT-3.6.1-1"),
    Case("SUBSCRIBE flags 0000", sub5(0, flags=0), MALFORMED, "MQTT-3.8.1-1"),
    Case(
        "UNSUBSCRIBE flags 0000",
        encode_packet(codec.UNSUBSCRIBE, 0, b"\x00\x01\x00" + encode_string("conf/x")),
        MALFORMED,
        "MQTT-3.10.1-1",
    ),
    Case("PINGREQ flags 0001", encode_packet(PINGREQ, 1, b""), MALFORMED, "MQTT-2.1.3-1"),
    Case(
        "DISCONNECT flags 0001",
        encode_packet(codec.DISCONNECT, 1, b""),
        MALFORMED,
        "MQTT-3.14.1-1",
    ),
    Case("reserved packet type 0", b"\x00\x00", EITHER, "2.1.2"),
    Case("CONNACK from a client", encode_packet(CONNACK, 0, b"\x00\x00\x00"), EITHER, "3.2"),
    Case("SUBACK from a client", encode_packet(SUBACK, 0, b"\x00\x01\x00\x00"), EITHER, "3.9"),
    Case(
        "SUBSCRIBE without filters",
        encode_packet(codec.SUBSCRIBE, 2, b"\x00\x01\x00"),
        PROTOCOL,
        "MQTT-3.8.3-2",
    ),
    Case("SUBSCRIBE reserved option bits", sub5(0xC0), MALFORMED, "MQTT-3.8.3-5"),
    Case("SUBSCRIBE QoS 3", sub5(3), PROTOCOL, "3.8.3.1 Protocol Error"),
    Case("SUBSCRIBE Retain Handling 3", sub5(0x30), PROTOCOL, "3.8.3.1 Protocol Error"),
    Case(
        "SUBSCRIBE Subscription Identifier 0",
        sub5(0, props=encode_props([(P.SUBSCRIPTION_IDENTIFIER, 0)])),
        PROTOCOL,
        "3.8.2.1.2 Protocol Error",
    ),
    Case(
        "UNSUBSCRIBE without filters",
        encode_packet(codec.UNSUBSCRIBE, 2, b"\x00\x01\x00"),
        PROTOCOL,
        "MQTT-3.10.3-2",
    ),
    Case("second CONNECT", codec.connect("again"), PROTOCOL, "MQTT-3.1.0-2"),
    Case(
        "AUTH with reserved flags",
        encode_packet(AUTH, 1, b"\x18\x00"),
        MALFORMED,
        "MQTT-3.15.1-1",
    ),
]

V311_CASES = [
    Case("publish QoS 3", pub311("conf/x", 0b0110, b"\x00\x01"), (), "MQTT-3.3.1-4"),
    Case("publish topic with +", pub311("conf/+/x"), (), "MQTT-3.3.2-2"),
    Case("publish topic with #", pub311("conf/#"), (), "MQTT-3.3.2-2"),
    Case("publish empty topic", pub311(""), (), "MQTT-4.7.3-1"),
    Case("publish QoS 1, packet id 0", pub311("conf/x", 0b0010, b"\x00\x00"), (), "MQTT-2.3.1-1"),
    Case("publish ill-formed UTF-8 topic", pub311(b"conf/\xff\xfe"), (), "MQTT-1.5.3-1"),
    Case("publish NUL in topic", pub311(b"conf/a\x00b"), (), "MQTT-1.5.3-2"),
    Case("remaining length of 5 bytes", b"\x30\xff\xff\xff\xff\x01", (), "2.2.3"),
    Case("PUBREL flags 0000", encode_packet(PUBREL, 0, b"\x00\x01"), (), "MQTT-3.6.1-1"),
    Case(
        "SUBSCRIBE flags 0000",
        encode_packet(codec.SUBSCRIBE, 0, b"\x00\x01" + encode_string("conf/x") + b"\x00"),
        (),
        "MQTT-3.8.1-1",
    ),
    Case(
        "SUBSCRIBE QoS 3",
        encode_packet(codec.SUBSCRIBE, 2, b"\x00\x01" + encode_string("conf/x") + b"\x03"),
        (),
        "MQTT-3-8.3-4",
    ),
    Case(
        "SUBSCRIBE reserved bits",
        encode_packet(codec.SUBSCRIBE, 2, b"\x00\x01" + encode_string("conf/x") + b"\x04"),
        (),
        "MQTT-3-8.3-4",
    ),
    Case(
        "SUBSCRIBE without filters",
        encode_packet(codec.SUBSCRIBE, 2, b"\x00\x01"),
        (),
        "MQTT-3.8.3-3",
    ),
    Case(
        "UNSUBSCRIBE without filters",
        encode_packet(codec.UNSUBSCRIBE, 2, b"\x00\x01"),
        (),
        "MQTT-3.10.3-2",
    ),
    Case("PINGREQ flags 0001", encode_packet(PINGREQ, 1, b""), (), "MQTT-2.2.2-2"),
    Case("AUTH (reserved in 3.1.1)", encode_packet(AUTH, 0, b""), (), "2.2.1"),
    Case("reserved packet type 0", b"\x00\x00", (), "2.2.1"),
    Case("CONNACK from a client", encode_packet(CONNACK, 0, b"\x00\x00"), (), "3.2"),
    Case("second CONNECT", codec.connect("again", version=MQTT_3_1_1), (), "MQTT-3.1.0-2"),
]


@pytest.mark.parametrize("case", V5_CASES, ids=lambda c: c.name)
def test_v5_bad_packet_closes_with_reason_code(
    raw: RawFactory, uid: str, strict: bool, case: Case
) -> None:
    """Each malformed packet / protocol error closes the connection; a DISCONNECT, if sent, has
    the reason code the spec gives (statement in ``case.statement``) [MQTT-4.13.1-1]."""
    c = raw()
    c.connect(f"bad-{uid}")
    c.send(case.data)
    c.expect_closed(case.reasons, require_disconnect=strict, timeout=CLOSE_WITHIN)


@pytest.mark.parametrize("case", V311_CASES, ids=lambda c: c.name)
def test_v311_bad_packet_closes_the_connection(raw: RawFactory, uid: str, case: Case) -> None:
    """3.1.1: a protocol violation closes the connection [MQTT-4.8.0-1] (3.1.1); there is no
    server DISCONNECT in 3.1.1 (statement in ``case.statement``)."""
    c = raw(version=MQTT_3_1_1)
    c.connect(f"bad-{uid}")
    c.send(case.data)
    assert c.until_closed(CLOSE_WITHIN) == []


FIRST_PACKETS = {
    "PUBLISH": codec.publish("conf/x", b"x", version=MQTT_3_1_1),
    "SUBSCRIBE": codec.subscribe(1, [("conf/x", 0)], version=MQTT_3_1_1),
    "PINGREQ": codec.pingreq(),
    "DISCONNECT": codec.disconnect(),
    "garbage": b"GET / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("first", list(FIRST_PACKETS), ids=str)
def test_first_packet_must_be_connect(raw: RawFactory, first: str) -> None:
    """The first packet from a client MUST be CONNECT [MQTT-3.1.0-1] (3.1.1: [MQTT-3.1.0-1]);
    otherwise the server closes the connection, sending nothing: no CONNACK, and no DISCONNECT
    before a CONNACK [MQTT-3.14.0-1]."""
    c = raw()
    c.send(FIRST_PACKETS[first])
    assert c.until_closed(CLOSE_WITHIN) == []


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_text_websocket_frame_closes_the_connection(
    raw: RawFactory, uid: str, version: int
) -> None:
    """MQTT packets travel in binary WebSocket frames; a text data frame makes the recipient
    close the connection [MQTT-6.0.0-1] (3.1.1: [MQTT-6.0.0-1])."""
    c = raw(version=version)
    c.connect(f"txt-{uid}")
    c.ws.send(codec.pingreq().decode("latin-1"))
    packets = c.until_closed(CLOSE_WITHIN)
    assert all(p.type == codec.DISCONNECT for p in packets), packets


CONNECT_CASES = [
    ("Receive Maximum 0", [(P.RECEIVE_MAXIMUM, 0)], PROTOCOL),
    ("Maximum Packet Size 0", [(P.MAXIMUM_PACKET_SIZE, 0)], PROTOCOL),
    ("Request Problem Information 2", [(P.REQUEST_PROBLEM_INFORMATION, 2)], PROTOCOL),
    ("Request Response Information 2", [(P.REQUEST_RESPONSE_INFORMATION, 2)], PROTOCOL),
    (
        "Session Expiry Interval twice",
        [(P.SESSION_EXPIRY_INTERVAL, 1), (P.SESSION_EXPIRY_INTERVAL, 2)],
        PROTOCOL,
    ),
    ("Topic Alias in CONNECT", [(P.TOPIC_ALIAS, 1)], EITHER),
]


@pytest.mark.parametrize(
    ("name", "props", "reasons"), CONNECT_CASES, ids=[c[0] for c in CONNECT_CASES]
)
def test_v5_bad_connect_properties_are_refused(
    raw: RawFactory,
    uid: str,
    name: str,
    props: list[tuple[int, Any]],
    reasons: tuple[int, ...],
) -> None:
    """Protocol errors in CONNECT properties (3.1.2.11): the server closes the connection,
    at most after a CONNACK with the reason code [MQTT-3.1.4-1] [MQTT-3.2.2-7]."""
    c = raw()
    c.send(codec.connect(f"bc-{uid}", props=props))
    final = c.expect_closed(reasons, allow_connack=True)
    if final is not None:
        assert final.type == CONNACK, f"DISCONNECT before CONNACK [MQTT-3.14.0-1]: {final!r}"


def test_v5_client_id_with_ill_formed_utf8_is_refused(raw: RawFactory) -> None:
    """The ClientID is a UTF-8 string [MQTT-3.1.3-4]; ill-formed UTF-8 is malformed: CONNACK
    0x81 or 0x85 (Client Identifier not valid) [MQTT-3.1.3-8], or just the close."""
    c = raw()
    c.send(codec.connect(b"bad\xff\xfeid"))  # type: ignore[arg-type]
    final = c.expect_closed([0x81, 0x85], allow_connack=True)
    assert final is None or final.type == CONNACK


def test_v5_disconnect_with_session_expiry_after_zero_is_a_protocol_error(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """Session Expiry Interval 0 in CONNECT and non-zero in DISCONNECT: a Protocol Error; the
    server does not treat it as a valid DISCONNECT (so the will is published) and may answer
    with DISCONNECT 0x82 (3.14.2.2.2)."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    c = raw()
    c.connect(f"sx-{uid}", will=Will(t, b"invalid disconnect"))
    c.send(codec.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 30)]))
    c.expect_closed([0x82], require_disconnect=False)
    assert obs.receive_publish().payload == b"invalid disconnect"


def test_v5_publish_on_unknown_topic_alias_is_a_protocol_error(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """An empty Topic Name with a Topic Alias that has no mapping is a Protocol Error
    (3.3.2.3.4): DISCONNECT 0x82 (or 0x94 when the alias itself is out of range)."""
    c = raw()
    maximum = c.connect(f"ua-{uid}").props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
    c.send(codec.publish("", b"x", props=[(P.TOPIC_ALIAS, max(maximum, 1))]))
    c.expect_closed([0x82] if maximum else [0x82, 0x94], require_disconnect=strict)


def test_v5_pubrel_for_unknown_packet_id_gets_pubcomp_0x92(raw: RawFactory, uid: str) -> None:
    """A PUBREL for a packet id the server does not know is answered with PUBCOMP 0x92 (Packet
    Identifier not found) (3.7.2.1) or 0x00; the connection stays open."""
    c = raw()
    c.connect(f"pr-{uid}")
    c.send(codec.ack(PUBREL, 4711))
    pubcomp = c.expect(codec.PUBCOMP)
    assert pubcomp.packet_id == 4711
    assert pubcomp.reason_code in (0x92, 0x00)
    c.ping()


def test_v5_subscribe_qos3_in_one_of_several_filters(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """One bad filter option among good ones still makes the SUBSCRIBE a Protocol Error
    (3.8.3.1): the connection is closed (DISCONNECT 0x82)."""
    c = raw()
    c.connect(f"sq-{uid}")
    c.send(codec.subscribe(1, [(f"conf/{uid}/a", 1), (f"conf/{uid}/b", 3)]))
    c.expect_closed([0x82, 0x81], require_disconnect=strict)


def test_v5_subscribe_with_retain_as_published_and_no_local_is_fine(
    raw: RawFactory, uid: str
) -> None:
    """Control case: every legal option bit combination is accepted (3.8.3.1)."""
    c = raw()
    c.connect(f"ok-{uid}")
    options = [
        sub_options(q, no_local=nl, retain_as_published=rap, retain_handling=rh)
        for q in (0, 1, 2)
        for nl in (False, True)
        for rap in (False, True)
        for rh in (0, 1, 2)
    ]
    suback = c.subscribe(*((f"conf/{uid}/{i}", o) for i, o in enumerate(options)))
    assert suback.reason_codes == [o & 3 for o in options]


def test_huge_remaining_length_does_not_hurt_the_server(raw: RawFactory, uid: str) -> None:
    """A PUBLISH announcing 256 MB and then nothing: the server must not wait with the memory
    reserved nor crash; it either closes (packet too large / over its limit) or waits for the
    rest, and other clients are served meanwhile (the bystander check)."""
    c = raw()
    c.connect(f"huge-{uid}")
    c.send(b"\x30" + codec.encode_varint(268_435_455) + struct.pack("!H", 4) + b"conf")
    with contextlib.suppress(AssertionError):  # still waiting for the rest: allowed
        c.expect_closed(timeout=1)
