"""WAMP v2 (``wamp.2.json``) over WebSocket for the load generator: hand-encoded messages and
cheap clients.

Same rules as ``loadgen.py``: asyncio ``Protocol`` clients, no task per connection or message,
frames encoded and masked once before the run where they can be (PUBLISH, CALL) and written in
batches. Each text WebSocket frame is one WAMP message (JSON, not batched).

Receivers walk WebSocket frame headers and look only at the first bytes of each message: an
EVENT is ``[36,``, a RESULT ``[50,``, an INVOCATION ``[68,`` (the JSON of Crossbar and wsbroker
has no spaces). Those are counted without parsing; the callee reads the INVOCATION's request id
(the digits up to the next comma) and answers ``[70,<request>,{},[<result>]]``, all the YIELDs of
one read in one write. Everything else (WELCOME, SUBSCRIBED, REGISTERED, ERROR, ABORT, GOODBYE)
is rare and parsed as JSON, whole.

- ``WampClient``: HELLO/WELCOME and optionally one SUBSCRIBE or REGISTER; counts EVENTs.
- ``WampPublisher``: PUBLISHes under ``may_send`` (``side_by_side.Window``), request ids cycling.
- ``WampCallee``: REGISTERs and answers every INVOCATION with a YIELD.
- ``WampCaller``: keeps ``inflight`` CALLs outstanding, a new one for each RESULT; counts RESULTs.

Only for 127.0.0.1, like the rest of the load generator.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from benchmarks.loadgen import (
    OP_CLOSE,
    OP_TEXT,
    Counters,
    FramePump,
    StreamClient,
    masked_frame,
)

__all__ = [
    "SUBPROTOCOL",
    "WampCallee",
    "WampCaller",
    "WampClient",
    "WampPublisher",
    "call_ring",
    "publish_batches",
    "wamp_frame",
]

SUBPROTOCOL = "wamp.2.json"
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

ROLES: dict[str, Any] = {"roles": {"publisher": {}, "subscriber": {}, "caller": {}, "callee": {}}}
PEEK = 48  # bytes of a message needed before looking at it: "[68," + two ids of <= 16 digits
CALL_RING = 1 << 17  # CALL request ids cycle through 1..CALL_RING
ZERO_KEY = b"\x00\x00\x00\x00"


def _json(msg: list[Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()


def wamp_frame(msg: list[Any]) -> bytes:
    """One WAMP message as one masked text frame."""
    return masked_frame(OP_TEXT, _json(msg))


def _unmasked_text(payload: bytes) -> bytes:
    """A client text frame with the all-zero masking key: the payload goes as it is, so frames
    built per message (YIELDs) cost a join, not an XOR. Servers cannot tell (RFC 6455 only asks
    clients to choose unpredictable keys)."""
    n = len(payload)
    if n <= 125:
        head = bytes((0x81, 0x80 | n))
    elif n <= 0xFFFF:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + ZERO_KEY + payload


@functools.lru_cache(maxsize=4)
def publish_batches(topic: str, arg: str, batch: int, batches: int = 64) -> tuple[bytes, ...]:
    """``batches`` batches of ``batch`` PUBLISH frames each, request ids 1.. in order."""
    out = []
    for b in range(batches):
        ids = range(b * batch + 1, (b + 1) * batch + 1)
        out.append(b"".join(wamp_frame([PUBLISH, r, {}, topic, [arg]]) for r in ids))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def call_ring(procedure: str, arg: str) -> tuple[bytes, ...]:
    """CALL frames with request ids 1..CALL_RING (index i holds id i + 1), shared by callers."""
    return tuple(wamp_frame([CALL, r, {}, procedure, [arg]]) for r in range(1, CALL_RING + 1))


class WampClient(StreamClient):
    """Upgrade with ``wamp.2.json``, HELLO for ``realm``, then ``setup`` (a SUBSCRIBE or a
    REGISTER) if any; ``ready`` resolves at WELCOME, or at SUBSCRIBED/REGISTERED.

    Then counts messages starting with ``hot`` (EVENTs here), and hands the other messages,
    whole, to ``message``. ERROR and ABORT details are kept in ``errors``.
    """

    goodbye = wamp_frame([GOODBYE, {}, "wamp.close.close_realm"])
    hot = b"[36,"

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        realm: str,
        setup: list[Any] | None = None,
        counted: bool = True,
        on_receive: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            host,
            port,
            path,
            counters,
            counted=counted,
            on_receive=on_receive,
            subprotocol=SUBPROTOCOL,
        )
        self.hello = wamp_frame([HELLO, realm, ROLES])
        self.setup = wamp_frame(setup) if setup is not None else None
        self.session = 0
        self.errors: list[str] = []

    def opened(self) -> None:
        assert self.transport is not None
        self.transport.write(self.hello)

    # --- the hot path: frame headers and a message's first bytes

    def _count(self, data: bytes) -> None:
        n = len(data)
        i = self._skip
        if i >= n:
            self._skip = i - n
            return
        self._skip = 0
        if self._partial:
            data = self._partial + data[i:]
            self._partial = b""
            n = len(data)
            i = 0
        hot = self.hot
        got = 0
        while n - i >= 2:
            b1 = data[i + 1]
            length = b1 & 0x7F
            pos = i + 2
            if length == 126:
                if n - i < 4:
                    break
                length = (data[i + 2] << 8) | data[i + 3]
                pos = i + 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                pos = i + 10
            if b1 & 0x80:
                pos += 4
            end = pos + length
            if pos + (length if length < PEEK else PEEK) > n:
                break  # keep the header and the message's first bytes for the next read
            opcode = data[i] & 0x0F
            if opcode == OP_TEXT and data.startswith(hot, pos):
                got += 1
                self.hot_message(data, pos)
            elif end > n:
                break  # anything else is handled whole
            elif opcode == OP_TEXT:
                self.message(data[pos:end])
            elif opcode >= OP_CLOSE:
                self._control(opcode, data, pos, length)
            i = end
        if i > n:
            self._skip = i - n
        elif i < n:
            self._partial = data[i:]
        if got:
            self.got(got)
        out = self._acks
        if out:
            t = self.transport
            if t is not None and not t.is_closing():
                t.write(b"".join(out))
            out.clear()

    def hot_message(self, data: bytes, pos: int) -> None:
        """A ``hot`` message at ``data[pos:]`` (at least its first PEEK bytes are there)."""

    def got(self, count: int) -> None:
        """``count`` hot messages in the last read."""
        self.received += count
        if self.counted:
            self.counters.received += count
        if self.on_receive is not None:
            self.on_receive()

    # --- everything else, parsed

    def message(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
            kind = msg[0]
        except (ValueError, IndexError, KeyError, TypeError):
            self.errors.append(f"not a WAMP message: {raw[:200]!r}")
            return
        if kind in (ERROR, ABORT):
            self.errors.append(json.dumps(msg)[:300])
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"refused: {msg}"))
        elif kind == WELCOME and not self.ready.done():
            self.session = msg[1]
            if self.setup is None:
                self.ready.set_result(None)
            else:
                self._acks.append(self.setup)
        elif kind in (SUBSCRIBED, REGISTERED) and not self.ready.done():
            self.ready.set_result(None)
        elif kind == GOODBYE:
            pass
        else:
            self.other(msg)

    def other(self, msg: list[Any]) -> None:
        """A message this client does not expect (an unknown reply): kept as an error."""
        self.errors.append(f"unexpected: {json.dumps(msg)[:200]}")


class WampPublisher(FramePump, WampClient):
    """PUBLISHes pre-encoded frames (no acknowledge) in batches, as fast as flow control and
    ``may_send()`` allow; request ids cycle through the batches' ids."""

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        realm: str,
        batches: tuple[bytes, ...],
        batch: int,
        may_send: Callable[[WampPublisher], bool],
        batches_per_pump: int = 64,
    ) -> None:
        super().__init__(host, port, counters, path=path, realm=realm, counted=False)
        self._init_pump()
        self.acked = 0
        self.batch_frames = batch
        self.batches_per_pump = batches_per_pump
        self.batches = batches
        self._next = 0
        self.may_send = may_send

    def next_batch(self) -> bytes:
        b = self.batches[self._next]
        self._next = (self._next + 1) % len(self.batches)
        return b

    def may_write(self) -> bool:
        return self.may_send(self)


class WampCallee(WampClient):
    """REGISTERs ``procedure`` and answers each INVOCATION with ``[70,<request>,{},[result]]``.
    Not counted: ``received`` is its invocations, ``acks_sent`` its YIELDs."""

    hot = b"[68,"

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        realm: str,
        procedure: str,
        result: str,
    ) -> None:
        super().__init__(
            host,
            port,
            counters,
            path=path,
            realm=realm,
            setup=[REGISTER, 1, {}, procedure],
            counted=False,
        )
        self._tail = b",{},[" + _json([result])[1:-1] + b"]]"

    def hot_message(self, data: bytes, pos: int) -> None:
        c = data.find(b",", pos + 4, pos + PEEK)
        if c < 0:
            self.errors.append(f"an INVOCATION without a request id: {data[pos : pos + PEEK]!r}")
            return
        self._acks.append(_unmasked_text(b"[70," + data[pos + 4 : c] + self._tail))
        self.acks_sent += 1


class WampCaller(WampClient):
    """Keeps ``inflight`` CALLs outstanding once started (one new CALL per RESULT, all those of
    one read in one write), request ids 1, 2, ... from ``ring``; counts RESULTs. Looks like a
    publisher to ``side_by_side.Window`` / ``measure`` (``start``, ``stop``, ``published``)."""

    hot = b"[50,"

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        path: str,
        realm: str,
        ring: tuple[bytes, ...],
        inflight: int,
    ) -> None:
        super().__init__(host, port, counters, path=path, realm=realm)
        self.ring = ring
        self.inflight = inflight
        self.published = 0  # CALLs written
        self.acked = 0
        self.blocked = False
        self.running = False
        self._next = 0  # index in the ring of the next CALL

    def _calls(self, count: int) -> bytes:
        i, ring = self._next, self.ring
        j = i + count
        if j <= len(ring):
            frames = ring[i:j]
        else:
            j -= len(ring)
            frames = ring[i:] + ring[:j]
        self._next = j
        self.published += count
        self.counters.published += count
        return b"".join(frames)

    def start(self) -> None:
        self.running = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(self._calls(self.inflight))

    def stop(self) -> None:
        self.running = False

    def kick(self) -> None:
        """Nothing to restart: RESULTs drive the CALLs."""

    def got(self, count: int) -> None:
        super().got(count)
        if self.running:
            self._acks.append(self._calls(count))
