"""Subprotocol negotiation, CONNECT / STOMP and CONNECTED (STOMP 1.2 "Connecting", 1.1
"Protocol Negotiation"; issue bullets 1 and 3).

The WebSocket subprotocol only opens the door: the STOMP version comes from ``accept-version``
(absent: 1.0). Any frame before CONNECT, or a version the server does not speak, gets ERROR and
close.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.conftest import StompFactory
from conformance.stomp.rawstomp import open_raw
from conformance.stomp.support import Names, Server, raw_session

TOKENS = ["v12.stomp", "v11.stomp", "v10.stomp", "stomp"]


@pytest.mark.parametrize("token", TOKENS)
@async_test
async def test_subprotocol_token_is_echoed(server: Server, token: str) -> None:
    """Each STOMP token is accepted and echoed in Sec-WebSocket-Protocol (RFC 6455 4.2.2)."""
    if token == "stomp" and server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 knows only v10/v11/v12.stomp: it answers 'stomp' with no "
            "subprotocol (and speaks STOMP anyway)"
        )
    async with open_raw(server.url, server.path, token) as c:
        assert c.subprotocol == token
        connected = await c.connect("1.0,1.1,1.2", host=server.host)
        assert connected.get("version") == "1.2"


@async_test
async def test_first_supported_token_in_client_order_is_picked(server: Server) -> None:
    """Of several offered tokens the server picks one it supports; ours: the client's first."""
    async with open_raw(server.url, server.path, "x-unknown, v11.stomp, v12.stomp") as c:
        if server.strict:
            assert c.subprotocol == "v11.stomp"
        else:
            assert c.subprotocol in ("v11.stomp", "v12.stomp")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.1,1.0", "1.1"),
        ("1.2,3.0", "1.2"),
    ],
)
@async_test
async def test_version_negotiated_from_accept_version(
    server: Server, accept: str, expected: str
) -> None:
    """1.2 "Protocol Negotiation": the server answers with the highest version both speak."""
    async with raw_session(server, connect=False) as c:
        connected = await c.connect(accept, host=server.host)
        version = connected.get("version")
        if expected == "1.0" and version is None:
            return  # a 1.0 CONNECTED has no version header
        assert version == expected


@pytest.mark.parametrize("token", ["v12.stomp", "v10.stomp"])
@async_test
async def test_connect_without_accept_version_is_stomp_1_0(server: Server, token: str) -> None:
    """1.1 "Protocol Negotiation": a CONNECT without accept-version is a 1.0 client, whatever
    the subprotocol token said."""
    async with raw_session(server, protocols=token, connect=False) as c:
        connected = await c.connect(None, host=None)
        assert connected.get("version") in (None, "1.0")


@async_test
async def test_stomp_command_connects(server: Server) -> None:
    """1.2 "STOMP Frame": STOMP is accepted in place of CONNECT."""
    async with raw_session(server, connect=False) as c:
        connected = await c.connect("1.2", command="STOMP", host=server.host)
        assert connected.get("version") == "1.2"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@async_test
async def test_connected_headers(server: Server, version: str) -> None:
    """CONNECTED carries version, server, session and heart-beat; ours names itself
    ``wsbroker/<version>``."""
    connected = await _connected(server, version)
    assert connected["version"] == version
    name, _, ver = connected["server"].partition("/")
    assert name, connected
    if server.strict:
        assert name == "wsbroker", connected
        assert ver, connected
    assert connected["session"], connected
    sx, sy = (int(v) for v in connected["heart-beat"].split(","))
    assert (sx, sy) == (0, 0), "the client asked for no heart-beats"


async def _connected(server: Server, version: str) -> dict[str, str]:
    async with raw_session(server, connect=False) as c:
        f = await c.connect(version, {"heart-beat": "0,0"}, host=server.host)
        return dict(f.headers)


@async_test
async def test_sessions_are_distinct(server: Server) -> None:
    """Each connection gets its own session id."""
    sessions = {(await _connected(server, "1.2"))["session"] for _ in range(3)}
    assert len(sessions) == 3


@pytest.mark.parametrize("accept", ["2.0", "0.9,3.1"])
@async_test
async def test_unsupported_version_gets_error_and_close(server: Server, accept: str) -> None:
    """1.2 "Protocol Negotiation": no common version: ERROR (with a ``version`` header listing
    the supported ones) and the connection closed."""
    async with raw_session(server, connect=False) as c:
        c.send("CONNECT", {"accept-version": accept, "host": server.host})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        supported = error.get("version") or ""
        assert "1.2" in supported, f"the ERROR should list the supported versions: {error!r}"


@pytest.mark.parametrize(
    ("command", "headers"),
    [
        ("SEND", {"destination": "/topic/conf/early", "receipt": "r1"}),
        ("SUBSCRIBE", {"destination": "/topic/conf/early", "id": "s1"}),
        ("BEGIN", {"transaction": "t1"}),
        ("DISCONNECT", {"receipt": "bye"}),
    ],
)
@async_test
async def test_frame_before_connect_gets_error_and_close(
    server: Server, command: str, headers: dict[str, str]
) -> None:
    """1.2 "Connecting": a client MUST CONNECT first; anything else gets ERROR, then close."""
    async with raw_session(server, connect=False) as c:
        c.send(command, headers)
        await c.expect_error_and_close(close_required=server.closes_after_error)


def test_login_and_passcode_go_through_auth(stomp: StompFactory, server: Server) -> None:
    """``login`` / ``passcode`` reach the auth hook (ours: allow-all for now)."""
    login, passcode = server.credentials
    c = stomp()
    connected = c.connect(login, passcode)
    assert connected.headers.get("version") == "1.2"
    c.disconnect()


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stomp_py_round_trip_each_version(stomp: StompFactory, names: Names, version: str) -> None:
    """stomp.py connects (STOMP frame for 1.1/1.2, CONNECT for 1.0), subscribes, sends and
    receives over each version."""
    c = stomp(version=version)
    connected = c.connect()
    assert connected.headers.get("version", "1.0") == version
    dest = names.topic("v", version.replace(".", ""))
    c.subscribe(dest, "s1")
    c.send(dest, "hello " + version, content_type="text/plain")
    msg = c.expect_message()
    assert msg.body == "hello " + version
    assert msg.headers["destination"] == dest
    c.disconnect()


@async_test
async def test_host_selects_realm(server: Server, uid: str) -> None:
    """CONNECT ``host`` naming a configured realm selects it (RabbitMQ: the vhost): a message
    sent in one realm never reaches a subscriber in the other."""
    if server.realm is None:
        pytest.skip("no second realm known: set WSBROKER_STOMP_REALM")
    dest = Names(server, uid).topic("realm")
    async with (
        raw_session(server, connect=False) as other,
        raw_session(server, connect=False) as default,
        raw_session(server, connect=False) as sender,
    ):
        await other.connect("1.2", host=server.realm)
        await default.connect("1.2", host=server.host)
        await sender.connect("1.2", host=server.realm)
        await other.subscribe(dest, "s1")
        await default.subscribe(dest, "s1")
        sender.send("SEND", {"destination": dest, "receipt": "r1"}, "in the other realm")
        await sender.expect_receipt("r1")
        msg = await other.expect("MESSAGE")
        assert msg.body == b"in the other realm"
        default.send("SEND", {"destination": dest}, "in the default realm")
        # The default realm's subscriber hears its own message and nothing before it.
        msg = await default.expect("MESSAGE")
        assert msg.body == b"in the default realm"
        await other.expect_nothing(0.3)
