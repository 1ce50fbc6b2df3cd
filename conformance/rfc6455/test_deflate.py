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
    HandshakeError,
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


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; x-unknown-param",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
    ],
)
@async_test
async def test_invalid_offer_is_declined(broker_url: str, offer: str) -> None:
    # RFC 7692 section 7.1: an offer with an unknown parameter, a duplicate, or a bad value
    # MUST be declined. Declining the extension (101 without it) is what servers do; refusing
    # the handshake with 400 is tolerated too.
    failure: HandshakeError | None = None
    try:
        c = await RawClient.connect(broker_url, extensions=offer)
    except HandshakeError as e:
        failure = e
    if failure is not None:
        assert failure.response is not None, f"no HTTP answer: {failure}"
        assert failure.response.status == 400, failure.response.raw_head
        return
    async with c:
        assert c.deflate_params is None, f"accepted an invalid offer: {c.extensions}"


@async_test
async def test_second_offer_is_used_when_first_is_invalid(broker_url: str) -> None:
    offer = "permessage-deflate; x-unknown-param, permessage-deflate; client_max_window_bits"
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        params = check_agreement(c, offer)
        comp = compressor_for(params)
        c.send_compressed(OP_TEXT, b"second offer " * 20, comp)
        msg = await c.recv_message()
        assert msg.payload == b"second offer " * 20


@async_test
async def test_server_max_window_bits_is_honoured(broker_url: str) -> None:
    # If the server accepts an offer with server_max_window_bits=10 it MUST answer with a value
    # <= 10 and compress within that window (RFC 7692 section 7.1.2.1); it may also decline the
    # parameter by declining the offer, in which case there is nothing to check.
    offer = "permessage-deflate; server_max_window_bits=10"
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        params = c.deflate_params
        if params is None:
            return
        assert params.get("server_max_window_bits") is not None, params
        bits = int(params["server_max_window_bits"] or 0)
        assert 8 <= bits <= 10, params
        # Repeats 4 KiB apart: a 1 KiB window cannot refer back to them, a 32 KiB one would.
        block = random.Random(10).randbytes(4096)
        payload = block * 8
        c.send_frame(OP_BINARY, payload)
        frames = [await c.recv_frame()]
        while not frames[-1].fin:
            frames.append(await c.recv_frame())
        data = b"".join(f.payload for f in frames)
        if frames[0].rsv1:
            # A decoder with exactly the agreed window rejects distances beyond it.
            inflater = zlib.decompressobj(wbits=-max(bits, 9))
            assert inflater.decompress(data + b"\x00\x00\xff\xff") == payload
        else:
            assert data == payload


@async_test
async def test_server_no_context_takeover_is_honoured(broker_url: str) -> None:
    # With server_no_context_takeover agreed, each message from the server must decode on its
    # own, with a fresh decompressor (RFC 7692 section 7.1.1.1).
    offer = OFFERS["no_context_takeover"]
    payload = ("the same message twice; " * 40).encode()
    async with await RawClient.connect(broker_url, extensions=offer) as c:
        check_agreement(c, offer)
        for _ in range(3):
            c.send_frame(OP_TEXT, payload)
            frames = [await c.recv_frame()]
            while not frames[-1].fin:
                frames.append(await c.recv_frame())
            data = b"".join(f.payload for f in frames)
            if frames[0].rsv1:
                fresh = zlib.decompressobj(wbits=-15)
                assert fresh.decompress(data + b"\x00\x00\xff\xff") == payload
            else:
                assert data == payload
