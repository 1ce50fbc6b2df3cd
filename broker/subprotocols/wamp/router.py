"""What the WAMP sessions of one realm share: the sessions, the subscriptions by (URI, match)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from broker.core.message import Delivery, Message
from broker.core.realm import Realm, Subscription, random_id
from broker.core.rpc import wildcard_matches
from broker.subprotocols.wamp.meta import MetaApi
from broker.subprotocols.wamp.payload import Arguments, arguments_of
from broker.subprotocols.wamp.uris import Match, filter_of, topic_of, uri_of

if TYPE_CHECKING:
    from broker.subprotocols.wamp.session import WampSession

EVENT = 36
_ARGS = "wamp-args"
_PUBLICATION = "wamp-publication"
META_TOPICS = "wamp/"  # the canonical form of the reserved wamp.* URIs


def publication_of(delivery: Delivery) -> int:
    """The publication id of a delivery: the WAMP publisher's, else one drawn on first use."""
    memo = delivery.memo
    if memo is None:
        memo = delivery.memo = {}
    publication = memo.get(_PUBLICATION)
    if publication is None:
        publication = memo[_PUBLICATION] = random_id()
    return publication  # type: ignore[return-value]


def _arguments(delivery: Delivery) -> Arguments:
    memo = delivery.memo
    if memo is None:
        memo = delivery.memo = {}
    found = memo.get(_ARGS)
    if found is None:
        message = delivery.message
        found = memo[_ARGS] = arguments_of(message.payload, message.content_type)
    return found  # type: ignore[return-value]


def event_items(
    subscription: int, publication: int, details: dict[str, Any], arguments: Arguments
) -> list[Any]:
    """An EVENT as a list, trailing empty arguments left out as the spec shows."""
    args, kwargs = arguments
    items: list[Any] = [EVENT, subscription, publication, details]
    if kwargs:
        items += [args or [], kwargs]
    elif args:
        items.append(args)
    return items


class TopicGroup:
    """One WAMP subscription, (URI, match), with its id: shared by every session on it.

    It is the core's subscriber for the filter that covers it; each event is encoded once per
    serializer and shared by its members.
    """

    __slots__ = ("_pattern", "created", "filter", "id", "match", "members", "session_id", "uri")

    def __init__(self, uri: str, match: Match, created: float) -> None:
        self.id = random_id()
        self.uri = uri
        self.match = match
        self.filter = filter_of(uri, match)
        self._pattern = uri.split(".")  # the components a wildcard subscription compares
        self.members: dict[int, WampSession] = {}  # session id -> session, in join order
        self.created = created
        self.session_id = f"wamp-subscription:{self.id}"

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        message = delivery.message
        if message.topic.startswith(META_TOPICS):
            return  # only the router itself publishes meta events (WampRealm.emit)
        uri = uri_of(message.topic)
        if uri is None or (self.match == "prefix" and not uri.startswith(self.uri)):
            return
        self.send(delivery, uri, self.members.values(), retained=False)

    def covers(self, uri: str) -> bool:
        """Whether an event on `uri` is for this subscription."""
        if self.match == "exact":
            return uri == self.uri
        if self.match == "prefix":
            return uri.startswith(self.uri)
        parts = uri.split(".")
        return len(parts) == len(self._pattern) and wildcard_matches(self._pattern, parts)

    def send(self, delivery: Delivery, uri: str, members: Any, *, retained: bool) -> None:
        """The EVENT for `delivery` to each of `members` the publisher let have it."""
        message = delivery.message
        details: dict[str, Any] = {}
        if self.match != "exact":
            details["topic"] = uri
        if retained:
            details["retained"] = True
        publisher = message.publisher
        if publisher is not None:
            details["publisher"] = publisher.session
            if publisher.authid is not None:
                details["publisher_authid"] = publisher.authid
            if publisher.authrole is not None:
                details["publisher_authrole"] = publisher.authrole
        items: list[Any] | None = None
        audience = message.audience
        origin = message.origin
        for member in members:
            if origin is not None and origin == member.origin_key:
                continue  # exclude_me
            if audience is not None and not audience.admits(
                member.id, member.authid, member.authrole
            ):
                continue
            if items is None:
                items = event_items(
                    self.id, publication_of(delivery), details, _arguments(delivery)
                )
            member.send_event(delivery, self.id, items, retained)


class WampRealm:
    """The WAMP side of one realm: its sessions and its subscriptions."""

    __slots__ = ("by_id", "clock", "groups", "meta", "realm", "sessions")

    def __init__(self, realm: Realm, clock: Callable[[], float]) -> None:
        self.realm = realm
        self.clock = clock
        self.sessions: dict[int, WampSession] = {}
        self.groups: dict[tuple[str, Match], TopicGroup] = {}
        self.by_id: dict[int, TopicGroup] = {}  # subscription id -> group
        self.meta = MetaApi(self)

    def emit(self, uri: str, args: list[Any] | None, kwargs: dict[str, Any] | None = None) -> None:
        """An event the router itself publishes (the meta events), to WAMP subscribers only:
        meta topics never enter the shared topic space, so no other protocol can fake them."""
        delivery = Delivery(Message(topic_of(uri), b""))
        delivery.memo = {_ARGS: (args, kwargs or None)}
        for group in list(self.groups.values()):
            if group.covers(uri):
                group.send(delivery, uri, list(group.members.values()), retained=False)

    def join(self, session: WampSession, uri: str, match: Match) -> tuple[TopicGroup, bool]:
        """Add the session to the (uri, match) subscription, made if new: (group, created)."""
        key = (uri, match)
        group = self.groups.get(key)
        created = group is None
        if group is None:
            group = self.groups[key] = TopicGroup(uri, match, self.clock())
            self.by_id[group.id] = group
            self.realm.subscribe(Subscription(group, group.filter))
        group.members[session.id] = session
        return group, created

    def leave(self, session: WampSession, subscription_id: int) -> tuple[TopicGroup, bool] | None:
        """Take the session off that subscription: (group, deleted), or None if not on it."""
        group = self.by_id.get(subscription_id)
        if group is None or group.members.pop(session.id, None) is None:
            return None
        if group.members:
            return group, False
        del self.groups[(group.uri, group.match)]
        del self.by_id[group.id]
        self.realm.unsubscribe(group, group.filter)
        return group, True

    def retained(self, group: TopicGroup) -> list[tuple[Message, str]]:
        """The retained messages a new member of `group` gets, with their URIs."""
        found: list[tuple[Message, str]] = []
        for message in self.realm.retained_matching(group.filter):
            uri = uri_of(message.topic)
            if uri is not None and group.covers(uri):
                found.append((message, uri))
        return found
