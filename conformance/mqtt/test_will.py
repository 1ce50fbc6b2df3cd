"""Will messages (3.1.2.5-3.1.2.7, 3.1.3.2-3.1.3.4): published on an abnormal end of the
connection, not after a normal DISCONNECT; 5.0 DISCONNECT 0x04 and Will Delay Interval.

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import time

import pytest

from conformance.mqtt import codec
from conformance.mqtt.codec import MQTT_3_1_1, MQTT_5, P, Will
from conformance.mqtt.conftest import RawFactory
from conformance.mqtt.support import observer

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


@VERSIONS
def test_will_is_published_when_the_network_connection_drops(
    raw: RawFactory, uid: str, version: int
) -> None:
    """The Will Message is published when the connection closes without a DISCONNECT
    [MQTT-3.1.2-8] (3.1.1: [MQTT-3.1.2-8]), at its Will QoS and as a non-retained message
    [MQTT-3.1.2-14] (3.1.1: [MQTT-3.1.2-16])."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=version)
    c = raw(version=version)
    c.connect(f"w-{uid}", will=Will(t, b"gone", qos=1))
    c.drop()
    got = obs.receive_publish()
    assert (got.topic, got.payload, got.qos, got.retain) == (t, b"gone", 1, False)


@VERSIONS
def test_will_is_published_when_websocket_closes_without_disconnect(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A WebSocket close without an MQTT DISCONNECT is not a normal disconnection: the will is
    published [MQTT-3.1.2-8] (3.1.1: [MQTT-3.1.2-8])."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=version)
    c = raw(version=version)
    c.connect(f"w-{uid}", will=Will(t, b"ws closed", qos=2))
    c.close()
    got = obs.receive_publish()
    assert (got.payload, got.qos) == (b"ws closed", 2)


@VERSIONS
def test_will_is_not_published_after_disconnect(raw: RawFactory, uid: str, version: int) -> None:
    """On DISCONNECT (5.0: reason 0x00) the server discards the will without publishing it
    [MQTT-3.14.4-3] [MQTT-3.1.2-10] (3.1.1: [MQTT-3.1.2-10] [MQTT-3.14.4-3]). Barrier: the same
    client id reconnects afterwards and publishes a marker on the will topic."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=version)
    c = raw(version=version)
    c.connect(f"w-{uid}", will=Will(t, b"must not appear", qos=1))
    c.disconnect()
    again = raw(version=version)
    again.connect(f"w-{uid}")
    again.publish(t, b"marker", qos=1)
    first = obs.receive_publish()
    assert first.payload == b"marker", f"the will was published: {first!r}"
    assert obs.packets_within(0.3) == []


@VERSIONS
def test_will_with_retain_is_published_retained(raw: RawFactory, uid: str, version: int) -> None:
    """Will Retain 1: the will is published as a retained message [MQTT-3.1.2-15]
    (3.1.1: [MQTT-3.1.2-17]); a later subscriber gets it with RETAIN 1."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=version)
    c = raw(version=version)
    c.connect(f"w-{uid}", will=Will(t, b"last words", qos=1, retain=True))
    c.drop()
    assert obs.receive_publish().payload == b"last words"
    late = raw(version=version)
    late.connect(f"l-{uid}")
    late.subscribe((t, 1))
    got = late.receive_publish()
    assert (got.payload, got.retain) == (b"last words", True)


@VERSIONS
def test_will_is_published_after_a_protocol_error(raw: RawFactory, uid: str, version: int) -> None:
    """A server that closes the connection because of a protocol error publishes the will
    (3.1.2.5; 3.1.1: 3.1.2.5)."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=version)
    c = raw(version=version)
    c.connect(f"w-{uid}", will=Will(t, b"broken"))
    c.send(codec.publish(f"conf/{uid}/a", b"x", qos=3, packet_id=1, version=version))
    c.until_closed()
    assert obs.receive_publish().payload == b"broken"


def test_v5_disconnect_with_will_message_0x04_publishes_the_will(raw: RawFactory, uid: str) -> None:
    """DISCONNECT with reason 0x04 (Disconnect with Will Message): the client disconnects
    normally but wants its will published (3.14.2.1)."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    c = raw()
    c.connect(f"w-{uid}", will=Will(t, b"on purpose", qos=1))
    c.disconnect(0x04)
    got = obs.receive_publish()
    assert got.payload == b"on purpose"


def test_v5_will_properties_are_forwarded(raw: RawFactory, uid: str) -> None:
    """Will Properties (3.1.3.2) go out with the will: Payload Format Indicator, Content Type,
    Response Topic, Correlation Data, User Properties in order [MQTT-3.1.3-10]."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    users = [("b", "2"), ("a", "1"), ("b", "3")]
    c = raw()
    c.connect(
        f"w-{uid}",
        will=Will(
            t,
            b'{"state": "offline"}',
            props=[
                (P.PAYLOAD_FORMAT_INDICATOR, 1),
                (P.CONTENT_TYPE, "application/json"),
                (P.RESPONSE_TOPIC, f"conf/{uid}/reply"),
                (P.CORRELATION_DATA, b"\x00corr\xff"),
                *((P.USER_PROPERTY, u) for u in users),
            ],
        ),
    )
    c.drop()
    got = obs.receive_publish()
    assert got.props.get(P.PAYLOAD_FORMAT_INDICATOR) == 1
    assert got.props.get(P.CONTENT_TYPE) == "application/json"
    assert got.props.get(P.RESPONSE_TOPIC) == f"conf/{uid}/reply"
    assert got.props.get(P.CORRELATION_DATA) == b"\x00corr\xff"
    assert got.props.user == users


def test_v5_will_delay_interval_delays_the_will(raw: RawFactory, uid: str) -> None:
    """The will is published once the Will Delay Interval has passed after the connection closed
    [MQTT-3.1.2-8] (3.1.3.2.2)."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    c = raw()
    c.connect(
        f"w-{uid}",
        props=[(P.SESSION_EXPIRY_INTERVAL, 60)],
        will=Will(t, b"later", props=[(P.WILL_DELAY_INTERVAL, 1)]),
    )
    started = time.monotonic()
    c.drop()
    got = obs.receive_publish(timeout=6)
    elapsed = time.monotonic() - started
    assert got.payload == b"later"
    assert 0.8 <= elapsed <= 4.0, f"will published {elapsed:.2f} s after the close (delay 1 s)"


def test_v5_will_is_not_sent_if_the_session_reconnects_within_the_delay(
    raw: RawFactory, uid: str
) -> None:
    """If a new connection to the session is made before the Will Delay Interval passes, the
    server MUST NOT send the will [MQTT-3.1.3-9]. Barrier: a reference client with the same
    delay, dropped later, whose will the observer waits for."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    c, ref = raw(), raw()
    delay = [(P.WILL_DELAY_INTERVAL, 2)]
    c.connect(
        f"w-{uid}",
        props=[(P.SESSION_EXPIRY_INTERVAL, 60)],
        will=Will(t, b"must not appear", props=delay),
    )
    ref.connect(
        f"r-{uid}", props=[(P.SESSION_EXPIRY_INTERVAL, 60)], will=Will(t, b"reference", props=delay)
    )
    c.drop()
    back = raw()
    back.connect(f"w-{uid}", clean=False, props=[(P.SESSION_EXPIRY_INTERVAL, 60)])
    ref.drop()
    got = obs.receive_publish(timeout=8)
    assert got.payload == b"reference", "the reconnected session's will was published"
    assert obs.packets_within(0.3) == []
    back.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 0)])


def test_v5_will_is_sent_when_the_session_ends_before_the_will_delay(
    raw: RawFactory, uid: str
) -> None:
    """The will goes out when the Will Delay Interval passes or the session ends, whichever is
    first [MQTT-3.1.2-8] (3.1.3.2.2): Session Expiry 1 s, Will Delay 30 s: the will comes at
    about 1 s."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t)
    c = raw()
    c.connect(
        f"w-{uid}",
        props=[(P.SESSION_EXPIRY_INTERVAL, 1)],
        will=Will(t, b"session over", props=[(P.WILL_DELAY_INTERVAL, 30)]),
    )
    started = time.monotonic()
    c.drop()
    got = obs.receive_publish(timeout=8)
    elapsed = time.monotonic() - started
    assert got.payload == b"session over"
    assert elapsed <= 5.0, f"will came {elapsed:.1f} s after the close; the session lasts 1 s"
