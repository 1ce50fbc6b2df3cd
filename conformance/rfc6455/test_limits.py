"""Message size limit: too big is closed with 1009 (RFC 6455 section 7.4.1)."""

from __future__ import annotations

import struct

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    CONT,
    OP_BINARY,
    OP_TEXT,
    RawClient,
    assert_closed_with,
    encode_frame,
)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@async_test
async def test_message_of_exactly_max_size_is_echoed(
    broker_url: str, max_message_size: int, opcode: int
) -> None:
    payload = b"m" * max_message_size
    async with await RawClient.connect(broker_url) as c:
        c.send_frame(opcode, payload)
        msg = await c.recv_message(within=10)
        assert msg.opcode == opcode
        assert len(msg.payload) == max_message_size
        assert msg.payload == payload


@async_test
async def test_single_frame_over_max_size_fails_with_1009(
    broker_url: str, max_message_size: int
) -> None:
    async with await RawClient.connect(broker_url) as c:
        # The server may answer as soon as it reads the header; the rest is written anyway and
        # may be refused (connection reset), which is fine.
        c.send_frame(OP_BINARY, b"x" * (max_message_size + 1))
        await assert_closed_with(c, 1009)


@async_test
async def test_fragmented_message_over_max_size_fails_with_1009(
    broker_url: str, max_message_size: int
) -> None:
    total = max_message_size + 1
    sizes = [total // 4] * 3
    sizes.append(total - sum(sizes))
    async with await RawClient.connect(broker_url) as c:
        for i, n in enumerate(sizes):
            c.send_frame(OP_BINARY if i == 0 else CONT, b"f" * n, fin=i == len(sizes) - 1)
        await assert_closed_with(c, 1009)


@async_test
async def test_fragmented_text_over_max_size_fails_with_1009(
    broker_url: str, max_message_size: int
) -> None:
    # Many small fragments: the limit is on the message, not on the frame.
    chunk = b"t" * 65536
    n = max_message_size // len(chunk) + 1
    async with await RawClient.connect(broker_url) as c:
        for i in range(n):
            c.send_frame(OP_TEXT if i == 0 else CONT, chunk, fin=i == n - 1)
        await assert_closed_with(c, 1009)


@pytest.mark.parametrize("announced", [2**40, 2**63 - 1])
@async_test
async def test_huge_announced_length_fails_with_1009_before_payload(
    broker_url: str, announced: int
) -> None:
    # Only the header (and mask key) is sent: the server must refuse from the length alone,
    # not wait for a payload that would never fit.
    async with await RawClient.connect(broker_url) as c:
        header = encode_frame(OP_BINARY, b"", announced_length=announced)
        assert header[1] == 0x80 | 127
        assert struct.unpack("!Q", header[2:10])[0] == announced
        c.send_raw(header)
        await assert_closed_with(c, 1009)


@async_test
async def test_length_with_most_significant_bit_set_fails(broker_url: str) -> None:
    # Section 5.2: the most significant bit of the 64-bit length MUST be 0. Either 1002
    # (malformed) or 1009 (too big) is a fair answer.
    async with await RawClient.connect(broker_url) as c:
        c.send_raw(encode_frame(OP_BINARY, b"", announced_length=2**63))
        await assert_closed_with(c, 1002, 1009)
