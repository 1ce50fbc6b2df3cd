"""The codec: frames against WebSocket messages, text and binary, header escaping per version,
repeated headers, bodies with and without content-length, EOLs (STOMP 1.2 "STOMP Frames",
"Value Encoding", "Repeated Header Entries", "Augmented BNF"; issue bullets 1 and 2).

All with the raw client, which shows the exact bytes and the opcode of every WebSocket message.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import OP_BINARY, OP_TEXT
from conformance.stomp.frames import encode
from conformance.stomp.rawstomp import RawStomp
from conformance.stomp.support import Names, Server, raw_session, run_js


async def _subscribed(c: RawStomp, dest: str, sub_id: str = "s1") -> None:
    await c.subscribe(dest, sub_id)


# ----------------------------------------------------------------- frames and WebSocket messages


@async_test
async def test_frame_split_across_websocket_messages(server: Server, names: Names) -> None:
    """A frame may span several WebSocket messages (issue): it is reassembled."""
    dest = names.topic("split")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        data = encode("SEND", {"destination": dest, "x-part": "all"}, "one frame, three messages")
        c.send_bytes(data[:5])
        c.send_bytes(data[5:30])
        c.send_bytes(data[30:])
        msg = await c.expect("MESSAGE")
        assert msg.body == b"one frame, three messages"
        assert msg.get("x-part") == "all"


@async_test
async def test_frame_split_across_websocket_fragments(server: Server, names: Names) -> None:
    """A frame in one fragmented WebSocket message (continuation frames) is one frame."""
    dest = names.topic("frag")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        data = encode("SEND", {"destination": dest}, "fragmented")
        c.send_fragments(data[:3], data[3:20], data[20:])
        msg = await c.expect("MESSAGE")
        assert msg.body == b"fragmented"


@async_test
async def test_several_frames_in_one_websocket_message(server: Server, names: Names) -> None:
    """Several frames may share one WebSocket message (issue): each is handled, in order."""
    dest = names.topic("shared")
    async with raw_session(server) as c:
        data = (
            encode("SUBSCRIBE", {"destination": dest, "id": "s1", "receipt": "r-sub"})
            + encode("SEND", {"destination": dest}, "first")
            + encode("SEND", {"destination": dest, "receipt": "r-send"}, "second")
        )
        c.send_bytes(data)
        got = [await c.next_frame() for _ in range(4)]
        commands = [f.command for f in got]
        assert commands[0] == "RECEIPT", got
        assert [f.body for f in got if f.command == "MESSAGE"] == [b"first", b"second"]
        assert [f.get("receipt-id") for f in got if f.command == "RECEIPT"] == ["r-sub", "r-send"]


@async_test
async def test_frame_and_a_half_in_one_message(server: Server, names: Names) -> None:
    """One message may end inside the next frame: the rest comes in the next message."""
    dest = names.topic("half")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        a = encode("SEND", {"destination": dest}, "a")
        b = encode("SEND", {"destination": dest}, "b")
        c.send_bytes(a + b[:10])
        c.send_bytes(b[10:])
        assert (await c.expect("MESSAGE")).body == b"a"
        assert (await c.expect("MESSAGE")).body == b"b"


@async_test
async def test_binary_websocket_frames_accepted(server: Server, names: Names) -> None:
    """Frames in binary WebSocket messages are accepted like text ones (issue)."""
    dest = names.topic("binframes")
    async with raw_session(server, connect=False) as c:
        c.send("CONNECT", {"accept-version": "1.2", "host": server.host}, binary=True)
        await c.expect("CONNECTED")
        c.send("SUBSCRIBE", {"destination": dest, "id": "s1", "receipt": "r1"}, binary=True)
        await c.expect_receipt("r1")
        c.send("SEND", {"destination": dest}, "sent in a binary frame", binary=True)
        msg = await c.expect("MESSAGE")
        assert msg.body == b"sent in a binary frame"


@async_test
async def test_utf8_body_goes_out_in_a_text_frame(server: Server, names: Names) -> None:
    """The server sends a frame that is valid UTF-8 as a text WebSocket message (issue)."""
    dest = names.topic("textout")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest, "content-type": "text/plain"}, "héllo ✓")
        msg = await c.expect("MESSAGE")
        assert msg.body == "héllo ✓".encode()
        assert msg.opcode == OP_TEXT, msg


@async_test
async def test_binary_body_goes_out_in_a_binary_frame(server: Server, names: Names) -> None:
    """A body that is not UTF-8 never goes out in a text frame (RFC 6455 5.6: text frames hold
    UTF-8): the MESSAGE comes in a binary WebSocket message, body byte for byte."""
    if server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 Web-STOMP sends every frame as text (web_stomp.ws_frame = "
            "text), invalid UTF-8 included; a conforming client then fails the "
            "connection with 1007"
        )
    dest = names.topic("binout")
    body = b"\xff\xfe\x00\x01 not utf-8 \xc3"
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest}, body, content_length=True, binary=True)
        msg = await c.expect("MESSAGE")
        assert msg.body == body
        assert msg.opcode == OP_BINARY, msg


def test_stompjs_binary_body_round_trip(server: Server, names: Names) -> None:
    """@stomp/stompjs: ``binaryBody`` (bytes 0-255) comes back byte for byte in a binary
    WebSocket message; a UTF-8 body in a text one."""
    if server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 sends the non-UTF-8 body in a text frame; ws closes the "
            "connection (1007)"
        )
    events = run_js(server, "binary", destination=names.topic("jsbin"))
    binary = next(e for e in events if e["event"] == "binary")
    text = next(e for e in events if e["event"] == "text")
    assert binary["hex"] == bytes(range(256)).hex()
    assert binary["ws_kind"] == "binary"
    assert binary["headers"]["content-length"] == "256"
    assert text["body"] == "héllo ✓"
    assert text["ws_kind"] == "text"


# ----------------------------------------------------------------- header escaping


ESCAPE_CASES_12 = {
    "newline": ("x-nl", "line1\nline2"),
    "colon": ("x-colon", "a:b:c"),
    "backslash": ("x-backslash", "C:\\dir\\file"),
    "carriage-return": ("x-cr", "a\rb"),
    "name-with-colon": ("x-odd:name", "v"),
}


@pytest.mark.parametrize("case", list(ESCAPE_CASES_12))
@async_test
async def test_header_escaping_1_2_round_trip(server: Server, names: Names, case: str) -> None:
    """1.2 "Value Encoding": ``\\n \\c \\\\ \\r`` in SEND headers are decoded, and escaped again in
    MESSAGE, so the subscriber reads the original value."""
    name, value = ESCAPE_CASES_12[case]
    dest = names.topic("esc12")
    async with raw_session(server, "1.2") as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest, name: value}, "escaped")
        msg = await c.expect("MESSAGE")
        assert msg.get(name) == value, msg


@async_test
async def test_header_escaping_1_1_round_trip(server: Server, names: Names) -> None:
    """1.1 "Value Encoding": ``\\n \\c \\\\`` are decoded and re-escaped for a 1.1 subscriber."""
    dest = names.topic("esc11")
    value = "a:b\nc\\d"
    async with raw_session(server, "1.1", protocols="v11.stomp") as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest, "x-v": value}, "escaped")
        msg = await c.expect("MESSAGE")
        assert msg.get("x-v") == value, msg


@async_test
async def test_1_0_headers_are_not_unescaped(server: Server, names: Names) -> None:
    """1.0 has no escaping: a backslash sent by a 1.0 client is a backslash, which a 1.2
    subscriber reads back as one (escaped on the wire as ``\\\\``)."""
    if server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 decodes 1.1 escapes in 1.0 frames too (a 1.0 client's "
            "literal backslash-n becomes a newline)"
        )
    dest = names.topic("esc10")
    async with (
        raw_session(server, "1.2") as sub,
        raw_session(server, "1.0", protocols="v10.stomp") as pub,
    ):
        assert pub.version == "1.0"
        await _subscribed(sub, dest)
        pub.send("SEND", {"destination": dest, "x-v": "a\\nb"}, "literal", escaped=False)
        msg = await sub.expect("MESSAGE")
        assert msg.get("x-v") == "a\\nb", msg


@async_test
async def test_utf8_header_values_round_trip(server: Server, names: Names) -> None:
    """Header names and values are UTF-8 (1.2 "STOMP Frames")."""
    dest = names.topic("utf8hdr")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest, "x-grüße": "héllo ✓"}, "x")
        msg = await c.expect("MESSAGE")
        assert msg.get("x-grüße") == "héllo ✓", msg


@pytest.mark.parametrize("sequence", ["\\t", "\\x", "\\"])
@async_test
async def test_undefined_escape_is_a_fatal_error(server: Server, sequence: str) -> None:
    """1.2 "Value Encoding": undefined escape sequences MUST be treated as a fatal protocol
    error: ERROR, then close (RabbitMQ closes the WebSocket with 1007, without ERROR)."""
    async with raw_session(server) as c:
        raw = f"SEND\ndestination:/topic/conf/esc\nx-bad:a{sequence}b\nreceipt:r1\n\nbody\x00"
        c.send_bytes(raw)
        before, closed = await c.expect_closed()
        errors = [f for f in before if f.command == "ERROR"]
        if server.strict or not server.rabbitmq:
            assert errors, f"expected ERROR before the close, got {before} {closed}"
            assert errors[0].get("message")
        assert not any(f.command == "RECEIPT" for f in before), before


@async_test
async def test_carriage_return_escape_is_undefined_in_1_1(server: Server) -> None:
    """1.1 defines only ``\\n \\c \\\\``: ``\\r`` is an undefined escape there, a fatal error."""
    if server.rabbitmq:
        pytest.skip("RabbitMQ 3.10 decodes the 1.2 escapes (\\r included) in 1.1 frames too")
    async with raw_session(server, "1.1", protocols="v11.stomp") as c:
        c.send_bytes("SEND\ndestination:/topic/conf/esc\nx-bad:a\\rb\nreceipt:r1\n\nbody\x00")
        before, _ = await c.expect_closed()
        assert [f.command for f in before] == ["ERROR"], before


@async_test
async def test_connect_headers_are_not_unescaped(server: Server) -> None:
    """1.2 "Value Encoding": CONNECT and CONNECTED frames do not escape, so a backslash in a
    CONNECT header is no escape (and no error)."""
    if server.rabbitmq:
        pytest.skip("RabbitMQ 3.10 decodes escapes in CONNECT headers too (bad_escape, 1007)")
    async with raw_session(server, connect=False) as c:
        headers = {"accept-version": "1.2", "host": server.host, "x-client": "C:\\tmp\\t"}
        c.send("CONNECT", headers, escaped=False)
        await c.expect("CONNECTED")


# ----------------------------------------------------------------- headers, bodies, line endings


@async_test
async def test_repeated_header_first_wins(server: Server, names: Names) -> None:
    """1.2 "Repeated Header Entries": only the first value is used, for the destination as for
    a user header."""
    dest, other = names.topic("rep1"), names.topic("rep2")
    async with raw_session(server) as c:
        await c.subscribe(dest, "s1")
        await c.subscribe(other, "s2")
        headers = [("destination", dest), ("destination", other), ("x-r", "1"), ("x-r", "2")]
        c.send("SEND", headers, "repeated")
        c.send("SEND", {"destination": other}, "marker")
        first = await c.expect("MESSAGE")
        assert first.body == b"repeated"
        assert first.get("subscription") == "s1", first
        assert first.get("x-r") == "1", first
        marker = await c.expect("MESSAGE")
        assert marker.body == b"marker", "the repeated destination must not be used"


@async_test
async def test_content_length_body_with_nul_bytes(server: Server, names: Names) -> None:
    """1.2 "Header content-length": with content-length the body may contain NUL octets."""
    dest = names.topic("nul")
    body = b"a\x00b\x00\x00c"
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest}, body, content_length=True, binary=True)
        msg = await c.expect("MESSAGE")
        assert msg.body == body
        assert msg.get("content-length") == str(len(body))


@async_test
async def test_body_up_to_nul_without_content_length(server: Server, names: Names) -> None:
    """Without content-length the body runs to the first NUL; MESSAGE gives its length (ours
    always sends content-length)."""
    dest = names.topic("nocl")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest}, "no length given")
        msg = await c.expect("MESSAGE")
        assert msg.body == b"no length given"
        if server.strict:
            assert msg.get("content-length") == "15", msg


@async_test
async def test_empty_body(server: Server, names: Names) -> None:
    """A SEND with no body delivers an empty MESSAGE body."""
    dest = names.topic("empty")
    async with raw_session(server) as c:
        await _subscribed(c, dest)
        c.send("SEND", {"destination": dest, "x-e": "1"})
        msg = await c.expect("MESSAGE")
        assert msg.body == b""
        assert msg.get("x-e") == "1"


@async_test
async def test_crlf_line_endings(server: Server, names: Names) -> None:
    """1.2 "Augmented BNF": EOL is ``[CR] LF``; CRLF frames work and the CR is not part of any
    header value."""
    dest = names.topic("crlf")
    async with raw_session(server, connect=False) as c:
        c.send("CONNECT", {"accept-version": "1.2", "host": server.host}, eol="\r\n")
        await c.expect("CONNECTED")
        c.send("SUBSCRIBE", {"destination": dest, "id": "s1", "receipt": "r1"}, eol="\r\n")
        await c.expect_receipt("r1")
        c.send("SEND", {"destination": dest, "x-crlf": "value"}, "crlf", eol="\r\n")
        msg = await c.expect("MESSAGE")
        assert msg.body == b"crlf"
        assert msg.get("x-crlf") == "value", msg
        assert msg.get("destination") == dest


@async_test
async def test_heartbeat_eols_between_frames(server: Server, names: Names) -> None:
    """1.2 "Augmented BNF" and "Heart-beating": EOLs may come before, between and after frames
    (in the same message as a frame or alone)."""
    dest = names.topic("eols")
    async with raw_session(server) as c:
        c.send_bytes("\n\r\n")
        c.send_bytes(
            b"\n"
            + encode("SUBSCRIBE", {"destination": dest, "id": "s1", "receipt": "r1"})
            + b"\n\n\r\n"
        )
        await c.expect_receipt("r1")
        c.send_bytes(b"\r\n" + encode("SEND", {"destination": dest}, "after eols") + b"\n")
        c.send_bytes("\n")
        msg = await c.expect("MESSAGE")
        assert msg.body == b"after eols"
