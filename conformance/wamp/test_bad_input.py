"""Bad input: wrong message shapes, unknown or misplaced message types, out-of-range ids,
undecodable payloads, oversized and deeply nested messages.

WAMP spec, Basic Profile "Protocol errors": the router ABORTs the offending session with
``wamp.error.protocol_violation`` (and should drop the connection); DESIGN.md: the broker goes on
serving everyone else. Each test opens a bystander session first and checks that it still
works afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.aio import async_test
from conformance.wamp import wire
from conformance.wamp.rawwamp import Ended, RawWamp
from conformance.wamp.support import Server, Uris, bystander_round_trip, peers

# Close codes that answer bad input (RFC 6455 7.4.1); 1011 means the server itself failed.
ACCEPTABLE_CLOSE = {1000, 1002, 1003, 1007, 1008, 1009}


def check_violation(
    server: Server, ended: Ended, *, reasons: tuple[str, ...] = (), websocket_level: bool = False
) -> None:
    """The router ended the session: ABORT protocol_violation (or one of ``reasons``) and/or a
    close with a bad-input code. Ours must send the ABORT when the WAMP layer saw the error;
    with ``websocket_level`` (a text message that is not UTF-8) a close 1007 alone will do."""
    assert ended.abort is not None or ended.closed, ended
    if ended.abort is not None:
        assert isinstance(ended.abort[1], dict), ended
        allowed = ("wamp.error.protocol_violation", *reasons)
        if server.strict:
            assert ended.abort_reason in allowed, ended
        else:
            assert str(ended.abort_reason).startswith("wamp."), ended
    if ended.closed and not server.crossbar:
        # Crossbar closes with 1011 for some malformed messages (see the notes).
        assert ended.close_code in ACCEPTABLE_CLOSE, ended
    if websocket_level and ended.abort is None:
        assert ended.close_code == 1007, ended
    elif server.strict:
        assert ended.abort is not None, f"no ABORT before the close: {ended}"


async def violation(
    server: Server,
    uris: Uris,
    payload: bytes,
    *,
    subprotocol: str = "wamp.2.json",
    binary: bool | None = None,
    joined: bool = True,
    reasons: tuple[str, ...] = (),
    websocket_level: bool = False,
    error_for: int | None = None,
) -> Ended | None:
    """Send ``payload`` as one WebSocket message on a (joined) session; check the router ends
    that session (or, with ``error_for``, answers that request type with an ERROR) and still
    serves a bystander."""
    async with peers(server) as p:
        bystander = await p.raw("wamp.2.msgpack")
        peer = await p.raw(subprotocol, realm="" if joined else None)
        peer.send_payload(payload, binary=binary)
        if error_for is not None:
            first = await peer.ended_or_message()
            if isinstance(first, list):
                assert first[0] == wire.ERROR, first
                assert first[1] == error_for, first
                assert str(first[4]).startswith("wamp.error."), first
                await bystander_round_trip(server, bystander, uris)
                return None
            ended = first
        else:
            ended = await peer.ended()
        check_violation(server, ended, reasons=reasons, websocket_level=websocket_level)
        await bystander_round_trip(server, bystander, uris)
        return ended


def js(msg: Any) -> bytes:
    return json.dumps(msg).encode()


def mp(msg: Any) -> bytes:
    return wire.codec_for("wamp.2.msgpack").encode_one(msg)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "msg",
    [{"type": 16}, [], "PUBLISH", 16, None],
    ids=["dict", "empty-list", "string", "number", "null"],
)
@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
@async_test
async def test_message_that_is_not_a_non_empty_list(
    server: Server, uris: Uris, msg: Any, subprotocol: str
) -> None:
    encode = js if subprotocol == "wamp.2.json" else mp
    await violation(server, uris, encode(msg), subprotocol=subprotocol)


@pytest.mark.parametrize("code", [0, 7, 99, 1000, -1, "16", 16.5], ids=str)
@async_test
async def test_unknown_message_type(server: Server, uris: Uris, code: Any) -> None:
    await violation(server, uris, js([code, 1, {}, "conf.x"]))


@pytest.mark.parametrize(
    "msg",
    [
        [wire.WELCOME, 1, {}],
        [wire.CHALLENGE, "ticket", {}],
        [wire.SUBSCRIBED, 1, 1],
        [wire.EVENT, 1, 1, {}],
        [wire.RESULT, 1, {}],
        [wire.INVOCATION, 1, 1, {}],
        [wire.INTERRUPT, 1, {}],
        [wire.PUBLISHED, 1, 1],
        [wire.REGISTERED, 1, 1],
    ],
    ids=lambda m: wire.NAMES[m[0]],
)
@async_test
async def test_router_only_message_from_a_client(server: Server, uris: Uris, msg: Any) -> None:
    """Messages only a router sends are protocol errors when a client sends them."""
    await violation(server, uris, js(msg))


@pytest.mark.parametrize(
    "msg",
    [
        [wire.SUBSCRIBE, 1, {}],
        [wire.SUBSCRIBE, 1, [], "conf.x"],
        [wire.SUBSCRIBE, 1, {}, 5],
        [wire.PUBLISH, 1, {}, "conf.x", "not-a-list"],
        [wire.PUBLISH, 1, {}, "conf.x", [], ["not-a-dict"]],
        [wire.CALL, 1, {}, "conf.x", {"args": "as dict"}],
        [wire.UNSUBSCRIBE, 1],
        [wire.GOODBYE, {}],
        [wire.ERROR, 99, 1, {}, "conf.error"],
    ],
    ids=[
        "subscribe-no-topic", "subscribe-options-list", "subscribe-topic-int",
        "publish-args-string", "publish-kwargs-list", "call-args-dict", "unsubscribe-no-id",
        "goodbye-no-reason", "error-bad-type",
    ],
)  # fmt: skip
@async_test
async def test_wrong_message_shape(server: Server, uris: Uris, msg: Any) -> None:
    """Missing fields and fields of the wrong type: the session ends."""
    await violation(server, uris, js(msg))


@pytest.mark.parametrize(
    "msg",
    [
        [wire.SUBSCRIBE, 1, {}, "conf.x", "extra"],
        [wire.PUBLISH, 1, {"acknowledge": "yes"}, "conf.x"],
        [wire.REGISTER, 1, {"match": "regex"}, "conf.x"],
        [wire.REGISTER, 1, {"invoke": "everyone"}, "conf.x"],
        [wire.SUBSCRIBE, 1, {"match": "regex"}, "conf.x"],
    ],
    ids=[
        "subscribe-extra-field", "publish-acknowledge-string", "register-bad-match",
        "register-bad-invoke", "subscribe-bad-match",
    ],
)  # fmt: skip
@async_test
async def test_bad_option_value_or_extra_field(server: Server, uris: Uris, msg: Any) -> None:
    await option_error_or_violation(server, uris, msg)


async def option_error_or_violation(server: Server, uris: Uris, msg: list[Any]) -> None:
    """A bad option value or an extra field: ERROR for that request
    (``wamp.error.invalid_argument`` or similar), or the session ended. Other routers may also
    accept it; ours must answer one of the two (the issue: "the protocol's error or ABORT")."""
    async with peers(server) as p:
        bystander = await p.raw("wamp.2.msgpack")
        peer = await p.raw()
        peer.send(msg)
        # A barrier: the reply to a later SUBSCRIBE shows that nothing else is coming.
        peer.send([wire.SUBSCRIBE, 2, {}, uris("barrier")])
        answered = False
        while True:
            got = await peer.ended_or_message()
            if isinstance(got, Ended):
                check_violation(server, got, reasons=("wamp.error.invalid_argument",))
                answered = True
                break
            if got[0] == wire.ERROR and got[1:3] == [msg[0], msg[1]]:
                assert str(got[4]).startswith("wamp.error."), got
                answered = True
            elif got[:2] == [wire.SUBSCRIBED, 2]:
                break
            else:
                # Accepted as valid (a loose bool, an ignored extra field): a normal reply.
                assert got[0] in (wire.SUBSCRIBED, wire.PUBLISHED, wire.REGISTERED), got
        if server.strict:
            assert answered, f"{msg} was accepted without an ERROR or ABORT"
        await bystander_round_trip(server, bystander, uris)


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "request_id",
    [0, -1, wire.MAX_ID + 1, 2**64, 1.5, "1", None],
    ids=["zero", "negative", "2^53+1", "2^64", "float", "string", "null"],
)
@async_test
async def test_request_id_out_of_range(server: Server, uris: Uris, request_id: Any) -> None:
    """Request ids are integers in [1, 2^53]."""
    if request_id == 0:
        server.crossbar_deviates("it accepts 0 as an id (answers SUBSCRIBED for request 0)")
    await violation(server, uris, js([wire.SUBSCRIBE, request_id, {}, uris("ids")]))


@pytest.mark.parametrize("sub_id", [0, wire.MAX_ID + 1], ids=["zero", "2^53+1"])
@async_test
async def test_subscription_id_out_of_range(server: Server, uris: Uris, sub_id: int) -> None:
    """An id no router can have issued: ERROR for the UNSUBSCRIBE, or the session ended."""
    await violation(server, uris, js([wire.UNSUBSCRIBE, 1, sub_id]), error_for=wire.UNSUBSCRIBE)


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "payload",
    [b"[1, ", b"not json", b"\xff\xfe[16]", b'[16, 1, {}, "conf.x"] trailing'],
    ids=["truncated", "not-json", "bad-utf8", "trailing"],
)
@async_test
async def test_undecodable_json(server: Server, uris: Uris, payload: bytes) -> None:
    await violation(server, uris, payload, websocket_level=payload.startswith(b"\xff"))


@pytest.mark.parametrize(
    "payload", [b"\xc1", b"\x94\x10", b"\x92\x10\xc1"], ids=["never-used", "truncated", "nested"]
)
@async_test
async def test_undecodable_msgpack(server: Server, uris: Uris, payload: bytes) -> None:
    await violation(server, uris, payload, subprotocol="wamp.2.msgpack")


@async_test
async def test_binary_frame_on_json_session(server: Server, uris: Uris) -> None:
    """wamp.2.json messages MUST be text: a binary one is refused."""
    await violation(server, uris, js([wire.SUBSCRIBE, 1, {}, uris("x")]), binary=True)


@async_test
async def test_text_frame_on_msgpack_session(server: Server, uris: Uris) -> None:
    """wamp.2.msgpack messages MUST be binary: a text one is refused (a MessagePack array is
    never valid UTF-8, so a close 1007 from the WebSocket layer is an answer too)."""
    await violation(
        server,
        uris,
        b"\x94\x20\x01\x80\xa6conf.x",
        subprotocol="wamp.2.msgpack",
        binary=False,
        websocket_level=True,
    )


@async_test
async def test_bad_batch_framing(server: Server, uris: Uris) -> None:
    """A batched MessagePack message whose length prefix runs past its end."""
    body = mp([wire.SUBSCRIBE, 1, {}, uris("x")])
    payload = (len(body) + 10).to_bytes(4, "big") + body
    await violation(server, uris, payload, subprotocol="wamp.2.msgpack.batched")


# --------------------------------------------------------------------------- size


@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
@async_test
async def test_deeply_nested_payload(server: Server, uris: Uris, subprotocol: str) -> None:
    """100,000 nested lists in a PUBLISH: the session gets an error or ABORT, the router lives."""
    if subprotocol == "wamp.2.json":
        server.crossbar_deviates(
            "its router worker is blocked about 21 s before it refuses 100,000-deep JSON"
        )
    depth = 100_000
    if subprotocol == "wamp.2.json":
        args = b"[" * depth + b"]" * depth
        payload = (
            b'[16, 1, {"acknowledge": true}, "' + uris("deep").encode() + b'", [' + args + b"]]"
        )
    else:
        args = b"\x91" * (depth - 1) + b"\x90"
        payload = b"\x95\x10\x01\x81\xabacknowledge\xc3" + mp(uris("deep")) + b"\x91" + args
    async with peers(server) as p:
        bystander = await p.raw("wamp.2.msgpack")
        peer = await p.raw(subprotocol)
        peer.send_payload(payload)
        try:
            reply = await peer.recv()
        except AssertionError:
            reply = None  # closed
        if reply is not None and reply[0] == wire.ERROR:
            assert reply[1] == wire.PUBLISH, reply
            assert str(reply[4]).startswith("wamp.error."), reply
        elif reply is not None:
            assert reply[0] == wire.ABORT, reply
            assert str(reply[2]).startswith("wamp.error."), reply
        await bystander_round_trip(server, bystander, uris)


@async_test
async def test_oversized_message(server: Server, uris: Uris) -> None:
    """A PUBLISH larger than the router's message size limit: close 1009 (or ABORT), and the
    router goes on serving others."""
    size = server.max_message_size + 1024
    async with peers(server) as p:
        bystander = await p.raw("wamp.2.msgpack")
        peer = await p.raw("wamp.2.msgpack")
        peer.send([wire.PUBLISH, peer.next_id(), {"acknowledge": True}, uris("big"), [b"x" * size]])
        ended = await peer.ended(10.0)
        assert ended.abort is not None or ended.closed, ended
        if ended.closed:
            assert ended.close_code in ACCEPTABLE_CLOSE, ended
        if server.strict:
            assert ended.close_code == 1009 or ended.abort_reason is not None, ended
        await bystander_round_trip(server, bystander, uris)


@async_test
async def test_many_bad_sessions_do_not_affect_a_good_one(server: Server, uris: Uris) -> None:
    """Fifty sessions each sending garbage; the bystander's round trip works after each ten."""
    async with peers(server) as p:
        bystander = await p.raw()
        garbage = [b"[", b"{}", b"[99]", b"[1, 5, 5]", b'[32, "one", {}, "x"]']
        for i in range(50):
            peer = await p.raw()
            peer.send_payload(garbage[i % len(garbage)])
            await peer.ended()
            await peer.aclose()
            if i % 10 == 9:
                await bystander_round_trip(server, bystander, uris)


@async_test
async def test_hello_with_bad_realm(server: Server, uris: Uris) -> None:
    """HELLO whose realm is not a string, or not a valid URI: ABORT."""
    async with peers(server) as p:
        bystander = await p.raw()
        for realm in (5, "bad realm", ""):
            peer: RawWamp = await p.raw(realm=None)
            peer.send([wire.HELLO, realm, {"roles": {"subscriber": {}}}])
            ended = await peer.ended()
            assert ended.abort is not None or ended.closed, (realm, ended)
            if ended.abort is not None:
                assert str(ended.abort_reason).startswith("wamp.error."), ended
        await bystander_round_trip(server, bystander, uris)
