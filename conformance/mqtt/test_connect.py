"""MQTT over WebSocket (section 6) and CONNECT / CONNACK (3.1, 3.2) in 3.1, 3.1.1 and 5.0.

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1 (the two numberings differ).
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidHandshake

from conformance.mqtt import codec
from conformance.mqtt.codec import (
    CONNACK,
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    PINGRESP,
    SUBACK,
    P,
)
from conformance.mqtt.conftest import PahoFactory, RawFactory

# --------------------------------------------------------------------------- WebSocket (section 6)


def test_mqtt_subprotocol_is_selected(raw: RawFactory) -> None:
    """The server selects and returns the ``mqtt`` subprotocol [MQTT-6.0.0-4] (5.0 and 3.1.1)."""
    c = raw(subprotocol="mqtt")
    assert c.subprotocol == "mqtt"


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_mqtt_token_serves_the_version_named_in_connect(raw: RawFactory, version: int) -> None:
    """One ``mqtt`` token serves 3.1.1 and 5.0: the CONNECT protocol level decides [MQTT-3.1.2-2].

    A 5.0 CONNACK has properties and a 3.1.1 one has none, so the CONNACK's length shows which
    version the server answered with.
    """
    c = raw(version=version)
    connack = c.connect("", clean=True)
    if version == MQTT_3_1_1:
        assert connack.raw[1] == 2, f"3.1.1 CONNACK has remaining length 2: {connack.raw!r}"
    else:
        assert connack.raw[1] >= 3, f"5.0 CONNACK carries a property length: {connack.raw!r}"


def test_mqttv31_token_and_protocol_name_mqisdp(raw: RawFactory, uid: str) -> None:
    """``mqttv3.1`` is the MQTT 3.1 token; a 3.1 CONNECT names protocol ``MQIsdp``, level 3."""
    c = raw(version=MQTT_3_1, subprotocol="mqttv3.1")
    assert c.subprotocol == "mqttv3.1"
    connack = c.connect(f"v31-{uid}"[:23])
    assert connack.reason_code == 0
    t = f"conf/{uid}/v31"
    assert c.subscribe((t, 1)).reason_codes == [1]
    c.publish(t, b"hello 3.1", qos=1)
    got = c.receive_publish()
    assert (got.topic, got.payload, got.qos) == (t, b"hello 3.1", 1)


def test_paho_mqttv31_client_over_mqttv31_token(paho: PahoFactory, uid: str) -> None:
    """paho's MQTTv31 client, offering the ``mqttv3.1`` token, connects and round-trips."""
    c = paho(f"p31-{uid}"[:23], version=3, subprotocol="mqttv3.1")
    c.connect()
    t = f"conf/{uid}/p31"
    assert c.subscribe(t, 2) == [2]
    c.publish(t, b"via 3.1", qos=2)
    msg = c.expect()
    assert (msg.topic, msg.payload, msg.qos) == (t, b"via 3.1", 2)


@pytest.mark.parametrize("path", ["/ws", "/", "/some/other/path"])
def test_mqtt_subprotocol_works_on_any_path(raw: RawFactory, uid: str, path: str) -> None:
    """With the ``mqtt`` token offered, the path does not matter (section 6 names none; DESIGN.md:
    "with a subprotocol, any path is accepted")."""
    c = raw(path=path)
    assert c.subprotocol == "mqtt"
    c.connect(f"path-{uid}")
    c.ping()


def test_handshake_without_mqtt_token_on_mqtt_path_is_not_mqtt_subprotocol(
    broker_url: str, target: str
) -> None:
    """A server must only answer with a subprotocol the client offered (RFC 6455 4.1)."""
    from conformance.mqtt.rawclient import RawMqtt

    with RawMqtt(broker_url, subprotocol="not-a-real-token") as c:
        try:
            chosen = c.subprotocol
        except InvalidHandshake:
            return  # refusing the upgrade is fine
        assert chosen in (None, "not-a-real-token")


def test_packet_split_across_websocket_messages(raw: RawFactory, uid: str) -> None:
    """A packet may span WebSocket messages: the receiver must not assume alignment
    [MQTT-6.0.0-2]."""
    c = raw()
    connect = codec.connect(f"split-{uid}")
    for i in range(len(connect)):  # one byte per WebSocket message
        c.send(connect[i : i + 1])
    assert c.expect(CONNACK).reason_code == 0
    c.send(codec.pingreq()[:1])
    c.send(codec.pingreq()[1:])
    c.expect(PINGRESP)


def test_packet_split_across_continuation_frames(raw: RawFactory, uid: str) -> None:
    """A packet may arrive in one fragmented WebSocket message [MQTT-6.0.0-2]."""
    c = raw()
    connect = codec.connect(f"frag-{uid}")
    c.send_fragmented([connect[:3], connect[3:9], connect[9:]])
    assert c.expect(CONNACK).reason_code == 0


def test_several_packets_in_one_websocket_message(raw: RawFactory, uid: str) -> None:
    """Several packets may share one WebSocket message [MQTT-6.0.0-2]: CONNECT, SUBSCRIBE,
    PUBLISH and PINGREQ in one message get CONNACK, SUBACK, the message and PINGRESP."""
    c = raw()
    t = f"conf/{uid}/many"
    c.send(
        codec.connect(f"many-{uid}")
        + codec.subscribe(1, [(t, 0)])
        + codec.publish(t, b"together")
        + codec.pingreq()
    )
    assert c.expect(CONNACK).reason_code == 0
    assert c.expect(SUBACK).reason_codes == [0]
    got = c.receive_publish()
    assert got.payload == b"together"
    c.expect(PINGRESP)


def test_server_sends_binary_frames(raw: RawFactory, uid: str) -> None:
    """MQTT Control Packets MUST be sent in WebSocket binary data frames [MQTT-6.0.0-1]."""
    c = raw()
    c.connect(f"bin-{uid}")
    c.ping()
    assert c.text_frames == 0


# --------------------------------------------------------------------------- CONNECT / CONNACK


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_connack_success_with_clean_start_has_session_present_0(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Accepted with Clean Start/Clean Session 1: CONNACK 0x00 with Session Present 0
    [MQTT-3.2.2-2] (3.1.1: [MQTT-3.2.2-1]); reserved CONNACK flag bits are 0 [MQTT-3.2.2-1]."""
    c = raw(version=version)
    connack = c.connect(f"clean-{uid}", clean=True)
    assert connack.reason_code == 0
    assert not connack.session_present
    assert connack.raw[2] & 0xFE == 0


def test_only_one_connack_per_connection(raw: RawFactory, uid: str) -> None:
    """The Server MUST NOT send more than one CONNACK in a Network Connection [MQTT-3.2.0-2]."""
    c = raw()
    c.connect(f"one-{uid}")
    c.ping()
    assert all(p.type != CONNACK for p in c.packets_within(0.3))


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_wrong_protocol_name_is_refused(raw: RawFactory, uid: str, version: int) -> None:
    """A protocol name other than ``MQTT``: the server closes the connection, at most after a
    refusing CONNACK (0x84 in 5.0, 0x01 in 3.1.1) [MQTT-3.1.2-1] (3.1.1: [MQTT-3.1.2-1])."""
    c = raw(version=version)
    c.send(codec.connect(f"name-{uid}", version=version, protocol_name="MQTX"))
    final = c.expect_closed(allow_connack=True)
    if final is not None:
        assert final.type == CONNACK
        assert final.reason_code in (0x01, 0x84), final


@pytest.mark.parametrize("level", [2, 6, 0x7F])
def test_unsupported_protocol_level_is_refused(raw: RawFactory, uid: str, level: int) -> None:
    """Unsupported protocol level: CONNACK 0x01 (3.1.1 [MQTT-3.1.2-2]: MUST respond) or 0x84
    (5.0 [MQTT-3.1.2-2]), then the connection is closed."""
    c = raw(version=MQTT_3_1_1)
    body = codec.connect(f"level-{uid}", version=MQTT_3_1_1)
    # Protocol level is the byte after the protocol name (2 + 4 bytes) in the variable header.
    pkt = bytearray(body)
    assert pkt[2:8] == b"\x00\x04MQTT"
    pkt[8] = level
    c.send(bytes(pkt))
    final = c.expect_closed(allow_connack=True)
    assert final is not None, "3.1.1 requires a CONNACK 0x01"
    assert final.type == CONNACK, final
    assert final.reason_code in (0x01, 0x84), final
    assert not final.session_present, "[MQTT-3.2.2-6] Session Present 0 on a refusal"


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_reserved_connect_flag_must_be_zero(raw: RawFactory, uid: str, version: int) -> None:
    """The Server MUST validate that the reserved flag in CONNECT is 0 and close the connection
    if not [MQTT-3.1.2-3] (5.0: Malformed Packet, CONNACK 0x81 allowed first)."""
    c = raw(version=version)
    c.send(codec.connect(f"resv-{uid}", version=version, reserved_flag=True))
    final = c.expect_closed(allow_connack=True)
    if final is not None:
        assert final.reason_code in ((0x81,) if version == MQTT_5 else (0x01, 0x02, 0x05)), final


def test_v5_empty_client_id_gets_assigned_client_identifier(raw: RawFactory, strict: bool) -> None:
    """5.0: a zero-length ClientID gets a unique Assigned Client Identifier in the CONNACK
    [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16]. A server MAY instead refuse with 0x85
    [MQTT-3.1.3-8]; wsbroker must assign."""
    a, b = raw(), raw()
    ca = a.connect("", expect_success=False)
    if ca.reason_code == 0x85 and not strict:
        return
    assert ca.reason_code == 0, ca
    cb = b.connect("")
    ida = ca.props.get(P.ASSIGNED_CLIENT_IDENTIFIER)
    idb = cb.props.get(P.ASSIGNED_CLIENT_IDENTIFIER)
    assert ida, f"no Assigned Client Identifier: {ca!r}"
    assert idb, f"no Assigned Client Identifier: {cb!r}"
    assert ida != idb, "assigned client identifiers must be unique"
    # Both stay connected: neither took the other's session over.
    a.ping()
    b.ping()


def test_v311_empty_client_id_with_clean_session_is_accepted(raw: RawFactory, strict: bool) -> None:
    """3.1.1: a zero-byte ClientId with CleanSession 1 MAY be allowed, each such client getting
    its own session [MQTT-3.1.3-6] (3.1.1); wsbroker allows it. Otherwise CONNACK 0x02
    [MQTT-3.1.3-9] (3.1.1)."""
    a, b = raw(version=MQTT_3_1_1), raw(version=MQTT_3_1_1)
    ca = a.connect("", clean=True, expect_success=False)
    if ca.reason_code == 0x02 and not strict:
        return
    assert ca.reason_code == 0, ca
    b.connect("", clean=True)
    a.ping()
    b.ping()


def test_v311_empty_client_id_without_clean_session_is_identifier_rejected(
    raw: RawFactory,
) -> None:
    """3.1.1: zero-byte ClientId with CleanSession 0: CONNACK 0x02 (Identifier rejected), then
    the server closes the connection [MQTT-3.1.3-8] (3.1.1)."""
    c = raw(version=MQTT_3_1_1)
    c.send(codec.connect("", version=MQTT_3_1_1, clean=False))
    final = c.expect_closed(allow_connack=True)
    assert final is not None, "3.1.1 requires CONNACK 0x02"
    assert final.type == CONNACK, final
    assert final.reason_code == 0x02, final


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_23_alphanumeric_client_id_is_allowed(raw: RawFactory, uid: str, version: int) -> None:
    """The Server MUST allow ClientIDs of 1 to 23 bytes of [0-9a-zA-Z] [MQTT-3.1.3-5]."""
    client_id = ("Z9" + uid + "abcdefghijklmnopqrstuvwxyz")[:23]
    c = raw(version=version)
    assert c.connect(client_id).reason_code == 0


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_username_and_password_are_accepted_by_allow_all_auth(
    raw: RawFactory, uid: str, version: int
) -> None:
    """User Name and Password are carried in CONNECT [MQTT-3.1.2-17] [MQTT-3.1.2-19]; with no
    authentication configured (allow-all) the connection is accepted."""
    c = raw(version=version)
    connack = c.connect(f"user-{uid}", username="alice", password=b"s3cr\xc3\xa9t\x00\xff")
    assert connack.reason_code == 0


def test_v311_password_without_username_is_refused(raw: RawFactory, uid: str) -> None:
    """3.1.1: if the User Name Flag is 0 the Password Flag MUST be 0 [MQTT-3.1.2-22] (3.1.1);
    the server closes the connection (a CONNACK refusal first is allowed)."""
    c = raw(version=MQTT_3_1_1)
    c.send(codec.connect(f"pw-{uid}", version=MQTT_3_1_1, password=b"x"))
    final = c.expect_closed(allow_connack=True)
    if final is not None:
        assert final.reason_code != 0, final


def test_v5_password_without_username_is_allowed(raw: RawFactory, uid: str) -> None:
    """5.0 allows a Password without a User Name (3.1.2.9: unlike 3.1.1); allow-all accepts."""
    c = raw()
    c.send(codec.connect(f"pw5-{uid}", password=b"token"))
    connack = c.expect(CONNACK)
    assert connack.reason_code in (0x00, 0x86, 0x87), connack
    if connack.reason_code == 0:
        c.ping()


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_will_qos_3_is_malformed(raw: RawFactory, uid: str, version: int) -> None:
    """Will QoS MUST be 0, 1 or 2 [MQTT-3.1.2-12]: QoS 3 closes the connection (5.0: a CONNACK
    0x81 first is allowed) (3.1.1: [MQTT-3.1.2-14])."""
    c = raw(version=version)
    c.send(
        codec.connect(
            f"wq3-{uid}", version=version, will=codec.Will(f"conf/{uid}/will", b"x", qos=3)
        )
    )
    final = c.expect_closed(allow_connack=True)
    if final is not None:
        assert final.reason_code in ((0x81, 0x82, 0x9B) if version == MQTT_5 else (1, 2)), final


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_will_flag_0_with_will_qos_or_retain_is_malformed(
    raw: RawFactory, uid: str, version: int
) -> None:
    """With Will Flag 0, Will QoS and Will Retain MUST be 0 [MQTT-3.1.2-11] [MQTT-3.1.2-13]
    (3.1.1: [MQTT-3.1.2-13] [MQTT-3.1.2-15]); the server closes the connection."""
    c = raw(version=version)
    c.send(codec.connect(f"wf0-{uid}", version=version, flags_override=0x02 | 0x08 | 0x20))
    final = c.expect_closed(allow_connack=True)
    if final is not None:
        assert final.reason_code != 0, final


def test_v5_connack_capabilities_are_well_formed(raw: RawFactory, uid: str) -> None:
    """The CONNACK's capability properties, when present, carry legal values (3.2.2.3):
    Maximum QoS 0/1, Retain/Wildcard/Subscription Identifier/Shared Subscription Available 0/1,
    Receive Maximum and Maximum Packet Size non-zero."""
    c = raw()
    props = c.connect(f"caps-{uid}").props
    if P.MAXIMUM_QOS in props:
        assert props.get(P.MAXIMUM_QOS) in (0, 1), "absent means 2; 2 itself is not sent"
    for p in (
        P.RETAIN_AVAILABLE,
        P.WILDCARD_SUBSCRIPTION_AVAILABLE,
        P.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        P.SHARED_SUBSCRIPTION_AVAILABLE,
    ):
        assert props.get(p, 1) in (0, 1)
    assert props.get(P.RECEIVE_MAXIMUM, 65535) > 0
    assert props.get(P.MAXIMUM_PACKET_SIZE, 1) > 0
    assert P.AUTHENTICATION_METHOD not in props, "[MQTT-4.12.0-6] no auth method was sent"
    for pid, _ in props.items:
        assert sum(1 for k, _ in props.items if k == pid) == 1 or pid == P.USER_PROPERTY


def test_v5_request_response_information_0_gets_no_response_information(
    raw: RawFactory, uid: str
) -> None:
    """Request Response Information 0: the server MUST NOT return Response Information
    [MQTT-3.1.2-28]."""
    c = raw()
    connack = c.connect(f"rri-{uid}", props=[(P.REQUEST_RESPONSE_INFORMATION, 0)])
    assert P.RESPONSE_INFORMATION not in connack.props


def test_v5_session_expiry_interval_in_connect_is_accepted(raw: RawFactory, uid: str) -> None:
    """A CONNECT with Session Expiry Interval, Receive Maximum, Maximum Packet Size, Topic Alias
    Maximum, Request Problem Information and a User Property is accepted (3.1.2.11)."""
    c = raw()
    connack = c.connect(
        f"props-{uid}",
        props=[
            (P.SESSION_EXPIRY_INTERVAL, 0),
            (P.RECEIVE_MAXIMUM, 100),
            (P.MAXIMUM_PACKET_SIZE, 65536),
            (P.TOPIC_ALIAS_MAXIMUM, 5),
            (P.REQUEST_PROBLEM_INFORMATION, 1),
            (P.USER_PROPERTY, ("k", "v")),
        ],
    )
    assert connack.reason_code == 0
