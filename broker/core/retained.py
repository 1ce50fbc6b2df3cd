"""The retained-message store interface that realms use; implementations live in broker/store."""

from __future__ import annotations

from typing import Protocol

from broker.core.message import Message


class RetainedStoreFull(Exception):
    """The store is at its limit and refuses a retained message for a new topic."""


class RetainedStore(Protocol):
    """Retained messages of one realm: at most one per topic name."""

    def set(self, message: Message) -> None:
        """Retain `message` for its topic; an empty payload deletes the topic's message."""
        ...

    def get(self, topic: str) -> Message | None:
        """The message retained for `topic`, or None (also when it has expired)."""
        ...

    def matching(self, topic_filter: str) -> list[Message]:
        """Every live retained message whose topic matches `topic_filter` (MQTT $ rule)."""
        ...

    def __len__(self) -> int:
        """Number of retained messages held (expired ones may still count until dropped)."""
        ...
