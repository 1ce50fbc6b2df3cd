"""Heart-beating (STOMP 1.2 "Heart-beating"; issue bullet 7).

CONNECT ``heart-beat:cx,cy``, CONNECTED ``heart-beat:sx,sy``: the server sends every
``max(sx, cy)`` ms (when neither is 0) and expects something from the client every
``max(cx, sy)`` ms, closing a client silent past a grace period. Ours answers
``max(cy, floor),max(cx, floor)`` (0 stays 0) with floor ``stomp_heartbeat_min`` and closes with
ERROR after twice the client's period.

Time is measured by the server's own heart-beats wherever possible; the unit is the target's
floor (ours 100 ms, so 200 ms here; RabbitMQ works in whole seconds, so 1000 ms).
"""

from __future__ import annotations

import asyncio
import itertools
import queue

import pytest

from conformance.aio import async_test
from conformance.stomp.conftest import StompFactory
from conformance.stomp.frames import HEARTBEAT
from conformance.stomp.support import Names, Server, event, raw_session, run_js


def _unit(server: Server) -> int:
    """A heart-beat period (ms) the target honours as asked."""
    return max(200, server.limits.heartbeat_min or 1000)


def _pair(value: str | None) -> tuple[int, int]:
    assert value is not None, "CONNECTED has no heart-beat header"
    x, y = value.split(",")
    return int(x), int(y)


@pytest.mark.parametrize(
    ("asked", "floored"),
    [
        ((0, 0), (0, 0)),
        ((50, 50), (100, 100)),
        ((300, 200), (200, 300)),
        ((0, 300), (300, 0)),
        ((300, 0), (0, 300)),
    ],
    ids=["none", "below-floor", "both", "server-sends-only", "client-sends-only"],
)
@async_test
async def test_heartbeat_negotiation(
    server: Server, asked: tuple[int, int], floored: tuple[int, int]
) -> None:
    """CONNECTED ``heart-beat``: ours answers ``max(cy, floor),max(cx, floor)``, 0 staying 0;
    any server answers two non-negative integers, and 0 where the client cannot do it."""
    cx, cy = asked
    async with raw_session(server, connect=False) as c:
        connected = await c.connect("1.2", {"heart-beat": f"{cx},{cy}"}, host=server.host)
    sx, sy = _pair(connected.get("heart-beat"))
    assert sx >= 0
    assert sy >= 0
    if server.strict:
        floor = server.limits.heartbeat_min or 0
        expected = tuple(0 if v == 0 else max(v, floor) for v in (cy, cx))
        assert (sx, sy) == expected
        if floor == 100:
            assert (sx, sy) == floored


@async_test
async def test_server_sends_heartbeats_at_negotiated_rate(server: Server) -> None:
    """The server sends an EOL at least every ``max(sx, cy)`` ms, and not much more often."""
    unit = _unit(server)
    async with raw_session(server, connect=False) as c:
        connected = await c.connect("1.2", {"heart-beat": f"0,{unit}"}, host=server.host)
        sx, _ = _pair(connected.get("heart-beat"))
        assert sx > 0, "the client asked for heart-beats and the server offered none"
        period = max(sx, unit) / 1000
        loop = asyncio.get_running_loop()
        beats = []
        for _ in range(4):
            f = await c.next_frame(period * 2 + 1, heartbeats=True)
            assert f is HEARTBEAT, f"only heart-beats expected, got {f!r}"
            beats.append(loop.time())
    # The first may be an EOL right after CONNECTED's NUL (RabbitMQ sends one after each frame).
    gaps = [b - a for a, b in itertools.pairwise(beats[1:])]
    for gap in gaps:
        assert period * 0.5 <= gap <= period * 1.5 + 0.1, f"gaps {gaps} for period {period}"


@async_test
async def test_silent_client_is_closed(server: Server) -> None:
    """A client that promised heart-beats and sends nothing is closed past the grace period
    (ours: ERROR naming it, then close, after twice ``max(cx, sy)``)."""
    unit = _unit(server)
    async with raw_session(server, connect=False) as c:
        loop = asyncio.get_running_loop()
        connected = await c.connect("1.2", {"heart-beat": f"{unit},0"}, host=server.host)
        start = loop.time()
        _, sy = _pair(connected.get("heart-beat"))
        assert sy > 0, "the client offered heart-beats and the server wants none"
        period = max(unit, sy) / 1000
        before, closed = await c.expect_closed(within=period * 4 + 2)
        elapsed = loop.time() - start
    assert elapsed >= period, f"closed after {elapsed:.2f} s, before one period ({period} s)"
    if server.strict:
        assert elapsed <= period * 2 + 0.5, f"closed after {elapsed:.2f} s (period {period} s)"
        errors = [f for f in before if f.command == "ERROR"]
        assert errors, f"no ERROR before the close: {before} {closed}"
        assert errors[0].get("message")


def test_client_heartbeats_keep_the_connection_open(
    stomp: StompFactory, names: Names, server: Server
) -> None:
    """stomp.py sending heart-beats stays connected well past the grace period: four server
    heart-beats (the clock) later, a round trip still works."""
    # stomp.py's heart-beat thread is not punctual under load: a longer period than the floor.
    unit = max(500, _unit(server))
    c = stomp(heartbeats=(unit, unit))
    connected = c.connect()
    sx, sy = _pair(connected.headers.get("heart-beat"))
    assert sx > 0
    assert sy > 0
    period = max(sx, unit) / 1000
    for i in range(4):
        try:
            c.heartbeats.get(timeout=period * 2 + 1)
        except queue.Empty:
            errors = list(c.errors.queue)
            raise AssertionError(
                f"no server heart-beat #{i + 1} within {period * 2 + 1} s; "
                f"disconnected: {c.disconnected.is_set()}, errors: {errors}"
            ) from None
    assert not c.disconnected.is_set()
    dest = names.topic("alive")
    c.subscribe(dest, "s1")
    c.send(dest, "still here")
    assert c.expect_message().body == "still here"
    c.disconnect()


def test_stompjs_heartbeats(server: Server, names: Names) -> None:
    """@stomp/stompjs with heartbeatIncoming/Outgoing: the server's heart-beats arrive, none is
    lost, and the connection is alive at the end."""
    unit = _unit(server)
    events = run_js(
        server,
        "heartbeat",
        version="1.2",
        incoming=unit,
        outgoing=unit,
        duration_ms=unit * 4,
        destination=names.topic("jshb"),
    )
    sx, sy = _pair(event(events, "connected")["headers"].get("heart-beat"))
    assert sx > 0
    assert sy > 0
    hb = event(events, "heartbeats")
    beats = [b for b in hb["beats"] if 0 < b <= unit * 4]
    assert len(beats) >= 2, f"server heart-beats over {unit * 4} ms: {hb['beats']}"
    assert hb["lost"] == 0
    assert hb["alive"] is True
