"""The closing handshake (RFC 6455 sections 5.5.1, 7.1 and 7.4)."""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    CLOSE,
    OP_TEXT,
    PING,
    RawClient,
    check_server_frame,
    close_payload,
)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
# 1004-1006 and 1015 are reserved and never sent; 1016-2999 are reserved for future protocol
# use (section 7.4.2), 0-999 unused, and anything above 4999 is out of range. 1012-1014 are
# registered with IANA since the RFC, so a server may accept them: they are not tested.
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535]


async def _closing_handshake(c: RawClient, sent: bytes) -> bytes:
    """Send a close frame with ``sent`` as body; return the body of the server's reply."""
    c.send_frame(CLOSE, sent)
    info = await c.expect_close()
    check_server_frame(info.frame)
    await c.wait_tcp_closed()
    assert c.closed, "server did not close TCP after the closing handshake (7.1.1)"
    return info.frame.payload


@pytest.mark.parametrize("code", VALID_CODES)
@async_test
async def test_valid_close_code_is_echoed(broker_url: str, code: int) -> None:
    # Section 5.5.1: the endpoint answers with a Close frame, typically echoing the code.
    async with await RawClient.connect(broker_url) as c:
        body = await _closing_handshake(c, close_payload(code, b"bye"))
        assert body[:2] == code.to_bytes(2, "big"), f"sent {code}, got close body {body!r}"


@pytest.mark.parametrize("code", INVALID_CODES)
@async_test
async def test_invalid_close_code_fails_with_1002(broker_url: str, code: int) -> None:
    async with await RawClient.connect(broker_url) as c:
        body = await _closing_handshake(c, close_payload(code))
        assert body[:2] == (1002).to_bytes(2, "big"), f"sent {code}, got close body {body!r}"


@async_test
async def test_close_with_one_byte_payload_fails_with_1002(broker_url: str) -> None:
    # Section 5.5.1: a body, if any, starts with a 2-byte code; one byte cannot be valid.
    async with await RawClient.connect(broker_url) as c:
        body = await _closing_handshake(c, b"\x03")
        assert body[:2] == (1002).to_bytes(2, "big"), f"got close body {body!r}"


@async_test
async def test_close_with_invalid_utf8_reason_fails_with_1007(broker_url: str) -> None:
    # Section 5.5.1: the reason is UTF-8; section 8.1: invalid UTF-8 fails the connection,
    # and 1007 is the code for inconsistent data (7.4.1). Some servers answer 1002 here (the
    # frame is malformed); the RFC allows that reading too, but this broker promises 1007.
    async with await RawClient.connect(broker_url) as c:
        reason = b"bad \xce\xba\xe1\xbd\xb9\xed\xa0\x80"
        body = await _closing_handshake(c, close_payload(1000, reason))
        assert body[:2] == (1007).to_bytes(2, "big"), f"got close body {body!r}"


@async_test
async def test_empty_close_gets_empty_or_1000_close(broker_url: str) -> None:
    # With no status code received, the reply may carry no body or 1000; 1005 means "no code"
    # but must never be sent in a frame.
    async with await RawClient.connect(broker_url) as c:
        body = await _closing_handshake(c, b"")
        assert body[:2] in (b"", (1000).to_bytes(2, "big")), f"got close body {body!r}"


@async_test
async def test_close_with_max_length_reason_is_echoed(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        body = await _closing_handshake(c, close_payload(1000, b"r" * 123))
        assert body[:2] == (1000).to_bytes(2, "big"), f"got close body {body!r}"


@async_test
async def test_server_closes_tcp_after_closing_handshake(broker_url: str) -> None:
    # Section 7.1.1: the server should close the TCP connection first; we never close ours.
    async with await RawClient.connect(broker_url) as c:
        c.send_close(1000)
        info = await c.expect_close()
        assert info.code == 1000
        await c.wait_tcp_closed()
        assert c.closed, "server kept TCP open after the closing handshake"


@async_test
async def test_frames_after_close_are_ignored(broker_url: str) -> None:
    # Section 5.5.1: after sending a Close frame the client sends no more data; if it does,
    # the server must not process it (no echo, no pong).
    async with await RawClient.connect(broker_url) as c:
        c.send_close(1000)
        c.send_text("after close")
        c.send_frame(PING, b"after close")
        info = await c.expect_close()
        assert info.code == 1000
        assert not info.before, f"server answered frames sent after close: {info.before}"
        leftover = await c.wait_tcp_closed()
        assert c.closed
        assert b"after close" not in leftover, f"server answered frames after close: {leftover!r}"


@async_test
async def test_close_after_message_delivers_message_first(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_text("last words")
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_TEXT, b"last words")
        c.send_close(1000)
        info = await c.expect_close()
        assert info.code == 1000
