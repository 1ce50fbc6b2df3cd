"""The process contract of ``python -m broker serve`` (needs a broker of our own)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import OP_BINARY, RawClient, assert_closed_with
from conformance.server import external_url, running_broker

pytestmark = pytest.mark.skipif(
    external_url() is not None, reason="starts and stops brokers of its own"
)


@async_test
async def test_sigterm_closes_clients_with_1001_and_exits_0() -> None:
    with running_broker() as bp:
        assert any(f"listening on {bp.url}" in line for line in bp.lines)
        clients = [await RawClient.connect(bp.url, f"/topics/lifecycle/{i}") for i in range(3)]
        try:
            for c in clients:
                c.send_text("up")
                assert (await c.recv_message()).payload == b"up"
            bp.proc.send_signal(signal.SIGTERM)
            for c in clients:
                await assert_closed_with(c, 1001)
            code = await asyncio.wait_for(asyncio.to_thread(bp.proc.wait), 10)
            assert code == 0, bp.output()[-2000:]
        finally:
            for c in clients:
                await c.aclose()


@async_test
async def test_max_message_size_option() -> None:
    with running_broker("--max-message-size", "1000") as bp:
        async with await RawClient.connect(bp.url) as c:
            c.send_binary(b"k" * 1000)
            msg = await c.recv_message()
            assert (msg.opcode, len(msg.payload)) == (OP_BINARY, 1000)
            c.send_binary(b"k" * 1001)
            await assert_closed_with(c, 1009)
