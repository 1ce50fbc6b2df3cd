"""MQTT 3.1, 3.1.1 and 5.0 over WebSocket."""

from __future__ import annotations

from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.mqtt.session import MqttSession
from broker.subprotocols.registry import AdapterSpec


def _factory(link: Link, context: AdapterContext) -> MqttSession:
    return MqttSession(link, context)


SPEC = AdapterSpec(name="mqtt", tokens=("mqtt", "mqttv3.1"), factory=_factory, paths=("/mqtt",))
