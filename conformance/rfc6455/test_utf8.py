"""UTF-8 handling of text messages (RFC 6455 sections 5.6 and 8.1)."""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import CONT, OP_TEXT, RawClient, assert_closed_with

KOSME = "κόσμε".encode()  # ce ba e1 bd b9 cf 83 ce bc ce b5

INVALID = {
    "lone-continuation-byte": b"abc\x80def",
    "overlong-slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "beyond-u10ffff": b"\xf4\x90\x80\x80",
    "invalid-byte-ff": b"hello\xffworld",
    "kosme-then-surrogate": KOSME + b"\xed\xa0\x80edited",
}


@pytest.mark.parametrize("payload", INVALID.values(), ids=INVALID.keys())
@async_test
async def test_invalid_utf8_text_fails_with_1007(broker_url: str, payload: bytes) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_text(payload)
        await assert_closed_with(c, 1007)


@async_test
async def test_invalid_utf8_split_across_fragments_fails_with_1007(broker_url: str) -> None:
    # Each fragment on its own could still be the start of valid UTF-8; together they are not.
    # A server may fail as soon as it sees the bad byte or only at the end of the message
    # (section 8.1 says "when an endpoint is to interpret"); both give 1007.
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, KOSME + b"\xed", fin=False)
        c.send_frame(CONT, b"\xa0\x80", fin=False)
        c.send_frame(CONT, b"edited", fin=True)
        await assert_closed_with(c, 1007)


@async_test
async def test_utf8_sequence_truncated_at_message_end_fails_with_1007(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(OP_TEXT, b"abc\xe2", fin=False)
        c.send_frame(CONT, b"\x82", fin=True)  # "€" is e2 82 ac: the last byte never comes
        await assert_closed_with(c, 1007)


@async_test
async def test_utf8_truncated_in_single_frame_fails_with_1007(broker_url: str) -> None:
    async with await RawClient.connect(broker_url) as c:
        c.send_text(KOSME[:-1])
        await assert_closed_with(c, 1007)


@async_test
async def test_valid_utf8_split_mid_codepoint_is_echoed_intact(broker_url: str) -> None:
    text = "κόσμε € 😀 done".encode()
    # Cut inside the 2-byte "κ", the 3-byte "€" and the 4-byte emoji.
    cuts = [1, text.index("€".encode()) + 1, text.index("😀".encode()) + 2, len(text)]
    pieces = [text[a:b] for a, b in zip([0, *cuts], cuts, strict=False)]
    assert b"".join(pieces) == text
    async with await RawClient.connect(broker_url) as c:
        for i, piece in enumerate(pieces):
            c.send_frame(OP_TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1)
        msg = await c.recv_message()
        assert msg.opcode == OP_TEXT
        assert msg.payload == text


@async_test
async def test_valid_utf8_one_byte_per_fragment_is_echoed_intact(broker_url: str) -> None:
    text = "Hello-µ@ßöäüàá-UTF-8!! 😀".encode()
    async with await RawClient.connect(broker_url) as c:
        for i in range(len(text)):
            c.send_frame(OP_TEXT if i == 0 else CONT, text[i : i + 1], fin=i == len(text) - 1)
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_TEXT, text)
