"""Bad input (issue bullet 10; STOMP 1.2 "Size Limits", "ERROR"): a malformed frame, an
oversized frame or header, too many headers, too many subscriptions or a flood of frames gets
ERROR (with a ``message`` header) and the connection closed; nothing a client sends disturbs
another client.

A bystander connection, open for the whole module, must get its own message after every case.
Limits come from the target (ours: the flags in conftest.py; others: ``WSBROKER_STOMP_*``).
RabbitMQ 3.10 answers parse errors by closing the WebSocket (1007, the reason naming the error)
without an ERROR frame, and some ERRORs without closing; both are accepted from it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from conformance.aio import async_test
from conformance.stomp.clients import StompPy
from conformance.stomp.frames import Frame
from conformance.stomp.rawstomp import RawStomp, ServerClosed
from conformance.stomp.support import Names, Server, assert_names, raw_session, require_limit

DEST = "/topic/conf.badinput"  # valid on every target: one level on ours, one word on RabbitMQ


@pytest.fixture(scope="module")
def bystander(server: Server) -> Iterator[tuple[StompPy, str]]:
    """A client connected for the whole module; it must keep working whatever others send."""
    c = StompPy(server.url, server.path, vhost=server.host)
    c.connect()
    dest = Names(server, uuid.uuid4().hex[:12]).topic("bystander")
    c.subscribe(dest, "by")
    yield c, dest
    with contextlib.suppress(Exception):
        c.disconnect()


@pytest.fixture(autouse=True)
def bystander_unaffected(bystander: tuple[StompPy, str]) -> Iterator[None]:
    yield
    c, dest = bystander
    assert not c.disconnected.is_set(), "the bystander lost its connection"
    body = uuid.uuid4().hex
    c.send(dest, body, receipt=True)
    assert c.expect_message().body == body, "the bystander's round trip failed"


async def _refused(c: RawStomp, server: Server) -> Frame | None:
    """The server's answer to bad input: ERROR then close (ours), or what the target allows.
    The ERROR, or None when the target just closed."""
    try:
        f = await c.next_frame()
    except ServerClosed:
        assert not server.strict, f"closed without an ERROR frame: {c.closed}"
        return None
    assert f.command == "ERROR", f"expected ERROR, got {f!r}"
    assert f.get("message"), f"ERROR without a message header: {f!r}"
    if server.closes_after_error:
        after, _ = await c.expect_closed()
        assert not after, f"frames after ERROR: {after}"
    return f


MALFORMED = {
    "header-without-colon": b"SEND\ndestination:" + DEST.encode() + b"\nno-colon-here\n\nx\x00",
    "unknown-command": b"FROBNICATE\nreceipt:r1\n\n\x00",
    "lowercase-command": b"send\ndestination:" + DEST.encode() + b"\n\nx\x00",
    "garbage": b"\x01\x02\x03 garbage \xc3\xa9\n\n\x00",
    "content-length-not-a-number": b"SEND\ndestination:"
    + DEST.encode()
    + b"\ncontent-length:abc\n\nx\x00",
    "negative-content-length": b"SEND\ndestination:"
    + DEST.encode()
    + b"\ncontent-length:-1\n\nx\x00",
    "no-nul-after-content-length": b"SEND\ndestination:"
    + DEST.encode()
    + b"\ncontent-length:2\n\nabcdef\x00",
    "invalid-utf8-in-header": b"SEND\ndestination:" + DEST.encode() + b"\nx-h:\xff\xfe\n\nx\x00",
}


@pytest.mark.parametrize("case", list(MALFORMED))
@async_test
async def test_malformed_frame_gets_error_and_close(server: Server, case: str) -> None:
    """A frame that does not parse (or names no STOMP command): ERROR, then close."""
    if case == "invalid-utf8-in-header" and server.rabbitmq:
        pytest.skip("RabbitMQ 3.10 takes header bytes that are not UTF-8 as they are")
    async with raw_session(server) as c:
        c.send_bytes(MALFORMED[case], binary=True)
        await _refused(c, server)


@async_test
async def test_garbage_before_connect_gets_error_and_close(server: Server) -> None:
    """Bytes that are no frame, before CONNECT: ERROR, then close."""
    async with raw_session(server, connect=False) as c:
        c.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00", binary=True)
        await _refused(c, server)


@async_test
async def test_oversized_frame(server: Server) -> None:
    """A frame larger than the limit (``stomp_max_frame_size``): ERROR naming the size, close."""
    limit = require_limit(server.limits.max_frame_size, "max_frame_size")
    async with raw_session(server) as c:
        c.send("SEND", {"destination": DEST}, b"x" * (limit + 1), content_length=True)
        error = await _refused(c, server)
        assert error is not None
        if server.strict:
            assert_names(error, "frame")


@async_test
async def test_oversized_frame_without_nul_across_messages(server: Server) -> None:
    """A frame that never ends, sent in pieces, is refused once past the limit instead of being
    buffered forever."""
    limit = require_limit(server.limits.max_frame_size, "max_frame_size")
    async with raw_session(server) as c:
        c.send_bytes(f"SEND\ndestination:{DEST}\n\n")
        chunk = b"y" * 8192
        for _ in range(limit // len(chunk) + 2):
            c.send_bytes(chunk)
        await _refused(c, server)


@async_test
async def test_huge_content_length(server: Server) -> None:
    """A ``content-length`` past the frame limit is refused at once, not waited for."""
    limit = require_limit(server.limits.max_frame_size, "max_frame_size")
    async with raw_session(server) as c:
        c.send_bytes(f"SEND\ndestination:{DEST}\ncontent-length:{limit * 1000}\n\nabc")
        await _refused(c, server)


@async_test
async def test_oversized_header(server: Server) -> None:
    """A header line longer than ``stomp_max_header_length``: ERROR naming the header, close."""
    limit = require_limit(server.limits.max_header_length, "max_header_length")
    async with raw_session(server) as c:
        c.send("SEND", {"destination": DEST, "x-long": "v" * (limit + 1)}, "x")
        error = await _refused(c, server)
        if server.strict:
            assert error is not None
            assert_names(error, "header")


@async_test
async def test_too_many_headers(server: Server) -> None:
    """More headers than ``stomp_max_headers``: ERROR naming headers, then close."""
    limit = require_limit(server.limits.max_headers, "max_headers")
    async with raw_session(server) as c:
        headers = [("destination", DEST)] + [(f"x-{i}", "v") for i in range(limit + 1)]
        c.send("SEND", headers, "x")
        error = await _refused(c, server)
        if server.strict:
            assert error is not None
            assert_names(error, "header")


@async_test
async def test_too_many_subscriptions(server: Server, names: Names) -> None:
    """More subscriptions on one connection than ``stomp_max_subscriptions``: ERROR, close."""
    limit = require_limit(server.limits.max_subscriptions, "max_subscriptions")
    async with raw_session(server) as c:
        c.send_bytes(
            b"".join(
                f"SUBSCRIBE\ndestination:{names.topic(str(i))}\nid:s{i}\n\n\x00".encode()
                for i in range(limit + 1)
            )
        )
        error = await _refused(c, server)
        if server.strict:
            assert error is not None
            assert_names(error, "subscription")


@async_test
async def test_frame_flood(server: Server) -> None:
    """More frames per second than ``stomp_max_frame_rate``: ERROR naming the flood, close."""
    rate = require_limit(server.limits.max_frame_rate, "max_frame_rate")
    frame = f"SEND\ndestination:{DEST}\n\nflood\x00".encode()
    async with raw_session(server) as c:
        batch = frame * 500
        for _ in range((rate * 3) // 500 + 1):
            c.send_bytes(batch)
        error = await _refused(c, server)
        if server.strict:
            assert error is not None
            text = f"{error.get('message')} {error.body.decode('utf-8', 'replace')}".lower()
            assert any(w in text for w in ("flood", "rate", "too many frames")), error
