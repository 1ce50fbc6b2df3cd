"""Bad input at the transport level: slow or broken handshakes, garbage frames, random bytes.

DESIGN.md: every malformed input gets a clear answer and the broker goes on serving everyone
else.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from conformance.aio import async_test
from conformance.rfc6455.rawclient import (
    CLOSE,
    OP_TEXT,
    ConnectionGone,
    RawClient,
    assert_closed_with,
    encode_frame,
)
from conformance.server import BrokerProcess, external_url, running_broker

FUZZ_CONNECTIONS = 1000
FUZZ_CONCURRENCY = 50
FUZZ_SEED = 6455
ANSWER_TIMEOUT = 5.0


# --------------------------------------------------------------------------- handshake timeout


@pytest.fixture(scope="module")
def quick_timeout_broker() -> Any:
    if external_url() is not None:
        pytest.skip("needs a broker of our own started with --handshake-timeout 1")
    with running_broker("--handshake-timeout", "1") as bp:
        yield bp


@async_test
async def test_half_finished_handshake_is_dropped_after_handshake_timeout(
    quick_timeout_broker: BrokerProcess,
) -> None:
    c = await RawClient.open_tcp(quick_timeout_broker.url)
    async with c:
        started = time.monotonic()
        c.send_raw(b"GET /topics/echo HTTP/1.1\r\nHost: x\r\n")
        data = await c.wait_tcp_closed(within=6.0)
        elapsed = time.monotonic() - started
        assert c.closed, "server kept a half-finished handshake open for 6 s (timeout is 1 s)"
        # Not dropped before the timeout (the request could still be completed), nor long after.
        assert 0.8 <= elapsed <= 4.0, f"dropped after {elapsed:.2f} s with a 1 s timeout"
        # It may say why (e.g. 408) before closing; if it says anything, it is HTTP.
        assert not data or data.startswith(b"HTTP/1."), data[:100]


@async_test
async def test_completed_handshake_is_not_dropped_by_handshake_timeout(
    quick_timeout_broker: BrokerProcess,
) -> None:
    # The timeout covers the handshake only: a connection that upgraded in time stays open past
    # it. The wait is on the server's answer to a ping sent after the timeout.
    async with await RawClient.connect(quick_timeout_broker.url) as c:
        c.send_text("first")
        assert (await c.recv_message()).payload == b"first"
        with contextlib.suppress(TimeoutError):
            await c.wait_tcp_closed(within=1.5)
        assert not c.closed, "upgraded connection dropped by the handshake timeout"
        c.send_text("second")
        assert (await c.recv_message()).payload == b"second"


# --------------------------------------------------------------------------- garbage frames

MUST_BE_1002 = {
    # fin, opcode 3 (reserved), masked, empty payload
    "reserved-opcode": b"\x83\x80\x00\x00\x00\x00",
    # A second HTTP request after the upgrade: "G" is 0x47 = RSV1 set and opcode 7 (reserved),
    # "E" is 0x45 = unmasked; every reading of it is a protocol error.
    "pipelined-http": b"GET /topics/echo HTTP/1.1\r\nHost: x\r\n\r\n",
    # Close frame with a 1-byte body
    "close-1-byte": b"\x88\x81\x00\x00\x00\x00\x03",
}


@pytest.mark.parametrize("garbage", MUST_BE_1002.values(), ids=MUST_BE_1002.keys())
@async_test
async def test_garbage_after_upgrade_fails_with_1002(broker_url: str, garbage: bytes) -> None:
    async with await RawClient.connect(broker_url, "/topics/garbage") as c:
        c.send_raw(garbage)
        await assert_closed_with(c, 1002)


@async_test
async def test_all_ones_garbage_fails_with_1002_or_1009(broker_url: str) -> None:
    # 0xff: FIN, RSV1-3 and opcode 15; then a 64-bit length with the top bit set. Whichever
    # the server checks first, reserved bits (1002) or length (1009), it must fail.
    async with await RawClient.connect(broker_url, "/topics/garbage") as c:
        c.send_raw(b"\xff" * 16)
        await assert_closed_with(c, 1002, 1009)


# --------------------------------------------------------------------------- random bytes


async def _round_trip(c: RawClient, text: str) -> None:
    c.send_text(text)
    msg = await c.recv_message(within=ANSWER_TIMEOUT)
    assert (msg.opcode, msg.payload) == (OP_TEXT, text.encode()), msg


async def _answers(url: str, path: str, garbage: bytes) -> str | None:
    """Upgrade, send ``garbage`` and FIN; None if the server answers properly, else what's wrong.

    A proper answer is a close frame, or the TCP connection closed, within ANSWER_TIMEOUT. The
    half-close (FIN) after the bytes tells the server no more is coming, so a frame left
    incomplete by the garbage cannot keep it waiting.
    """
    try:
        c = await RawClient.connect(url, path, within=ANSWER_TIMEOUT)
    except Exception as e:
        return f"upgrade failed: {e!r}"
    async with c:
        c.send_raw(garbage)
        c.write_eof()
        deadline = asyncio.get_running_loop().time() + ANSWER_TIMEOUT
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                f = await c.recv_frame(within=max(remaining, 0.001))
            except ConnectionGone:
                return None
            except TimeoutError:
                return f"no close frame and TCP still open after {ANSWER_TIMEOUT} s"
            if f.opcode == CLOSE:
                return None


async def _bounded(n: int, limit: int, job: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with sem:
            await job(i)

    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            tg.create_task(one(i))


@async_test
async def test_random_bytes_after_upgrade_never_stop_the_broker(
    broker_url: str, broker_process: BrokerProcess | None
) -> None:
    rnd = random.Random(FUZZ_SEED)
    inputs = [rnd.randbytes(rnd.randint(1, 200)) for _ in range(FUZZ_CONNECTIONS)]
    problems: dict[int, str] = {}

    async def fuzz(i: int) -> None:
        problem = await _answers(broker_url, f"/topics/fuzz/{i}", inputs[i])
        if problem is not None:
            problems[i] = problem

    log_start = len(broker_process.lines) if broker_process is not None else 0
    async with await RawClient.connect(broker_url, "/topics/fuzz-canary") as canary:
        await _round_trip(canary, "before")
        fuzzing = asyncio.create_task(_bounded(FUZZ_CONNECTIONS, FUZZ_CONCURRENCY, fuzz))
        rounds = 0
        try:
            # The well-behaved client keeps being served while the fuzzing runs.
            while not fuzzing.done():
                await _round_trip(canary, f"meanwhile {rounds}")
                rounds += 1
        finally:
            await asyncio.wait_for(fuzzing, 60)
        await _round_trip(canary, "after")
    assert rounds >= 1

    async with await RawClient.connect(broker_url, "/topics/fuzz-canary") as fresh:
        await _round_trip(fresh, "new connection after fuzzing")
    if broker_process is not None:
        assert broker_process.proc.poll() is None, broker_process.output()[-4000:]
        # Bad input is expected and answered; it is no reason for an unhandled exception.
        log = "".join(broker_process.lines[log_start:])
        assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:4000]
    shown = {i: (inputs[i].hex(), p) for i, p in list(problems.items())[:5]}
    assert not problems, f"{len(problems)} inputs not answered; first ones: {shown}"


@async_test
async def test_random_bytes_instead_of_handshake_get_4xx_or_close(broker_url: str) -> None:
    rnd = random.Random(FUZZ_SEED + 1)
    inputs = [rnd.randbytes(rnd.randint(1, 200)) for _ in range(200)]
    problems: dict[int, str] = {}

    async def one(i: int) -> None:
        c = await RawClient.open_tcp(broker_url)
        async with c:
            c.send_raw(inputs[i])
            c.write_eof()
            data = await c.wait_tcp_closed(within=ANSWER_TIMEOUT)
            if not c.closed:
                problems[i] = "still open"
            elif data and not data.startswith(b"HTTP/1.1 4"):
                problems[i] = f"answered {data[:60]!r}"

    await _bounded(len(inputs), FUZZ_CONCURRENCY, one)
    async with await RawClient.connect(broker_url, "/topics/fuzz-canary") as c:
        await _round_trip(c, "still serving")
    shown = {i: (inputs[i].hex(), p) for i, p in list(problems.items())[:5]}
    assert not problems, f"{len(problems)} inputs badly answered; first ones: {shown}"


@async_test
async def test_valid_frames_split_at_every_byte_boundary(broker_url: str) -> None:
    # The server must not depend on how TCP segments the stream: send a message one byte per
    # write (asyncio sets TCP_NODELAY, so each is its own segment unless the kernel merges).
    frame = encode_frame(OP_TEXT, "split everywhere ✓".encode())
    async with await RawClient.connect(broker_url, "/topics/echo") as c:
        for i in range(len(frame)):
            c.send_raw(frame[i : i + 1])
        msg = await c.recv_message()
        assert msg.payload == "split everywhere ✓".encode()
