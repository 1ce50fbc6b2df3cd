"""autobahn-js (under node, over the ``ws`` package) against the router: a representative set,
alone and together with autobahn-python peers.

autobahn-js's JSON serializer does not apply WAMP's binary convention (it writes a Uint8Array
as a JSON object), so binary values are exchanged with it over MessagePack only; a JSON
autobahn-js subscriber sees the convention's ``"\\0<base64>"`` string as it is.
"""

from __future__ import annotations

import base64

import pytest

from conformance.aio import async_test
from conformance.wamp.clients import PublishOptions
from conformance.wamp.support import SERIALIZERS, Server, Uris, event, js_peer, peers, run_js

BINARY = bytes(range(256))


def unhex(value: object) -> bytes:
    assert isinstance(value, dict), value
    assert "$hex" in value, value
    return bytes.fromhex(value["$hex"])


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_js_pubsub(server: Server, uris: Uris, serializer: str) -> None:
    events = run_js(server, "pubsub", serializer=serializer, topic=uris("js"))
    assert event(events, "joined")["protocol"] == f"wamp.2.{serializer}"
    ev = event(events, "event")
    assert ev["args"] == [1, "two", {"x": [True]}]
    assert ev["kwargs"] == {"k": "v"}
    assert ev["publication"] == event(events, "published")["id"]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_js_rpc_result_error_and_no_such_procedure(
    server: Server, uris: Uris, serializer: str
) -> None:
    events = run_js(server, "rpc", serializer=serializer, procedure=uris("js"))
    res = event(events, "result")
    assert res["args"] == [1, "two"]
    assert res["kwargs"] == {"k": [3]}
    err = event(events, "error")
    assert err["error"] == "com.conf.error.js"
    assert err["args"] == [1, "two"]
    assert err["kwargs"] == {"a": {"b": 3}}
    assert event(events, "missing")["error"] == "wamp.error.no_such_procedure"


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_js_progressive_results(server: Server, uris: Uris, serializer: str) -> None:
    events = run_js(server, "progress", serializer=serializer, procedure=uris("js"))
    assert event(events, "result") == {"event": "result", "result": "done", "progress": [0, 1, 2]}


def test_js_prefix_subscription(server: Server, uris: Uris) -> None:
    events = run_js(server, "pattern", prefix=uris("js"))
    assert event(events, "event") == {
        "event": "event", "args": ["below"], "topic": uris("js", "a", "b"),
    }  # fmt: skip


def test_js_leave_gets_goodbye(server: Server) -> None:
    events = run_js(server, "leave")
    closed = event(events, "closed")
    assert closed["reason"] in ("closed", "wamp.close.normal", "wamp.close.goodbye_and_out"), closed
    if server.strict:
        assert closed["details"].get("reason") == "wamp.close.goodbye_and_out", closed


def test_js_unknown_realm_is_refused(server: Server, uid: str) -> None:
    events = run_js(server, "unknown_realm", realm=f"conf.unknown.{uid}")
    assert "wamp.error.no_such_realm" in event(events, "refused")["reason"]


def test_js_disclose_me(server: Server, uris: Uris) -> None:
    """autobahn-js sends PUBLISH.Options.disclose_me (Crossbar: by role, under
    ``conf.disclosed.``)."""
    events = run_js(server, "disclose", topic=uris.disclosed("js"))
    ev = event(events, "event")
    assert ev["publisher"] == ev["session"], ev


@pytest.mark.parametrize("serializer", SERIALIZERS)
@async_test
async def test_python_publisher_js_subscriber(server: Server, uris: Uris, serializer: str) -> None:
    """autobahn-python publishes, autobahn-js receives; binary as MessagePack bin, or as the
    JSON convention's string."""
    async with js_peer(server, "subscriber", serializer=serializer, topic=uris("x"), count=2) as js:
        await js.event("ready")
        async with peers(server) as p:
            pub = await p.autobahn("msgpack")
            opts = PublishOptions(acknowledge=True)
            await pub.session.publish(uris("x"), "text", {"n": 1.5}, options=opts, k=[None])
            await pub.session.publish(uris("x"), BINARY, options=opts)
        events = await js.finish()
    first, second = [e for e in events if e["event"] == "event"]
    assert first["args"] == ["text", {"n": 1.5}]
    assert first["kwargs"] == {"k": [None]}
    if serializer == "msgpack":
        assert unhex(second["args"][0]) == BINARY
    else:
        assert second["args"] == ["\0" + base64.b64encode(BINARY).decode()]


@pytest.mark.parametrize("serializer", SERIALIZERS)
@async_test
async def test_js_callee_python_caller(server: Server, uris: Uris, serializer: str) -> None:
    async with js_peer(server, "callee", serializer=serializer, procedure=uris("p"), count=1) as js:
        await js.event("ready")
        async with peers(server) as p:
            caller = await p.autobahn("json" if serializer == "msgpack" else "msgpack")
            res = await caller.call(uris("p"), 1, "a", k="v")
        events = await js.finish()
    assert list(res.results) == [1, "a"]
    assert res.kwresults == {"js": True, "k": "v"}
    assert event(events, "invocation")["args"] == [1, "a"]


@async_test
async def test_js_pattern_callee_gets_procedure(server: Server, uris: Uris) -> None:
    options = {"match": "prefix"}
    async with js_peer(server, "callee", procedure=uris("pp"), options=options, count=1) as js:
        await js.event("ready")
        async with peers(server) as p:
            caller = await p.autobahn()
            await caller.call(uris("pp", "deep", "name"))
        events = await js.finish()
    assert event(events, "invocation")["procedure"] == uris("pp", "deep", "name")


@async_test
async def test_js_binary_publisher_python_subscribers(server: Server, uris: Uris) -> None:
    """autobahn-js publishes a Buffer over MessagePack: Python subscribers on both serializers
    get the same bytes."""
    async with peers(server) as p:
        inboxes = []
        for ser in SERIALIZERS:
            c = await p.autobahn(ser)
            _, inbox = await c.subscribe(uris("b"))
            inboxes.append(inbox)
        async with js_peer(
            server, "publish_binary", serializer="msgpack", topic=uris("b"), hex=BINARY.hex()
        ) as js:
            await js.finish()
        for inbox in inboxes:
            assert (await inbox.get()).args == (BINARY,)


@pytest.mark.parametrize("method", ["ticket", "wampcra", "wampcra-salted"])
def test_js_authentication(server: Server, method: str) -> None:
    if method == "ticket":
        c = server.auth.need_ticket()
        authid, secret, role = c.authid, c.secret, server.auth.ticket_role
    elif method == "wampcra":
        c = server.auth.need_cra()
        authid, secret, role = c.authid, c.secret, server.auth.cra_role
    else:
        s = server.auth.need_salted()
        authid, secret, role = s.user, s.secret, s.role
    events = run_js(
        server,
        "authenticate",
        realm=server.auth.realm,
        method=method.split("-")[0],
        authid=authid,
        secret=secret,
    )
    joined = event(events, "joined")
    assert joined["authid"] == authid
    assert joined["authmethod"] == method.split("-")[0]
    if role:
        assert joined["authrole"] == role
