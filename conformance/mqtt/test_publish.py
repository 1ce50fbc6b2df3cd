"""PUBLISH and the QoS 0/1/2 flows (3.3-3.7, 4.3), ordering (4.6), QoS downgrade (3.8.4).

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import contextlib

import pytest

from conformance.aio import async_test
from conformance.mqtt import codec
from conformance.mqtt.codec import (
    MQTT_3_1_1,
    MQTT_5,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
)
from conformance.mqtt.conftest import PahoFactory, RawFactory

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_round_trip_at_each_qos(paho: PahoFactory, uid: str, version: int, qos: int) -> None:
    """A message published at QoS n to a QoS n subscription arrives once, at QoS n, with the
    payload unchanged (4.3.1-4.3.3)."""
    sub = paho(f"s{qos}-{uid}", version=version)
    pub = paho(f"p{qos}-{uid}", version=version)
    sub.connect()
    pub.connect()
    t = f"conf/{uid}/rt"
    assert sub.subscribe(t, qos) == [qos]
    payload = bytes(range(256)) * 4
    pub.publish(t, payload, qos)
    msg = sub.expect()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (t, payload, qos, False)
    pub.publish(f"conf/{uid}/marker", b"", 0)
    sub.subscribe(f"conf/{uid}/marker", 0)
    pub.publish(f"conf/{uid}/marker", b"", 0)
    assert sub.messages_until(f"conf/{uid}/marker") == [], "delivered more than once"


@VERSIONS
def test_qos1_publish_gets_puback_with_same_packet_id(
    raw: RawFactory, uid: str, version: int
) -> None:
    """QoS 1: the receiver responds with a PUBACK containing the PUBLISH's Packet Identifier
    [MQTT-4.3.2-4] [MQTT-2.2.1-5] (3.1.1: [MQTT-4.3.2-2])."""
    c = raw(version=version)
    c.connect(f"q1-{uid}")
    c.send(codec.publish(f"conf/{uid}/q1", b"x", qos=1, packet_id=4242, version=version))
    puback = c.expect(PUBACK)
    assert puback.packet_id == 4242
    assert puback.flags == 0
    if version == MQTT_5:
        assert puback.reason_code in (0x00, 0x10), puback


@VERSIONS
def test_qos2_publish_flow_pubrec_pubrel_pubcomp(raw: RawFactory, uid: str, version: int) -> None:
    """QoS 2 from a client: PUBREC with the Packet Identifier [MQTT-4.3.3-8], then PUBCOMP for
    the PUBREL [MQTT-4.3.3-11] (3.1.1: [MQTT-4.3.3-2])."""
    c = raw(version=version)
    c.connect(f"q2-{uid}")
    c.send(codec.publish(f"conf/{uid}/q2", b"x", qos=2, packet_id=777, version=version))
    pubrec = c.expect(PUBREC)
    assert pubrec.packet_id == 777
    assert pubrec.flags == 0
    c.send(codec.ack(PUBREL, 777))
    pubcomp = c.expect(PUBCOMP)
    assert pubcomp.packet_id == 777
    if version == MQTT_5:
        assert pubrec.reason_code in (0x00, 0x10)
        assert pubcomp.reason_code == 0x00


@VERSIONS
def test_qos2_duplicate_publish_before_pubrel_is_delivered_once(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Until it receives the PUBREL the receiver acknowledges a re-sent PUBLISH with the same
    Packet Identifier with PUBREC and MUST NOT deliver it again [MQTT-4.3.3-10]
    (3.1.1: [MQTT-4.3.3-2] Method A/B)."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/once", f"conf/{uid}/marker"
    sub.subscribe((t, 2), (marker, 0))
    pub.send(codec.publish(t, b"exactly once", qos=2, packet_id=9, version=version))
    assert pub.expect(PUBREC).packet_id == 9
    pub.send(codec.publish(t, b"exactly once", qos=2, dup=True, packet_id=9, version=version))
    assert pub.expect(PUBREC).packet_id == 9
    pub.send(codec.ack(PUBREL, 9))
    assert pub.expect(PUBCOMP).packet_id == 9
    pub.publish(marker, b"")
    got = sub.publishes_until(marker)
    assert [p.payload for p in got] == [b"exactly once"]


@VERSIONS
def test_same_packet_id_after_pubcomp_is_a_new_message(
    raw: RawFactory, uid: str, version: int
) -> None:
    """After PUBCOMP (QoS 2) or PUBACK (QoS 1) a PUBLISH with the same Packet Identifier is a new
    Application Message [MQTT-4.3.3-12] [MQTT-4.3.2-5]."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/again", f"conf/{uid}/marker"
    sub.subscribe((t, 2), (marker, 0))
    for n in range(2):
        pub.send(codec.publish(t, b"q2-%d" % n, qos=2, packet_id=5, version=version))
        assert pub.expect(PUBREC).packet_id == 5
        pub.send(codec.ack(PUBREL, 5))
        assert pub.expect(PUBCOMP).packet_id == 5
    for n in range(2):
        pub.send(codec.publish(t, b"q1-%d" % n, qos=1, packet_id=5, dup=n == 1, version=version))
        assert pub.expect(PUBACK).packet_id == 5
    pub.publish(marker, b"")
    got = sub.publishes_until(marker)
    assert [p.payload for p in got] == [b"q2-0", b"q2-1", b"q1-0", b"q1-1"]


@VERSIONS
def test_server_qos2_flow_to_subscriber(raw: RawFactory, uid: str, version: int) -> None:
    """QoS 2 to a subscriber: PUBLISH with a non-zero Packet Identifier and DUP 0 [MQTT-4.3.3-2]
    [MQTT-2.2.1-4], PUBREL (flags 0010) after our PUBREC [MQTT-4.3.3-4] [MQTT-3.6.1-1]."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/q2out"
    sub.subscribe((t, 2))
    pub.publish(t, b"two", qos=2)
    p = sub.expect(PUBLISH)
    assert (p.qos, p.dup, p.payload) == (2, False, b"two")
    assert p.packet_id
    sub.send(codec.ack(PUBREC, p.packet_id))
    rel = sub.wait_for(PUBREL)
    assert rel.packet_id == p.packet_id
    assert rel.flags == 0b0010
    sub.send(codec.ack(PUBCOMP, p.packet_id))
    sub.ping()


@VERSIONS
def test_server_assigns_distinct_packet_ids_to_unacknowledged_messages(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Each new QoS > 0 PUBLISH the server sends gets a non-zero Packet Identifier not currently
    in use [MQTT-2.2.1-4] (3.1.1: [MQTT-2.3.1-1] [MQTT-2.3.1-4])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/ids"
    sub.subscribe((t, 1))
    for n in range(10):
        pub.publish(t, b"%d" % n, qos=1)
    got = [sub.receive_publish(ack=False) for _ in range(10)]
    ids = [p.packet_id for p in got]
    assert all(ids), ids
    assert len(set(ids)) == 10, f"packet ids reused while unacknowledged: {ids}"
    for p in got:
        sub.ack_publish(p)


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_messages_on_one_topic_arrive_in_order(
    raw: RawFactory, uid: str, version: int, qos: int
) -> None:
    """Every topic is an Ordered Topic by default: messages from one client on one topic and QoS
    reach the subscriber in the order published [MQTT-4.6.0-5] [MQTT-4.6.0-6]
    (3.1.1: [MQTT-4.6.0-5] [MQTT-4.6.0-6])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/order"
    sub.subscribe((t, qos))
    n, window = 50, 10  # pipelined, at most 10 unacknowledged (under any Receive Maximum)
    for start in range(0, n, window):
        ids = range(start + 1, start + window + 1) if qos else []
        for i in range(start, start + window):
            pid = i + 1 if qos else None
            pub.send(codec.publish(t, b"%d" % i, qos=qos, packet_id=pid, version=version))
        for pid in ids:
            pub.wait_for(PUBACK if qos == 1 else PUBREC, packet_id=pid)
            if qos == 2:
                pub.send(codec.ack(PUBREL, pid))
        for pid in ids if qos == 2 else []:
            pub.wait_for(PUBCOMP, packet_id=pid)
    got = [sub.receive_publish().payload for _ in range(n)]
    sub.complete_pubrels()
    assert got == [b"%d" % i for i in range(n)]


@VERSIONS
@pytest.mark.parametrize(("pub_qos", "sub_qos"), [(2, 0), (2, 1), (1, 0), (1, 2), (0, 2)])
def test_delivered_qos_is_minimum_of_published_and_granted(
    raw: RawFactory, uid: str, version: int, pub_qos: int, sub_qos: int
) -> None:
    """The QoS of a delivered message is the minimum of the published QoS and the granted QoS
    [MQTT-3.8.4-8] (3.1.1: [MQTT-3.8.4-6])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/down"
    granted = sub.subscribe((t, sub_qos)).reason_codes[0]
    assert granted <= sub_qos
    pub.publish(t, b"x", qos=pub_qos)
    got = sub.receive_publish()
    assert got.qos == min(pub_qos, granted)


@VERSIONS
def test_qos0_publish_carries_no_packet_id_and_dup_0(
    raw: RawFactory, uid: str, version: int
) -> None:
    """QoS 0: the server sends DUP 0 [MQTT-3.3.1-2] and no Packet Identifier [MQTT-2.2.1-2]
    (3.1.1: [MQTT-2.3.1-5])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/q0"
    sub.subscribe((t, 0))
    pub.publish(t, b"zero", qos=1)
    got = sub.receive_publish()
    assert (got.qos, got.dup, got.packet_id, got.payload) == (0, False, None, b"zero")


@VERSIONS
def test_dup_flag_of_incoming_publish_is_not_forwarded(
    raw: RawFactory, uid: str, version: int
) -> None:
    """The DUP flag of an outgoing PUBLISH is set only by whether it is a retransmission
    [MQTT-3.3.1-3] (3.1.1: [MQTT-3.3.1-3])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/dup"
    sub.subscribe((t, 1))
    pub.send(codec.publish(t, b"d", qos=1, dup=True, packet_id=3, version=version))
    pub.expect(PUBACK)
    got = sub.receive_publish()
    assert not got.dup


@VERSIONS
def test_empty_and_large_payloads(raw: RawFactory, uid: str, version: int) -> None:
    """Payloads are opaque bytes (3.3.3): empty, all byte values and 20 kB (a 3-byte Remaining
    Length) arrive unchanged."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/sizes"
    sub.subscribe((t, 1))
    payloads = [b"", bytes(range(256)), bytes(20_000)]
    for p in payloads:
        pub.publish(t, p, qos=1)
    assert [sub.receive_publish().payload for _ in payloads] == payloads


@async_test
async def test_aiomqtt_round_trip_qos_0_1_2(broker_url: str, uid: str) -> None:
    """aiomqtt (asyncio, over paho) over WebSocket: QoS 0, 1 and 2 round trips in 5.0."""
    import aiomqtt

    from conformance.mqtt.clients import host_port

    host, port = host_port(broker_url)

    def client(name: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            host,
            port,
            identifier=f"{name}-{uid}",
            transport="websockets",
            websocket_path="/mqtt",
            protocol=aiomqtt.ProtocolVersion.V5,
        )

    async with client("sub") as sub, client("pub") as pub:
        t = f"conf/{uid}/aio"
        await sub.subscribe(t, qos=2)
        for qos in (0, 1, 2):
            await pub.publish(t, b"aio %d" % qos, qos=qos)
        got = []
        async for message in sub.messages:
            got.append((message.payload, message.qos))
            if len(got) == 3:
                break
        assert got == [(b"aio 0", 0), (b"aio 1", 1), (b"aio 2", 2)]


def test_v311_many_unreleased_qos2_publishes_are_all_delivered(raw: RawFactory, uid: str) -> None:
    """3.1.1 sets no limit on a client's unacknowledged QoS 2 PUBLISHes. Each PUBREC means the
    server has accepted ownership of the message (4.3.3, 3.1.1), so all 30 sent before any PUBREL
    are delivered, once each, after the PUBRELs (3.1.1: [MQTT-4.3.3-2] [MQTT-4.5.0-1])."""
    sub, pub = raw(version=MQTT_3_1_1), raw(version=MQTT_3_1_1)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/burst"
    sub.subscribe((t, 1))
    n = 30
    pub.send(
        b"".join(
            codec.publish(t, b"%d" % i, qos=2, packet_id=i + 1, version=MQTT_3_1_1)
            for i in range(n)
        )
    )
    for pid in range(1, n + 1):
        pub.wait_for(PUBREC, packet_id=pid)
    pub.send(b"".join(codec.ack(PUBREL, pid) for pid in range(1, n + 1)))
    for pid in range(1, n + 1):
        pub.wait_for(PUBCOMP, packet_id=pid)
    got: list[int] = []
    with contextlib.suppress(TimeoutError):
        while len(got) < n:
            got.append(int(sub.receive_publish(timeout=2).payload))
    missing = sorted(set(range(n)) - set(got))
    assert not missing, f"acknowledged with PUBREC/PUBCOMP but never delivered: {missing}"
    assert sorted(got) == list(range(n))
