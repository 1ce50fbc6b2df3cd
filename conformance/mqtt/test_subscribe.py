"""SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK (3.8-3.11) and topic filter matching (4.7).

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import pytest

from conformance.mqtt import codec
from conformance.mqtt.codec import MQTT_3_1_1, MQTT_5, SUBACK
from conformance.mqtt.conftest import PahoFactory, RawFactory
from conformance.mqtt.rawclient import ConnectionGone

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


@VERSIONS
def test_suback_has_same_packet_id_and_one_code_per_filter_in_order(
    raw: RawFactory, uid: str, version: int
) -> None:
    """SUBACK: same Packet Identifier [MQTT-3.8.4-2], one return code per filter [MQTT-3.8.4-6]
    in the order of the filters [MQTT-3.9.3-1], each the granted QoS or a failure
    [MQTT-3.8.4-7] (3.1.1: [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5] [MQTT-3.9.3-1])."""
    c = raw(version=version)
    c.connect(f"sa-{uid}")
    c.send(
        codec.subscribe(
            0xBEEF,
            [(f"conf/{uid}/q2", 2), (f"conf/{uid}/q0", 0), (f"conf/{uid}/q1", 1)],
            version=version,
        )
    )
    suback = c.expect(SUBACK)
    assert suback.packet_id == 0xBEEF
    assert suback.reason_codes == [2, 0, 1]


@VERSIONS
def test_subscribe_with_several_filters_acts_like_several_subscribes(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A SUBSCRIBE with several filters is handled as a sequence of SUBSCRIBEs [MQTT-3.8.4-5]
    (3.1.1: [MQTT-3.8.4-4]): each filter delivers its own messages."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    sub.subscribe((f"conf/{uid}/a", 1), (f"conf/{uid}/b/+", 1))
    pub.publish(f"conf/{uid}/a", b"1", qos=1)
    pub.publish(f"conf/{uid}/b/x", b"2", qos=1)
    got = {(p.topic, p.payload) for p in (sub.receive_publish(), sub.receive_publish())}
    assert got == {(f"conf/{uid}/a", b"1"), (f"conf/{uid}/b/x", b"2")}


@VERSIONS
def test_identical_filter_replaces_existing_subscription(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A SUBSCRIBE with a filter identical to an existing one replaces that subscription
    [MQTT-3.8.4-3] (3.1.1: [MQTT-3.8.4-3]): one copy, at the new QoS."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/re", f"conf/{uid}/marker"
    sub.subscribe((t, 0), (marker, 0))
    assert sub.subscribe((t, 2)).reason_codes == [2]
    pub.publish(t, b"x", qos=2)
    pub.publish(marker, b"")
    got = sub.publishes_until(marker)
    assert [(p.payload, p.qos) for p in got] == [(b"x", 2)]


@VERSIONS
def test_unsubscribe_stops_delivery_and_gets_unsuback(
    raw: RawFactory, uid: str, version: int
) -> None:
    """UNSUBSCRIBE: UNSUBACK with the same Packet Identifier [MQTT-3.10.4-4] [MQTT-3.10.4-5]
    and no new messages for that filter [MQTT-3.10.4-2] (3.1.1: [MQTT-3.10.4-2]
    [MQTT-3.10.4-4]). 5.0: one reason code 0x00 per filter [MQTT-3.11.3-1]."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t, marker = f"conf/{uid}/un", f"conf/{uid}/marker"
    sub.subscribe((t, 1), (marker, 0))
    unsuback = sub.unsubscribe(t)
    if version == MQTT_5:
        assert unsuback.reason_codes == [0x00]
    else:
        assert unsuback.raw[1] == 2, "3.1.1 UNSUBACK is just the packet id"
    pub.publish(t, b"gone", qos=1)
    pub.publish(marker, b"")
    assert sub.publishes_until(marker) == []


@VERSIONS
def test_unsubscribe_of_unknown_filter_still_gets_unsuback(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Even when no subscription is deleted the server MUST respond with UNSUBACK
    [MQTT-3.10.4-5] (3.1.1: [MQTT-3.10.4-5]); 5.0 reason code 0x11 (No subscription existed)
    or 0x00."""
    c = raw(version=version)
    c.connect(f"u-{uid}")
    unsuback = c.unsubscribe(f"conf/{uid}/never")
    if version == MQTT_5:
        assert unsuback.reason_codes in ([0x00], [0x11]), unsuback


def test_v5_unsuback_has_one_reason_code_per_filter_in_order(raw: RawFactory, uid: str) -> None:
    """One UNSUBACK for several filters [MQTT-3.10.4-6], reason codes in filter order
    [MQTT-3.11.3-1] from the Unsubscribe Reason Codes [MQTT-3.11.3-2]."""
    c = raw()
    c.connect(f"u-{uid}")
    c.subscribe((f"conf/{uid}/a", 0), (f"conf/{uid}/c", 0))
    unsuback = c.unsubscribe(f"conf/{uid}/a", f"conf/{uid}/b", f"conf/{uid}/c")
    assert len(unsuback.reason_codes) == 3
    assert unsuback.reason_codes[0] == 0x00
    assert unsuback.reason_codes[1] in (0x00, 0x11)
    assert unsuback.reason_codes[2] == 0x00


@VERSIONS
def test_unsubscribe_compares_filters_literally(raw: RawFactory, uid: str, version: int) -> None:
    """UNSUBSCRIBE filters are compared character by character with the subscribed filters
    [MQTT-3.10.4-1] (3.1.1: [MQTT-3.10.4-1]): unsubscribing ``x/b`` leaves ``x/+`` in place."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    sub.subscribe((f"conf/{uid}/+", 0))
    sub.unsubscribe(f"conf/{uid}/b")
    pub.publish(f"conf/{uid}/b", b"still")
    assert sub.receive_publish().payload == b"still"


# (filter, topic, matches), both relative to the test's own prefix. From 4.7.1 and its examples.
MATCHES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "anything/at/all", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/tennis/#", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/tennis/player2", False),
    ("ACCOUNTS", "accounts", False),
    ("a/b", "a/b/", False),
    ("a//b", "a/b", False),
    ("a/+/b", "a//b", True),
    ("with space/é/ü", "with space/é/ü", True),
]


@VERSIONS
def test_wildcard_matching_table(raw: RawFactory, uid: str, version: int) -> None:
    """``#`` matches the parent and any number of levels, ``+`` exactly one level (possibly
    empty); matching is case sensitive and without normalization (4.7.1, [MQTT-4.7.3-4];
    3.1.1: 4.7.1, 4.7.3)."""
    base = f"conf/{uid}/"
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    subs = [raw(version=version) for _ in MATCHES]  # handshakes run in parallel
    for i, (s, (flt, _, _)) in enumerate(zip(subs, MATCHES, strict=True)):
        s.connect(f"m{i}-{uid}")
        s.subscribe((base + flt, 0), (base + "zz-marker", 0))
    for i, (_, topic, _) in enumerate(MATCHES):
        pub.publish(base + topic, b"%d" % i, qos=1)
    pub.publish(base + "zz-marker", b"")
    wrong = []
    for i, (s, (flt, topic, expected)) in enumerate(zip(subs, MATCHES, strict=True)):
        got = [p.payload for p in s.publishes_until(base + "zz-marker")]
        matched = b"%d" % i in got
        if matched != expected:
            wrong.append(f"{flt!r} {'should' if expected else 'should not'} match {topic!r}")
    assert not wrong, wrong


INVALID_FILTERS = ["a/#/b", "a#", "a/b#", "#/a", "a+", "a/+b", "+a/b", ""]


@VERSIONS
@pytest.mark.parametrize("bad", INVALID_FILTERS, ids=repr)
def test_invalid_topic_filter_is_refused(raw: RawFactory, uid: str, version: int, bad: str) -> None:
    """``#`` must be last and alone in its level, ``+`` must fill a whole level [MQTT-4.7.1-1]
    [MQTT-4.7.1-2], filters are at least one character [MQTT-4.7.3-1] (3.1.1: [MQTT-4.7.1-2]
    [MQTT-4.7.1-3] [MQTT-4.7.3-1]). The server refuses that filter in the SUBACK (0x80, or 5.0
    0x8F Topic Filter invalid) or closes the connection (5.0: DISCONNECT 0x8F/0x81/0x82)."""
    c = raw(version=version)
    c.connect(f"bad-{uid}")
    flt = "" if bad == "" else f"conf/{uid}/{bad}"
    c.send(codec.subscribe(1, [(flt, 0)], version=version))
    try:
        pkt = c.recv()
    except ConnectionGone:
        return
    if pkt.type == SUBACK:
        allowed = (0x80, 0x8F) if version == MQTT_5 else (0x80,)
        assert pkt.reason_codes[0] in allowed, pkt
        return
    c._buf[:0] = pkt.raw
    c.expect_closed([0x8F, 0x81, 0x82])


def test_paho_subscribe_list_and_unsubscribe(paho: PahoFactory, uid: str) -> None:
    """paho 5.0: a SUBSCRIBE of a list of (filter, QoS) and an UNSUBSCRIBE of a list."""
    c = paho(f"pl-{uid}")
    c.connect()
    filters = [(f"conf/{uid}/x", 0), (f"conf/{uid}/y/#", 1), (f"conf/{uid}/+/z", 2)]
    assert c.subscribe(filters) == [0, 1, 2]
    assert c.unsubscribe([f for f, _ in filters]) == [0, 0, 0]
