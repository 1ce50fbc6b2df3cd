"""WAMP, MQTT, STOMP and raw WebSocket clients in one topic space (DESIGN.md "One topic space"
and "Payloads across protocols"). wsbroker only: Crossbar's MQTT bridge maps topics and
payloads its own way, and it has no STOMP or raw endpoints; on other targets these skip.

WAMP URI ``a.b.c`` is canonical topic ``a/b/c``. WAMP → core: ``args == [x]`` and no kwargs ⇒
payload = JSON of ``x`` (the bytes themselves when ``x`` is binary), otherwise JSON
``{"args": [...], "kwargs": {...}}``; content type ``application/json``. Core → WAMP: a JSON
content type or a payload that parses as JSON ⇒ ``args=[value]``; other text ⇒
``args=[string]``; other bytes ⇒ ``args=[bytes]``.

paho-mqtt and stomp.py block, so their calls run in threads; raw clients use ``websockets``'
asyncio client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from paho.mqtt.packettypes import PacketTypes
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from conformance.aio import async_test
from conformance.mqtt.clients import PahoClient, paho_prop, paho_props
from conformance.stomp.clients import StompPy
from conformance.wamp.clients import Client, Event, Inbox, PublishOptions
from conformance.wamp.support import Peers, Server, Uris, peers

TIMEOUT = 5.0
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
BINARY = bytes(range(256))


@pytest.fixture(autouse=True)
def _wsbroker_only(server: Server) -> None:
    if not server.strict:
        pytest.skip(f"cross-protocol delivery is wsbroker's own feature (target: {server.name})")


# --------------------------------------------------------------------------- clients


@contextlib.asynccontextmanager
async def mqtt(server: Server, name: str, version: int = 5) -> AsyncIterator[PahoClient]:
    c = PahoClient(server.url, name, version=version, path=server.mqtt_path)
    try:
        await asyncio.to_thread(c.connect)
        yield c
    finally:
        await asyncio.to_thread(c.close)


@contextlib.asynccontextmanager
async def stomp(server: Server, **kwargs: Any) -> AsyncIterator[StompPy]:
    c = StompPy(server.url, server.stomp_path, vhost="localhost", **kwargs)
    try:
        await asyncio.to_thread(c.connect)
        yield c
    finally:
        await asyncio.to_thread(c.close)


@contextlib.asynccontextmanager
async def raw_ws(
    server: Server, topic: str, *, listening: bool = True
) -> AsyncIterator[ClientConnection]:
    """A raw client on ``/topics/<topic>``; with ``listening`` it first hears its own hello, so
    its subscription is in place (WAMP subscribers of the topic would hear that hello too)."""
    url = f"{server.url}/topics/{quote(topic, safe='/')}"
    async with ws_connect(url, proxy=None, open_timeout=TIMEOUT, ping_interval=None) as ws:
        assert ws.subprotocol is None
        if listening:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
        yield ws


async def wamp_publish(c: Client, uri: str, *args: Any, **kwargs: Any) -> None:
    await c.session.publish(uri, *args, options=PublishOptions(acknowledge=True), **kwargs)


async def wamp_subscriber(p: Peers, uri: str, serializer: str = "json") -> Inbox:
    c = await p.autobahn(serializer)
    _, inbox = await c.subscribe(uri)
    return inbox


async def mqtt_message(c: PahoClient) -> Any:
    return await asyncio.to_thread(c.expect)


# --------------------------------------------------------------------------- WAMP → MQTT


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        ([{"t": 21.5}], {"t": 21.5}),
        (["hello"], "hello"),
        ([42], 42),
        ([None], None),
        ([[1, "a"]], [1, "a"]),
    ],
    ids=["object", "string", "number", "null", "list"],
)
@async_test
async def test_wamp_single_arg_reaches_mqtt_as_its_json(
    server: Server, uris: Uris, ser: str, args: list[Any], payload: Any
) -> None:
    """``args == [x]``, no kwargs: the MQTT payload is the JSON of ``x``, content type JSON."""
    async with peers(server) as p, mqtt(server, f"w2m-{uris.uid}") as m:
        await asyncio.to_thread(m.subscribe, uris.topic("a", "b"), 1)
        pub = await p.autobahn(ser)
        await wamp_publish(pub, uris("a", "b"), *args)
        msg = await mqtt_message(m)
        assert msg.topic == uris.topic("a", "b")
        assert json.loads(msg.payload) == payload, msg.payload
        assert paho_prop(msg.properties, "ContentType") == JSON


@async_test
async def test_wamp_binary_arg_reaches_mqtt_as_the_bytes(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p, mqtt(server, f"w2mb-{uris.uid}") as m:
        await asyncio.to_thread(m.subscribe, uris.topic("bin"), 1)
        pub = await p.autobahn(ser)
        await wamp_publish(pub, uris("bin"), BINARY)
        msg = await mqtt_message(m)
        assert msg.payload == BINARY


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [([1, "two"], {}), ([], {"k": "v"}), (["x"], {"k": [1]})],
    ids=["two-args", "kwargs-only", "arg-and-kwargs"],
)
@async_test
async def test_wamp_args_and_kwargs_reach_mqtt_as_an_envelope(
    server: Server, uris: Uris, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Anything but a single argument: JSON ``{"args": [...], "kwargs": {...}}``."""
    async with peers(server) as p, mqtt(server, f"w2me-{uris.uid}") as m:
        await asyncio.to_thread(m.subscribe, uris.topic("env"), 1)
        pub = await p.autobahn()
        await wamp_publish(pub, uris("env"), *args, **kwargs)
        msg = await mqtt_message(m)
        body = json.loads(msg.payload)
        assert body.get("args", []) == args, body
        assert body.get("kwargs", {}) == kwargs, body
        assert paho_prop(msg.properties, "ContentType") == JSON


@async_test
async def test_mqtt_wildcard_filter_hears_wamp(server: Server, uris: Uris) -> None:
    async with peers(server) as p, mqtt(server, f"w2mw-{uris.uid}") as m:
        await asyncio.to_thread(m.subscribe, uris.topic("+", "temp"), 1)
        pub = await p.autobahn()
        await wamp_publish(pub, uris("r1", "hum"), 1)
        await wamp_publish(pub, uris("r1", "temp"), 2)
        msg = await mqtt_message(m)
        assert (msg.topic, json.loads(msg.payload)) == (uris.topic("r1", "temp"), 2)


# --------------------------------------------------------------------------- WAMP → STOMP / raw


@async_test
async def test_wamp_event_reaches_stomp(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p, stomp(server) as s:
        destination = "/topic/" + uris.topic("s")
        await asyncio.to_thread(s.subscribe, destination, "s1")
        pub = await p.autobahn(ser)
        await wamp_publish(pub, uris("s"), {"t": 1})
        msg = await asyncio.to_thread(s.expect_message)
        assert json.loads(msg.body) == {"t": 1}
        assert msg.headers["content-type"].startswith(JSON), msg.headers
        assert msg.headers["destination"] == destination


@async_test
async def test_wamp_binary_reaches_stomp_unchanged(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p, stomp(server, auto_decode=False) as s:
        await asyncio.to_thread(s.subscribe, "/topic/" + uris.topic("sb"), "s1")
        pub = await p.autobahn(ser)
        await wamp_publish(pub, uris("sb"), BINARY)
        msg = await asyncio.to_thread(s.expect_message)
        assert msg.body == BINARY


@async_test
async def test_wamp_event_reaches_raw_as_text(server: Server, uris: Uris) -> None:
    async with peers(server) as p, raw_ws(server, uris.topic("r")) as ws:
        pub = await p.autobahn()
        await wamp_publish(pub, uris("r"), {"t": 2})
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(got, str), got
        assert json.loads(got) == {"t": 2}, got


@async_test
async def test_wamp_binary_reaches_raw_as_binary(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p, raw_ws(server, uris.topic("rb")) as ws:
        pub = await p.autobahn(ser)
        await wamp_publish(pub, uris("rb"), BINARY)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert got == BINARY


# --------------------------------------------------------------------------- → WAMP


async def next_event(inbox: Inbox) -> Event:
    ev: Event = await inbox.get()
    return ev


@async_test
async def test_mqtt_json_reaches_wamp_as_the_value(server: Server, uris: Uris, ser: str) -> None:
    """MQTT 5 Content Type application/json: args=[value], no kwargs."""
    async with peers(server) as p, mqtt(server, f"m2w-{uris.uid}") as m:
        inbox = await wamp_subscriber(p, uris("m"), ser)
        props = paho_props(PacketTypes.PUBLISH, ContentType=JSON)
        await asyncio.to_thread(m.publish, uris.topic("m"), b'{"t": [1, 2.5]}', 1, False, props)
        ev = await next_event(inbox)
        assert ev.args == ({"t": [1, 2.5]},)
        assert ev.kwargs == {}


@async_test
async def test_json_parsable_payload_without_content_type(server: Server, uris: Uris) -> None:
    """MQTT 3.1.1 (no content type) with a payload that parses as JSON: args=[value]."""
    async with peers(server) as p, mqtt(server, f"m2wp-{uris.uid}", version=4) as m:
        inbox = await wamp_subscriber(p, uris("m"))
        await asyncio.to_thread(m.publish, uris.topic("m"), b"[1, true]", 1)
        assert (await next_event(inbox)).args == ([1, True],)


@async_test
async def test_mqtt_text_reaches_wamp_as_a_string(server: Server, uris: Uris, ser: str) -> None:
    """A text content type and a payload that is not JSON: args=[string]."""
    async with peers(server) as p, mqtt(server, f"m2wt-{uris.uid}") as m:
        inbox = await wamp_subscriber(p, uris("m"), ser)
        props = paho_props(PacketTypes.PUBLISH, ContentType="text/plain")
        await asyncio.to_thread(
            m.publish, uris.topic("m"), "héllo, world".encode(), 1, False, props
        )
        assert (await next_event(inbox)).args == ("héllo, world",)


@async_test
async def test_mqtt_binary_reaches_wamp_as_bytes(server: Server, uris: Uris, ser: str) -> None:
    """Bytes that are not text: args=[bytes] (bin in MessagePack, ``\\0``+base64 in JSON)."""
    async with peers(server) as p, mqtt(server, f"m2wb-{uris.uid}") as m:
        inbox = await wamp_subscriber(p, uris("m"), ser)
        props = paho_props(PacketTypes.PUBLISH, ContentType="application/octet-stream")
        await asyncio.to_thread(m.publish, uris.topic("m"), BINARY, 1, False, props)
        assert (await next_event(inbox)).args == (BINARY,)


@async_test
async def test_wamp_prefix_subscription_hears_mqtt_topics_below(server: Server, uris: Uris) -> None:
    """A WAMP prefix subscription hears MQTT publishes on topics below it, with
    EVENT.Details.topic the topic's URI."""
    async with peers(server) as p, mqtt(server, f"m2wx-{uris.uid}") as m:
        c = await p.autobahn()
        _, inbox = await c.subscribe(uris("tree"), match="prefix")
        await asyncio.to_thread(m.publish, uris.topic("tree", "a", "b"), b"1", 1)
        ev = await next_event(inbox)
        assert ev.args == (1,)
        assert ev.details.topic == uris("tree", "a", "b")


@async_test
async def test_mqtt_topic_with_a_dot_is_not_visible_to_wamp(server: Server, uris: Uris) -> None:
    """An MQTT level holding ``.`` has no WAMP URI: not delivered (DESIGN.md)."""
    async with peers(server) as p, mqtt(server, f"m2wd-{uris.uid}") as m:
        c = await p.autobahn()
        _, inbox = await c.subscribe(uris(), match="prefix")
        await asyncio.to_thread(m.publish, uris.topic("a.b"), b"1", 1)
        await asyncio.to_thread(m.publish, uris.topic("marker"), b"2", 1)
        ev = await next_event(inbox)
        assert ev.args == (2,)
        assert ev.details.topic == uris("marker")


@async_test
async def test_stomp_json_and_text_reach_wamp(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p, stomp(server) as s:
        inbox = await wamp_subscriber(p, uris("st"), ser)
        destination = "/topic/" + uris.topic("st")
        await asyncio.to_thread(
            lambda: s.send(destination, '{"a": 1}', content_type=JSON, receipt=True)
        )
        assert (await next_event(inbox)).args == ({"a": 1},)
        await asyncio.to_thread(
            lambda: s.send(destination, "plain words", content_type="text/plain", receipt=True)
        )
        assert (await next_event(inbox)).args == ("plain words",)


@async_test
async def test_stomp_binary_reaches_wamp_as_bytes(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p, stomp(server, binary_mode=True, auto_decode=False) as s:
        inbox = await wamp_subscriber(p, uris("sb"), ser)
        await asyncio.to_thread(
            lambda: s.send(
                "/topic/" + uris.topic("sb"), BINARY,
                content_type="application/octet-stream", receipt=True,
            )
        )  # fmt: skip
        assert (await next_event(inbox)).args == (BINARY,)


@async_test
async def test_raw_messages_reach_wamp(server: Server, uris: Uris, ser: str) -> None:
    """Raw text that parses as JSON: the value; other text: the string; binary: bytes."""
    async with peers(server) as p, raw_ws(server, uris.topic("rw"), listening=False) as ws:
        inbox = await wamp_subscriber(p, uris("rw"), ser)
        await ws.send('{"k": [1]}')
        assert (await next_event(inbox)).args == ({"k": [1]},)
        await ws.send("not json ✓")
        assert (await next_event(inbox)).args == ("not json ✓",)
        await ws.send(BINARY)
        assert (await next_event(inbox)).args == (BINARY,)


@async_test
async def test_wamp_to_wamp_is_exact_with_kwargs_and_binary(server: Server, uris: Uris) -> None:
    """WAMP → WAMP keeps args, kwargs and binary exactly (no core payload mapping shows)."""
    async with peers(server) as p:
        inbox = await wamp_subscriber(p, uris("ww"), "msgpack")
        pub = await p.autobahn("json")
        await wamp_publish(pub, uris("ww"), BINARY, "s", k={"b": BINARY})
        ev = await next_event(inbox)
        assert ev.args == (BINARY, "s")
        assert ev.kwargs == {"k": {"b": BINARY}}


@async_test
async def test_mqtt_to_wamp_to_mqtt_round_trip(server: Server, uris: Uris) -> None:
    """A WAMP client relays what it hears from MQTT back to MQTT: the JSON value survives."""
    async with peers(server) as p, mqtt(server, f"rt-{uris.uid}") as m:
        c = await p.autobahn()
        _, inbox = await c.subscribe(uris("src"))
        await asyncio.to_thread(m.subscribe, uris.topic("dst"), 1)
        props = paho_props(PacketTypes.PUBLISH, ContentType=JSON)
        await asyncio.to_thread(m.publish, uris.topic("src"), b'{"v": [1, 2]}', 1, False, props)
        ev = await next_event(inbox)
        await wamp_publish(c, uris("dst"), *ev.args)
        msg = await mqtt_message(m)
        assert json.loads(msg.payload) == {"v": [1, 2]}
