"""Real third-party clients against the broker: websockets and aiohttp, with and without deflate.

Also the raw adapter's pub/sub rules from DESIGN.md with two (three) clients.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import quote

import aiohttp
import pytest
from websockets.asyncio.client import connect as ws_connect

from conformance.aio import async_test

SIZES = [0, 1, 1000, 100_000]
RECV_TIMEOUT = 5.0


def text_payload(n: int) -> str:
    """``n`` characters of text, multi-byte ones included."""
    return ("abc déf ≠ 😀 " * (n // 12 + 1))[:n]


def binary_payload(n: int) -> bytes:
    return random.Random(n).randbytes(n)


# --------------------------------------------------------------------------- websockets


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
@async_test
async def test_websockets_client_round_trip(
    broker_url: str, compression: str | None, size: int
) -> None:
    async with ws_connect(
        f"{broker_url}/topics/echo", compression=compression, open_timeout=RECV_TIMEOUT
    ) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        if compression is None:
            assert extensions is None
        else:
            assert extensions is not None
            assert "permessage-deflate" in extensions
        text, data = text_payload(size), binary_payload(size)
        await ws.send(text)
        got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert isinstance(got, str)
        assert got == text
        await ws.send(data)
        got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert isinstance(got, bytes)
        assert got == data
    assert ws.close_code == 1000


@async_test
async def test_websockets_client_fragmented_message(broker_url: str) -> None:
    parts = ["one ", "two ", "three"]
    async with ws_connect(f"{broker_url}/topics/echo", open_timeout=RECV_TIMEOUT) as ws:
        await ws.send(iter(parts))  # an iterable is sent as a fragmented message
        got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert got == "".join(parts)


# --------------------------------------------------------------------------- aiohttp


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "deflate"])
@async_test
async def test_aiohttp_client_round_trip(broker_url: str, compress: int, size: int) -> None:
    timeout = aiohttp.ClientTimeout(total=RECV_TIMEOUT * 2)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.ws_connect(f"{broker_url}/topics/echo", compress=compress) as ws,
    ):
        # aiohttp reports the negotiated window bits (the server may choose fewer than 15).
        if compress:
            assert 8 <= ws.compress <= 15
        else:
            assert ws.compress == 0
        text, data = text_payload(size), binary_payload(size)
        await ws.send_str(text)
        msg = await ws.receive(RECV_TIMEOUT)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        assert msg.data == text
        await ws.send_bytes(data)
        msg = await ws.receive(RECV_TIMEOUT)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        assert msg.data == data
        await ws.close()
        assert ws.close_code == 1000


# --------------------------------------------------------------------------- pub/sub


@async_test
async def test_raw_subscribe_filter_receives_matching_publish(broker_url: str) -> None:
    """DESIGN.md, raw adapter: the path is where you publish; ``?subscribe=`` replaces the
    default subscription (the path's own topic) with the given filters."""
    flt = quote("sensors/+/temp", safe="/")
    assert flt == "sensors/%2B/temp"
    async with (
        # B listens to sensors/+/temp only; its own path topic is x, which it is NOT subscribed to.
        ws_connect(f"{broker_url}/topics/x?subscribe={flt}", open_timeout=RECV_TIMEOUT) as b,
        # C is subscribed to x (default: its path's topic), to see when B's publish went through.
        ws_connect(f"{broker_url}/topics/x", open_timeout=RECV_TIMEOUT) as c,
        # A publishes to, and listens on, sensors/room1/temp.
        ws_connect(f"{broker_url}/topics/sensors/room1/temp", open_timeout=RECV_TIMEOUT) as a,
    ):
        await a.send("21.5")
        assert await asyncio.wait_for(b.recv(), RECV_TIMEOUT) == "21.5"
        # A hears its own message, like every subscriber of the topic.
        assert await asyncio.wait_for(a.recv(), RECV_TIMEOUT) == "21.5"

        await a.send(b"\x00\x01binary")
        assert await asyncio.wait_for(b.recv(), RECV_TIMEOUT) == b"\x00\x01binary"
        assert await asyncio.wait_for(a.recv(), RECV_TIMEOUT) == b"\x00\x01binary"

        # B publishes to x: C (subscribed to x) gets it; once C has it the broker has routed it.
        await b.send("from-b")
        assert await asyncio.wait_for(c.recv(), RECV_TIMEOUT) == "from-b"
        # Neither A (not subscribed to x) nor B (its filters replace its path topic) gets
        # "from-b": the next thing each receives is A's later message.
        await a.send("22.0")
        assert await asyncio.wait_for(a.recv(), RECV_TIMEOUT) == "22.0"
        assert await asyncio.wait_for(b.recv(), RECV_TIMEOUT) == "22.0"


@async_test
async def test_raw_repeated_subscribe_filters(broker_url: str) -> None:
    query = "subscribe=" + quote("alpha/#", safe="/") + "&subscribe=" + quote("beta/+", safe="/")
    async with (
        ws_connect(f"{broker_url}/topics/listener?{query}", open_timeout=RECV_TIMEOUT) as sub,
        ws_connect(f"{broker_url}/topics/alpha/one/two", open_timeout=RECV_TIMEOUT) as pa,
        ws_connect(f"{broker_url}/topics/beta/one/two", open_timeout=RECV_TIMEOUT) as pb_deep,
        ws_connect(f"{broker_url}/topics/beta/one", open_timeout=RECV_TIMEOUT) as pb,
    ):
        await pa.send("alpha deep")
        assert await asyncio.wait_for(sub.recv(), RECV_TIMEOUT) == "alpha deep"
        # beta/+ does not match beta/one/two: the publisher hears itself, the listener does not.
        await pb_deep.send("beta too deep")
        assert await asyncio.wait_for(pb_deep.recv(), RECV_TIMEOUT) == "beta too deep"
        await pb.send("beta one")
        assert await asyncio.wait_for(sub.recv(), RECV_TIMEOUT) == "beta one"
