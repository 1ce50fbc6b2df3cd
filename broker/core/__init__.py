"""The protocol-neutral core: messages, topics, realms, retained messages."""

from __future__ import annotations

from broker.core.broker import Broker
from broker.core.message import Delivery, Message
from broker.core.realm import Realm, Subscriber, Subscription
from broker.core.retained import RetainedStore, RetainedStoreFull
from broker.core.topics import (
    InvalidTopic,
    TopicTree,
    validate_topic_filter,
    validate_topic_name,
)

__all__ = [
    "Broker",
    "Delivery",
    "InvalidTopic",
    "Message",
    "Realm",
    "RetainedStore",
    "RetainedStoreFull",
    "Subscriber",
    "Subscription",
    "TopicTree",
    "validate_topic_filter",
    "validate_topic_name",
]
