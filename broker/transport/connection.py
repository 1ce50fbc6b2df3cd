"""One client connection: HTTP upgrade, then WebSocket frames to and from its adapter.

Callback-driven (an asyncio Protocol, no task per connection): see DESIGN.md, "Hot path".
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, cast

from broker.core.message import Delivery, Message
from broker.subprotocols.base import Adapter
from broker.transport.deflate import negotiate
from broker.transport.frames import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    Opcode,
    Pong,
    ProtocolFailure,
    ServerConnection,
    TextMessage,
    encode_frame,
)
from broker.transport.handshake import check_upgrade, is_upgrade, switching_protocols
from broker.transport.http import BadRequest, Request, header_tokens, parse_request, response

if TYPE_CHECKING:
    from broker.transport.server import Listener

log = logging.getLogger("broker.connection")


class Phase(enum.Enum):
    """Where a connection is in its life."""

    HANDSHAKE = enum.auto()
    OPEN = enum.auto()
    CLOSING = enum.auto()
    CLOSED = enum.auto()


class ClientConnection(asyncio.Protocol):
    """A client's TCP (or TLS) connection; it is also the `Link` its adapter sends through."""

    __slots__ = (
        "_adapter",
        "_close_code",
        "_close_reason",
        "_codec",
        "_compressed",
        "_deadline",
        "_flush_scheduled",
        "_inbuf",
        "_listener",
        "_out",
        "_out_bytes",
        "_paused",
        "_ping_sent",
        "_receive_timeout",
        "_soft_limit",
        "_transport",
        "dropped",
        "last_message",
        "last_received",
        "path",
        "peer",
        "phase",
        "query",
        "session_id",
        "subprotocol",
    )

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._inbuf = bytearray()
        self._codec: ServerConnection | None = None
        self._compressed = False
        self._adapter: Adapter | None = None
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._paused = False  # the transport's own buffer is past the soft limit
        self._soft_limit = listener.settings.outgoing_soft_limit
        self._ping_sent: float | None = None
        self._receive_timeout: float | None = None
        self._deadline = 0.0
        self._close_code: int = CloseCode.ABNORMAL
        self._close_reason = ""
        self.phase = Phase.HANDSHAKE
        self.session_id = listener.next_session_id()
        self.peer = "?"
        self.path = ""
        self.query = ""
        self.subprotocol: str | None = None
        self.dropped = 0
        self.last_received = 0.0
        self.last_message = 0.0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast("asyncio.Transport", transport)
        # pause_writing() then tells us, for free, when the kernel stopped keeping up.
        self._transport.set_write_buffer_limits(high=self._soft_limit)
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple):
            host = f"[{peername[0]}]" if ":" in str(peername[0]) else str(peername[0])
            self.peer = f"{host}:{peername[1]}"
        now = self._listener.now()
        self._deadline = now + self._listener.settings.handshake_timeout
        self.last_received = self.last_message = now
        self._listener.attach(self)

    def data_received(self, data: bytes) -> None:
        codec = self._codec
        if codec is None:
            self._handshake_data(data)
            return
        self.last_received = self._listener.now()
        self._ping_sent = None
        payload = codec.lone_binary(data)
        if payload is not None:
            self.last_message = self.last_received
            if self._adapter is not None and self.phase is Phase.OPEN:
                self._adapter.on_message(payload, False)
            return
        events = codec.receive_data(data)
        reply = codec.data_to_send()
        if reply:
            self._queue(reply)
        for event in events:
            kind = type(event)  # an identity test per event: this is the hot path
            if kind is BinaryMessage or kind is TextMessage:
                self.last_message = self.last_received
                if self._adapter is not None and self.phase is Phase.OPEN:
                    self._adapter.on_message(event.data, kind is TextMessage)  # type: ignore[union-attr]
            elif isinstance(event, CloseReceived):
                if self.phase is Phase.OPEN:
                    self._close_code, self._close_reason = event.code, event.reason
                self._finish()
            elif isinstance(event, ProtocolFailure):
                self._close_code, self._close_reason = event.code, event.reason
                self._finish()
            elif isinstance(event, Pong):
                pass  # any received byte already proved the peer alive

    def eof_received(self) -> bool | None:
        return False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self._codec is not None
        self.phase = Phase.CLOSED
        self._out.clear()
        self._listener.detach(self)
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            try:
                adapter.on_close()
            except Exception:
                log.exception("adapter failed to release session %s", self.session_id)
        if was_open:
            self._listener.connection_closed(self, self._close_code, self._close_reason)

    # Link: what the adapter calls

    def send_message(self, data: bytes, *, text: bool) -> None:
        if self.phase is Phase.OPEN and self._codec is not None:
            self._queue(self._codec.send_message(data, text=text))

    def send_delivery(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        *,
        text: bool,
        droppable: bool,
    ) -> None:
        codec = self._codec
        if self.phase is not Phase.OPEN or codec is None:
            return
        # Not paused: the transport holds at most the soft limit, so only our own list can tip
        # it over; far from the limits, a delivery is one append.
        near_limit = self._paused or self._out_bytes > self._soft_limit
        if near_limit and droppable and self._backlog() > self._soft_limit:
            self.dropped += 1
            self._listener.count_dropped()
            return
        if self._compressed:
            frame = codec.send_message(delivery.wire(form, build), text=text)
        else:
            # The whole frame is shared too: one header for all uncompressed connections.
            frames = delivery.frames
            shared = frames.get(form)
            if shared is None:
                opcode = Opcode.TEXT if text else Opcode.BINARY
                shared = frames[form] = encode_frame(opcode, delivery.wire(form, build))
            frame = shared
        if near_limit:
            self._queue(frame)  # with the hard limit's check
            return
        if not self._flush_scheduled:
            # The first delivery of this loop iteration goes out at once, so the peer can
            # start reading while the other subscribers are served; the rest are coalesced.
            self._flush_scheduled = True
            self._listener.schedule_flush(self)
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.write(frame)
            return
        self._out.append(frame)
        self._out_bytes += len(frame)

    def send_patched(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        offset: int,
        patch: bytes,
    ) -> None:
        codec = self._codec
        if self.phase is not Phase.OPEN or codec is None:
            return
        if self._compressed:
            data = delivery.wire(form, build)
            end = offset + len(patch)
            self._queue(codec.send_message(data[:offset] + patch + data[end:], text=False))
            return
        data = delivery.wire(form, build)
        frames = delivery.frames
        shared = frames.get(form)
        if shared is None:
            shared = frames[form] = encode_frame(Opcode.BINARY, data)
        # The header's length follows from the payload's, so the offset moves by that much.
        at = offset + len(shared) - len(data)
        self._queue(shared[:at] + patch + shared[at + len(patch) :])

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (the peer's close, or the timeout, ends it)."""
        if self.phase is Phase.HANDSHAKE:
            self._abort("closed before the handshake finished")
            return
        if self.phase is not Phase.OPEN or self._codec is None:
            return
        self._close_code, self._close_reason = code, reason
        self.phase = Phase.CLOSING
        self._deadline = self._listener.now() + self._listener.settings.close_timeout
        self._queue(self._codec.send_close(code, reason), force=True)

    def set_receive_timeout(self, seconds: float | None) -> None:
        self._receive_timeout = seconds

    def shutdown(self) -> None:
        """The server is stopping: let the adapter say goodbye, then close with 1001."""
        if self.phase is Phase.OPEN and self._adapter is not None:
            try:
                self._adapter.on_shutdown()
            except Exception:
                log.exception("adapter failed to say goodbye on session %s", self.session_id)
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    # housekeeping, called by the listener's timer

    def tick(self, now: float) -> None:
        """Enforce the handshake, ping, idle and close deadlines."""
        settings = self._listener.settings
        if self.phase is Phase.HANDSHAKE or self.phase is Phase.CLOSING:
            if now >= self._deadline:
                what = "handshake" if self.phase is Phase.HANDSHAKE else "closing handshake"
                self._abort(f"{what} timed out")
            return
        if self.phase is not Phase.OPEN or self._codec is None:
            return
        timeout = self._receive_timeout
        if timeout is not None and now - self.last_received >= timeout:
            self._receive_timeout = None  # once: the adapter decides what follows
            if self._adapter is not None:
                self._adapter.on_receive_timeout()
        elif settings.idle_timeout and now - self.last_message >= settings.idle_timeout:
            self.close(CloseCode.NORMAL, "idle timeout")
        elif self._ping_sent is not None:
            if now - self._ping_sent >= settings.ping_timeout:
                self._close_code, self._close_reason = CloseCode.ABNORMAL, "ping timeout"
                self.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        elif settings.ping_interval and now - self.last_received >= settings.ping_interval:
            self._ping_sent = now
            self._queue(self._codec.send_ping(b"wsbroker"), force=True)

    # internals

    def _handshake_data(self, data: bytes) -> None:
        if self.phase is not Phase.HANDSHAKE:
            return
        self._inbuf += data
        try:
            parsed = parse_request(self._inbuf)
            if parsed is None:
                return
            request, used = parsed
            rest = bytes(self._inbuf[used:])
            self._inbuf = bytearray()
            self._upgrade(request)
        except BadRequest as exc:
            self._reject(exc.status, exc.message, exc.headers)
            return
        if rest:
            self.data_received(rest)

    def _upgrade(self, request: Request) -> None:
        listener = self._listener
        if not is_upgrade(request):
            status, body, content_type = listener.http_route(request)
            self._reply_and_close(response(status, body=body, content_type=content_type))
            return
        key = check_upgrade(request)
        if listener.open_count > listener.settings.max_connections:
            raise BadRequest(503, "too many connections; try again later", (("Retry-After", "5"),))
        offered = header_tokens(request.header("sec-websocket-protocol"))
        selection = listener.registry.select(offered, request.path)
        if selection is None:
            raise BadRequest(400, "no adapter for this request")
        spec = selection.spec
        if spec.path_check is not None:
            reason = spec.path_check(request.path, request.query)
            if reason is not None:
                if selection.token is None and listener.registry.tokens:
                    reason += f"; or offer a subprotocol: {', '.join(listener.registry.tokens)}"
                raise BadRequest(400, reason)
        self.path, self.query, self.subprotocol = request.path, request.query, selection.protocol
        deflate = None
        if listener.settings.compression:
            deflate = negotiate(request.header("sec-websocket-extensions"))
        codec = ServerConnection(
            max_message_size=listener.settings.max_message_size,
            deflate=deflate[1] if deflate else None,
        )
        try:
            adapter = spec.factory(self, listener.context)
        except ValueError as exc:
            raise BadRequest(400, str(exc)) from None
        self._codec, self._adapter = codec, adapter
        self._compressed = codec.compressed
        self.phase = Phase.OPEN
        self._queue(switching_protocols(key, selection.token, deflate[0] if deflate else None))
        listener.connection_opened(self)
        adapter.on_open()

    def _reject(self, status: int, message: str, headers: tuple[tuple[str, str], ...]) -> None:
        log.info("refused peer=%s status=%d reason=%s", self.peer, status, message)
        self._reply_and_close(response(status, headers, (message + "\n").encode()))

    def _reply_and_close(self, data: bytes) -> None:
        self.phase = Phase.CLOSING
        self._deadline = self._listener.now() + self._listener.settings.close_timeout
        transport = self._transport
        if transport is not None:
            transport.write(data)
            transport.close()

    def _finish(self) -> None:
        """Both close frames are exchanged (or the peer failed): flush, then drop TCP first."""
        self.phase = Phase.CLOSING
        self._deadline = self._listener.now() + self._listener.settings.close_timeout
        self.flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection now, without a closing handshake."""
        self._abort(reason)

    def _abort(self, reason: str) -> None:
        if self._close_reason == "":
            self._close_code, self._close_reason = CloseCode.ABNORMAL, reason
        if self.phase is Phase.HANDSHAKE:
            log.info("dropped peer=%s reason=%s", self.peer, reason)
        self.phase = Phase.CLOSING
        if self._transport is not None:
            self._transport.abort()

    def _backlog(self) -> int:
        transport = self._transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return self._out_bytes + buffered

    def _queue(self, data: bytes, *, force: bool = False) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        # Only a paused transport, or a long list of our own, can be near the hard limit.
        soft = self._soft_limit
        if not force and (self._paused or self._out_bytes > soft) and self._over_hard_limit():
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._listener.schedule_flush(self)

    def _over_hard_limit(self) -> bool:
        if self._backlog() <= self._listener.settings.outgoing_hard_limit:
            return False
        self._close_code, self._close_reason = CloseCode.POLICY_VIOLATION, "slow consumer"
        self._listener.count_slow_disconnect()
        self._abort("outgoing buffer over its hard limit")
        return True

    def flush(self) -> None:
        """Write everything queued in this loop iteration with one socket write."""
        self._flush_scheduled = False
        out = self._out
        if not out or self._transport is None or self._transport.is_closing():
            out.clear()
            self._out_bytes = 0
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_bytes = 0
        self._transport.write(data)
