"""A raw WAMP peer for shape and bad-input tests: hand-made messages over a naive WebSocket.

It sits on :class:`conformance.rfc6455.rawclient.RawClient`, so tests can send any bytes at
all, and it shows every message the router sends exactly as decoded, in order. Waits are on the
socket's reader with a deadline; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from conformance.rfc6455.rawclient import (
    CLOSE,
    OP_BINARY,
    OP_TEXT,
    PING,
    PONG,
    ConnectionGone,
    RawClient,
    parse_close_payload,
)
from conformance.wamp import wire
from conformance.wamp.wire import Codec

__all__ = ["CLIENT_ROLES", "Ended", "RawWamp", "open_raw", "raw_session"]

TIMEOUT = 5.0
REPLIES = {
    wire.SUBSCRIBE: wire.SUBSCRIBED,
    wire.UNSUBSCRIBE: wire.UNSUBSCRIBED,
    wire.PUBLISH: wire.PUBLISHED,
    wire.REGISTER: wire.REGISTERED,
    wire.UNREGISTER: wire.UNREGISTERED,
    wire.CALL: wire.RESULT,
}

# What a client of the Advanced Profile announces (autobahn's set, less what the suite never uses).
CLIENT_ROLES: dict[str, Any] = {
    "publisher": {
        "features": {
            "publisher_identification": True,
            "subscriber_blackwhite_listing": True,
            "publisher_exclusion": True,
        }
    },
    "subscriber": {
        "features": {"publisher_identification": True, "pattern_based_subscription": True}
    },
    "caller": {
        "features": {
            "caller_identification": True,
            "progressive_call_results": True,
            "call_canceling": True,
            "call_timeout": True,
        }
    },
    "callee": {
        "features": {
            "caller_identification": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "progressive_call_results": True,
            "call_canceling": True,
        }
    },
}


@dataclass
class Ended:
    """How the router ended the connection: an ABORT and/or a close frame, or just TCP."""

    abort: list[Any] | None = None
    close_code: int | None = None
    close_reason: str = ""
    closed: bool = False  # a close frame came
    before: list[Any] = field(default_factory=list)  # other messages that came first

    @property
    def abort_reason(self) -> str | None:
        return self.abort[2] if self.abort is not None else None

    def __str__(self) -> str:
        close = f"close {self.close_code} {self.close_reason!r}" if self.closed else "no close"
        return f"ABORT {self.abort} / {close} / before: {self.before}"


class RawWamp:
    """One WebSocket connection speaking ``codec`` with hand-made WAMP messages."""

    def __init__(self, client: RawClient, codec: Codec) -> None:
        self.client = client
        self.codec = codec
        self.inbox: deque[Any] = deque()
        self.opcodes: list[int] = []
        self.session_id: int | None = None
        self.welcome: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self.close_frame: tuple[int | None, str] | None = None

    @property
    def subprotocol(self) -> str | None:
        assert self.client.response is not None
        return self.client.response.header("Sec-WebSocket-Protocol")

    def next_id(self) -> int:
        """The next request id: sequential from 1, as the spec asks of session-scope ids."""
        return next(self._ids)

    # ----- sending

    def send(self, *msgs: list[Any]) -> None:
        """Send messages (several only on a batched subprotocol) in one WebSocket message."""
        self.send_payload(self.codec.encode(*msgs))

    def send_payload(self, payload: bytes, *, binary: bool | None = None) -> None:
        """One WebSocket message with any payload, as text or binary (default: the codec's)."""
        if binary is None:
            binary = self.codec.binary
        if binary:
            self.client.send_binary(payload)
        else:
            self.client.send_text(payload)

    # ----- receiving

    async def _fill(self, within: float) -> None:
        """Read one more data message into the inbox (answering pings)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            f = await self.client.recv_frame(max(deadline - loop.time(), 0.001))
            if f.opcode == PING:
                self.client.send_frame(PONG, f.payload)
                continue
            if f.opcode == PONG:
                continue
            if f.opcode == CLOSE:
                info = parse_close_payload(f)
                self.close_frame = (info.code, info.reason.decode("utf-8", "replace"))
                with contextlib.suppress(Exception):
                    self.client.send_close(info.code)
                raise ConnectionGone(f"close frame {info.code} {info.reason!r}")
            assert f.fin, "the suite's raw peer does not reassemble fragmented messages"
            assert f.opcode in (OP_TEXT, OP_BINARY), f
            self.opcodes.append(f.opcode)
            self.inbox.extend(self.codec.decode(f.payload))
            return

    async def recv(self, within: float = TIMEOUT) -> list[Any]:
        """The next message from the router. AssertionError if the connection ends first."""
        if not self.inbox:
            try:
                await self._fill(within)
            except ConnectionGone as e:
                raise AssertionError(
                    f"the router closed instead of sending a message: {e}"
                ) from None
            except TimeoutError:
                raise AssertionError(f"no message from the router within {within} s") from None
        return list(self.inbox.popleft())

    async def expect(self, code: int, within: float = TIMEOUT) -> list[Any]:
        """The next message, which must be of type ``code``."""
        msg = await self.recv(within)
        assert msg, f"expected {wire.NAMES[code]}, got {msg}"
        assert msg[0] == code, f"expected {wire.NAMES[code]}, got {msg}"
        return msg

    async def expect_error(
        self, request_type: int, request: int, uri: str | None = None, within: float = TIMEOUT
    ) -> list[Any]:
        """The next message is ``[ERROR, request_type, request, details, uri, ...]``."""
        msg = await self.expect(wire.ERROR, within)
        assert msg[1] == request_type, f"ERROR for another request: {msg}"
        assert msg[2] == request, f"ERROR for another request: {msg}"
        assert isinstance(msg[3], dict), msg
        if uri is not None:
            assert msg[4] == uri, f"expected ERROR {uri}, got {msg}"
        return msg

    async def until(self, code: int, within: float = TIMEOUT) -> tuple[list[Any], list[list[Any]]]:
        """Read until a message of type ``code``: (it, the messages before it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        before: list[list[Any]] = []
        while True:
            msg = await self.recv(max(deadline - loop.time(), 0.001))
            if msg[0] == code:
                return msg, before
            before.append(msg)

    async def ended(self, within: float = TIMEOUT) -> Ended:
        """Read until the router ends the session: ABORT (or GOODBYE) and/or close, or TCP end.

        AssertionError if it keeps the connection open past ``within`` without an ABORT.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        out = Ended()
        while True:
            if self.inbox:
                msg = list(self.inbox.popleft())
                if msg and msg[0] == wire.ABORT and out.abort is None:
                    out.abort = msg
                    # An ABORT may be followed by a close; wait a little for it, not forever.
                    deadline = min(deadline, loop.time() + 2.0)
                else:
                    out.before.append(msg)
                continue
            try:
                await self._fill(max(deadline - loop.time(), 0.001))
            except ConnectionGone:
                if self.close_frame is not None:
                    out.closed = True
                    out.close_code, out.close_reason = self.close_frame
                return out
            except TimeoutError:
                if out.abort is not None:
                    return out
                raise AssertionError(f"the router neither aborted nor closed: {out}") from None

    async def ended_or_message(self, within: float = TIMEOUT) -> list[Any] | Ended:
        """The next message, or (if the router aborts or closes instead) how it ended."""
        if not self.inbox:
            try:
                await self._fill(within)
            except ConnectionGone:
                out = Ended(closed=self.close_frame is not None)
                if self.close_frame is not None:
                    out.close_code, out.close_reason = self.close_frame
                return out
            except TimeoutError:
                raise AssertionError(f"no message from the router within {within} s") from None
        msg = list(self.inbox.popleft())
        if msg and msg[0] == wire.ABORT:
            self.inbox.appendleft(msg)
            return await self.ended(within)
        return msg

    async def nothing(self, within: float) -> None:
        """A bounded wait that must end without a message (use a marker as a barrier instead
        when one exists)."""
        if self.inbox:
            raise AssertionError(f"unexpected message {self.inbox[0]}")
        try:
            await self._fill(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {self.inbox[0]}")  # ConnectionGone passes

    async def quiet_or_closed(self, within: float) -> None:
        """Nothing arrives within ``within`` s, or the connection ends: no message, either way."""
        with contextlib.suppress(ConnectionGone):
            await self.nothing(within)

    # ----- session helpers

    async def hello(
        self,
        realm: str,
        details: dict[str, Any] | None = None,
        *,
        within: float = TIMEOUT,
    ) -> list[Any]:
        """Send HELLO (roles as :data:`CLIENT_ROLES` unless ``details`` has its own); the reply."""
        d = {"roles": CLIENT_ROLES, "agent": "wsbroker-conformance-raw"}
        d.update(details or {})
        self.send([wire.HELLO, realm, d])
        return await self.recv(within)

    async def join(self, realm: str, details: dict[str, Any] | None = None) -> int:
        """HELLO, which must be answered with WELCOME; the session id."""
        reply = await self.hello(realm, details)
        assert reply[0] == wire.WELCOME, f"expected WELCOME, got {reply}"
        self.session_id = reply[1]
        self.welcome = reply[2]
        return int(reply[1])

    async def reply(self, request_type: int, request: int, within: float = TIMEOUT) -> list[Any]:
        """The router's reply to our ``request``: the first message that answers it (of any
        type, so an ERROR shows). Other messages that came first (an EVENT for our own
        publication may precede PUBLISHED) stay in the inbox, in order, for later reads."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        skipped: list[list[Any]] = []
        try:
            while True:
                msg = await self.recv(max(deadline - loop.time(), 0.001))
                answers = msg[:2] == [REPLIES[request_type], request] or (
                    msg[0] == wire.ERROR and msg[1:3] == [request_type, request]
                )
                if answers or msg[0] in (wire.ABORT, wire.GOODBYE):
                    return msg
                skipped.append(msg)
        finally:
            self.inbox.extendleft(reversed(skipped))

    async def subscribe(self, topic: str, **options: Any) -> int:
        req = self.next_id()
        self.send([wire.SUBSCRIBE, req, options, topic])
        msg = await self.reply(wire.SUBSCRIBE, req)
        assert msg[:2] == [wire.SUBSCRIBED, req], f"SUBSCRIBE {topic} {options}: {msg}"
        return int(msg[2])

    async def register(self, procedure: str, **options: Any) -> int:
        req = self.next_id()
        self.send([wire.REGISTER, req, options, procedure])
        msg = await self.reply(wire.REGISTER, req)
        assert msg[:2] == [wire.REGISTERED, req], f"REGISTER {procedure} {options}: {msg}"
        return int(msg[2])

    async def publish_acked(
        self,
        topic: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> int:
        """PUBLISH with acknowledge; the publication id from PUBLISHED."""
        req = self.next_id()
        msg: list[Any] = [wire.PUBLISH, req, {"acknowledge": True, **options}, topic]
        if args is not None or kwargs is not None:
            msg.append(args or [])
        if kwargs is not None:
            msg.append(kwargs)
        self.send(msg)
        reply = await self.reply(wire.PUBLISH, req)
        assert reply[:2] == [wire.PUBLISHED, req], f"PUBLISH {topic} {options}: {reply}"
        return int(reply[2])

    async def goodbye(self) -> list[Any]:
        """GOODBYE; the router's GOODBYE reply (messages in flight before it are dropped)."""
        self.send([wire.GOODBYE, {}, "wamp.close.close_realm"])
        reply, _ = await self.until(wire.GOODBYE)
        return reply

    async def aclose(self) -> None:
        await self.client.aclose()


async def open_raw(
    url: str,
    path: str,
    subprotocol: str = "wamp.2.json",
    *,
    offer: str | None = None,
    separator: bytes = wire.RECORD_SEPARATOR,
) -> RawWamp:
    """Open a WebSocket offering ``offer`` (default: ``subprotocol``), speaking ``subprotocol``
    (batched JSON with ``separator``)."""
    client = await RawClient.connect(url, path, protocols=offer or subprotocol)
    return RawWamp(client, wire.codec_for(subprotocol, separator))


@contextlib.asynccontextmanager
async def raw_session(
    url: str, path: str, realm: str | None, subprotocol: str = "wamp.2.json"
) -> AsyncIterator[RawWamp]:
    """A RawWamp, joined to ``realm`` unless it is None; dropped at the end."""
    peer = await open_raw(url, path, subprotocol)
    try:
        if realm is not None:
            await peer.join(realm)
        yield peer
    finally:
        await peer.aclose()
