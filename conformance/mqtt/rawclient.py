"""A raw MQTT-over-WebSocket client: bytes in, packets out, nothing hidden, nothing automatic.

For what paho cannot express: not acknowledging a message, sending malformed packets, splitting
packets across WebSocket frames, reading the exact flags and properties the server chose.

It runs on the ``websockets`` library's threaded client. Every wait is a blocking ``recv`` with a
deadline (the library's reader thread wakes it up); nothing sleeps or polls.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterable
from types import TracebackType

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from conformance.mqtt import codec
from conformance.mqtt.codec import (
    CONNACK,
    DISCONNECT,
    MQTT_5,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    UNSUBACK,
    Incomplete,
    Packet,
    PropList,
    Will,
)

__all__ = ["TIMEOUT", "ConnectionGone", "RawMqtt"]

TIMEOUT = 5.0


class ConnectionGone(AssertionError):
    """The server closed the connection while the test was waiting for a packet."""


class RawMqtt:
    """One WebSocket connection speaking MQTT ``version`` (3 = 3.1, 4 = 3.1.1, 5 = 5.0)."""

    def __init__(
        self,
        url: str,
        *,
        version: int = MQTT_5,
        subprotocol: str | None = "mqtt",
        path: str = "/mqtt",
    ) -> None:
        self.version = version
        # The opening handshake runs in a thread, so that a test opening several connections
        # waits for them together (Mosquitto takes ~0.1-0.2 s per handshake); the first use of
        # ``ws`` waits for it, with a deadline.
        self._ws: ClientConnection | None = None
        self._open_error: BaseException | None = None
        self._opened = threading.Event()
        threading.Thread(
            target=self._open,
            args=(url + path, subprotocol),
            name=f"mqtt-ws-open-{path}",
            daemon=True,
        ).start()
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self.closed = False
        self.text_frames = 0  # data frames the server sent as text (MQTT requires binary)
        self.awaiting_pubrel: set[int] = set()  # QoS 2 messages we sent PUBREC for

    # ----------------------------------------------------------------- plumbing

    def _open(self, uri: str, subprotocol: str | None) -> None:
        try:
            # Entered as a context manager (websockets >= 17.1 warns otherwise); see close().
            self._ws = ws_connect(
                uri,
                subprotocols=[Subprotocol(subprotocol)] if subprotocol else None,
                compression=None,
                proxy=None,
                open_timeout=TIMEOUT,
                close_timeout=2,
                ping_interval=None,
                max_size=None,
                # Unbounded: a reader thread blocked on a full queue could not see the server's
                # close frame, and every close of a busy subscriber would take close_timeout.
                max_queue=None,
            ).__enter__()
        except BaseException as exc:
            self._open_error = exc
        finally:
            self._opened.set()

    @property
    def ws(self) -> ClientConnection:
        """The WebSocket connection, once the opening handshake is over (raises its error)."""
        if not self._opened.wait(TIMEOUT + 1):
            raise TimeoutError("the WebSocket opening handshake did not finish")
        if self._open_error is not None:
            raise self._open_error
        assert self._ws is not None
        return self._ws

    def __enter__(self) -> RawMqtt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    def next_id(self) -> int:
        return (next(self._ids) - 1) % 65535 + 1

    def send(self, data: bytes) -> None:
        """One WebSocket binary message holding ``data`` (any number of packets, or a part)."""
        self.ws.send(data)

    def send_fragmented(self, parts: Iterable[bytes]) -> None:
        """One WebSocket message sent as several frames (continuation frames), one per part."""
        self.ws.send(list(parts))

    def close(self) -> None:
        """Close the WebSocket (a close frame, no MQTT DISCONNECT: for MQTT an abnormal end)."""
        self._opened.wait(TIMEOUT + 1)
        if self._ws is None:
            return
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._ws.close()
        self._ws.close_socket()

    def drop(self) -> None:
        """End the TCP connection without a WebSocket close or MQTT DISCONNECT (network failure)."""
        self.closed = True
        self.ws.close_socket()

    # ----------------------------------------------------------------- receiving

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            data = self.ws.recv(timeout=remaining)
        except ConnectionClosed as exc:
            self.closed = True
            raise ConnectionGone(f"server closed the connection ({exc})") from None
        if isinstance(data, str):
            self.text_frames += 1
            data = data.encode("utf-8")
        self._buf += data

    def recv(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet; TimeoutError if none within ``timeout``; ConnectionGone if closed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw, n = codec.split_packet(self._buf)
            except Incomplete:
                try:
                    self._fill(deadline)
                except TimeoutError:
                    raise TimeoutError(f"no packet from the server within {timeout} s") from None
                continue
            del self._buf[:n]
            return codec.parse_packet(raw, self.version)

    def expect(self, ptype: int, timeout: float = TIMEOUT) -> Packet:
        pkt = self.recv(timeout)
        assert pkt.type == ptype, f"expected {codec.PACKET_NAMES[ptype]}, got {pkt!r}"
        return pkt

    def packets_within(self, seconds: float) -> list[Packet]:
        """Every packet that arrives in the next ``seconds`` (a bounded wait, used to show absence).

        Raises ConnectionGone if the server closes the connection meanwhile.
        """
        deadline = time.monotonic() + seconds
        got: list[Packet] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return got
            try:
                got.append(self.recv(remaining))
            except TimeoutError:
                return got

    def until_closed(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Every packet until the server closes the connection; AssertionError if it stays open."""
        deadline = time.monotonic() + timeout
        got: list[Packet] = []
        while True:
            try:
                got.append(self.recv(max(deadline - time.monotonic(), 0.0)))
            except ConnectionGone:
                return got
            except TimeoutError:
                raise AssertionError(
                    f"the server kept the connection open for {timeout} s; it sent {got!r}"
                ) from None

    def stays_open(self, seconds: float) -> list[Packet]:
        """Assert the connection stays open for ``seconds``; the packets that came meanwhile."""
        try:
            return self.packets_within(seconds)
        except ConnectionGone:
            raise AssertionError(f"the server closed the connection within {seconds} s") from None

    # ----------------------------------------------------------------- conversations

    def connect(
        self,
        client_id: str = "",
        *,
        clean: bool = True,
        keepalive: int = 60,
        props: PropList | None = None,
        will: Will | None = None,
        username: str | None = None,
        password: bytes | None = None,
        expect_success: bool = True,
    ) -> Packet:
        """Send CONNECT, return the CONNACK (asserting success unless told otherwise)."""
        self.send(
            codec.connect(
                client_id,
                version=self.version,
                clean=clean,
                keepalive=keepalive,
                props=props,
                will=will,
                username=username,
                password=password,
            )
        )
        connack = self.expect(CONNACK)
        if expect_success:
            assert connack.reason_code == 0, f"connection refused: {connack!r}"
        return connack

    def subscribe(
        self,
        *filters: tuple[str, int],
        props: PropList | None = None,
    ) -> Packet:
        """SUBSCRIBE; return the SUBACK (for 3.1.1 the return codes are in ``reason_codes`` too)."""
        pid = self.next_id()
        self.send(codec.subscribe(pid, filters, props=props, version=self.version))
        suback = self.wait_for(SUBACK)
        assert suback.packet_id == pid, f"SUBACK for {suback.packet_id}, sent {pid}"
        return suback

    def unsubscribe(self, *filters: str, props: PropList | None = None) -> Packet:
        pid = self.next_id()
        self.send(codec.unsubscribe(pid, filters, props=props, version=self.version))
        unsuback = self.wait_for(UNSUBACK)
        assert unsuback.packet_id == pid
        return unsuback

    def wait_for(
        self, ptype: int, timeout: float = TIMEOUT, packet_id: int | None = None
    ) -> Packet:
        """The next packet of ``ptype`` (and ``packet_id``, if given); any other packets that come
        before it are kept, in order, for later ``recv`` calls."""
        deadline = time.monotonic() + timeout
        held: list[Packet] = []
        try:
            while True:
                pkt = self.recv(max(deadline - time.monotonic(), 0.0))
                if pkt.type == ptype and (packet_id is None or pkt.packet_id == packet_id):
                    return pkt
                if pkt.type in (CONNACK, DISCONNECT):
                    raise AssertionError(f"expected {codec.PACKET_NAMES[ptype]}, got {pkt!r}")
                held.append(pkt)
        finally:
            self._buf[:0] = b"".join(p.raw for p in held)

    def publish(
        self,
        topic: str,
        payload: bytes = b"",
        *,
        qos: int = 0,
        retain: bool = False,
        props: PropList | None = None,
    ) -> Packet | None:
        """PUBLISH and complete the flow (PUBACK, or PUBREC/PUBREL/PUBCOMP); the final ack."""
        pid = self.next_id() if qos else None
        self.send(
            codec.publish(
                topic,
                payload,
                qos=qos,
                retain=retain,
                packet_id=pid,
                props=props,
                version=self.version,
            )
        )
        if qos == 0:
            return None
        if qos == 1:
            return self.wait_for(PUBACK, packet_id=pid)
        pubrec = self.wait_for(PUBREC, packet_id=pid)
        if pubrec.reason_code is not None and pubrec.reason_code >= 0x80:
            return pubrec
        self.send(codec.ack(PUBREL, pid))  # type: ignore[arg-type]
        return self.wait_for(PUBCOMP, packet_id=pid)

    def receive_publish(self, timeout: float = TIMEOUT, *, ack: bool = True) -> Packet:
        """The next PUBLISH, acknowledged unless ``ack`` is false (QoS 1: PUBACK; QoS 2: PUBREC,
        and the PUBCOMP is sent when the server's PUBREL arrives during a later receive)."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self.recv(max(deadline - time.monotonic(), 0.0))
            if pkt.type == PUBREL and pkt.packet_id in self.awaiting_pubrel:
                assert pkt.flags == 0b0010, f"PUBREL flags {pkt.flags:04b} [MQTT-3.6.1-1]"
                self.awaiting_pubrel.discard(pkt.packet_id)
                self.send(codec.ack(PUBCOMP, pkt.packet_id))
                continue
            assert pkt.type == PUBLISH, f"expected PUBLISH, got {pkt!r}"
            if ack:
                self.ack_publish(pkt)
            return pkt

    def ack_publish(self, pkt: Packet) -> None:
        """PUBACK (QoS 1) or PUBREC (QoS 2; the PUBCOMP follows the PUBREL in receive_publish)."""
        if pkt.qos == 1:
            self.send(codec.ack(PUBACK, pkt.packet_id))  # type: ignore[arg-type]
        elif pkt.qos == 2:
            assert pkt.packet_id is not None
            self.awaiting_pubrel.add(pkt.packet_id)
            self.send(codec.ack(PUBREC, pkt.packet_id))

    def complete_pubrels(self, timeout: float = TIMEOUT) -> None:
        """Wait for the PUBRELs of every QoS 2 message acknowledged so far; send the PUBCOMPs."""
        while self.awaiting_pubrel:
            pkt = self.wait_for(PUBREL, timeout)
            if pkt.packet_id in self.awaiting_pubrel:
                self.awaiting_pubrel.discard(pkt.packet_id)
                self.send(codec.ack(PUBCOMP, pkt.packet_id))

    def publishes_until(
        self, marker_topic: str, timeout: float = TIMEOUT, *, ack: bool = True
    ) -> list[Packet]:
        """Every PUBLISH before the first one on ``marker_topic`` (which is consumed)."""
        deadline = time.monotonic() + timeout
        got: list[Packet] = []
        while True:
            pkt = self.receive_publish(max(deadline - time.monotonic(), 0.0), ack=ack)
            if pkt.topic == marker_topic:
                return got
            got.append(pkt)

    def ping(self, timeout: float = TIMEOUT) -> None:
        self.send(codec.pingreq())
        self.wait_for(PINGRESP, timeout)

    def disconnect(self, reason_code: int | None = None, props: PropList | None = None) -> None:
        """A normal end: DISCONNECT, then close the WebSocket."""
        with contextlib.suppress(ConnectionClosed):
            self.send(codec.disconnect(reason_code, props))
        self.close()

    def expect_closed(
        self,
        reasons: Iterable[int] | None = None,
        *,
        require_disconnect: bool = False,
        timeout: float = TIMEOUT,
        allow_connack: bool = False,
    ) -> Packet | None:
        """Read until the server closes; check what it said on the way out.

        MQTT 5.0 section 4.13: on a Malformed Packet or Protocol Error the server MUST close the
        connection and SHOULD send a DISCONNECT with the reason code first. So a DISCONNECT is
        optional unless ``require_disconnect``; when there is one, its reason code must be one of
        ``reasons``. A CONNACK may come first only when ``allow_connack`` (errors in CONNECT).
        Returns the DISCONNECT (or refusing CONNACK), if any.
        """
        packets = self.until_closed(timeout)
        allowed = set(reasons) if reasons is not None else None
        final: Packet | None = None
        for pkt in packets:
            if pkt.type == DISCONNECT:
                assert final is None or final.type != DISCONNECT, f"two DISCONNECTs: {packets}"
                final = pkt
            elif pkt.type == CONNACK and allow_connack:
                final = pkt
            elif pkt.type in (PUBLISH, PUBACK, PUBREC, PUBCOMP, PINGRESP, SUBACK, UNSUBACK):
                # Answers to packets sent before the bad one may still be on their way.
                continue
            else:
                raise AssertionError(f"unexpected {pkt!r} before the close")
        if final is not None and allowed is not None:
            assert final.reason_code in allowed, (
                f"{final.name} reason code 0x{final.reason_code:02x}, expected one of "
                f"{sorted(hex(r) for r in allowed)}"
            )
        if require_disconnect and self.version == MQTT_5:
            assert final is not None, (
                "the server closed without a DISCONNECT/CONNACK stating the reason "
                f"(expected one of {sorted(hex(r) for r in allowed or ())})"
            )
        return final
