"""The broker as a user runs it: the `wsbroker` command in a process of its own."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys

from conformance.aio import async_test
from conformance.rfc6455.rawclient import OP_BINARY, OP_TEXT, RawClient, assert_closed_with
from conformance.server import running_broker


def wsbroker() -> list[str]:
    """The installed console script, as the README runs it."""
    script = shutil.which("wsbroker")
    assert script is not None, "the README's install step puts `wsbroker` on PATH"
    return [script]


@async_test
async def test_serve_publish_receive_then_sigterm_closes_with_1001_and_exits_0() -> None:
    with running_broker(command=wsbroker()) as bp:
        assert any(f"listening on {bp.url}" in line for line in bp.lines)
        dashboard = await RawClient.connect(bp.url, "/topics/dash?subscribe=sensors/%2B/temp")
        device = await RawClient.connect(bp.url, "/topics/sensors/room1/temp")
        clients = [dashboard, device]
        try:
            device.send_text("21.5")
            assert (await dashboard.recv_message()).payload == b"21.5"
            device.send_binary(b"\x00\x01")
            message = await dashboard.recv_message()
            assert (message.opcode, message.payload) == (OP_BINARY, b"\x00\x01")
            bp.proc.send_signal(signal.SIGTERM)
            for client in clients:
                await assert_closed_with(client, 1001)
            code = await asyncio.wait_for(asyncio.to_thread(bp.proc.wait), 10)
            assert code == 0, bp.output()[-2000:]
        finally:
            for client in clients:
                await client.aclose()
    log = bp.output()
    assert log.count("opened peer=127.0.0.1:") == 2
    assert log.count("code=1001 reason=server shutting down") == 2
    assert "subprotocol=raw" in log
    assert "Traceback" not in log


@async_test
async def test_json_log_lines() -> None:
    with running_broker("--log-format", "json", command=wsbroker()) as bp:
        async with await RawClient.connect(bp.url) as client:
            client.send_text("hi")
            message = await client.recv_message()
            assert (message.opcode, message.payload) == (OP_TEXT, b"hi")
            client.send_close(1000)
            await assert_closed_with(client, 1000)
    entries = [json.loads(line) for line in bp.lines if line.strip()]
    events = {entry.get("event"): entry for entry in entries}
    assert events["listening"]["port"] == bp.port
    closed = events["connection_closed"]
    assert (closed["code"], closed["subprotocol"]) == (1000, "raw")
    assert closed["peer"].startswith("127.0.0.1:")


@async_test
async def test_max_message_size_flag() -> None:
    with running_broker("--max-message-size", "1000") as bp:
        async with await RawClient.connect(bp.url) as client:
            client.send_binary(b"k" * 1000)
            message = await client.recv_message()
            assert (message.opcode, len(message.payload)) == (OP_BINARY, 1000)
            client.send_binary(b"k" * 1001)
            await assert_closed_with(client, 1009)


def test_invalid_setting_stops_the_start_naming_the_field() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--max-message-size", "lots"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid setting max_message_size" in result.stderr
