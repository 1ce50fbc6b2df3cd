from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.transport.handshake import accept_key, check_upgrade, is_upgrade, switching_protocols
from broker.transport.http import (
    MAX_HEAD_BYTES,
    BadRequest,
    Request,
    header_tokens,
    parse_request,
    response,
)

UPGRADE = (
    b"GET /topics/echo?subscribe=a%2F%2B HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"Sec-WebSocket-Protocol: mqtt, v12.stomp\r\n"
    b"\r\n"
)


def parse(data: bytes) -> Request:
    parsed = parse_request(data)
    assert parsed is not None
    return parsed[0]


def test_accept_key_matches_rfc6455_example() -> None:
    # RFC 6455 section 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_parses_a_complete_head_and_reports_bytes_used() -> None:
    parsed = parse_request(UPGRADE + b"\x81\x80")
    assert parsed is not None
    request, used = parsed
    assert used == len(UPGRADE)
    assert request.method == "GET"
    assert request.path == "/topics/echo"
    assert request.query == "subscribe=a%2F%2B"
    assert request.header("host") == "example.com"
    assert request.header("sec-websocket-protocol") == "chat, mqtt, v12.stomp"


def test_incomplete_head_waits_for_more() -> None:
    for cut in range(len(UPGRADE)):
        assert parse_request(UPGRADE[:cut]) is None


def test_oversized_head_is_refused_with_431() -> None:
    with pytest.raises(BadRequest) as info:
        parse_request(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES)
    assert info.value.status == 431


def test_too_many_headers_is_refused_with_431() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"
    with pytest.raises(BadRequest) as info:
        parse_request(head)
    assert info.value.status == 431


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", 400),
    ],
)
def test_malformed_heads_are_bad_requests(head: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as info:
        parse_request(head)
    assert info.value.status == status


@given(st.binary(max_size=300))
def test_parser_never_fails_other_than_bad_request(data: bytes) -> None:
    with contextlib.suppress(BadRequest):
        parse_request(data + b"\r\n\r\n")


def test_check_upgrade_accepts_a_good_request() -> None:
    request = parse(UPGRADE)
    assert is_upgrade(request)
    assert check_upgrade(request) == "dGhlIHNhbXBsZSBub25jZQ=="


def replace(header: bytes, value: bytes | None) -> bytes:
    lines = UPGRADE.split(b"\r\n")
    out = [line for line in lines if not line.lower().startswith(header.lower() + b":")]
    if value is not None:
        out.insert(1, header + b": " + value)
    return b"\r\n".join(out)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (replace(b"Sec-WebSocket-Version", b"8"), 426),
        (replace(b"Sec-WebSocket-Version", None), 426),
        (replace(b"Sec-WebSocket-Key", None), 400),
        (replace(b"Sec-WebSocket-Key", b"c2hvcnQ="), 400),
        (replace(b"Sec-WebSocket-Key", b"not base64!!"), 400),
        (replace(b"Connection", b"keep-alive"), 400),
        (replace(b"Host", None), 400),
        (UPGRADE.replace(b"GET", b"POST", 1), 405),
        (UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0", 1), 400),
    ],
)
def test_check_upgrade_refuses_bad_requests(data: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as info:
        check_upgrade(parse(data))
    assert info.value.status == status
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_switching_protocols_echoes_one_token_and_extensions() -> None:
    data = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", "mqtt", "permessage-deflate")
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in data
    assert b"Sec-WebSocket-Protocol: mqtt\r\n" in data
    assert b"Sec-WebSocket-Extensions: permessage-deflate\r\n" in data
    assert data.endswith(b"\r\n\r\n")
    assert b"Sec-WebSocket-Protocol" not in switching_protocols("a" * 24, None, None)


def test_error_response_has_length_and_closes() -> None:
    data = response(400, body=b"why\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Content-Length: 4\r\n" in data
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\nwhy\n")


def test_header_tokens() -> None:
    assert header_tokens(None) == []
    assert header_tokens(" a, ,b ,c") == ["a", "b", "c"]
