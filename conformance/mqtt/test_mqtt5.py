"""MQTT 5.0 features: reason codes and strings, Receive Maximum, Maximum Packet Size, Topic Alias,
Message Expiry, payload format / content type, request-response properties, user properties,
subscription options, shared subscriptions, server DISCONNECT, AUTH.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.mqtt import codec
from conformance.mqtt.clients import paho_prop, paho_props
from conformance.mqtt.codec import (
    AUTH,
    CONNACK,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    P,
    sub_options,
)
from conformance.mqtt.conftest import PahoFactory, RawFactory
from conformance.mqtt.rawclient import ConnectionGone, RawMqtt
from conformance.mqtt.support import let_broker_time_pass

PUBLISH_TYPE = 3  # paho's PacketTypes.PUBLISH

# --------------------------------------------------------------------------- reason codes


def no_problem_info(pkt: codec.Packet) -> bool:
    return P.REASON_STRING not in pkt.props and P.USER_PROPERTY not in pkt.props


def test_every_ack_carries_a_reason_code_from_its_table(raw: RawFactory, uid: str) -> None:
    """PUBACK [MQTT-3.4.2-1], PUBREC [MQTT-3.5.2-1], PUBREL [MQTT-3.6.2-1], PUBCOMP
    [MQTT-3.7.2-1], SUBACK [MQTT-3.9.3-2] and UNSUBACK [MQTT-3.11.3-2] use their own reason
    codes; a Reason String, when present, is a UTF-8 string."""
    c = raw()
    c.connect(f"rc-{uid}")
    t = f"conf/{uid}/rc"
    suback = c.subscribe((t, 2))
    assert suback.reason_codes == [2]
    puback = c.publish(t, b"1", qos=1)
    assert puback is not None
    assert puback.reason_code in (0x00, 0x10)
    c.send(codec.publish(t, b"2", qos=2, packet_id=99))
    pubrec = c.wait_for(PUBREC, packet_id=99)
    assert pubrec.reason_code in (0x00, 0x10)
    c.send(codec.ack(PUBREL, 99))
    assert c.wait_for(PUBCOMP, packet_id=99).reason_code == 0x00
    for _ in range(2):  # our own two messages come back; the QoS 2 one brings a PUBREL
        pkt = c.receive_publish()
        assert pkt.topic == t
    rel = c.wait_for(PUBREL)
    assert rel.reason_code == 0x00
    c.send(codec.ack(PUBCOMP, rel.packet_id))  # type: ignore[arg-type]
    c.awaiting_pubrel.clear()
    unsuback = c.unsubscribe(t, f"conf/{uid}/never")
    assert unsuback.reason_codes[0] == 0x00
    assert unsuback.reason_codes[1] in (0x00, 0x11)
    for pkt in (suback, puback, pubrec, unsuback):
        reason = pkt.props.get(P.REASON_STRING)
        assert reason is None or isinstance(reason, str)


def test_request_problem_information_0_suppresses_reason_strings(raw: RawFactory, uid: str) -> None:
    """With Request Problem Information 0 the server MUST NOT send a Reason String or User
    Properties on packets other than PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29]."""
    c = raw()
    c.connect(f"rpi-{uid}", props=[(P.REQUEST_PROBLEM_INFORMATION, 0)])
    acks = [
        c.publish(f"conf/{uid}/nobody", b"x", qos=1),
        c.publish(f"conf/{uid}/nobody", b"x", qos=2),
        c.subscribe((f"conf/{uid}/a", 1)),
        c.unsubscribe(f"conf/{uid}/never"),
    ]
    for ack in acks:
        assert ack is not None
        assert no_problem_info(ack), ack


# --------------------------------------------------------------------------- Receive Maximum


def test_server_respects_the_clients_receive_maximum(raw: RawFactory, uid: str) -> None:
    """The server MUST NOT send more than Receive Maximum unacknowledged QoS 1/2 PUBLISH packets
    [MQTT-3.3.4-9]; the rest follow as acknowledgements free the quota (4.9), in order."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}", props=[(P.RECEIVE_MAXIMUM, 2)])
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/rm"
    sub.subscribe((t, 1))
    for i in range(6):
        pub.publish(t, b"%d" % i, qos=1)
    first = [sub.receive_publish(ack=False) for _ in range(2)]
    extra = sub.packets_within(0.5)
    assert extra == [], f"more than Receive Maximum (2) unacknowledged: {extra}"
    got = [p.payload for p in first]
    for p in first:
        sub.ack_publish(p)
    while len(got) < 6:
        got.append(sub.receive_publish().payload)
    assert got == [b"%d" % i for i in range(6)]


def test_client_exceeding_the_servers_receive_maximum_is_disconnected_0x93(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """A client MUST NOT send more than the server's Receive Maximum unacknowledged QoS 1/2
    PUBLISHes [MQTT-3.3.4-7]; a server receiving more uses DISCONNECT 0x93 (Receive Maximum
    exceeded) (3.3.4) and closes the connection [MQTT-4.13.1-1]. Exactly Receive Maximum of
    them is fine."""
    c = raw()
    limit = c.connect(f"rm-{uid}").props.get(P.RECEIVE_MAXIMUM, 65535)
    if limit > 1000 and not strict:
        pytest.skip(f"Receive Maximum {limit} is too large to exhaust here")
    t = f"conf/{uid}/rm"
    c.send(b"".join(codec.publish(t, b"x", qos=2, packet_id=i + 1) for i in range(limit)))
    for i in range(limit):
        c.wait_for(PUBREC, packet_id=i + 1)
    c.send(codec.publish(t, b"one too many", qos=2, packet_id=limit + 1))
    c.expect_closed([0x93], require_disconnect=strict, timeout=3)


# --------------------------------------------------------------------------- Maximum Packet Size


def test_server_does_not_send_packets_over_the_clients_maximum_packet_size(
    raw: RawFactory, uid: str
) -> None:
    """The server MUST NOT send packets over the client's Maximum Packet Size
    [MQTT-3.1.2-24]; such a message is discarded as if sent [MQTT-3.1.2-25], the next ones
    still arrive."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}", props=[(P.MAXIMUM_PACKET_SIZE, 256)])
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/mps"
    sub.subscribe((t, 1))
    pub.publish(t, b"x" * 300, qos=1)
    pub.publish(t, b"small", qos=1)
    got = sub.receive_publish()
    assert got.payload == b"small"
    assert got.size <= 256
    sub.ping()


def test_packet_over_the_servers_maximum_packet_size_is_refused_0x95(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """A client MUST NOT send packets over the server's Maximum Packet Size [MQTT-3.2.2-15];
    one that does gets DISCONNECT 0x95 (Packet too large) and the connection closed (3.2.2.3.6,
    4.13). A packet of exactly the maximum is accepted."""
    c = raw()
    limit = c.connect(f"mps-{uid}").props.get(P.MAXIMUM_PACKET_SIZE)
    if limit is None:
        if strict:
            pytest.fail("wsbroker advertises no Maximum Packet Size")
        pytest.skip("the server states no Maximum Packet Size")
    t = f"conf/{uid}/big"
    fits = publish_of_size(t, limit, packet_id=1)
    c.send(fits)
    c.wait_for(PUBACK, packet_id=1)
    c.send(publish_of_size(t, limit + 1, packet_id=2))
    c.expect_closed([0x95], require_disconnect=strict, timeout=3)


def publish_of_size(topic: str, size: int, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH of exactly ``size`` bytes, fixed header included."""
    payload_len = size - len(codec.publish(topic, b"", qos=1, packet_id=packet_id))
    while True:
        pkt = codec.publish(topic, b"x" * payload_len, qos=1, packet_id=packet_id)
        if len(pkt) == size:
            return pkt
        payload_len -= len(pkt) - size


# --------------------------------------------------------------------------- Topic Alias


def test_client_topic_alias_is_resolved_by_the_server(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """A server accepts Topic Aliases 1..its Topic Alias Maximum [MQTT-3.3.2-12]: a PUBLISH with
    a topic and an alias sets the mapping, one with an empty topic uses it, a new topic
    re-maps it (3.3.2.3.4). Subscribers see full topic names."""
    pub, sub = raw(), raw()
    maximum = pub.connect(f"p-{uid}").props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
    if maximum == 0:
        if strict:
            pytest.fail("wsbroker advertises no Topic Alias Maximum")
        pytest.skip("the server accepts no topic aliases")
    sub.connect(f"s-{uid}")
    a, b = f"conf/{uid}/alias/a", f"conf/{uid}/alias/b"
    sub.subscribe((f"conf/{uid}/alias/+", 1))
    alias = [(P.TOPIC_ALIAS, maximum)]
    pub.send(codec.publish(a, b"set", qos=1, packet_id=1, props=alias))
    pub.send(codec.publish("", b"use", qos=1, packet_id=2, props=alias))
    pub.send(codec.publish(b, b"remap", qos=1, packet_id=3, props=alias))
    pub.send(codec.publish("", b"use again", qos=1, packet_id=4, props=alias))
    for pid in range(1, 5):
        assert pub.wait_for(PUBACK, packet_id=pid).reason_code in (0x00, 0x10)
    got = [(p.topic, p.payload) for p in (sub.receive_publish() for _ in range(4))]
    assert got == [(a, b"set"), (a, b"use"), (b, b"remap"), (b, b"use again")]


@pytest.mark.parametrize("which", ["zero", "over maximum"])
def test_invalid_topic_alias_is_disconnected_0x94(
    raw: RawFactory, uid: str, strict: bool, which: str
) -> None:
    """A Topic Alias over the server's Topic Alias Maximum [MQTT-3.3.2-9] gets DISCONNECT 0x94
    (Topic Alias invalid, 3.2.2.3.8) and the connection closed. A Topic Alias of 0
    [MQTT-3.3.2-8] has no reason code of its own: 0x94, 0x82 (Protocol Error) or 0x81."""
    c = raw()
    maximum = c.connect(f"ta-{uid}").props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
    alias = 0 if which == "zero" else maximum + 1
    c.send(codec.publish(f"conf/{uid}/x", b"x", props=[(P.TOPIC_ALIAS, alias)]))
    c.expect_closed([0x94, 0x82, 0x81] if alias == 0 else [0x94], require_disconnect=strict)


def test_topic_alias_mappings_do_not_carry_over_to_a_new_connection(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """Topic Alias mappings belong to one connection [MQTT-3.3.2-7]: an empty topic with an alias
    set on an earlier connection is a Protocol Error (0x82) on the new one."""
    first = raw()
    maximum = first.connect(f"tc-{uid}").props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
    if maximum == 0:
        pytest.skip("the server accepts no topic aliases")
    first.publish(f"conf/{uid}/x", b"x", qos=1, props=[(P.TOPIC_ALIAS, 1)])
    first.disconnect()
    second = raw()
    second.connect(f"tc-{uid}")
    second.send(codec.publish("", b"x", qos=1, packet_id=1, props=[(P.TOPIC_ALIAS, 1)]))
    second.expect_closed([0x82, 0x94], require_disconnect=strict)


def test_server_topic_aliases_stay_within_the_clients_maximum(raw: RawFactory, uid: str) -> None:
    """The server MAY use Topic Aliases up to the client's Topic Alias Maximum
    [MQTT-3.3.2-11] and none when the client set none [MQTT-3.1.2-27]; resolving them gives
    the published topics."""
    with_aliases, without = raw(), raw()
    with_aliases.connect(f"wa-{uid}", props=[(P.TOPIC_ALIAS_MAXIMUM, 2)])
    without.connect(f"na-{uid}")
    pub = raw()
    pub.connect(f"p-{uid}")
    flt = f"conf/{uid}/ta/#"
    with_aliases.subscribe((flt, 0))
    without.subscribe((flt, 0))
    topics = [f"conf/{uid}/ta/{n % 3}" for n in range(9)]
    for n, t in enumerate(topics):
        pub.publish(t, b"%d" % n, qos=1)
    mapping: dict[int, str] = {}
    resolved = []
    for _ in topics:
        p = with_aliases.receive_publish()
        alias = p.props.get(P.TOPIC_ALIAS)
        if alias is not None:
            assert 1 <= alias <= 2, f"alias {alias} outside 1..2"
            if p.topic:
                mapping[alias] = p.topic
            else:
                assert alias in mapping, "empty topic with an alias never set"
        else:
            assert p.topic, "empty topic without an alias"
        resolved.append(p.topic or mapping[alias])
    assert resolved == topics
    for _ in topics:
        p = without.receive_publish()
        assert P.TOPIC_ALIAS not in p.props
        assert p.topic


# --------------------------------------------------------------------------- Message Expiry


def test_message_expiry_interval_is_forwarded(raw: RawFactory, uid: str) -> None:
    """A message with a Message Expiry Interval is forwarded with the received value minus its
    time in the server [MQTT-3.3.2-6]; one without has none."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/exp"
    sub.subscribe((t, 1))
    pub.publish(t, b"a", qos=1, props=[(P.MESSAGE_EXPIRY_INTERVAL, 120)])
    pub.publish(t, b"b", qos=1)
    a, b = sub.receive_publish(), sub.receive_publish()
    assert 118 <= a.props.get(P.MESSAGE_EXPIRY_INTERVAL, -1) <= 120
    assert P.MESSAGE_EXPIRY_INTERVAL not in b.props


def test_expired_retained_message_is_not_delivered(raw: RawFactory, uid: str) -> None:
    """A retained message past its Message Expiry Interval is not delivered [MQTT-3.3.2-5]; one
    still valid is, with the remaining interval [MQTT-3.3.2-6]."""
    pub = raw()
    pub.connect(f"p-{uid}")
    short, long = f"conf/{uid}/exp/short", f"conf/{uid}/exp/long"
    pub.publish(short, b"s", qos=1, retain=True, props=[(P.MESSAGE_EXPIRY_INTERVAL, 1)])
    pub.publish(long, b"l", qos=1, retain=True, props=[(P.MESSAGE_EXPIRY_INTERVAL, 60)])
    waited = let_broker_time_pass(raw, uid, 2)
    sub = raw()
    sub.connect(f"s-{uid}")
    sub.subscribe((f"conf/{uid}/exp/+", 1), (f"conf/{uid}/marker", 0))
    sub.publish(f"conf/{uid}/marker", b"")
    got = sub.publishes_until(f"conf/{uid}/marker")
    assert [p.topic for p in got] == [long], "an expired retained message was delivered"
    assert got[0].props.get(P.MESSAGE_EXPIRY_INTERVAL, 99) <= 60 - int(waited)


# --------------------------------------------------------------------------- forwarded properties


def test_payload_format_content_type_response_topic_correlation_data_pass_through(
    raw: RawFactory, uid: str
) -> None:
    """Payload Format Indicator [MQTT-3.3.2-4], Content Type [MQTT-3.3.2-20], Response Topic
    [MQTT-3.3.2-15] and Correlation Data [MQTT-3.3.2-16] reach subscribers unaltered; absent
    ones stay absent."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/props"
    sub.subscribe((t, 1))
    props = [
        (P.PAYLOAD_FORMAT_INDICATOR, 1),
        (P.CONTENT_TYPE, "application/json; charset=utf-8"),
        (P.RESPONSE_TOPIC, f"conf/{uid}/reply/é"),
        (P.CORRELATION_DATA, bytes(range(256))),
    ]
    pub.publish(t, '{"t": 21.5, "u": "°C"}'.encode(), qos=1, props=props)
    pub.publish(t, b"\xff\xfe binary", qos=1)
    got, bare = sub.receive_publish(), sub.receive_publish()
    assert got.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 1
    assert got.props.get(P.CONTENT_TYPE) == "application/json; charset=utf-8"
    assert got.props.get(P.RESPONSE_TOPIC) == f"conf/{uid}/reply/é"
    assert got.props.get(P.CORRELATION_DATA) == bytes(range(256))
    for pid in (P.PAYLOAD_FORMAT_INDICATOR, P.CONTENT_TYPE, P.RESPONSE_TOPIC, P.CORRELATION_DATA):
        assert pid not in bare.props


def test_user_properties_pass_through_in_order(raw: RawFactory, uid: str) -> None:
    """The server MUST send all User Properties unaltered [MQTT-3.3.2-17] and in order
    [MQTT-3.3.2-18], repeated names included."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/up"
    sub.subscribe((t, 0))
    users = [("z", "1"), ("a", "2"), ("z", "3"), ("", ""), ("ключ", "值 ✓"), ("a", "2")]
    pub.publish(t, b"x", qos=1, props=[(P.USER_PROPERTY, u) for u in users])
    assert sub.receive_publish().props.user == users


def test_payload_format_1_with_invalid_utf8_is_refused_or_forwarded_unchanged(
    raw: RawFactory, uid: str
) -> None:
    """Payload Format Indicator 1 with a payload that is not UTF-8: the server MAY refuse it
    (PUBACK or DISCONNECT 0x99 Payload format invalid) or forward it unaltered (3.3.2.3.2)."""
    sub, pub = raw(), raw()
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/pfi"
    sub.subscribe((t, 0))
    pub.send(
        codec.publish(t, b"\xff\xfe", qos=1, packet_id=1, props=[(P.PAYLOAD_FORMAT_INDICATOR, 1)])
    )
    try:
        puback = pub.wait_for(PUBACK, packet_id=1)
    except ConnectionGone:
        pub._buf[:0] = b""
        return
    if puback.reason_code == 0x99:
        return
    assert puback.reason_code in (0x00, 0x10), puback
    got = sub.receive_publish()
    assert got.payload == b"\xff\xfe"
    assert got.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 1


def test_paho_request_response_with_correlation_data(paho: PahoFactory, uid: str) -> None:
    """Request/response (4.10) with paho: the responder answers on the request's Response Topic
    with its Correlation Data; the requester matches the reply."""
    requester, responder = paho(f"rq-{uid}"), paho(f"rs-{uid}")
    requester.connect()
    responder.connect()
    requests, replies = f"conf/{uid}/req", f"conf/{uid}/rep/{uid}"
    responder.subscribe(requests, 1)
    requester.subscribe(replies, 1)
    props = paho_props(PUBLISH_TYPE, ResponseTopic=replies, CorrelationData=b"\x01req-42")
    requester.publish(requests, b"what time is it", 1, properties=props)
    req = responder.expect()
    answer = paho_props(PUBLISH_TYPE, CorrelationData=paho_prop(req.properties, "CorrelationData"))
    reply_to = paho_prop(req.properties, "ResponseTopic")
    responder.publish(reply_to, b"tea time", 1, properties=answer)
    rep = requester.expect()
    assert (rep.topic, rep.payload) == (replies, b"tea time")
    assert paho_prop(rep.properties, "CorrelationData") == b"\x01req-42"


@async_test
async def test_aiomqtt_properties_round_trip(broker_url: str, uid: str) -> None:
    """aiomqtt 5.0: content type, user properties and message expiry arrive on the message."""
    import aiomqtt

    from conformance.mqtt.clients import host_port

    host, port = host_port(broker_url)
    kwargs = {
        "transport": "websockets",
        "websocket_path": "/mqtt",
        "protocol": aiomqtt.ProtocolVersion.V5,
    }
    t = f"conf/{uid}/aio5"
    async with (
        aiomqtt.Client(host, port, identifier=f"s-{uid}", **kwargs) as sub,  # type: ignore[arg-type]
        aiomqtt.Client(host, port, identifier=f"p-{uid}", **kwargs) as pub,  # type: ignore[arg-type]
    ):
        await sub.subscribe(t, qos=1)
        props = paho_props(
            PUBLISH_TYPE,
            ContentType="text/plain; charset=utf-8",
            UserProperty=[("k", "v1"), ("k", "v2")],
            MessageExpiryInterval=300,
        )
        await pub.publish(t, "héllo", qos=1, properties=props)
        async for message in sub.messages:
            assert message.payload == "héllo".encode()
            assert paho_prop(message.properties, "ContentType") == "text/plain; charset=utf-8"
            assert paho_prop(message.properties, "UserProperty") == [("k", "v1"), ("k", "v2")]
            assert 0 < paho_prop(message.properties, "MessageExpiryInterval") <= 300
            break


# --------------------------------------------------------------------------- subscription options


def test_no_local_does_not_return_a_clients_own_messages(raw: RawFactory, uid: str) -> None:
    """No Local 1: messages are not forwarded to the connection that published them
    [MQTT-3.8.3-3]; with No Local 0 they are."""
    c, other = raw(), raw()
    c.connect(f"nl-{uid}")
    other.connect(f"o-{uid}")
    quiet, loud = f"conf/{uid}/quiet", f"conf/{uid}/loud"
    c.subscribe((quiet, sub_options(1, no_local=True)), (loud, sub_options(1)))
    c.publish(quiet, b"mine", qos=1)
    c.publish(loud, b"mine too", qos=1)
    other.publish(quiet, b"theirs", qos=1)
    got = [c.receive_publish(), c.receive_publish()]
    assert sorted((p.topic, p.payload) for p in got) == [(loud, b"mine too"), (quiet, b"theirs")]
    assert c.packets_within(0.2) == []


def test_retain_as_published(raw: RawFactory, uid: str) -> None:
    """Retain As Published 1: RETAIN as in the received PUBLISH [MQTT-3.3.1-13]; 0: RETAIN 0 on
    forwarded messages [MQTT-3.3.1-12]."""
    rap, plain, pub = raw(), raw(), raw()
    rap.connect(f"rap-{uid}")
    plain.connect(f"pl-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/rap"
    rap.subscribe((t, sub_options(1, retain_as_published=True)))
    plain.subscribe((t, sub_options(1)))
    pub.publish(t, b"kept", qos=1, retain=True)
    pub.publish(t, b"live", qos=1)
    assert [(p.payload, p.retain) for p in (rap.receive_publish(), rap.receive_publish())] == [
        (b"kept", True),
        (b"live", False),
    ]
    assert [(p.payload, p.retain) for p in (plain.receive_publish(), plain.receive_publish())] == [
        (b"kept", False),
        (b"live", False),
    ]
    pub.publish(t, b"", qos=1, retain=True)


def retained_after_subscribe(c: RawMqtt, flt: str, options: int, marker: str) -> list[bytes]:
    c.subscribe((flt, options))
    c.publish(marker, b"")
    return [p.payload for p in c.publishes_until(marker)]


def test_retain_handling_0_1_2(raw: RawFactory, uid: str) -> None:
    """Retain Handling 0: retained messages on every SUBSCRIBE [MQTT-3.3.1-9]; 1: only if the
    subscription is new [MQTT-3.3.1-10]; 2: never [MQTT-3.3.1-11]."""
    pub = raw()
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/rh", f"conf/{uid}/marker"
    pub.publish(t, b"retained", qos=1, retain=True)
    expected: dict[int, tuple[list[bytes], list[bytes]]] = {
        0: ([b"retained"], [b"retained"]),
        1: ([b"retained"], []),
        2: ([], []),
    }
    for handling, (first, second) in expected.items():
        c = raw()
        c.connect(f"rh{handling}-{uid}")
        c.subscribe((marker, 0))
        opts = sub_options(1, retain_handling=handling)
        assert retained_after_subscribe(c, t, opts, marker) == first, f"RH {handling}, new"
        assert retained_after_subscribe(c, t, opts, marker) == second, f"RH {handling}, again"


# --------------------------------------------------------------------------- shared subscriptions


def test_shared_subscription_delivers_each_message_to_one_member(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """``$share/<group>/<filter>``: each message goes to one member of the group (4.8.2), at the
    member's granted QoS [MQTT-4.8.2-3]; a non-shared subscriber still gets every message.
    wsbroker distributes round robin."""
    a, b, everyone, pub = raw(), raw(), raw(), raw()
    props = a.connect(f"a-{uid}").props
    if props.get(P.SHARED_SUBSCRIPTION_AVAILABLE, 1) == 0:
        pytest.skip("the server does not support shared subscriptions")
    b.connect(f"b-{uid}")
    everyone.connect(f"e-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/jobs"
    shared = f"$share/g{uid}/{t}"
    assert a.subscribe((shared, 1)).reason_codes == [1]
    assert b.subscribe((shared, 1)).reason_codes == [1]
    everyone.subscribe((t, 0))
    n = 10
    for i in range(n):
        pub.publish(t, b"%d" % i, qos=1)
    assert [everyone.receive_publish().payload for _ in range(n)] == [b"%d" % i for i in range(n)]
    a.subscribe((f"conf/{uid}/marker", 0))
    b.subscribe((f"conf/{uid}/marker", 0))
    pub.publish(f"conf/{uid}/marker", b"", qos=1)
    got_a = [p.payload for p in a.publishes_until(f"conf/{uid}/marker")]
    got_b = [p.payload for p in b.publishes_until(f"conf/{uid}/marker")]
    assert sorted(got_a + got_b, key=int) == [b"%d" % i for i in range(n)], (got_a, got_b)
    assert got_a, f"one member got everything: {got_b}"
    assert got_b, f"one member got everything: {got_a}"
    if strict:
        assert abs(len(got_a) - len(got_b)) <= 1, f"not round robin: {got_a} / {got_b}"


def test_new_shared_subscription_gets_no_retained_messages(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """Retained messages are sent when a new Non-shared Subscription is made (3.3.1.3); the spec
    describes no such delivery for Shared Subscriptions, and wsbroker makes none. Other servers
    may send them (Mosquitto does): only wsbroker is held to it."""
    pub, member = raw(), raw()
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/shared-retained", f"conf/{uid}/marker"
    pub.publish(t, b"retained", qos=1, retain=True)
    member.connect(f"m-{uid}")
    member.subscribe((f"$share/g{uid}/{t}", 1), (marker, 0))
    member.publish(marker, b"")
    got = [(p.payload, p.retain) for p in member.publishes_until(marker)]
    assert got in ([], [(b"retained", True)]), got
    if strict:
        assert got == [], "wsbroker sends no retained messages to a new shared subscription"
    pub.publish(t, b"", qos=1, retain=True)


def test_shared_subscription_with_no_local_is_a_protocol_error(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """No Local 1 on a Shared Subscription is a Protocol Error [MQTT-3.8.3-4]: DISCONNECT 0x82
    (or the SUBACK refuses the filter)."""
    c = raw()
    c.connect(f"snl-{uid}")
    c.send(codec.subscribe(1, [(f"$share/g/conf/{uid}/x", sub_options(1, no_local=True))]))
    try:
        pkt = c.recv()
    except ConnectionGone:
        assert not strict, "wsbroker says why: DISCONNECT 0x82"
        return
    if pkt.type == codec.SUBACK:
        assert not strict, "a Protocol Error closes the connection"
        assert pkt.reason_codes[0] >= 0x80
        return
    c._buf[:0] = pkt.raw
    c.expect_closed([0x82], require_disconnect=strict)


# --------------------------------------------------------------------------- DISCONNECT, AUTH


def test_server_disconnect_has_a_reason_code_and_no_session_expiry(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """A server DISCONNECT carries a DISCONNECT reason code (3.14.2.1) and MUST NOT carry a
    Session Expiry Interval [MQTT-3.14.2-2]; after it the server closes the connection
    [MQTT-3.14.4-2]. Provoked with a Topic Alias over the maximum (0x94)."""
    c = raw()
    connack = c.connect(f"sd-{uid}", props=[(P.SESSION_EXPIRY_INTERVAL, 30)])
    alias = connack.props.get(P.TOPIC_ALIAS_MAXIMUM, 0) + 1
    c.send(codec.publish(f"conf/{uid}/x", b"x", props=[(P.TOPIC_ALIAS, alias)]))
    final = c.expect_closed([0x94], require_disconnect=strict)
    if final is not None:
        assert P.SESSION_EXPIRY_INTERVAL not in final.props
    end = raw()
    end.connect(f"sd-{uid}")


def test_connect_with_unsupported_authentication_method_is_refused(
    raw: RawFactory, uid: str
) -> None:
    """With no enhanced authentication configured, a CONNECT naming an Authentication Method is
    refused: CONNACK 0x8C (Bad authentication method) or 0x87 (Not authorized), then close
    [MQTT-4.12.0-1]."""
    c = raw()
    c.send(
        codec.connect(
            f"am-{uid}",
            props=[(P.AUTHENTICATION_METHOD, "SCRAM-SHA-256"), (P.AUTHENTICATION_DATA, b"n,,")],
        )
    )
    final = c.expect_closed(allow_connack=True)
    assert final is not None, "refused without a CONNACK saying why"
    assert final.type == CONNACK, final
    assert final.reason_code in (0x8C, 0x87), final
    assert all(p.type != AUTH for p in [final])


def test_auth_without_authentication_method_is_a_protocol_error(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """A client that gave no Authentication Method MUST NOT send AUTH [MQTT-4.12.0-7]; a server
    receiving one treats it as a Protocol Error: DISCONNECT 0x82 and close (4.13)."""
    c = raw()
    connack = c.connect(f"au-{uid}")
    assert P.AUTHENTICATION_METHOD not in connack.props, "[MQTT-4.12.0-6]"
    c.send(codec.auth(0x19, [(P.AUTHENTICATION_METHOD, "SCRAM-SHA-256")]))
    c.expect_closed([0x82], require_disconnect=strict)


def test_server_never_sends_publish_before_connack(raw: RawFactory, uid: str) -> None:
    """The server sends a successful CONNACK before any other packet [MQTT-3.2.0-1], even when
    a resumed session has messages waiting."""
    cid, t = f"first-{uid}", f"conf/{uid}/q"
    c = raw()
    c.connect(cid, clean=False, props=[(P.SESSION_EXPIRY_INTERVAL, 30)])
    c.subscribe((t, 1))
    c.disconnect()
    pub = raw()
    pub.connect(f"p-{uid}")
    pub.publish(t, b"waiting", qos=1)
    back = raw()
    back.send(codec.connect(cid, clean=False, props=[(P.SESSION_EXPIRY_INTERVAL, 0)]))
    first = back.recv()
    assert first.type == CONNACK, first
    assert first.session_present
    assert back.expect(PUBLISH).payload == b"waiting"
