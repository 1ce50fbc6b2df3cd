"""The protocol-neutral message that crosses the broker, and one delivery of it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

TEXT_PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"


@dataclass(slots=True)
class Message:
    """One published message, in the canonical (MQTT-style) topic space of a realm."""

    topic: str
    payload: bytes
    content_type: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    response_topic: str | None = None
    correlation_data: bytes | None = None
    expiry: float | None = None  # seconds left to live when handed to the core
    payload_format: int | None = None  # MQTT 5 payload format indicator: 1 means UTF-8 text
    qos: int = 0
    retain: bool = False
    origin: str | None = None


class Delivery:
    """A message on its way to subscribers: each wire form is built once and shared."""

    __slots__ = ("_wire", "frames", "message")

    def __init__(
        self, message: Message, form: Hashable | None = None, data: bytes | None = None
    ) -> None:
        """`form` and `data`: a wire form the message already has (the publisher's own packet)."""
        self.message = message
        self._wire: dict[Hashable, bytes] = {} if data is None else {form: data}
        # The transport's framing of each form, shared by its uncompressed connections; the
        # transport owns the keys and values (the opcode follows from the form and message).
        self.frames: dict[Hashable, bytes] = {}

    def wire(self, form: Hashable, build: Callable[[Message], bytes]) -> bytes:
        """Return the bytes of `form`, building them on first use only."""
        data = self._wire.get(form)
        if data is None:
            data = self._wire[form] = build(self.message)
        return data
