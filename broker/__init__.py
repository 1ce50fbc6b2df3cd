"""wsbroker: one topic space for MQTT, STOMP, WAMP and plain WebSocket clients."""

__version__ = "0.1.0"
