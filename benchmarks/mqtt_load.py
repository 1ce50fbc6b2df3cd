"""MQTT 3.1.1 over WebSocket for the load generator: hand-encoded packets and cheap clients.

Same rules as ``loadgen.py``: asyncio ``Protocol`` clients, no task per connection or message,
publish frames encoded and masked once before the run. Every MQTT packet travels in its own
binary WebSocket frame (what paho and MQTT.js do); writes are batched.

Receivers walk WebSocket frame headers (``loadgen.StreamClient``) and, inside data frames, MQTT
fixed headers. MQTT packets may span frames or share one, and frames may span reads: the walkers
carry a frame's remaining length and an MQTT packet's remaining length across calls, and only
copy bytes when they need the body of a packet that is cut (a QoS 1 packet id, a latency time
stamp, a CONNACK).

Latency: publishers put ``time.perf_counter_ns()`` in the first 8 payload bytes; receivers (same
process, same clock) subtract it from the time their read started.

Only for 127.0.0.1, like the rest of the load generator.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
import time
from collections.abc import Callable, Sequence

from benchmarks.loadgen import (
    OP_BINARY,
    ClientProtocol,
    Counters,
    FramePump,
    StreamClient,
    masked_frame,
)

__all__ = [
    "Keepalive",
    "MqttClient",
    "MqttPublisher",
    "StampedClient",
    "connect_packet",
    "publish_frames",
    "publish_packet",
    "subscribe_packet",
]

KEY = b"\x5a\xc3\x3c\xa5"  # every client frame uses this mask key (masked_frame's default)
_KEY_INT = int.from_bytes(KEY, "big")
_PUBACK_HEAD = bytes((0x82, 0x84)) + KEY  # FIN+binary, masked, 4 payload bytes
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
_client_ids = itertools.count()

PUBLISH, CONNACK, SUBACK, PUBACK = 3, 2, 9, 4


# --- packets (MQTT 3.1.1) --------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    """CONNECT, protocol level 4 (3.1.1), clean session, no will, no credentials."""
    return _packet(
        0x10, _string("MQTT") + bytes((4, 0x02)) + struct.pack("!H", keepalive) + _string(client_id)
    )


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    return _packet(0x82, struct.pack("!H", packet_id) + _string(topic_filter) + bytes((qos,)))


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    pid = struct.pack("!H", packet_id) if qos else b""
    return _packet(0x30 | qos << 1, _string(topic) + pid + payload)


def publish_frames(topic: str, payload: bytes, qos: int, count: int) -> bytes:
    """``count`` masked frames back to back; at QoS 1 with packet ids 1, 2, ... count."""
    if qos == 0:
        return masked_frame(OP_BINARY, publish_packet(topic, payload)) * count
    return b"".join(
        masked_frame(OP_BINARY, publish_packet(topic, payload, qos, pid))
        for pid in range(1, count + 1)
    )


# --- clients ---------------------------------------------------------------------------------


class MqttClient(StreamClient):
    """Upgrade with ``mqtt``, CONNECT (then SUBSCRIBE), then count received PUBLISH packets.

    ``ready`` resolves at CONNACK, or at SUBACK when subscribing. QoS 1 deliveries are answered
    with PUBACKs, all those of one read in one write. With ``stamps`` set to a list, each PUBLISH
    appends its latency in ns (the read's time, ``_now``, minus the payload's time stamp; see
    ``StampedClient``).
    """

    goodbye = masked_frame(OP_BINARY, DISCONNECT)
    not_ready = "closed before CONNACK/SUBACK"

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        *,
        subscribe: tuple[str, int] | None = None,
        counted: bool = True,
        on_receive: Callable[[], None] | None = None,
        path: str = "/mqtt",
    ) -> None:
        super().__init__(
            host, port, path, counters, subprotocol="mqtt", counted=counted, on_receive=on_receive
        )
        self.client_id = f"lg{os.getpid()}-{next(_client_ids)}"
        self.subscription = subscribe
        self.stamps: list[int] | None = None
        self.acked = 0  # PUBACKs received (publishers)
        self._mskip = 0  # bytes of the current MQTT packet still to skip
        self._mbuf = b""  # the start of a cut packet whose body is needed
        self._now = 0

    # --- connection

    def opened(self) -> None:
        self.send(connect_packet(self.client_id))

    def send(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(OP_BINARY, packet))

    def _reply(self, kind: int, body: bytes) -> None:
        """CONNACK and SUBACK (rare, off the hot path)."""
        if self.ready.done():
            return
        if kind == CONNACK:
            if len(body) < 2 or body[1] != 0:
                self.ready.set_exception(ConnectionError(f"CONNACK refused: {body!r}"))
            elif self.subscription is None:
                self.ready.set_result(None)
            else:
                self.send(subscribe_packet(1, *self.subscription))
        elif kind == SUBACK:
            if len(body) < 3 or body[2] == 0x80:
                self.ready.set_exception(ConnectionError(f"SUBACK refused: {body!r}"))
            else:
                self.ready.set_result(None)

    # --- the hot path: MQTT fixed headers in the data frames' byte stream

    def payload(self, data: bytes, i: int, end: int) -> None:
        """Walk MQTT packets in ``data[i:end]``, a piece of the MQTT byte stream."""
        skip = self._mskip
        if skip:
            if skip >= end - i:
                self._mskip = skip - (end - i)
                return
            i += skip
            self._mskip = 0
        if self._mbuf:
            data = self._mbuf + data[i:end]
            self._mbuf = b""
            i = 0
            end = len(data)
        got = 0
        stamps = self.stamps
        while i < end:
            b0 = data[i]
            j = i + 1
            if j >= end:
                break
            rl = data[j]
            j += 1
            if rl & 0x80:  # a multi-byte remaining length (never for our 64-byte messages)
                rl &= 0x7F
                shift = 7
                while j < end and shift <= 21:
                    b = data[j]
                    j += 1
                    rl |= (b & 0x7F) << shift
                    if not b & 0x80:
                        break
                    shift += 7
                else:
                    if shift > 21:
                        raise ConnectionError("malformed MQTT remaining length")
                    break  # cut inside the length: keep the piece for the next read
            stop = j + rl
            kind = b0 >> 4
            if kind == PUBLISH:
                if b0 & 0x06 or stamps is not None:
                    if stop > end:
                        break  # the body is needed and cut: keep the piece
                    p = j + 2 + ((data[j] << 8) | data[j + 1])
                    if b0 & 0x06:
                        pid = (data[p] << 8) | data[p + 1]
                        p += 2
                        self._acks.append(
                            _PUBACK_HEAD + ((0x40020000 | pid) ^ _KEY_INT).to_bytes(4, "big")
                        )
                    if stamps is not None:
                        stamps.append(self._now - int.from_bytes(data[p : p + 8], "big"))
                got += 1
            elif kind == PUBACK:
                self.acked += 1
            elif kind in (CONNACK, SUBACK):
                if stop > end:
                    break
                self._reply(kind, data[j:stop])
            if stop > end:
                self._mskip = stop - end
                i = end
                break
            i = stop
        if i < end:
            self._mbuf = data[i:end]
        self._got += got


class StampedClient(MqttClient):
    """A subscriber that notes the time each read starts, for the latency of ``stamps``.

    Only the latency scenario's subscribers pay the clock and the extra call per read.
    """

    def _count(self, data: bytes) -> None:
        self._now = time.perf_counter_ns()
        super()._count(data)


class MqttPublisher(FramePump, MqttClient):
    """Writes pre-encoded PUBLISH frames as fast as flow control and ``may_send()`` allow.

    ``frames`` holds ``count`` frames of ``frame_len`` bytes each, back to back; every write is
    the next ``batch`` of them, wrapping around (so QoS 1 packet ids cycle through the ring).
    """

    def __init__(
        self,
        host: str,
        port: int,
        counters: Counters,
        frames: bytes,
        count: int,
        *,
        batch: int,
        may_send: Callable[[MqttPublisher], bool],
        batches_per_pump: int = 64,
    ) -> None:
        super().__init__(host, port, counters, counted=False)
        if len(frames) % count or count < batch:
            raise ValueError("frames must hold `count` equal frames, at least `batch` of them")
        self._init_pump()
        self.frames = frames
        self.count = count
        self.frame_len = len(frames) // count
        self.batch = self.batch_frames = batch
        self.batches_per_pump = batches_per_pump
        self.may_send = may_send
        self._next = 0  # index of the next frame in the ring

    def may_write(self) -> bool:
        return self.may_send(self)

    def next_batch(self) -> bytes:
        if self.count == self.batch:
            return self.frames
        fl, start = self.frame_len, self._next
        stop = start + self.batch
        if stop <= self.count:
            self._next = stop % self.count
            return self.frames[start * fl : stop * fl]
        self._next = stop - self.count
        return self.frames[start * fl :] + self.frames[: self._next * fl]

    def _count(self, data: bytes) -> None:
        super()._count(data)
        if self.blocked:  # PUBACKs came in: the in-flight window may have room again
            self.kick()


class Keepalive:
    """PINGREQ on every client each ``every`` seconds (CONNECT promises one within 60 s)."""

    def __init__(self, clients: Sequence[ClientProtocol], every: float = 30.0) -> None:
        self.clients = clients
        self.every = every
        self.frame = masked_frame(OP_BINARY, PINGREQ)
        self.handle = asyncio.get_running_loop().call_later(every, self.ping)

    def ping(self) -> None:
        for c in self.clients:
            if c.transport is not None and not c.transport.is_closing():
                c.transport.write(self.frame)
        self.handle = asyncio.get_running_loop().call_later(self.every, self.ping)

    def cancel(self) -> None:
        self.handle.cancel()
