"""Plain WebSocket messages: the path names the topic, `?subscribe=` names filters."""

from __future__ import annotations

from urllib.parse import unquote

from broker.core.message import TEXT_PLAIN, Delivery, Message
from broker.core.realm import Realm, Subscription
from broker.core.topics import InvalidTopic, validate_topic_filter, validate_topic_name
from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.registry import AdapterSpec

PATH_PREFIX = "/topics/"
MAX_FILTERS = 64
OFFER_HINT = "plain messages need the path /topics/<topic>"
_TEXT_FLAG = b"t"
_BINARY_FLAG = b"b"


def parse_target(path: str, query: str) -> tuple[str, list[str]]:
    """The topic and subscribe filters a raw client asks for; raise ValueError saying why not."""
    if not path.startswith(PATH_PREFIX) or len(path) == len(PATH_PREFIX):
        raise ValueError(f"no subprotocol offered and {path!r} is not a topic path: {OFFER_HINT}")
    topic = unquote(path[len(PATH_PREFIX) :], errors="strict")
    validate_topic_name(topic)
    filters: list[str] = []
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if name != "subscribe":
            continue
        # unquote, not unquote_plus: '+' is the one-level wildcard, not a space.
        topic_filter = unquote(value, errors="strict")
        validate_topic_filter(topic_filter)
        filters.append(topic_filter)
        if len(filters) > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} subscribe filters")
    return topic, filters or [topic]


def check_path(path: str, query: str) -> str | None:
    """A reason to refuse the upgrade with 400, or None."""
    try:
        parse_target(path, query)
    except (ValueError, InvalidTopic) as exc:
        return str(exc)
    return None


def is_text(message: Message) -> bool:
    """A raw client gets a text frame for valid UTF-8 that is declared text or JSON."""
    content_type = message.content_type
    if content_type is None or not (
        content_type.startswith("text/") or "json" in content_type.partition(";")[0]
    ):
        return False
    try:
        message.payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _kind(message: Message) -> bytes:
    return _TEXT_FLAG if is_text(message) else _BINARY_FLAG


def _payload(message: Message) -> bytes:
    return message.payload


class RawSession:
    """One raw client: publishes what it sends to its path's topic, hears its filters."""

    __slots__ = ("_filters", "_link", "_realm", "_topic", "session_id")

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self._link = link
        self.session_id = link.session_id
        self._realm: Realm = context.broker.default_realm
        self._topic, self._filters = parse_target(link.path, link.query)

    def on_open(self) -> None:
        for topic_filter in self._filters:
            for retained in self._realm.subscribe(Subscription(self, topic_filter)):
                self._send(Delivery(retained))

    def on_message(self, data: bytes, text: bool) -> None:
        self._realm.publish(
            Message(
                self._topic,
                data,
                content_type=TEXT_PLAIN if text else None,
                payload_format=1 if text else None,
                origin=self.session_id,
            )
        )

    def on_close(self) -> None:
        self._realm.unsubscribe_all(self)

    def on_receive_timeout(self) -> None:
        pass  # a raw client never sets one

    def on_shutdown(self) -> None:
        pass  # the 1001 close says it all

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        self._send(delivery)

    def _send(self, delivery: Delivery) -> None:
        text = delivery.wire("raw-kind", _kind) is _TEXT_FLAG
        self._link.send_delivery(
            delivery, "raw", _payload, text=text, droppable=delivery.message.qos == 0
        )


def _factory(link: Link, context: AdapterContext) -> RawSession:
    return RawSession(link, context)


SPEC = AdapterSpec(name="raw", tokens=(), factory=_factory, path_check=check_path)
