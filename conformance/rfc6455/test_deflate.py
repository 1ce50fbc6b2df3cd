"""permessage-deflate (RFC 7692): negotiation, compressed round trips, size limit."""

from __future__ import annotations

import random
import zlib

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    CONT,
    OP_BINARY,
    OP_TEXT,
    PING,
    PONG,
    RawClient,
    assert_closed_with,
    check_server_frame,
    deflate,
)

OFFERS = {
    "plain": "permessage-deflate",
    "client_max_window_bits": "permessage-deflate; client_max_window_bits",
    "no_context_takeover": (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    ),
}
KNOWN_PARAMS = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}


def check_agreement(c: RawClient, offer: str) -> dict[str, str | None]:
    """The response accepts exactly one permessage-deflate, with parameters the offer allows."""
    assert c.response is not None
    names = [name for name, _ in c.extensions]
    assert names == ["permessage-deflate"], c.response.raw_head
    params = c.deflate_params
    assert params is not None
    assert set(params) <= KNOWN_PARAMS, params
    # Section 7.1.2.2: client_max_window_bits only in answer to an offer that has it.
    if "client_max_window_bits" not in offer:
        assert "client_max_window_bits" not in params, params
    # Section 7.1.1.1: a server accepting server_no_context_takeover MUST echo it.
    if "server_no_context_takeover" in offer:
        assert "server_no_context_takeover" in params, params
    for key in ("server_max_window_bits", "client_max_window_bits"):
        if params.get(key) is not None:
            assert 8 <= int(params[key] or 0) <= 15, params
    return params


def client_window_bits(params: dict[str, str | None]) -> int:
    value = params.get("client_max_window_bits")
    # zlib cannot make a raw stream for an 8-bit window (it uses 9); a server asking for 8 is
    # handed level-0 (stored) blocks instead, see compressor_for.
    return int(value) if value else 15


def compressor_for(params: dict[str, str | None]) -> zlib._Compress:
    bits = client_window_bits(params)
    if bits < 9:
        return zlib.compressobj(level=0, wbits=-9)
    return zlib.compressobj(wbits=-bits)


@pytest.mark.parametrize("offer", OFFERS.values(), ids=OFFERS.keys())
@async_test
async def test_server_agrees_to_permessage_deflate(broker_url: str, offer: str) -> None:
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        check_agreement(c, offer)


@async_test
async def test_server_picks_an_acceptable_offer_from_several(broker_url: str) -> None:
    # Section 5: the server picks one of the offers in the list; an unknown extension first in
    # the list is ignored.
    offer = "x-unknown-extension, permessage-deflate; client_max_window_bits, permessage-deflate"
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        check_agreement(c, offer)


@pytest.mark.parametrize("offer", OFFERS.values(), ids=OFFERS.keys())
@async_test
async def test_compressed_round_trips(broker_url: str, offer: str) -> None:
    rnd = random.Random(7692)
    text = ("compressible text, €uro, κόσμε " * 50).encode()
    binary = bytes(rnd.choice(b"abcd") for _ in range(3000)) + rnd.randbytes(100)
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        params = check_agreement(c, offer)
        takeover = "client_no_context_takeover" not in params
        comp = compressor_for(params)
        # With context takeover, the second copy of each message refers back into the first.
        cases = [(OP_TEXT, text), (OP_BINARY, binary), (OP_TEXT, text), (OP_BINARY, binary)]
        for opcode, payload in cases:
            c.send_compressed(opcode, payload, comp if takeover else compressor_for(params))
            msg = await c.recv_message()
            for f in msg.frames:
                check_server_frame(f, deflate=True)
            assert msg.opcode == opcode
            assert msg.payload == payload
        # Uncompressed messages (RSV1 clear) stay legal once the extension is on (section 6).
        c.send_frame(OP_TEXT, b"not compressed")
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_TEXT, b"not compressed")


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@async_test
async def test_compressed_message_in_several_fragments(broker_url: str, opcode: int) -> None:
    payload = ("fragmented and compressed; " * 400).encode() + random.Random(1).randbytes(2000)
    if opcode == OP_TEXT:
        payload = payload.hex().encode()
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        c.send_compressed(opcode, payload, fragments=3)
        c.send_frame(PING, b"between")  # control frames stay uncompressed (section 6.1)
        got_pong = False
        msg = None
        while msg is None or not got_pong:
            f = await c.recv_frame()
            check_server_frame(f, deflate=True)
            if f.opcode == PONG:
                assert f.payload == b"between"
                got_pong = True
                continue
            frames = [f]
            while not frames[-1].fin:
                frames.append(await c.recv_frame())
                check_server_frame(frames[-1], deflate=True)
            msg = c._decode(frames)
            assert frames[0].opcode == opcode
        assert msg == payload


@async_test
async def test_compressed_empty_message(broker_url: str) -> None:
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        # RFC 7692 section 7.2.3.6: an empty message may be sent as one empty stored block.
        c.send_frame(OP_BINARY, b"\x00", rsv1=True)
        msg = await c.recv_message()
        assert (msg.opcode, msg.payload) == (OP_BINARY, b"")


@async_test
async def test_compression_bomb_fails_with_1009(broker_url: str, max_message_size: int) -> None:
    bomb = deflate(b"\x00" * (max_message_size + 4096))
    assert len(bomb) < 8192, len(bomb)
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        c.send_frame(OP_BINARY, bomb, rsv1=True)
        await assert_closed_with(c, 1009)


@async_test
async def test_fragmented_compression_bomb_fails_with_1009(
    broker_url: str, max_message_size: int
) -> None:
    bomb = deflate(b"A" * (max_message_size * 4))
    third = len(bomb) // 3
    parts = [bomb[:third], bomb[third : 2 * third], bomb[2 * third :]]
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        for i, part in enumerate(parts):
            c.send_frame(OP_TEXT if i == 0 else CONT, part, fin=i == 2, rsv1=i == 0)
        await assert_closed_with(c, 1009)


@async_test
async def test_corrupt_deflate_data_fails(broker_url: str) -> None:
    # Not valid deflate: the server fails the connection. RFC 7692 section 8 names no code;
    # 1002 (protocol error) and 1007 (inconsistent data) are both fair.
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        c.send_frame(OP_BINARY, b"\xff\xff\xff\xff\xff\xff", rsv1=True)
        await assert_closed_with(c, 1002, 1007)


@async_test
async def test_rsv1_on_continuation_frame_fails_with_1002(broker_url: str) -> None:
    # RFC 7692 section 6.1: RSV1 is set on the first frame only; elsewhere it has no meaning,
    # and RFC 6455 section 5.2 fails a frame with a reserved bit it cannot interpret.
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        body = deflate(b"hello hello hello")
        c.send_frame(OP_TEXT, body[:3], fin=False, rsv1=True)
        c.send_frame(CONT, body[3:], fin=True, rsv1=True)
        await assert_closed_with(c, 1002)


@async_test
async def test_rsv1_on_control_frame_fails_with_1002(broker_url: str) -> None:
    async with await RawClient.connect(broker_url, extensions=OFFERS["plain"]) as c:
        check_agreement(c, OFFERS["plain"])
        c.send_frame(PING, b"compressed?", rsv1=True)
        await assert_closed_with(c, 1002)
