"""In-memory stores: retained messages kept in a trie of topic levels."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import replace

from broker.core.message import Message
from broker.core.retained import RetainedStoreFull
from broker.core.sessions import SessionKey
from broker.core.topics import validate_topic_filter, validate_topic_name


class _Node:
    """One topic level; holds the retained message of the topic that ends here, if any."""

    __slots__ = ("children", "deadline", "level", "message", "parent")

    def __init__(self, parent: _Node | None, level: str) -> None:
        self.parent = parent
        self.level = level
        self.children: dict[str, _Node] | None = None
        self.message: Message | None = None
        self.deadline: float | None = None  # clock() value at which the message expires


class MemoryRetainedStore:
    """Retained messages in memory, at most `max_messages` topics; expiry on a monotonic clock."""

    __slots__ = ("_by_topic", "_clock", "_expiring", "_max", "_root")

    def __init__(
        self, max_messages: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_messages < 0:
            raise ValueError("max_messages must not be negative")
        self._max = max_messages
        self._clock = clock
        self._root = _Node(None, "")
        self._by_topic: dict[str, _Node] = {}  # O(1) get and a cheap count
        # (deadline, topic) of expiring messages; entries go stale when a topic is replaced.
        self._expiring: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """Number of live retained messages."""
        self._drop_expired(self._clock())
        return len(self._by_topic)

    def set(self, message: Message) -> None:
        """Retain `message`; an empty payload (or an already-elapsed expiry) deletes instead."""
        topic = message.topic
        validate_topic_name(topic)
        now = self._clock()
        self._drop_expired(now)
        expiry = message.expiry
        if not message.payload or (expiry is not None and expiry <= 0):
            self._delete(topic)
            return
        node = self._by_topic.get(topic)
        if node is None:
            if len(self._by_topic) >= self._max:
                raise RetainedStoreFull(
                    f"retained store is full ({self._max} topics); {topic[:100]!r} refused"
                )
            node = self._create(topic)
        node.message = message
        if expiry is None:
            node.deadline = None
        else:
            node.deadline = deadline = now + expiry
            heapq.heappush(self._expiring, (deadline, topic))
            self._compact_heap()

    def get(self, topic: str) -> Message | None:
        """The live message retained for `topic`, or None."""
        now = self._clock()
        self._drop_expired(now)
        node = self._by_topic.get(topic)
        return None if node is None else self._live(node, now)

    def matching(self, topic_filter: str) -> list[Message]:
        """Live retained messages whose topic matches the filter; walks only matching branches."""
        validate_topic_filter(topic_filter)
        now = self._clock()
        self._drop_expired(now)
        if "+" not in topic_filter and "#" not in topic_filter:
            node = self._by_topic.get(topic_filter)
            return [] if node is None else [self._live(node, now)]
        levels = topic_filter.split("/")
        depth = len(levels)
        out: list[Message] = []
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if i == depth:
                if node.message is not None:
                    out.append(self._live(node, now))
                continue
            level = levels[i]
            children = node.children
            if level == "#":
                # "a/#" matches "a" itself; the root never holds a message.
                if node.message is not None:
                    out.append(self._live(node, now))
                if children is not None:
                    self._collect_below(children, i == 0, now, out)
                continue
            if children is None:
                continue
            if level == "+":
                for name, child in children.items():
                    # MQTT 4.7.2: a leading wildcard does not match a "$" topic.
                    if i == 0 and name.startswith("$"):
                        continue
                    stack.append((child, i + 1))
            else:
                exact = children.get(level)
                if exact is not None:
                    stack.append((exact, i + 1))
        return out

    def _collect_below(
        self, children: dict[str, _Node], at_root: bool, now: float, out: list[Message]
    ) -> None:
        """Append every message in the given subtrees (skipping "$" topics at the root)."""
        stack = [
            child for name, child in children.items() if not (at_root and name.startswith("$"))
        ]
        while stack:
            node = stack.pop()
            if node.message is not None:
                out.append(self._live(node, now))
            if node.children is not None:
                stack.extend(node.children.values())

    @staticmethod
    def _live(node: _Node, now: float) -> Message:
        """The node's message, with expiry set to what remains (as MQTT 5 3.3.2.3.3 asks)."""
        message = node.message
        assert message is not None
        if node.deadline is None:
            return message
        return replace(message, expiry=node.deadline - now)

    def _create(self, topic: str) -> _Node:
        """Create (or reach) the node of `topic` and index it."""
        node = self._root
        for level in topic.split("/"):
            children = node.children
            if children is None:
                children = node.children = {}
            child = children.get(level)
            if child is None:
                child = children[level] = _Node(node, level)
            node = child
        self._by_topic[topic] = node
        return node

    def _delete(self, topic: str) -> None:
        """Forget the topic's message and prune the nodes left bare."""
        node = self._by_topic.pop(topic, None)
        if node is None:
            return
        node.message = None
        node.deadline = None
        parent = node.parent
        while parent is not None and node.message is None and not node.children:
            children = parent.children
            assert children is not None
            del children[node.level]
            if not children:
                parent.children = None
            node, parent = parent, parent.parent

    def _drop_expired(self, now: float) -> None:
        """Delete messages whose deadline has passed; cheap when none has."""
        heap = self._expiring
        while heap and heap[0][0] <= now:
            deadline, topic = heapq.heappop(heap)
            node = self._by_topic.get(topic)
            # A stale entry: the topic was since replaced or deleted.
            if node is not None and node.deadline == deadline:
                self._delete(topic)

    def _compact_heap(self) -> None:
        """Rebuild the heap once stale entries outnumber live ones, so it stays bounded."""
        heap = self._expiring
        if len(heap) <= 2 * len(self._by_topic) + 64:
            return
        heap[:] = [
            (node.deadline, topic)
            for topic, node in self._by_topic.items()
            if node.deadline is not None
        ]
        heapq.heapify(heap)

    def _node_count(self) -> int:
        """Nodes below the root (for tests of pruning)."""
        count = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            count += 1
            if node.children is not None:
                stack.extend(node.children.values())
        return count - 1


class MemorySessionStore:
    """Session records in a dict, as live objects: they last as long as the process."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[SessionKey, object] = {}

    def get(self, key: SessionKey) -> object | None:
        return self._records.get(key)

    def put(self, key: SessionKey, record: object) -> None:
        self._records[key] = record

    def delete(self, key: SessionKey) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)
