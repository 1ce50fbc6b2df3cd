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

    __slots__ = ("_frames", "_wire", "message")

    def __init__(self, message: Message) -> None:
        self.message = message
        self._wire: dict[Hashable, bytes] = {}
        self._frames: dict[Hashable, bytes] | None = None

    def wire(self, form: Hashable, build: Callable[[Message], bytes]) -> bytes:
        """Return the bytes of `form`, building them on first use only."""
        data = self._wire.get(form)
        if data is None:
            data = self._wire[form] = build(self.message)
        return data

    def store(self, form: Hashable, data: bytes) -> bytes:
        """Keep `data` as the bytes of `form` for the connections that follow; return it."""
        self._wire[form] = data
        return data

    def frame(self, form: Hashable) -> bytes | None:
        """The transport's framing of `form`, if a connection built it already."""
        frames = self._frames
        return None if frames is None else frames.get(form)

    def store_frame(self, form: Hashable, data: bytes) -> bytes:
        """Keep the transport's framing of `form` (its opcode follows from form and message)."""
        if self._frames is None:
            self._frames = {}
        self._frames[form] = data
        return data
