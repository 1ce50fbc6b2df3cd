"""Retained messages (3.3.1.3): set, replace, clear, delivery on subscribe with the RETAIN flag,
wildcard filters.

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1. An absent retained message is
shown with a barrier: the subscriber publishes a marker to itself after its SUBACK and checks
what arrived before the marker.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.mqtt.codec import MQTT_3_1_1, MQTT_5, Packet
from conformance.mqtt.conftest import PahoFactory, RawFactory
from conformance.mqtt.rawclient import RawMqtt

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


def retained_on_subscribe(c: RawMqtt, flt: str, marker: str, qos: int = 2) -> list[Packet]:
    """Subscribe to ``flt`` (and ``marker``); every PUBLISH that came before our own marker."""
    c.subscribe((flt, qos), (marker, 0))
    c.publish(marker, b"")
    return c.publishes_until(marker)


@VERSIONS
def test_retained_message_is_sent_on_subscribe_with_retain_flag(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A retained message is sent to a new subscription with the RETAIN flag set to 1
    (3.3.1.3, [MQTT-3.3.1-9]; 3.1.1: [MQTT-3.3.1-6] [MQTT-3.3.1-8]), at the lower of its QoS
    and the granted QoS [MQTT-3.8.4-8]."""
    pub, sub = raw(version=version), raw(version=version)
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/r"
    pub.publish(t, b"kept", qos=1, retain=True)
    pub.disconnect()  # retained messages outlive their publisher
    sub.connect(f"s-{uid}")
    got = retained_on_subscribe(sub, t, f"conf/{uid}/marker", qos=2)
    assert [(p.topic, p.payload, p.retain, p.qos) for p in got] == [(t, b"kept", True, 1)]


@VERSIONS
def test_retained_message_is_replaced(raw: RawFactory, uid: str, version: int) -> None:
    """A retained PUBLISH replaces any existing retained message for the topic [MQTT-3.3.1-5]
    (3.1.1: [MQTT-3.3.1-5])."""
    pub, sub = raw(version=version), raw(version=version)
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/r"
    pub.publish(t, b"old", qos=1, retain=True)
    pub.publish(t, b"new", qos=0, retain=True)
    pub.ping()
    sub.connect(f"s-{uid}")
    got = retained_on_subscribe(sub, t, f"conf/{uid}/marker")
    assert [(p.payload, p.qos) for p in got] == [(b"new", 0)]


@VERSIONS
def test_empty_retained_payload_clears_and_is_still_delivered(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A retained PUBLISH with an empty payload is delivered normally to current subscribers,
    removes the retained message and is not stored itself [MQTT-3.3.1-6] [MQTT-3.3.1-7]
    (3.1.1: [MQTT-3.3.1-10] [MQTT-3.3.1-11])."""
    pub, live, late = raw(version=version), raw(version=version), raw(version=version)
    pub.connect(f"p-{uid}")
    live.connect(f"l-{uid}")
    t = f"conf/{uid}/r"
    pub.publish(t, b"soon gone", qos=1, retain=True)
    assert [p.payload for p in retained_on_subscribe(live, t, f"conf/{uid}/m1")] == [b"soon gone"]
    pub.publish(t, b"", qos=1, retain=True)
    cleared = live.receive_publish()
    assert (cleared.topic, cleared.payload) == (t, b"")
    late.connect(f"z-{uid}")
    assert retained_on_subscribe(late, t, f"conf/{uid}/m2") == []


@VERSIONS
def test_non_retained_publish_leaves_retained_message_alone(
    raw: RawFactory, uid: str, version: int
) -> None:
    """RETAIN 0: the server MUST NOT store the message nor remove or replace the retained one
    [MQTT-3.3.1-8] (3.1.1: [MQTT-3.3.1-12])."""
    pub, sub = raw(version=version), raw(version=version)
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/r"
    pub.publish(t, b"retained", qos=1, retain=True)
    pub.publish(t, b"live only", qos=1)
    pub.publish(t, b"", qos=1)
    sub.connect(f"s-{uid}")
    got = retained_on_subscribe(sub, t, f"conf/{uid}/marker")
    assert [p.payload for p in got] == [b"retained"]


@VERSIONS
def test_live_message_to_existing_subscription_has_retain_0(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A retained PUBLISH forwarded to an established subscription carries RETAIN 0 (5.0 with
    Retain As Published 0: [MQTT-3.3.1-12]; 3.1.1: [MQTT-3.3.1-9])."""
    pub, sub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/r"
    sub.subscribe((t, 1))
    pub.publish(t, b"x", qos=1, retain=True)
    got = sub.receive_publish()
    assert (got.payload, got.retain) == (b"x", False)


@VERSIONS
def test_wildcard_subscription_gets_every_matching_retained_message(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A new subscription gets the retained message of each matching topic (3.3.1.3; 3.1.1:
    [MQTT-3.3.1-6]): ``sensors/#`` gets every retained reading under ``sensors/`` (and on
    ``sensors`` itself), ``sensors/+/temp`` only the temperatures."""
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    base = f"conf/{uid}/sensors"
    readings = {
        base: b"root",
        f"{base}/room1/temp": b"21.5",
        f"{base}/room1/hum": b"40",
        f"{base}/room2/temp": b"19.0",
        f"{base}/room2/deep/er": b"x",
    }
    for t, v in readings.items():
        pub.publish(t, v, qos=1, retain=True)
    pub.publish(f"conf/{uid}/other", b"not a sensor", qos=1, retain=True)
    every, temps = raw(version=version), raw(version=version)
    every.connect(f"e-{uid}")
    temps.connect(f"t-{uid}")
    got = retained_on_subscribe(every, f"{base}/#", f"conf/{uid}/m1")
    assert {p.topic: p.payload for p in got} == readings
    assert len(got) == len(readings)
    assert all(p.retain for p in got)
    got = retained_on_subscribe(temps, f"{base}/+/temp", f"conf/{uid}/m2")
    assert sorted((p.topic, p.payload) for p in got) == [
        (f"{base}/room1/temp", b"21.5"),
        (f"{base}/room2/temp", b"19.0"),
    ]


@VERSIONS
def test_resubscribing_resends_retained_messages(raw: RawFactory, uid: str, version: int) -> None:
    """Replacing a subscription (same filter) re-sends the matching retained messages
    (5.0 with Retain Handling 0: [MQTT-3.8.4-4]; 3.1.1: [MQTT-3.8.4-3])."""
    pub, sub = raw(version=version), raw(version=version)
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/r"
    pub.publish(t, b"again", qos=1, retain=True)
    sub.connect(f"s-{uid}")
    first = retained_on_subscribe(sub, t, f"conf/{uid}/m1", qos=1)
    second = retained_on_subscribe(sub, t, f"conf/{uid}/m2", qos=1)
    assert [p.payload for p in first] == [b"again"]
    assert [(p.payload, p.retain) for p in second] == [(b"again", True)]


def test_paho_retained_round_trip(paho: PahoFactory, uid: str) -> None:
    """paho 3.1.1: publish retained, a later subscriber gets it flagged retained."""
    pub = paho(f"p-{uid}", version=4)
    pub.connect()
    t = f"conf/{uid}/paho"
    pub.publish(t, b"from paho", qos=1, retain=True)
    sub = paho(f"s-{uid}", version=4)
    sub.connect()
    sub.subscribe(t, 1)
    msg = sub.expect()
    assert (msg.topic, msg.payload, msg.retain, msg.qos) == (t, b"from paho", True, 1)


@async_test
async def test_aiomqtt_retained_wildcard(broker_url: str, uid: str) -> None:
    """aiomqtt 3.1.1: ``sensors/#`` gets each retained reading once, flagged retained."""
    import aiomqtt

    from conformance.mqtt.clients import host_port

    host, port = host_port(broker_url)
    kwargs = {"transport": "websockets", "websocket_path": "/mqtt"}
    base = f"conf/{uid}/sensors"
    async with aiomqtt.Client(host, port, identifier=f"p-{uid}", **kwargs) as pub:  # type: ignore[arg-type]
        for i in range(3):
            await pub.publish(f"{base}/s{i}", b"%d" % i, qos=1, retain=True)
    async with aiomqtt.Client(host, port, identifier=f"s-{uid}", **kwargs) as sub:  # type: ignore[arg-type]
        await sub.subscribe(f"{base}/#", qos=1)
        got = {}
        async for message in sub.messages:
            assert message.retain
            got[str(message.topic)] = message.payload
            if len(got) == 3:
                break
        assert got == {f"{base}/s{i}": b"%d" % i for i in range(3)}
