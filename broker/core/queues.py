"""Work queues: each message to one consumer, held until acked, requeued on nack or leave."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from broker.core.message import Message

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue's backlog is at its bound (or too many queues exist)."""


@dataclass(slots=True, eq=False)
class QueuedMessage:
    """One accepted message of a work queue; a requeue gives a new one with the same tag."""

    message: Message
    tag: int  # unique within its WorkQueue, increasing in put() order
    redelivered: bool = False


class Consumer(Protocol):
    """One consumer of a work queue (a STOMP /queue subscription). Hashed by identity."""

    def __hash__(self) -> int: ...

    def offer(self, item: QueuedMessage, queue: WorkQueue) -> None:
        """Take one message now (must not block: queue it for sending and return)."""
        ...


class _Holder:
    """What the queue knows of one attached consumer."""

    __slots__ = ("attached", "auto_ack", "capacity", "consumer", "failed", "held", "in_ready")

    def __init__(self, consumer: Consumer, capacity: int, auto_ack: bool) -> None:
        self.consumer = consumer
        self.capacity = capacity
        self.auto_ack = auto_ack
        # Tag -> message, in the order this consumer received them (dicts keep insertion order),
        # which is what a cumulative ack follows.
        self.held: dict[int, QueuedMessage] = {}
        self.in_ready = False
        self.attached = True
        self.failed = False  # its offer raised during the running dispatch

    def has_room(self) -> bool:
        return self.auto_ack or len(self.held) < self.capacity


def _check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise ValueError(f"a consumer's capacity must be at least 1, not {capacity}")


class WorkQueue:
    """One named work queue: round robin among consumers with room, bounded backlog."""

    __slots__ = (
        "_backlog",
        "_consumers",
        "_dispatching",
        "_last_tag",
        "_max_backlog",
        "_ready",
        "_unacked",
        "name",
    )

    def __init__(self, name: str, *, max_backlog: int) -> None:
        if max_backlog < 0:
            raise ValueError(f"max_backlog must not be negative, not {max_backlog}")
        self.name = name
        self._max_backlog = max_backlog
        self._backlog: deque[QueuedMessage] = deque()
        self._consumers: dict[Consumer, _Holder] = {}
        # The consumers that have room, in turn order. A dispatch pops the head and puts it back
        # at the tail if it still has room; one that fills drops out and rejoins at the tail when
        # room frees (RabbitMQ does the same with blocked consumers). So a put is O(1) however
        # many consumers are full, where a ring of all consumers would scan past each full one.
        self._ready: deque[_Holder] = deque()
        self._unacked = 0
        self._last_tag = 0
        self._dispatching = False

    def __repr__(self) -> str:
        return (
            f"<WorkQueue {self.name!r}: {len(self._consumers)} consumers, "
            f"{len(self._backlog)} waiting, {self._unacked} unacked>"
        )

    @property
    def backlog(self) -> int:
        """Messages waiting, not handed over."""
        return len(self._backlog)

    @property
    def unacked(self) -> int:
        """Messages handed over and not yet acked."""
        return self._unacked

    @property
    def consumer_count(self) -> int:
        """Number of attached consumers."""
        return len(self._consumers)

    def is_idle(self) -> bool:
        """No consumers, no backlog, nothing unacked: the queue may be forgotten."""
        return not self._consumers and not self._backlog and not self._unacked

    def attach(self, consumer: Consumer, *, capacity: int, auto_ack: bool = False) -> None:
        """Add a consumer that may hold `capacity` unacked messages; dispatch to it at once.

        Attaching an attached consumer raises ValueError.
        """
        _check_capacity(capacity)
        if consumer in self._consumers:
            raise ValueError(f"consumer {consumer!r} is already attached to {self.name!r}")
        holder = self._consumers[consumer] = _Holder(consumer, capacity, auto_ack)
        self._make_ready(holder)
        self._dispatch()

    def detach(self, consumer: Consumer) -> int:
        """Remove it; what it holds goes back (front, redelivered); return how many went back."""
        holder = self._consumers.pop(consumer, None)
        if holder is None:
            return 0
        holder.attached = False
        if holder.in_ready:
            self._ready.remove(holder)  # O(consumers), but only once per consumer
            holder.in_ready = False
        held = holder.held
        count = len(held)
        if count:
            self._unacked -= count
            self._requeue(held.values())
            held.clear()
        self._dispatch()
        return count

    def set_capacity(self, consumer: Consumer, capacity: int) -> None:
        """Change how many unacked messages it may hold; KeyError if it is not attached.

        Lowering it below what the consumer holds takes nothing back (as AMQP basic.qos).
        """
        _check_capacity(capacity)
        holder = self._consumers.get(consumer)
        if holder is None:
            raise KeyError(f"consumer {consumer!r} is not attached to {self.name!r}")
        holder.capacity = capacity
        if holder.has_room():
            self._make_ready(holder)
            self._dispatch()
        elif holder.in_ready:
            self._ready.remove(holder)
            holder.in_ready = False

    def put(self, message: Message) -> QueuedMessage:
        """Hand to the next consumer with room (round robin), else add to the backlog.

        Raises QueueFull (and keeps nothing) when it cannot be handed over and the backlog is full.
        """
        backlog = self._backlog
        waiting = len(backlog)
        # Each ready consumer has room for at least one more, so `waiting < len(ready)` means
        # this message is handed over in the dispatch below (or the running one, when re-entered).
        if waiting >= self._max_backlog and waiting >= len(self._ready):
            raise QueueFull(f"work queue {self.name!r} holds {waiting} waiting messages")
        self._last_tag += 1
        item = QueuedMessage(message, self._last_tag)
        backlog.append(item)
        self._dispatch()
        return item

    def ack(self, consumer: Consumer, tag: int) -> bool:
        """The consumer is done with `tag`; False if it does not hold it."""
        holder = self._consumers.get(consumer)
        if holder is None or holder.held.pop(tag, None) is None:
            return False
        self._unacked -= 1
        self._make_ready(holder)
        self._dispatch()
        return True

    def ack_through(self, consumer: Consumer, tag: int) -> int:
        """Ack `tag` and all this consumer received before it and holds; 0 if it lacks `tag`."""
        holder = self._consumers.get(consumer)
        if holder is None:
            return 0
        items = self._take_through(holder, tag)
        if items:
            self._make_ready(holder)
            self._dispatch()
        return len(items)

    def nack(self, consumer: Consumer, tag: int) -> bool:
        """Give `tag` back: front of the queue, redelivered; False if it does not hold it."""
        holder = self._consumers.get(consumer)
        if holder is None:
            return False
        item = holder.held.pop(tag, None)
        if item is None:
            return False
        self._unacked -= 1
        self._requeue((item,))
        self._make_ready(holder)
        self._dispatch()
        return True

    def nack_through(self, consumer: Consumer, tag: int) -> int:
        """Give back `tag` and all this consumer received before it and holds, as ack_through."""
        holder = self._consumers.get(consumer)
        if holder is None:
            return 0
        items = self._take_through(holder, tag)
        if items:
            self._requeue(items)
            self._make_ready(holder)
            self._dispatch()
        return len(items)

    def _take_through(self, holder: _Holder, tag: int) -> list[QueuedMessage]:
        """Remove and return what `holder` received up to `tag`, in receive order; O(that)."""
        held = holder.held
        if tag not in held:
            return []
        items: list[QueuedMessage] = []
        for item in held.values():
            items.append(item)
            if item.tag == tag:
                break
        for item in items:
            del held[item.tag]
        self._unacked -= len(items)
        return items

    def _requeue(self, items: Iterable[QueuedMessage]) -> None:
        """Put `items` at the front of the backlog in tag order, marked redelivered."""
        # New objects: the consumer may still hold (and later read) the one it was offered.
        # Requeued messages were accepted once, so they may take the backlog past its bound.
        self._backlog.extendleft(
            QueuedMessage(item.message, item.tag, redelivered=True)
            for item in sorted(items, key=lambda item: item.tag, reverse=True)
        )

    def _make_ready(self, holder: _Holder) -> None:
        """Put `holder` back in the rotation if it has room and is not in it."""
        if holder.attached and not holder.in_ready and not holder.failed and holder.has_room():
            holder.in_ready = True
            self._ready.append(holder)

    def _dispatch(self) -> None:
        """Hand waiting messages to ready consumers until one or the other runs out."""
        if self._dispatching:
            # Called back from inside an offer: the loop below sees the change on its next turn.
            return
        self._dispatching = True
        backlog = self._backlog
        ready = self._ready
        failed: list[_Holder] = []
        try:
            while backlog and ready:
                holder = ready.popleft()
                item = backlog.popleft()
                # The queue is consistent before the offer, so the consumer may call back in.
                if not holder.auto_ack:
                    holder.held[item.tag] = item
                    self._unacked += 1
                if holder.has_room():
                    ready.append(holder)
                else:
                    holder.in_ready = False
                try:
                    holder.consumer.offer(item, self)
                except Exception:
                    logger.exception(
                        "work queue %r: offer of message %d to %r failed",
                        self.name,
                        item.tag,
                        holder.consumer,
                    )
                    self._take_back(holder, item)
                    failed.append(holder)
        finally:
            self._dispatching = False
            # A failed consumer sits out the rest of this dispatch (it would fail again at once)
            # and rejoins the rotation for the next one.
            for holder in failed:
                holder.failed = False
                self._make_ready(holder)

    def _take_back(self, holder: _Holder, item: QueuedMessage) -> None:
        """Undo the hand-over of `item` to `holder`, whose offer raised."""
        holder.failed = True
        if holder.in_ready:
            self._ready.remove(holder)
            holder.in_ready = False
        if holder.auto_ack:
            returned = True  # counted acked before the offer: nobody else can have it
        else:
            # Unless the consumer already acked or nacked it (or left) before raising.
            returned = holder.held.get(item.tag) is item
            if returned:
                del holder.held[item.tag]
                self._unacked -= 1
        if returned:
            # Redelivered: the consumer may have sent part of it before it failed.
            self._requeue((item,))


class WorkQueues:
    """The work queues of one realm, created on first use, bounded in number."""

    __slots__ = ("_max_backlog", "_max_queues", "_queues")

    def __init__(self, *, max_queues: int, max_backlog: int) -> None:
        if max_queues < 0 or max_backlog < 0:
            raise ValueError("max_queues and max_backlog must not be negative")
        self._max_queues = max_queues
        self._max_backlog = max_backlog
        self._queues: dict[str, WorkQueue] = {}

    def __len__(self) -> int:
        return len(self._queues)

    def __repr__(self) -> str:
        return f"<WorkQueues: {len(self._queues)} of at most {self._max_queues}>"

    def get(self, name: str) -> WorkQueue:
        """The queue called `name`, created if new; QueueFull if max_queues exist already."""
        queue = self._queues.get(name)
        if queue is None:
            if len(self._queues) >= self._max_queues:
                raise QueueFull(f"{len(self._queues)} work queues exist already")
            queue = self._queues[name] = WorkQueue(name, max_backlog=self._max_backlog)
        return queue

    def find(self, name: str) -> WorkQueue | None:
        """The queue called `name`, if it exists."""
        return self._queues.get(name)

    def forget_if_idle(self, name: str) -> None:
        """Drop the queue called `name` if it has no consumers, backlog or unacked messages."""
        queue = self._queues.get(name)
        if queue is not None and queue.is_idle():
            del self._queues[name]
