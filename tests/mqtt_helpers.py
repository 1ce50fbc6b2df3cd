"""Drive MqttSession adapters without sockets: a fake Link and a client-side packet reader."""

from __future__ import annotations

from typing import Any

from broker.config import Settings
from broker.core.broker import Broker
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
from tests.fakes import FakeClock, FakeLink


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
        self.link = FakeLink(binary_only=True)
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
