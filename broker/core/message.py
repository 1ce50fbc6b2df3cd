"""The protocol-neutral message that crosses the broker, and one delivery of it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

TEXT_PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"


@dataclass(slots=True, frozen=True)
class Audience:
    """Who may receive a message, by session and identity, as its publisher restricted it."""

    exclude: frozenset[int] = frozenset()
    eligible: frozenset[int] | None = None
    exclude_authid: frozenset[str] = frozenset()
    eligible_authid: frozenset[str] | None = None
    exclude_authrole: frozenset[str] = frozenset()
    eligible_authrole: frozenset[str] | None = None

    def admits(self, session: int, authid: str | None, authrole: str | None) -> bool:
        if session in self.exclude or (self.eligible is not None and session not in self.eligible):
            return False
        if authid in self.exclude_authid or authrole in self.exclude_authrole:
            return False
        if self.eligible_authid is not None and authid not in self.eligible_authid:
            return False
        return self.eligible_authrole is None or authrole in self.eligible_authrole


@dataclass(slots=True, frozen=True)
class Publisher:
    """A publisher that chose to be disclosed to the receivers."""

    session: int
    authid: str | None = None
    authrole: str | None = None


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
    audience: Audience | None = None  # restrictions the publisher set (WAMP exclude/eligible)
    publisher: Publisher | None = None  # set only when the publisher asked to be disclosed


class Delivery:
    """A message on its way to subscribers: each wire form is built once and shared."""

    __slots__ = ("_wire", "frames", "memo", "message")

    def __init__(
        self, message: Message, form: Hashable | None = None, data: bytes | None = None
    ) -> None:
        """`form` and `data`: a wire form the message already has (the publisher's own packet)."""
        self.message = message
        self._wire: dict[Hashable, bytes] = {} if data is None else {form: data}
        # The transport's framing of each form, shared by its uncompressed connections; the
        # transport owns the keys and values (the opcode follows from the form and message).
        self.frames: dict[Hashable, bytes] = {}
        # Values (not wire forms) an adapter works out once per delivery for all its
        # connections, e.g. a publication id; the core never reads it.
        self.memo: dict[Hashable, object] | None = None

    def wire(self, form: Hashable, build: Callable[[Message], bytes]) -> bytes:
        """Return the bytes of `form`, building them on first use only."""
        data = self._wire.get(form)
        if data is None:
            data = self._wire[form] = build(self.message)
        return data
