"""A realm: one isolated topic space with its subscriptions and retained messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from broker.core.message import Delivery, Message
from broker.core.retained import RetainedStore
from broker.core.topics import TopicTree, validate_topic_filter, validate_topic_name

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


class Realm:
    """An isolated namespace: a topic tree of subscriptions plus a retained store."""

    __slots__ = ("_by_subscriber", "_retained", "_tree", "name")

    def __init__(self, name: str, retained: RetainedStore) -> None:
        self.name = name
        self._retained = retained
        self._tree: TopicTree[Subscription] = TopicTree()
        # Filters of each subscriber, so a disconnect needs no walk of the tree.
        self._by_subscriber: dict[Subscriber, set[str]] = {}

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
        return self._tree.get(topic_filter, subscriber)

    def subscribe(self, subscription: Subscription) -> list[Message]:
        """Add or replace (subscriber, filter); return the retained messages it matches."""
        topic_filter = subscription.topic_filter
        validate_topic_filter(topic_filter)
        subscriber = subscription.subscriber
        self._tree.add(topic_filter, subscriber, subscription)
        filters = self._by_subscriber.get(subscriber)
        if filters is None:
            filters = self._by_subscriber[subscriber] = set()
        filters.add(topic_filter)
        return self._retained.matching(topic_filter)

    def unsubscribe(self, subscriber: Subscriber, topic_filter: str) -> bool:
        """Remove (subscriber, filter); True if it existed."""
        if not self._tree.remove(topic_filter, subscriber):
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
        tree = self._tree
        for topic_filter in filters:
            tree.remove(topic_filter, subscriber)
        return len(filters)

    def publish(self, message: Message) -> int:
        """Retain if asked, then deliver to every match; return how many deliveries succeeded.

        Raises InvalidTopic for a bad name and RetainedStoreFull (before any delivery) when a
        retained message for a new topic does not fit.
        """
        validate_topic_name(message.topic)
        if message.retain:
            self._retained.set(message)
        subscriptions = self._tree.match(message.topic)
        if not subscriptions:
            return 0
        # One Delivery for everyone, so each wire form is encoded once per publish.
        delivery = Delivery(message)
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
