"""Base framing (RFC 6455 section 5): lengths, masking, control frames, reserved bits/opcodes."""

from __future__ import annotations

import random

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    CLOSE,
    CONT,
    OP_BINARY,
    OP_TEXT,
    PING,
    PONG,
    ConnectionGone,
    Frame,
    RawClient,
    assert_closed_with,
    check_server_frame,
    encode_frame,
    length_field_for,
)

LENGTHS = [0, 125, 126, 65535, 65536]


def text_of_length(n: int) -> bytes:
    """Valid UTF-8 of exactly ``n`` bytes, with 1- to 4-byte sequences in it."""
    out: list[str] = []
    size = 0
    chars = "aé€😀"
    i = 0
    while True:
        ch = chars[i % len(chars)]
        w = len(ch.encode())
        if size + w > n:
            break
        out.append(ch)
        size += w
        i += 1
    return ("".join(out) + "a" * (n - size)).encode()


async def recv_data_frames(c: RawClient) -> list[Frame]:
    """One message's frames, skipping pongs; every frame checked against section 5."""
    frames: list[Frame] = []
    while True:
        f = await c.recv_frame()
        check_server_frame(f)
        if f.opcode == PING:
            c.send_frame(PONG, f.payload)
            continue
        if f.opcode == PONG:
            continue
        assert f.opcode != CLOSE, f"unexpected close: {f}"
        frames.append(f)
        if f.fin:
            return frames


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@async_test
async def test_echo_uses_minimal_length_encoding_and_unmasked_frames(
    broker_url: str, opcode: int, length: int
) -> None:
    payload = (
        text_of_length(length) if opcode == OP_TEXT else random.Random(length).randbytes(length)
    )
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(opcode, payload)
        frames = await recv_data_frames(c)
        # A server may fragment what it sends (section 5.4), so accept one frame or several;
        # check_server_frame has checked each one's mask bit and length encoding.
        assert frames[0].opcode == opcode
        assert all(f.opcode == CONT for f in frames[1:])
        assert b"".join(f.payload for f in frames) == payload
        if len(frames) == 1:
            assert frames[0].length_field == length_field_for(length)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@async_test
async def test_fragmented_message_with_interleaved_pings(broker_url: str, opcode: int) -> None:
    # Section 5.4: control frames may be injected in the middle of a fragmented message.
    parts = [b"Hello, ", b"fragmented ", b"world \xe2\x9c\x93"]
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(opcode, parts[0], fin=False)
        c.send_frame(PING, b"ping-1")
        c.send_frame(CONT, parts[1], fin=False)
        c.send_frame(PING, b"ping-2")
        c.send_frame(CONT, parts[2], fin=True)
        pongs: list[bytes] = []
        messages: list[bytes] = []
        while len(pongs) < 2 or not messages:
            f = await c.recv_frame()
            check_server_frame(f)
            if f.opcode == PONG:
                pongs.append(f.payload)
            elif f.opcode in (OP_TEXT, OP_BINARY):
                assert f.opcode == opcode
                assert f.fin, "a message this small need not be fragmented; reassemble it"
                messages.append(f.payload)
            else:
                pytest.fail(f"unexpected frame {f}")
        assert pongs == [b"ping-1", b"ping-2"]
        assert messages == [b"".join(parts)]
        # Nothing else is coming: the pong to a last ping is the next frame.
        c.send_frame(PING, b"sentinel")
        f = await c.recv_frame()
        assert (f.opcode, f.payload) == (PONG, b"sentinel"), f"extra frame after the echo: {f}"


@async_test
async def test_many_tiny_fragments_are_reassembled(broker_url: str) -> None:
    payload = bytes(range(256)) * 2
    async with await RawClient.connect(broker_url) as c:
        for i in range(0, len(payload), 7):
            chunk = payload[i : i + 7]
            c.send_frame(OP_BINARY if i == 0 else CONT, chunk, fin=i + 7 >= len(payload))
        frames = await recv_data_frames(c)
        assert frames[0].opcode == OP_BINARY
        assert b"".join(f.payload for f in frames) == payload


@async_test
async def test_ping_with_125_byte_payload_gets_pong_with_same_payload(broker_url: str) -> None:
    payload = bytes(range(125))
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(PING, payload)
        f = await c.recv_frame()
        check_server_frame(f)
        assert (f.opcode, f.payload) == (PONG, payload)


@async_test
async def test_empty_ping_gets_empty_pong(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(PING, b"")
        f = await c.recv_frame()
        check_server_frame(f)
        assert (f.opcode, f.payload) == (PONG, b"")


@async_test
async def test_unsolicited_pong_is_ignored(broker_url: str) -> None:
    # Section 5.5.3: a Pong may be sent unsolicited; no response is expected.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(PONG, b"unsolicited")
        c.send_text("after pong")
        f = await c.recv_frame()
        check_server_frame(f)
        assert (f.opcode, f.payload) == (OP_TEXT, b"after pong")


@pytest.mark.parametrize("bit", ["rsv1", "rsv2", "rsv3"])
@async_test
async def test_reserved_bit_without_extension_fails_with_1002(broker_url: str, bit: str) -> None:
    # Section 5.2: a nonzero RSV bit with no negotiated meaning MUST fail the connection.
    async with await RawClient.connect(broker_url) as c:
        c.send_raw(encode_frame(OP_TEXT, b"hello", **{bit: True}))  # type: ignore[arg-type]
        await assert_closed_with(c, 1002)


@pytest.mark.parametrize("bit", ["rsv2", "rsv3"])
@async_test
async def test_reserved_bit_on_ping_fails_with_1002(broker_url: str, bit: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_raw(encode_frame(PING, b"hello", **{bit: True}))  # type: ignore[arg-type]
        await assert_closed_with(c, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@async_test
async def test_reserved_opcode_fails_with_1002(broker_url: str, opcode: int) -> None:
    # Section 5.2: an unknown opcode MUST fail the connection.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(opcode, b"reserved" if opcode < 8 else b"")
        await assert_closed_with(c, 1002)


@async_test
async def test_reserved_opcode_after_valid_message_fails_with_1002(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_text("valid")
        c.send_frame(5, b"reserved")
        info = await c.expect_close()
        assert info.code == 1002


@async_test
async def test_unmasked_client_frame_fails(broker_url: str) -> None:
    # Section 5.1: the server MUST close the connection on an unmasked frame, and MAY send a
    # Close frame with 1002 first. Both are accepted; any other close code is not.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, b"unmasked", mask=False)
        f = await _next_non_data_or_eof(c)
        if f is not None:
            assert f.opcode == CLOSE, f"expected a close frame, got {f}"
            assert f.payload[:2] == (1002).to_bytes(2, "big"), f"expected 1002: {f}"
            c.send_frame(CLOSE, f.payload[:2])
        await c.wait_tcp_closed()
        assert c.closed, "server kept the connection open after an unmasked frame"


async def _next_non_data_or_eof(c: RawClient) -> Frame | None:
    """The next frame, or None if TCP ends first (data frames are a failure)."""
    try:
        f = await c.recv_frame()
    except ConnectionGone:
        return None
    assert f.opcode not in (OP_TEXT, OP_BINARY), f"server echoed an unmasked frame: {f}"
    return f


@async_test
async def test_control_frame_with_126_byte_payload_fails_with_1002(broker_url: str) -> None:
    # Section 5.5: control frames MUST have a payload of 125 bytes or less.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(PING, b"x" * 126)
        await assert_closed_with(c, 1002)


@async_test
async def test_fragmented_control_frame_fails_with_1002(broker_url: str) -> None:
    # Section 5.5: control frames MUST NOT be fragmented.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(PING, b"frag", fin=False)
        c.send_frame(CONT, b"ment", fin=True)
        await assert_closed_with(c, 1002)


@async_test
async def test_continuation_without_start_fails_with_1002(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(CONT, b"orphan", fin=True)
        await assert_closed_with(c, 1002)


@async_test
async def test_unfinished_continuation_without_start_fails_with_1002(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(CONT, b"orphan", fin=False)
        await assert_closed_with(c, 1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@async_test
async def test_new_message_while_fragmented_message_open_fails_with_1002(
    broker_url: str, second: int
) -> None:
    # Section 5.4: fragments of one message are not interleaved with another data message.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, b"first ", fin=False)
        c.send_frame(second, b"second", fin=True)
        await assert_closed_with(c, 1002)


@async_test
async def test_burst_of_mixed_messages_is_echoed_in_order(broker_url: str) -> None:
    # DESIGN.md: a lone client on /topics/echo gets each message back, text as text, binary as
    # binary, in order, however it was fragmented. 300 messages written in one go.
    rnd = random.Random(42)
    sent: list[tuple[int, bytes]] = []
    wire = bytearray()
    for i in range(300):
        opcode = rnd.choice([OP_TEXT, OP_BINARY])
        body = f"message {i} ✓ ".encode() * rnd.randint(0, 20)
        if opcode == OP_BINARY:
            body = bytes([i % 256]) + body
        pieces = rnd.randint(1, 4)
        step = max(1, -(-len(body) // pieces))
        chunks = [body[j : j + step] for j in range(0, len(body), step)] or [b""]
        for k, chunk in enumerate(chunks):
            # UTF-8 may be cut mid-character across fragments: only the message must be valid.
            wire += encode_frame(opcode if k == 0 else CONT, chunk, fin=k == len(chunks) - 1)
            if rnd.random() < 0.2:
                wire += encode_frame(PING, b"p")
        sent.append((opcode, body))
    async with await RawClient.connect(broker_url) as c:
        c.send_raw(bytes(wire))
        for i, (opcode, body) in enumerate(sent):
            msg = await c.recv_message()
            assert (msg.opcode, msg.payload) == (opcode, body), f"message {i} differs"


@async_test
async def test_text_message_with_empty_fragments(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, b"", fin=False)
        c.send_frame(CONT, b"", fin=False)
        c.send_frame(CONT, b"middle", fin=False)
        c.send_frame(CONT, b"", fin=False)
        c.send_frame(CONT, b"", fin=True)
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_TEXT, b"middle")


@async_test
async def test_close_inside_fragmented_message_is_answered(broker_url: str) -> None:
    # Control frames may come between fragments (5.4), close included; the unfinished message
    # is dropped and the closing handshake proceeds. The code of the reply is the server's
    # choice (5.5.1 says it typically echoes): 1000, or 1002 for the message left unfinished
    # (what the websockets library answers) are both fine.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, b"never ", fin=False)
        c.send_close(1000)
        info = await c.expect_close()
        assert info.code in (1000, 1002)
        assert not info.before, f"server sent frames for an unfinished message: {info.before}"
