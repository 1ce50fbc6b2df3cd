"""Subprotocol negotiation, the four WAMP WebSocket subprotocols, batching, and binary values.

WAMP spec, Basic Profile "WebSocket Transport" (``wamp.2.json`` text, ``wamp.2.msgpack`` binary),
Advanced Profile "Batched WebSocket Transport" (``.batched``: 0x1e after each JSON message; a
32-bit big-endian length before each MessagePack message) and the appendix "Binary conversion of
JSON Strings" (``"\\0" + base64``). DESIGN.md: the first offered token we support is echoed.
"""

from __future__ import annotations

import base64
import json
import struct

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import OP_BINARY, OP_TEXT
from conformance.wamp import wire
from conformance.wamp.clients import Event
from conformance.wamp.support import Server, Uris, peers

BINARY = bytes(range(256)) + b"\x00\xff\x00"


@pytest.mark.parametrize("token", wire.SUBPROTOCOLS)
@async_test
async def test_each_wamp_token_is_echoed_and_joins(server: Server, token: str) -> None:
    """Offering exactly one WAMP token gets that token back and a session over it."""
    async with peers(server) as p:
        peer = await p.raw(token)
        assert peer.subprotocol == token
        assert 1 <= (peer.session_id or 0) <= wire.MAX_ID


@async_test
async def test_first_supported_token_in_client_order_wins(server: Server) -> None:
    """Unknown tokens are skipped; of the WAMP ones, the first the client offered is picked."""
    async with peers(server) as p:
        peer = await p.raw(
            "wamp.2.msgpack", offer="wamp.2.cbor.x-unknown, wamp.2.msgpack, wamp.2.json"
        )
        assert peer.subprotocol == "wamp.2.msgpack"
        peer2 = await p.raw("wamp.2.json", offer="wamp.2.json, wamp.2.msgpack")
        assert peer2.subprotocol == "wamp.2.json"


@pytest.mark.parametrize("token", wire.SUBPROTOCOLS)
@async_test
async def test_router_frames_have_the_serializers_opcode(server: Server, token: str) -> None:
    """JSON sessions get text messages only; MessagePack sessions binary messages only."""
    async with peers(server) as p:
        peer = await p.raw(token)
        await peer.subscribe("conf.opcode.check")
        expected = OP_BINARY if ".msgpack" in token else OP_TEXT
        assert peer.opcodes, peer.opcodes
        assert set(peer.opcodes) == {expected}, peer.opcodes


@async_test
async def test_json_batched_welcome_ends_with_record_separator(server: Server) -> None:
    """On ``wamp.2.json.batched`` each message ends with the record separator 0x1e."""
    if server.crossbar:
        pytest.skip(
            "Crossbar separates batched JSON with 0x18 (autobahn-python's b'\\30' is octal), "
            "not the spec's 0x1e; the other batched tests use 0x18 with it"
        )
    async with peers(server) as p:
        peer = await p.raw("wamp.2.json.batched", realm=None)
        hello = json.dumps([wire.HELLO, server.realm, {"roles": {"subscriber": {}}}])
        peer.send_payload(hello.encode() + b"\x1e")
        frame = await peer.client.recv_frame()
        assert frame.opcode == OP_TEXT
        assert frame.payload.endswith(b"\x1e"), frame
        first = json.loads(frame.payload.split(b"\x1e")[0])
        assert first[0] == wire.WELCOME, first


@async_test
async def test_msgpack_batched_welcome_is_length_prefixed(server: Server) -> None:
    """On ``wamp.2.msgpack.batched`` each message is prefixed by its 32-bit big-endian length."""
    codec = wire.codec_for("wamp.2.msgpack")
    async with peers(server) as p:
        peer = await p.raw("wamp.2.msgpack.batched", realm=None)
        hello = codec.encode_one([wire.HELLO, server.realm, {"roles": {"subscriber": {}}}])
        peer.send_payload(struct.pack("!I", len(hello)) + hello)
        frame = await peer.client.recv_frame()
        assert frame.opcode == OP_BINARY
        (n,) = struct.unpack_from("!I", frame.payload)
        assert 4 + n <= len(frame.payload), frame
        assert codec.decode_one(frame.payload[4 : 4 + n])[0] == wire.WELCOME


@pytest.mark.parametrize("token", ["wamp.2.json.batched", "wamp.2.msgpack.batched"])
@async_test
async def test_batch_of_several_messages_is_processed_in_order(
    server: Server, uris: Uris, token: str
) -> None:
    """One WebSocket message holding SUBSCRIBE then PUBLISH: SUBSCRIBED, PUBLISHED and the
    EVENT come back, in that order."""
    async with peers(server) as p:
        peer = await p.raw(token)
        topic = uris("batch")
        peer.send(
            [wire.SUBSCRIBE, 1, {}, topic],
            [wire.PUBLISH, 2, {"acknowledge": True, "exclude_me": False}, topic, ["x"]],
        )
        got = [await peer.recv() for _ in range(3)]
        # SUBSCRIBED first; the EVENT may come before or after PUBLISHED.
        assert got[0][:2] == [wire.SUBSCRIBED, 1], got
        assert sorted(m[0] for m in got[1:]) == [wire.PUBLISHED, wire.EVENT], got
        event = next(m for m in got if m[0] == wire.EVENT)
        assert event[4] == ["x"], got


@pytest.mark.parametrize("token", ["wamp.2.json", "wamp.2.msgpack", "wamp.2.msgpack.batched"])
@async_test
async def test_autobahn_python_over_each_subprotocol(
    server: Server, uris: Uris, token: str
) -> None:
    """autobahn-python negotiates each token and round-trips an event over it."""
    serializer = token.removeprefix("wamp.2.")
    async with peers(server) as p:
        c = await p.autobahn(serializer)
        assert c.subprotocol == token
        _, inbox = await c.subscribe(uris("t"))
        other = await p.autobahn(serializer)
        other.session.publish(uris("t"), 1, "two", [3.5], k={"v": None})
        ev: Event = await inbox.get()
        assert ev.args == (1, "two", [3.5])
        assert ev.kwargs == {"k": {"v": None}}


@async_test
async def test_autobahn_python_json_batched_interoperates(server: Server, uris: Uris) -> None:
    """autobahn-python on ``wamp.2.json.batched`` round-trips an event.

    autobahn-python ends each batched JSON message with 0x18 (its ``b"\\30"`` is octal), not
    the spec's 0x1e: a router that only speaks the spec's framing fails here (see the notes).
    """
    async with peers(server) as p:
        c = await p.autobahn("json.batched")
        assert c.subprotocol == "wamp.2.json.batched"
        _, inbox = await c.subscribe(uris("t"))
        other = await p.autobahn("json")
        other.session.publish(uris("t"), "batched")
        ev: Event = await inbox.get()
        assert ev.args == ("batched",)


@pytest.mark.parametrize(("pub", "sub"), [("json", "msgpack"), ("msgpack", "json")])
@async_test
async def test_binary_kept_exact_across_serializers_autobahn(
    server: Server, uris: Uris, pub: str, sub: str
) -> None:
    """bytes published over one serializer arrive as the same bytes over the other."""
    async with peers(server) as p:
        s = await p.autobahn(sub)
        _, inbox = await s.subscribe(uris("bin"))
        c = await p.autobahn(pub)
        c.session.publish(uris("bin"), BINARY, b"", blob={"b": BINARY[:7]})
        ev: Event = await inbox.get()
        assert ev.args == (BINARY, b"")
        assert ev.kwargs == {"blob": {"b": BINARY[:7]}}


@async_test
async def test_json_binary_string_reaches_msgpack_as_bin(server: Server, uris: Uris) -> None:
    """A JSON ``"\\0<base64>"`` string is binary: a MessagePack subscriber gets ``bin``, and a
    MessagePack ``bin`` reaches a JSON subscriber as ``"\\0<base64>"`` (raw, no client library
    in between)."""
    async with peers(server) as p:
        js = await p.raw("wamp.2.json")
        mp = await p.raw("wamp.2.msgpack")
        topic = uris("bin")
        sub_mp = await mp.subscribe(topic)
        sub_js = await js.subscribe(topic)
        encoded = "\0" + base64.b64encode(BINARY).decode()
        # Hand-made JSON, so the string goes out exactly as the convention writes it.
        js.send_payload(json.dumps([wire.PUBLISH, js.next_id(), {}, topic, [encoded]]).encode())
        ev = await mp.expect(wire.EVENT)
        assert ev[1] == sub_mp, ev
        assert ev[4] == [BINARY], ev
        # And back: bin from MessagePack to the JSON peer, checked on the wire.
        await mp.publish_acked(topic, [BINARY])
        frame = await js.client.recv_message()
        raw = json.loads(frame.payload)
        assert raw[0] == wire.EVENT, raw
        assert raw[1] == sub_js, raw
        assert raw[4] == [encoded], raw
