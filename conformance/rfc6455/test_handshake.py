"""Opening handshake (RFC 6455 section 4) and the raw adapter's path rule."""

from __future__ import annotations

import base64
import json
import os

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    OP_BINARY,
    OP_TEXT,
    RawClient,
    accept_key,
    build_request,
    http_exchange,
    upgrade_headers,
)


def _key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def test_accept_key_matches_rfc_example() -> None:
    # The worked example of RFC 6455 section 1.3, so the check below is itself checked.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@async_test
async def test_handshake_returns_101_with_correct_accept_key(broker_url: str) -> None:
    # RawClient.connect checks 101, Upgrade: websocket, Connection: Upgrade and the accept key.
    async with await RawClient.connect(broker_url, "/topics/echo") as c:
        assert c.response is not None
        # No subprotocol offered: the raw adapter answers without one (DESIGN.md), and no
        # extension was offered so none may be accepted (RFC 6455 section 9.1).
        assert c.response.header("Sec-WebSocket-Protocol") is None
        assert c.response.header("Sec-WebSocket-Extensions") is None
        c.send_text("after handshake")
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_TEXT, b"after handshake")


@async_test
async def test_unsupported_version_gets_426_with_supported_version(broker_url: str) -> None:
    # Section 4.4: abort with an error such as 426 and say which versions are understood.
    req = build_request("GET", "/topics/echo", upgrade_headers(_host(broker_url), _key(), "8"))
    resp = await http_exchange(broker_url, req)
    assert resp.status == 426, resp.raw_head
    assert "13" in resp.header_tokens("Sec-WebSocket-Version"), resp.raw_head


@async_test
async def test_missing_key_gets_400(broker_url: str) -> None:
    req = build_request("GET", "/topics/echo", upgrade_headers(_host(broker_url), None))
    resp = await http_exchange(broker_url, req)
    assert resp.status == 400, resp.raw_head


@async_test
async def test_malformed_key_gets_400(broker_url: str) -> None:
    # Section 4.2.1: the key must base64-decode to 16 bytes.
    req = build_request("GET", "/topics/echo", upgrade_headers(_host(broker_url), "c2hvcnQ="))
    resp = await http_exchange(broker_url, req)
    assert resp.status == 400, resp.raw_head


@async_test
async def test_post_upgrade_is_refused_with_4xx(broker_url: str) -> None:
    # Section 4.1: the method of the opening handshake MUST be GET. 400 and 405 are both fine.
    headers = [*upgrade_headers(_host(broker_url), _key()), ("Content-Length", "0")]
    resp = await http_exchange(broker_url, build_request("POST", "/topics/echo", headers))
    assert 400 <= resp.status < 500, resp.raw_head


@async_test
async def test_unknown_path_without_subprotocol_gets_400_with_body(broker_url: str) -> None:
    # DESIGN.md: without a subprotocol, a path other than /topics/<topic> (or /mqtt, /stomp,
    # /wamp) gets 400 with a body saying what to offer instead.
    req = build_request("GET", "/nope", upgrade_headers(_host(broker_url), _key()))
    resp = await http_exchange(broker_url, req)
    assert resp.status == 400, resp.raw_head
    assert resp.body.strip(), f"400 without a body: {resp.raw_head!r}"


@async_test
async def test_healthz_returns_200(broker_url: str) -> None:
    req = build_request("GET", "/healthz", [("Host", _host(broker_url)), ("Connection", "close")])
    resp = await http_exchange(broker_url, req)
    assert resp.status == 200, resp.raw_head
    assert isinstance(json.loads(resp.body), dict | list), resp.body


@async_test
async def test_unsupported_subprotocol_falls_back_to_raw_without_protocol_header(
    broker_url: str,
) -> None:
    # DESIGN.md: no offered token supported => raw, and no Sec-WebSocket-Protocol in the
    # response (section 4.2.2: the server must not answer with a token the client did not offer).
    async with await RawClient.connect(broker_url, protocols="x-unknown, x-other") as c:
        assert c.response is not None
        assert c.response.header("Sec-WebSocket-Protocol") is None
        c.send_binary(b"\x00raw")
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_BINARY, b"\x00raw")


@async_test
async def test_browser_style_headers_are_accepted(broker_url: str) -> None:
    # Firefox sends "Connection: keep-alive, Upgrade"; header names and the "websocket" token
    # are case-insensitive (section 4.2.1).
    headers = [
        ("host", _host(broker_url)),
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", _key()),
        ("sec-websocket-version", "13"),
        ("Origin", "http://example.com"),
        ("User-Agent", "conformance"),
    ]
    req = build_request("GET", "/topics/echo", headers)
    client = await RawClient.open_tcp(broker_url)
    async with client:
        client.send_raw(req)
        resp = await client.read_response(read_body=False)
        assert resp.status == 101, resp.raw_head


@async_test
async def test_missing_host_gets_400(broker_url: str) -> None:
    # Section 4.2.1: the request MUST have a Host header; section 4.2.2 answers a request that
    # does not match with an error such as 400.
    headers = [h for h in upgrade_headers(_host(broker_url), _key()) if h[0] != "Host"]
    resp = await http_exchange(broker_url, build_request("GET", "/topics/echo", headers))
    assert resp.status == 400, resp.raw_head


@async_test
async def test_missing_upgrade_header_is_refused(broker_url: str) -> None:
    # Without "Upgrade: websocket" this is a plain HTTP request for a WebSocket-only path:
    # 400, 404 or 426 (all seen in the wild) are fine, a 101 or a 2xx is not.
    headers = [h for h in upgrade_headers(_host(broker_url), _key()) if h[0] != "Upgrade"]
    resp = await http_exchange(broker_url, build_request("GET", "/topics/echo", headers))
    assert 400 <= resp.status < 500, resp.raw_head


@async_test
async def test_http_1_0_upgrade_is_refused(broker_url: str) -> None:
    # Section 4.1: the handshake is HTTP/1.1 or higher. 400 or 505 are both fine.
    req = build_request("GET", "/topics/echo", upgrade_headers(_host(broker_url), _key()))
    req = req.replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1)
    resp = await http_exchange(broker_url, req)
    assert resp.status in (400, 505), resp.raw_head
