"""A realm: one isolated topic space with its subscriptions and retained messages."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from broker.core.message import Delivery, Message
from broker.core.queues import WorkQueues
from broker.core.retained import RetainedStore
from broker.core.rpc import Procedures
from broker.core.timers import Timers
from broker.core.topics import (
    InvalidTopic,
    TopicTree,
    validate_topic_filter,
    validate_topic_name,
)

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    """Whoever receives deliveries: one connection's session. Hashed by identity."""

    session_id: str

    # Subscribers key the topic tree, so they must hash (by identity: eq-dataclasses do not).
    def __hash__(self) -> int: ...

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        """Hand one delivery over; must not block (queue it and return)."""
        ...


@dataclass(slots=True, eq=False)
class Subscription:
    """One subscriber's interest in one topic filter, with the options the adapter gave."""

    subscriber: Subscriber
    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    identifier: int | None = None


SHARE_PREFIX = "$share/"
_MATCH_CACHE_SIZE = 4096


def split_shared(topic_filter: str) -> tuple[str, str] | None:
    """(group, filter) of a `$share/<group>/<filter>` subscription, or None for a plain one."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    group, sep, real_filter = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not sep or not group or "+" in group or "#" in group or not real_filter:
        raise InvalidTopic(
            f"shared subscription {topic_filter[:100]!r} must be $share/<group>/<filter> "
            "with a group name free of '/', '+' and '#'"
        )
    return group, real_filter


class SharedGroup:
    """The members of one `$share/<group>/<filter>`: each message goes to one, round robin."""

    __slots__ = ("_next", "members", "session_id")

    def __init__(self, name: str) -> None:
        self.session_id = f"$share/{name}"
        self.members: list[Subscription] = []
        self._next = 0

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        members = self.members
        if not members:
            return
        index = self._next % len(members)
        self._next = index + 1
        member = members[index]
        member.subscriber.deliver(delivery, member)


def random_id() -> int:
    """A global-scope id, as WAMP wants them: random in [1, 2^53]."""
    return secrets.randbelow(2**53) + 1


def default_work_queues() -> WorkQueues:
    """Work queues with the default bounds (the configured ones come from the Broker)."""
    return WorkQueues(max_queues=10_000, max_backlog=100_000)


class Realm:
    """An isolated namespace: a topic tree of subscriptions, a retained store, work queues."""

    __slots__ = (
        "_by_subscriber",
        "_matches",
        "_retained",
        "_shared",
        "_tree",
        "adapters",
        "name",
        "procedures",
        "queues",
    )

    def __init__(
        self,
        name: str,
        retained: RetainedStore,
        queues: WorkQueues | None = None,
        procedures: Procedures | None = None,
    ) -> None:
        self.name = name
        self._retained = retained
        # Work queues (STOMP /queue/...) live beside the topics, in the same namespace.
        self.queues = queues if queues is not None else default_work_queues()
        # Remote procedures (WAMP RPC) of this realm; deadlines need the broker's clock.
        self.procedures = (
            procedures
            if procedures is not None
            else Procedures(Timers(), time.monotonic, new_id=random_id)
        )
        # State an adapter shares between its sessions of this realm, by adapter name; the
        # core never reads it.
        self.adapters: dict[str, object] = {}
        self._tree: TopicTree[Subscription] = TopicTree()
        # Filters of each subscriber, so a disconnect needs no walk of the tree.
        self._by_subscriber: dict[Subscriber, set[str]] = {}
        self._shared: dict[tuple[str, str], SharedGroup] = {}
        # Topic -> its matching subscriptions, until the next change of subscriptions: most
        # publishes go to topics published before (sensors report on the same topic).
        self._matches: dict[str, list[Subscription]] = {}

    def __repr__(self) -> str:
        return f"<Realm {self.name!r}: {len(self._tree)} subscriptions>"

    @property
    def subscription_count(self) -> int:
        """Number of (subscriber, filter) subscriptions."""
        return len(self._tree)

    @property
    def retained_count(self) -> int:
        """Number of retained messages."""
        return len(self._retained)

    def subscription(self, subscriber: Subscriber, topic_filter: str) -> Subscription | None:
        """The subscriber's current subscription to exactly this filter, if any."""
        shared = split_shared(topic_filter)
        if shared is None:
            return self._tree.get(topic_filter, subscriber)
        group = self._shared.get(shared)
        if group is None:
            return None
        return next((m for m in group.members if m.subscriber is subscriber), None)

    def retained_matching(self, topic_filter: str) -> list[Message]:
        """The retained messages `topic_filter` matches (a valid, non-shared filter)."""
        return self._retained.matching(topic_filter)

    def subscribe(self, subscription: Subscription) -> list[Message]:
        """Add or replace (subscriber, filter); return the retained messages it matches.

        A `$share/<group>/<filter>` subscription joins that group and gets no retained messages.
        """
        topic_filter = subscription.topic_filter
        subscriber = subscription.subscriber
        shared = split_shared(topic_filter)
        if shared is None:
            validate_topic_filter(topic_filter)
            self._tree.add(topic_filter, subscriber, subscription)
            self._matches.clear()
        else:
            validate_topic_filter(shared[1])
            self._join(shared, subscription)
        filters = self._by_subscriber.get(subscriber)
        if filters is None:
            filters = self._by_subscriber[subscriber] = set()
        filters.add(topic_filter)
        return [] if shared is not None else self._retained.matching(topic_filter)

    def _join(self, key: tuple[str, str], subscription: Subscription) -> None:
        group = self._shared.get(key)
        if group is None:
            group = self._shared[key] = SharedGroup(key[0])
            self._tree.add(key[1], group, Subscription(group, key[1]))
            self._matches.clear()
        members = group.members
        for index, member in enumerate(members):
            if member.subscriber is subscription.subscriber:
                members[index] = subscription
                return
        members.append(subscription)

    def _leave(self, key: tuple[str, str], subscriber: Subscriber) -> bool:
        group = self._shared.get(key)
        if group is None:
            return False
        kept = [m for m in group.members if m.subscriber is not subscriber]
        if len(kept) == len(group.members):
            return False
        group.members[:] = kept
        if not kept:
            del self._shared[key]
            self._tree.remove(key[1], group)
            self._matches.clear()
        return True

    def _remove(self, subscriber: Subscriber, topic_filter: str) -> bool:
        shared = split_shared(topic_filter)
        if shared is None:
            removed = self._tree.remove(topic_filter, subscriber)
            if removed:
                self._matches.clear()
            return removed
        return self._leave(shared, subscriber)

    def unsubscribe(self, subscriber: Subscriber, topic_filter: str) -> bool:
        """Remove (subscriber, filter); True if it existed."""
        try:
            removed = self._remove(subscriber, topic_filter)
        except InvalidTopic:
            return False
        if not removed:
            return False
        filters = self._by_subscriber[subscriber]
        filters.discard(topic_filter)
        if not filters:
            del self._by_subscriber[subscriber]
        return True

    def unsubscribe_all(self, subscriber: Subscriber) -> int:
        """Remove every subscription of `subscriber` (on disconnect); return how many."""
        filters = self._by_subscriber.pop(subscriber, None)
        if filters is None:
            return 0
        for topic_filter in filters:
            self._remove(subscriber, topic_filter)
        return len(filters)

    def publish(
        self,
        message: Message,
        seed: tuple[Hashable, bytes] | None = None,
        memo: dict[Hashable, object] | None = None,
    ) -> int:
        """Retain if asked, then deliver to every match; return how many deliveries succeeded.

        Raises InvalidTopic for a bad name and RetainedStoreFull (before any delivery) when a
        retained message for a new topic does not fit.
        """
        topic = message.topic
        subscriptions = self._matches.get(topic)
        if subscriptions is None:
            validate_topic_name(topic)  # a remembered topic was valid when it was remembered
            if len(self._matches) >= _MATCH_CACHE_SIZE:
                self._matches.clear()
            subscriptions = self._matches[topic] = self._tree.match(topic)
        if message.retain:
            self._retained.set(message)
        if not subscriptions:
            return 0
        # One Delivery for everyone, so each wire form is encoded once per publish.
        # A seed is a form the publisher's own packet already is.
        delivery = Delivery(message) if seed is None else Delivery(message, *seed)
        if memo is not None:
            delivery.memo = memo
        origin = message.origin
        delivered = 0
        for subscription in subscriptions:
            subscriber = subscription.subscriber
            if subscription.no_local and origin is not None and origin == subscriber.session_id:
                continue
            try:
                subscriber.deliver(delivery, subscription)
            except Exception:
                # One broken subscriber must not cost the others their messages.
                logger.exception(
                    "delivery to session %r on %r failed", subscriber.session_id, message.topic
                )
            else:
                delivered += 1
        return delivered
