"""MQTT and raw WebSocket clients in one topic space (DESIGN.md, "One topic space" and "Payloads
across protocols"). wsbroker only: skipped when the target is another server.

A raw client on ``ws://host/topics/<topic>`` is subscribed to that topic (or to its
``?subscribe=`` filters) and publishes there; it hears its own messages, which is how a test
knows its subscription is in place before an MQTT client publishes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from conformance.mqtt.codec import MQTT_3_1_1, P
from conformance.mqtt.conftest import RawFactory

TIMEOUT = 5.0
TEXT = "text/plain; charset=utf-8"


@pytest.fixture(autouse=True)
def _wsbroker_only(target: str) -> None:
    if target != "wsbroker":
        pytest.skip(f"cross-protocol delivery is wsbroker's own feature (target: {target})")


@contextlib.contextmanager
def raw_ws(
    broker_url: str, topic: str, *filters: str, listening: bool = True
) -> Iterator[ClientConnection]:
    """A raw WebSocket client on /topics/<topic> (subscribed to ``filters`` if given). With
    ``listening`` (and no filters) it first hears its own hello, so its subscription is in place
    when this returns; MQTT subscribers of the topic hear that hello too."""
    query = "&".join(f"subscribe={quote(f, safe='')}" for f in filters)
    url = f"{broker_url}/topics/{quote(topic, safe='/')}" + (f"?{query}" if query else "")
    with ws_connect(url, proxy=None, open_timeout=TIMEOUT, ping_interval=None) as ws:
        assert ws.subprotocol is None
        if listening and not filters:
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "hello"
        yield ws


def test_mqtt_on_mqtt_path_without_subprotocol_header(raw: RawFactory, uid: str) -> None:
    """Clients that cannot send Sec-WebSocket-Protocol: on ``/mqtt`` the path picks MQTT and the
    response carries no subprotocol (DESIGN.md, "Subprotocol negotiation")."""
    c = raw(subprotocol=None, path="/mqtt")
    assert c.subprotocol is None
    c.connect(f"nohdr-{uid}")
    c.ping()


def test_mqtt_text_publish_reaches_raw_subscriber_as_text_frame(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """MQTT 5 PUBLISH with a text Content Type: the raw subscriber gets a text frame."""
    t = f"conf/{uid}/x"
    mqtt = raw()
    mqtt.connect(f"m-{uid}")
    with raw_ws(broker_url, t) as ws:
        mqtt.publish(t, "héllo ✓".encode(), qos=1, props=[(P.CONTENT_TYPE, TEXT)])
        assert ws.recv(timeout=TIMEOUT) == "héllo ✓"


def test_mqtt_json_publish_reaches_raw_subscriber_as_text_frame(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """Content Type application/json and a UTF-8 payload: a text frame."""
    t = f"conf/{uid}/x"
    mqtt = raw()
    mqtt.connect(f"m-{uid}")
    with raw_ws(broker_url, t) as ws:
        mqtt.publish(t, b'{"t": 21.5}', props=[(P.CONTENT_TYPE, "application/json")])
        assert ws.recv(timeout=TIMEOUT) == '{"t": 21.5}'


@pytest.mark.parametrize("version", [MQTT_3_1_1, 5], ids=["3.1.1", "5.0"])
def test_mqtt_publish_without_text_content_type_reaches_raw_subscriber_as_binary(
    raw: RawFactory, broker_url: str, uid: str, version: int
) -> None:
    """No text Content Type (all 3.1.1 messages, or bytes that are not UTF-8): a binary frame with
    the payload byte for byte."""
    t = f"conf/{uid}/x"
    mqtt = raw(version=version)
    mqtt.connect(f"m-{uid}")
    with raw_ws(broker_url, t) as ws:
        mqtt.publish(t, b"\x00\xff\xfe binary", qos=1)
        mqtt.publish(t, b"utf-8 but untyped", qos=1)
        assert ws.recv(timeout=TIMEOUT) == b"\x00\xff\xfe binary"
        assert ws.recv(timeout=TIMEOUT) == b"utf-8 but untyped"


def test_raw_text_message_reaches_mqtt_subscriber_with_content_type(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """A raw text frame reaches MQTT 5 subscribers as its UTF-8 bytes with Content Type
    ``text/plain; charset=utf-8``, and 3.1.1 subscribers as the same bytes."""
    t = f"conf/{uid}/x"
    v5, v311 = raw(), raw(version=MQTT_3_1_1)
    v5.connect(f"s5-{uid}")
    v311.connect(f"s3-{uid}")
    v5.subscribe((t, 1))
    v311.subscribe((t, 1))
    with raw_ws(broker_url, t, listening=False) as ws:
        ws.send("from raw ✓")
        got5, got3 = v5.receive_publish(), v311.receive_publish()
    assert (got5.topic, got5.payload) == (t, "from raw ✓".encode())
    assert got5.props.get(P.CONTENT_TYPE) == TEXT
    assert (got3.topic, got3.payload) == (t, "from raw ✓".encode())


def test_raw_binary_message_reaches_mqtt_subscriber_unchanged(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """A raw binary frame reaches MQTT subscribers byte for byte, without a text Content Type."""
    t = f"conf/{uid}/x"
    sub = raw()
    sub.connect(f"s-{uid}")
    sub.subscribe((t, 0))
    with raw_ws(broker_url, t, listening=False) as ws:
        ws.send(bytes(range(256)))
        got = sub.receive_publish()
    assert got.payload == bytes(range(256))
    assert got.props.get(P.CONTENT_TYPE) != TEXT


def test_mqtt_retained_message_reaches_a_raw_client_that_connects_later(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """Retained messages cross the boundary: a raw client connecting after a retained MQTT
    publish gets it first (as text, given its Content Type)."""
    t = f"conf/{uid}/state"
    mqtt = raw()
    mqtt.connect(f"m-{uid}")
    mqtt.publish(t, b"on", qos=1, retain=True, props=[(P.CONTENT_TYPE, TEXT)])
    url = f"{broker_url}/topics/{t}"
    with ws_connect(url, proxy=None, open_timeout=TIMEOUT, ping_interval=None) as ws:
        assert ws.recv(timeout=TIMEOUT) == "on"
    mqtt.publish(t, b"", qos=1, retain=True)


def test_raw_wildcard_subscription_gets_mqtt_publishes(
    raw: RawFactory, broker_url: str, uid: str
) -> None:
    """``?subscribe=<filter>`` with MQTT wildcards matches MQTT topic names."""
    base = f"conf/{uid}/sensors"
    mqtt = raw()
    mqtt.connect(f"m-{uid}")
    with raw_ws(broker_url, f"{base}/ignored", f"{base}/+/temp") as ws:
        # No self-echo to wait on: the hello would go to .../ignored, not the filter. A retained
        # message on a matching topic, delivered on subscribe, shows the filter is in place.
        mqtt.publish(
            f"{base}/room0/temp", b"ready", qos=1, retain=True, props=[(P.CONTENT_TYPE, TEXT)]
        )
        assert ws.recv(timeout=TIMEOUT) == "ready"
        mqtt.publish(f"{base}/room1/hum", b"40", props=[(P.CONTENT_TYPE, TEXT)])
        mqtt.publish(f"{base}/room2/temp", b"19.5", props=[(P.CONTENT_TYPE, TEXT)])
        assert ws.recv(timeout=TIMEOUT) == "19.5"
    mqtt.publish(f"{base}/room0/temp", b"", qos=1, retain=True)


def test_mqtt_and_raw_round_trip_is_exact(raw: RawFactory, broker_url: str, uid: str) -> None:
    """MQTT → raw → MQTT: a raw client echoing what it hears hands the MQTT subscriber the bytes
    the MQTT publisher sent."""
    src, dst = f"conf/{uid}/src", f"conf/{uid}/dst"
    pub, sub = raw(), raw()
    pub.connect(f"p-{uid}")
    sub.connect(f"s-{uid}")
    sub.subscribe((dst, 1))
    payload = bytes(range(200))
    with (
        raw_ws(broker_url, src) as listener,
        raw_ws(broker_url, dst, listening=False) as speaker,
    ):
        pub.publish(src, payload, qos=1)
        heard = listener.recv(timeout=TIMEOUT)
        speaker.send(heard)
    assert sub.receive_publish().payload == payload
