"""Drive MqttSession adapters without sockets: a fake Link and a client-side packet reader."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from typing import Any

from broker.config import Settings
from broker.core.broker import Broker
from broker.core.message import Delivery, Message
from broker.subprotocols.base import AdapterContext
from broker.subprotocols.mqtt.codec import PacketReader, ProtocolViolation, encode
from broker.subprotocols.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Packet,
    Properties,
    Will,
)
from broker.subprotocols.mqtt.session import MqttSession

_ids = itertools.count(1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLink:
    """Records what the adapter sends; `closed` holds the close it asked for."""

    def __init__(self) -> None:
        self.session_id = f"link-{next(_ids)}"
        self.peer = "127.0.0.1:1"
        self.path = "/mqtt"
        self.query = ""
        self.subprotocol: str | None = "mqtt"
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.receive_timeout: float | None = None

    def send_message(self, data: bytes, *, text: bool) -> None:
        assert not text, "MQTT goes in binary frames"
        if self.closed is None:
            self.sent.append(data)

    def send_delivery(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        *,
        text: bool,
        droppable: bool,
    ) -> None:
        self.send_message(delivery.wire(form, build), text=text)

    def send_patched(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        offset: int,
        patch: bytes,
    ) -> None:
        data = delivery.wire(form, build)
        self.send_message(data[:offset] + patch + data[offset + len(patch) :], text=False)

    def close(self, code: int, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def set_receive_timeout(self, seconds: float | None) -> None:
        self.receive_timeout = seconds


class Harness:
    """One broker core and the settings MQTT sessions are made with."""

    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock()
        self.broker = Broker(clock=self.clock)
        self.settings = Settings(**settings)
        self.context = AdapterContext(self.broker, self.settings)

    def client(self, version: int = 4) -> Client:
        return Client(self, version)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.broker.timers.run_due(self.clock.now)


class Client:
    """A client's end: sends packets into an MqttSession, reads what it answered."""

    def __init__(self, harness: Harness, version: int) -> None:
        self.harness = harness
        self.version = version
        self.link = FakeLink()
        self.session = MqttSession(self.link, harness.context)
        self.session.on_open()
        self.reader = PacketReader(server=False, version=version)
        self.pending: list[Packet | ProtocolViolation] = []  # read but not yet looked at

    def send(self, packet: Packet) -> None:
        self.send_bytes(encode(packet, self.version))

    def send_bytes(self, data: bytes) -> None:
        self.session.on_message(data, False)

    def received(self) -> list[Packet | ProtocolViolation]:
        data = b"".join(self.link.sent)
        self.link.sent.clear()
        packets = [*self.pending, *self.reader.receive_data(data)]
        self.pending = []
        return packets

    def connect(
        self,
        client_id: str = "c1",
        *,
        clean: bool = True,
        keep_alive: int = 60,
        will: Will | None = None,
        properties: Properties | None = None,
        username: str | None = None,
    ) -> ConnAck:
        name, level = ("MQIsdp", 3) if self.version == 3 else ("MQTT", self.version)
        self.send(
            Connect(
                name,
                level,
                clean,
                keep_alive,
                client_id,
                will=will,
                username=username,
                properties=properties or Properties(),
            )
        )
        packets = self.received()
        assert packets, "no CONNACK"
        connack = packets[0]
        assert isinstance(connack, ConnAck), packets
        self.pending = packets[1:]
        return connack

    def drop(self) -> None:
        """The network connection ends (after whatever close the adapter asked for)."""
        self.session.on_close()

    @property
    def five(self) -> bool:
        return self.version == MQTT_5
