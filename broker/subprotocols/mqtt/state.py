"""What an MQTT session keeps across connections: subscriptions, messages in flight, its queue."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.core.broker import Broker
from broker.core.message import Delivery, Message
from broker.core.realm import SHARE_PREFIX, Realm, Subscription
from broker.core.timers import Timer
from broker.core.topics import topic_matches

if TYPE_CHECKING:
    from broker.subprotocols.mqtt.session import MqttSession


@dataclass(slots=True)
class Outgoing:
    """A QoS 1 or 2 message to the client, queued or in flight under a packet identifier."""

    delivery: Delivery  # shared with the other subscribers: its encodings are built once
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...]
    since: float  # when it was queued: its expiry counts down from here
    released: bool = False  # QoS 2: PUBREC came, PUBREL went, PUBCOMP awaited

    @property
    def message(self) -> Message:
        return self.delivery.message


class SessionState:
    """One MQTT session: the core Subscriber of its filters, whether its client is online or not."""

    __slots__ = (
        "_broker",
        "_last_delivery",
        "_next_id",
        "client_id",
        "connection",
        "dropped",
        "expiry_interval",
        "expiry_timer",
        "incoming_qos2",
        "inflight",
        "key",
        "max_queued",
        "queue",
        "realm",
        "session_id",
        "subscriptions",
        "will_timer",
    )

    def __init__(self, broker: Broker, realm: Realm, client_id: str, *, max_queued: int) -> None:
        self._broker = broker
        self.realm = realm
        self.client_id = client_id
        self.key = ("mqtt", realm.name, client_id)
        # Stable across connections: No Local compares a message's origin with it.
        self.session_id = f"mqtt:{realm.name}:{client_id}"
        self.max_queued = max_queued
        self.subscriptions: dict[str, Subscription] = {}
        self.inflight: dict[int, Outgoing] = {}  # insertion order is delivery order
        self.queue: deque[Outgoing] = deque()
        self.incoming_qos2: set[int] = set()  # PUBREC sent, PUBREL awaited
        self.connection: MqttSession | None = None
        self.expiry_interval = 0
        self.expiry_timer: Timer | None = None
        self.will_timer: Timer | None = None
        self.dropped = 0
        self._last_delivery: Delivery | None = None
        self._next_id = 0

    # the core Subscriber

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        message = delivery.message
        ids: tuple[int, ...]
        if len(self.subscriptions) < 2 or subscription.topic_filter.startswith(SHARE_PREFIX):
            qos = min(message.qos, subscription.qos)
            retain = message.retain and subscription.retain_as_published
            ids = () if subscription.identifier is None else (subscription.identifier,)
        else:
            # Overlapping subscriptions: one copy, at the highest QoS, with every identifier
            # (MQTT-3.3.4-2, 3.3.4-4); the core calls once per subscription, we answer once.
            if delivery is self._last_delivery:
                return
            self._last_delivery = delivery
            qos, retain, ids = self._combine(message)
        connection = self.connection
        if qos == 0:
            if connection is not None:
                connection.send_qos0(delivery, retain, ids)
            return  # QoS 0 is not queued for an absent client (as Mosquitto's default)
        # The clock is read only for messages that can expire while they wait.
        since = 0.0 if message.expiry is None else self._broker.clock()
        self.enqueue(Outgoing(delivery, qos, retain, ids, since))

    def _combine(self, message: Message) -> tuple[int, bool, tuple[int, ...]]:
        qos = -1
        retain = False
        ids: list[int] = []
        own = message.origin == self.session_id
        for topic_filter, subscription in self.subscriptions.items():
            if topic_filter.startswith(SHARE_PREFIX) or not topic_matches(
                topic_filter, message.topic
            ):
                continue
            if subscription.no_local and own:
                continue
            qos = max(qos, subscription.qos)
            retain = retain or subscription.retain_as_published
            if subscription.identifier is not None:
                ids.append(subscription.identifier)
        return min(message.qos, max(qos, 0)), message.retain and retain, tuple(ids)

    # QoS 1 and 2 towards the client

    def enqueue(self, outgoing: Outgoing) -> None:
        """Send now if the client's Receive Maximum allows, else queue (bounded)."""
        connection = self.connection
        if connection is not None and not self.queue and len(self.inflight) < connection.send_quota:
            self._send(outgoing, connection)
            return
        if len(self.queue) >= self.max_queued:
            self.dropped += 1
            self._broker.stats.publish_dropped += 1
            return
        self.queue.append(outgoing)

    def _send(self, outgoing: Outgoing, connection: MqttSession) -> None:
        packet_id = self._allocate_id()
        self.inflight[packet_id] = outgoing
        connection.send_publish(outgoing, packet_id, dup=False)

    def _allocate_id(self) -> int:
        next_id = self._next_id % 65535 + 1
        if next_id not in self.inflight:  # nearly always: ids go round, in-flight messages few
            self._next_id = next_id
            return next_id
        for _ in range(65535):
            next_id = next_id % 65535 + 1
            if next_id not in self.inflight:
                self._next_id = next_id
                return next_id
        raise RuntimeError("no free packet identifier")  # inflight <= Receive Maximum < 65535

    def drain(self) -> None:
        """Move queued messages into flight while the client's Receive Maximum allows."""
        connection = self.connection
        if connection is None:
            return
        queue = self.queue
        while queue and len(self.inflight) < connection.send_quota:
            outgoing = queue.popleft()
            expiry = outgoing.message.expiry
            if expiry is not None:
                left = expiry - (self._broker.clock() - outgoing.since)
                if left <= 0:
                    continue  # expired while waiting: never delivered (MQTT-3.3.2-5)
                outgoing.delivery = Delivery(dataclasses.replace(outgoing.message, expiry=left))
            self._send(outgoing, connection)

    def acknowledged(self, packet_id: int) -> bool:
        """PUBACK or PUBCOMP: the message is done; True if it was in flight."""
        if self.inflight.pop(packet_id, None) is None:
            return False
        self.drain()
        return True

    def received(self, packet_id: int) -> bool:
        """PUBREC: the client has it; PUBREL follows. True if it was in flight."""
        outgoing = self.inflight.get(packet_id)
        if outgoing is None or outgoing.qos != 2:
            return False
        outgoing.released = True
        return True

    def resend(self) -> None:
        """On resuming: PUBLISH again with DUP, or PUBREL again, everything in flight (4.4)."""
        connection = self.connection
        if connection is None:
            return
        for packet_id, outgoing in self.inflight.items():
            if outgoing.released:
                connection.send_pubrel(packet_id)
            else:
                connection.send_publish(outgoing, packet_id, dup=True)
        self.drain()

    # lifetime

    def cancel_timers(self) -> None:
        for timer in (self.expiry_timer, self.will_timer):
            if timer is not None:
                timer.cancel()
        self.expiry_timer = self.will_timer = None

    def schedule_expiry(self, on_expiry: Callable[[], None]) -> None:
        self.expiry_timer = self._broker.timers.call_at(
            self._broker.clock() + self.expiry_interval, on_expiry
        )

    def end(self) -> None:
        """The session is over: leave every subscription and forget every message."""
        self.cancel_timers()
        self.realm.unsubscribe_all(self)
        self.subscriptions.clear()
        self.inflight.clear()
        self.queue.clear()
        self.incoming_qos2.clear()
        self._last_delivery = None
        if self._broker.sessions.get(self.key) is self:
            self._broker.sessions.delete(self.key)
