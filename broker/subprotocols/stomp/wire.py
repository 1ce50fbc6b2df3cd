"""Between STOMP frames and core Messages: destinations, SEND to Message, Message to MESSAGE."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from broker.core.message import Message
from broker.subprotocols.stomp.codec import encode_headers
from broker.subprotocols.stomp.frames import VERSIONS, Frame, Version

TOPIC_PREFIX = "/topic/"
QUEUE_PREFIX = "/queue/"
MAX_QUEUE_NAME = 255

# Headers STOMP itself defines on SEND or MESSAGE: never user headers in either direction.
_PROTOCOL_HEADERS = frozenset(
    {
        "ack",
        "content-length",
        "content-type",
        "destination",
        "message-id",
        "receipt",
        "redelivered",
        "subscription",
        "transaction",
    }
)


class BadDestination(ValueError):
    """A destination this broker does not serve; the message says which ones it does."""


def parse_destination(destination: str) -> tuple[bool, str]:
    """(is_queue, name) of `/queue/<name>` or `/topic/<topic or filter>`."""
    if destination.startswith(TOPIC_PREFIX) and len(destination) > len(TOPIC_PREFIX):
        return False, destination[len(TOPIC_PREFIX) :]
    if destination.startswith(QUEUE_PREFIX) and len(destination) > len(QUEUE_PREFIX):
        name = destination[len(QUEUE_PREFIX) :]
        if len(name) > MAX_QUEUE_NAME or "+" in name or "#" in name:
            raise BadDestination(
                f"queue name {name[:40]!r} must be at most {MAX_QUEUE_NAME} characters, "
                "without '+' or '#'"
            )
        return True, name
    raise BadDestination(
        f"destination {destination[:100]!r} is not served here: use "
        f"{TOPIC_PREFIX}<topic> (publish/subscribe, '+' and '#' wildcards) or "
        f"{QUEUE_PREFIX}<name> (work queue)"
    )


def message_from_send(frame: Frame, topic: str, origin: str) -> Message:
    """The core Message for a SEND: body as sent, content type kept, other headers as user's."""
    user = tuple((n, v) for n, v in frame.headers if n not in _PROTOCOL_HEADERS)
    return Message(
        topic,
        frame.body,
        content_type=frame.header("content-type"),
        user_properties=user,
        origin=origin,
    )


def _representable(name: str, value: str, version: Version) -> bool:
    try:
        encode_headers(((name, value),), version)
    except ValueError:
        return False
    return True


def message_tail(message: Message, destination: str, version: Version) -> bytes:
    """A MESSAGE frame from its destination header on: what every subscriber shares."""
    headers = [("destination", destination)]
    if message.content_type is not None:
        headers.append(("content-type", message.content_type))
    headers.append(("content-length", str(len(message.payload))))
    for name, value in message.user_properties:
        # A header 1.0 cannot carry (a newline) is left out rather than mangled.
        if name and name not in _PROTOCOL_HEADERS and _representable(name, value, version):
            headers.append((name, value))
    return b"".join((encode_headers(headers, version), b"\n", message.payload, b"\x00"))


def is_utf8(message: Message) -> bytes:
    """b"t" when the payload is valid UTF-8 (the frame may go as text), else b"b"."""
    try:
        message.payload.decode("utf-8")
    except UnicodeDecodeError:
        return b"b"
    return b"t"


def _tail_builder(version: Version) -> Callable[[Message], bytes]:
    def build(message: Message) -> bytes:
        return message_tail(message, TOPIC_PREFIX + message.topic, version)

    return build


# By version: the shared form of a topic MESSAGE's tail, and its builder.
TOPIC_TAIL_FORMS: dict[Version, tuple[Hashable, Callable[[Message], bytes]]] = {
    version: (("stomp-tail", version), _tail_builder(version)) for version in VERSIONS
}
TEXT_FORM: Hashable = "stomp-utf8"


def negotiate(accept_version: str | None) -> Version | None:
    """The highest version both sides speak (no header: 1.0), or None."""
    if accept_version is None:
        return "1.0"
    offered = {token.strip() for token in accept_version.split(",")}
    for version in reversed(VERSIONS):
        if version in offered:
            return version
    return None


def parse_heart_beat(value: str | None) -> tuple[int, int]:
    """(cx, cy) of a `heart-beat` header, in ms; ValueError when it is not two integers."""
    if value is None:
        return 0, 0
    cx, sep, cy = value.partition(",")
    if not sep or not cx.strip().isdigit() or not cy.strip().isdigit():
        raise ValueError(f"heart-beat header {value[:40]!r} must be two integers, 'cx,cy'")
    return int(cx), int(cy)
