"""STOMP, MQTT and raw WebSocket clients in one topic space (issue bullet 9; DESIGN.md "One topic
space", "Payloads across protocols").

MQTT is paho-mqtt over WebSocket (``WSBROKER_MQTT_URL`` + ``WSBROKER_MQTT_PATH``, subprotocol
``mqtt``): MQTT 5 on ours, 3.1.1 on RabbitMQ 3.10 (whose Web-MQTT has no MQTT 5; its MQTT plugin
maps ``a/b`` to the routing key ``a.b``, which is STOMP's ``/topic/a.b`` there). Raw WebSocket
clients (no subprotocol, ``/topics/<topic>``) and content types across protocols are wsbroker's
own: those tests skip elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from paho.mqtt.packettypes import PacketTypes
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from conformance.mqtt.clients import PahoClient, paho_prop, paho_props
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import Names, Server

TIMEOUT = 5.0
TEXT = "text/plain; charset=utf-8"

MqttFactory = Callable[..., PahoClient]


@pytest.fixture
def mqtt(server: Server, uid: str) -> Iterator[MqttFactory]:
    """``mqtt(name)``: a connected paho client (MQTT 5, or 3.1.1 on RabbitMQ), closed after."""
    made: list[PahoClient] = []

    def make(name: str) -> PahoClient:
        version = 4 if server.rabbitmq else 5
        c = PahoClient(server.mqtt_url, f"{name}-{uid}", version=version, path=server.mqtt_path)
        made.append(c)
        c.connect()
        return c

    yield make
    for c in made:
        with contextlib.suppress(Exception):
            c.close()


@pytest.fixture
def ours_only(server: Server) -> None:
    if not server.strict:
        pytest.skip(
            f"wsbroker's own feature (raw WebSocket, MQTT 5 content type); target: {server.name}"
        )


@contextlib.contextmanager
def raw_ws(
    server: Server, topic: str, *filters: str, listening: bool = True
) -> Iterator[ClientConnection]:
    """A raw WebSocket client on ``/topics/<topic>`` (or subscribed to ``filters``). With
    ``listening`` (no filters) it first hears its own hello, so its subscription is in place."""
    query = "&".join(f"subscribe={quote(f, safe='')}" for f in filters)
    url = f"{server.url}/topics/{quote(topic, safe='/')}" + (f"?{query}" if query else "")
    with ws_connect(url, proxy=None, open_timeout=TIMEOUT, ping_interval=None) as ws:
        assert ws.subprotocol is None
        if listening and not filters:
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "hello"
        yield ws


# ----------------------------------------------------------------- MQTT <-> STOMP


def test_mqtt_publish_reaches_stomp_subscriber(
    connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """An MQTT PUBLISH to ``a/b`` reaches a STOMP subscriber of ``/topic/a/b``."""
    s = connected()
    s.subscribe(names.topic("m2s"), "s1")
    m = mqtt("pub")
    m.publish(names.mqtt_topic("m2s"), b"from mqtt", qos=1)
    msg = s.expect_message()
    assert msg.body == "from mqtt"
    assert msg.headers["destination"] == names.topic("m2s")


def test_stomp_send_reaches_mqtt_subscriber(
    connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """A STOMP SEND to ``/topic/a/b`` reaches an MQTT subscriber of ``a/b``."""
    m = mqtt("sub")
    m.subscribe(names.mqtt_topic("s2m"), 1)
    s = connected()
    s.send(names.topic("s2m"), "from stomp", receipt=True)
    got = m.expect()
    assert got.topic == names.mqtt_topic("s2m")
    assert got.payload == b"from stomp"


def test_mqtt_wildcard_subscriber_hears_stomp(
    connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """An MQTT filter with ``+`` matches the canonical topic of a STOMP SEND."""
    m = mqtt("wild")
    m.subscribe(names.mqtt_topic("sensors", "+", "temp"), 1)
    s = connected()
    s.send(names.topic("sensors", "r1", "hum"), "no")
    s.send(names.topic("sensors", "r1", "temp"), "yes", receipt=True)
    got = m.expect()
    assert (got.topic, got.payload) == (names.mqtt_topic("sensors", "r1", "temp"), b"yes")


def test_stomp_wildcard_subscriber_hears_mqtt(
    connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """A STOMP ``/topic/…/#`` subscription matches MQTT publishes below it."""
    s = connected()
    s.subscribe(names.topic("tree", "#"), "s1")
    m = mqtt("pub")
    m.publish(names.mqtt_topic("tree", "a", "b"), b"deep", qos=1)
    msg = s.expect_message()
    assert msg.body == "deep"
    assert msg.headers["destination"] == names.topic("tree", "a", "b")


@pytest.mark.parametrize("kind", ["binary", "utf8-with-nul"])
def test_mqtt_stomp_mqtt_round_trip_is_exact(
    stomp: StompFactory, mqtt: MqttFactory, names: Names, server: Server, kind: str
) -> None:
    """MQTT → STOMP → MQTT hands the last subscriber the publisher's bytes, byte for byte (a
    STOMP client relays what it receives)."""
    if kind == "binary" and server.rabbitmq:
        pytest.skip("RabbitMQ 3.10 sends a non-UTF-8 STOMP body in a text WebSocket frame")
    payload = bytes(range(256)) if kind == "binary" else "a\x00b ✓ ünïcode".encode()
    # Binary WebSocket frames: a text frame must hold UTF-8 (RFC 6455 8.1).
    relay = stomp(auto_decode=False, binary_mode=True)
    relay.connect()
    relay.subscribe(names.topic("src"), "s1")
    sink = mqtt("sink")
    sink.subscribe(names.mqtt_topic("dst"), 1)
    mqtt("src").publish(names.mqtt_topic("src"), payload, qos=1)
    heard = relay.expect_message()
    assert heard.body == payload
    relay.send(names.topic("dst"), heard.body, receipt=True)
    assert sink.expect().payload == payload


def test_mqtt5_content_type_becomes_stomp_content_type(
    ours_only: None, connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """MQTT 5 Content Type → STOMP ``content-type``; user properties → headers."""
    s = connected()
    s.subscribe(names.topic("ct"), "s1")
    props = paho_props(
        PacketTypes.PUBLISH, ContentType="application/json", UserProperty=[("x-site", "lab")]
    )
    mqtt("pub").publish(names.mqtt_topic("ct"), b'{"t": 21.5}', qos=1, properties=props)
    msg = s.expect_message()
    assert msg.body == '{"t": 21.5}'
    assert msg.headers["content-type"] == "application/json"
    assert msg.headers.get("x-site") == "lab"


def test_stomp_content_type_becomes_mqtt5_content_type(
    ours_only: None, connected: StompFactory, mqtt: MqttFactory, names: Names
) -> None:
    """STOMP ``content-type`` → MQTT 5 Content Type."""
    m = mqtt("sub")
    m.subscribe(names.mqtt_topic("ct2"), 1)
    connected().send(names.topic("ct2"), "plain", content_type="text/plain", receipt=True)
    got = m.expect()
    assert got.payload == b"plain"
    assert paho_prop(got.properties, "ContentType") == "text/plain"


# ----------------------------------------------------------------- raw WebSocket <-> STOMP


def test_raw_text_message_reaches_stomp_as_text_plain(
    ours_only: None, connected: StompFactory, names: Names, server: Server
) -> None:
    """A raw text frame reaches STOMP as its UTF-8 bytes, ``content-type:text/plain;
    charset=utf-8``."""
    s = connected()
    s.subscribe(names.topic("r2s"), "s1")
    with raw_ws(server, names.mqtt_topic("r2s"), listening=False) as ws:
        ws.send("from raw ✓")
        msg = s.expect_message()
    assert msg.body == "from raw ✓"
    assert msg.headers["content-type"] == TEXT


def test_raw_binary_message_reaches_stomp_unchanged(
    ours_only: None, stomp: StompFactory, names: Names, server: Server
) -> None:
    """A raw binary frame reaches STOMP byte for byte, without a text content type."""
    s = stomp(auto_decode=False)
    s.connect()
    s.subscribe(names.topic("rb"), "s1")
    with raw_ws(server, names.mqtt_topic("rb"), listening=False) as ws:
        ws.send(bytes(range(256)))
        msg = s.expect_message()
    assert msg.body == bytes(range(256))
    assert not msg.headers.get("content-type", "").startswith("text/")


@pytest.mark.parametrize(
    ("content_type", "body", "frame"),
    [
        ("text/plain", "héllo", "text"),
        ("text/plain; charset=utf-8", "héllo", "text"),
        ("application/json", '{"a": 1}', "text"),
        (None, "utf-8 but untyped", "binary"),
        ("application/octet-stream", "bytes", "binary"),
    ],
)
def test_stomp_send_reaches_raw_client_as_text_or_binary(
    ours_only: None,
    connected: StompFactory,
    names: Names,
    server: Server,
    content_type: str | None,
    body: str,
    frame: str,
) -> None:
    """To a raw client: a text frame for valid UTF-8 declared text or JSON, else binary."""
    with raw_ws(server, names.mqtt_topic("s2r")) as ws:
        connected().send(names.topic("s2r"), body, content_type=content_type, receipt=True)
        got = ws.recv(timeout=TIMEOUT)
    if frame == "text":
        assert got == body
    else:
        assert got == body.encode()


def test_stomp_text_typed_invalid_utf8_reaches_raw_as_binary(
    ours_only: None, stomp: StompFactory, names: Names, server: Server
) -> None:
    """Bytes that are not UTF-8 never go out as text, whatever the content type says."""
    s = stomp(auto_decode=False, binary_mode=True)
    s.connect()
    with raw_ws(server, names.mqtt_topic("bad8")) as ws:
        s.send(names.topic("bad8"), b"\xff\xfe not utf-8", content_type="text/plain", receipt=True)
        assert ws.recv(timeout=TIMEOUT) == b"\xff\xfe not utf-8"


def test_raw_filter_subscription_hears_stomp(
    ours_only: None, connected: StompFactory, names: Names, server: Server
) -> None:
    """A raw client's ``?subscribe=<filter>`` matches a STOMP SEND's canonical topic; a STOMP
    subscriber hears what the raw client sends."""
    s = connected()
    s.subscribe(names.topic("raw", "+"), "s1")
    with raw_ws(server, names.mqtt_topic("raw", "x"), names.mqtt_topic("stomp", "+")) as ws:
        ws.send("raw says hi")
        assert s.expect_message().body == "raw says hi"
        s.send(names.topic("stomp", "y"), "stomp says hi", content_type="text/plain")
        assert ws.recv(timeout=TIMEOUT) == "stomp says hi"
