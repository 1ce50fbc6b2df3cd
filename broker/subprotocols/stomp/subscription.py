"""One STOMP subscription: a core Subscriber for a topic, a queue Consumer for a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from broker.core.message import Delivery
from broker.core.queues import QueuedMessage, WorkQueue
from broker.core.realm import Subscription

if TYPE_CHECKING:
    from broker.subprotocols.stomp.session import StompSession

AckMode = Literal["auto", "client", "client-individual"]
ACK_MODES: dict[str, AckMode] = {
    "auto": "auto",
    "client": "client",
    "client-individual": "client-individual",
}


class StompSubscription:
    """What one SUBSCRIBE asked for, and the messages it holds until they are acknowledged."""

    __slots__ = (
        "ack_mode",
        "capacity",
        "destination",
        "id",
        "name",
        "pending",
        "prefix",
        "queue",
        "session",
        "session_id",
    )

    def __init__(
        self,
        session: StompSession,
        subscription_id: str,
        destination: str,
        name: str,
        ack_mode: AckMode,
        capacity: int,
        prefix: bytes,
    ) -> None:
        self.session = session
        self.session_id = session.session_id  # the core compares it with a message's origin
        self.id = subscription_id
        self.destination = destination
        self.name = name  # the topic filter, or the queue's name
        self.ack_mode = ack_mode
        self.capacity = capacity
        # The frame's start up to the message id: "MESSAGE\nsubscription:<id>\nmessage-id:".
        self.prefix = prefix
        self.queue: WorkQueue | None = None
        # Ack id -> queue tag (0 for a topic message), in the order the messages went out.
        self.pending: dict[str, int] = {}

    # core Subscriber (topics)

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        self.session.send_delivery(self, delivery)

    # core Consumer (queues)

    def offer(self, item: QueuedMessage, queue: WorkQueue) -> None:
        self.session.send_queued(self, item)

    def take(self, ack_id: str, *, cumulative: bool) -> list[tuple[str, int]]:
        """Remove and return what an ACK or NACK of `ack_id` covers, oldest first."""
        pending = self.pending
        if not cumulative:
            return [(ack_id, pending.pop(ack_id))]
        taken: list[tuple[str, int]] = []
        for held in pending:
            taken.append((held, pending[held]))
            if held == ack_id:
                break
        for held, _ in taken:
            del pending[held]
        return taken
