"""Canonical topic names and filters (MQTT rules), and a trie that matches filters to topics."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_TOPIC_BYTES = 65535


class InvalidTopic(ValueError):
    """A topic name or topic filter that breaks the MQTT rules."""


def _check_string(kind: str, text: str) -> None:
    """Shared rules of names and filters: non-empty, no NUL, at most 65535 UTF-8 bytes."""
    if not text:
        raise InvalidTopic(f"{kind} must not be empty")
    if "\0" in text:
        raise InvalidTopic(f"{kind} must not contain the NUL character")
    # ASCII is the common case: its length is its byte count, no encoding needed.
    if text.isascii():
        if len(text) > MAX_TOPIC_BYTES:
            raise InvalidTopic(f"{kind} is longer than {MAX_TOPIC_BYTES} bytes")
        return
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidTopic(f"{kind} is not valid UTF-8 (lone surrogate)") from None
    if size > MAX_TOPIC_BYTES:
        raise InvalidTopic(f"{kind} is longer than {MAX_TOPIC_BYTES} bytes in UTF-8")


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopic unless `name` may be published to (no wildcards)."""
    _check_string("topic name", name)
    if "+" in name or "#" in name:
        raise InvalidTopic(f"topic name {name[:100]!r} must not contain the wildcards + or #")


def validate_topic_filter(topic_filter: str) -> None:
    """Raise InvalidTopic unless `topic_filter` is a valid subscription filter."""
    _check_string("topic filter", topic_filter)
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise InvalidTopic(
                f"topic filter {topic_filter[:100]!r}: # must be a whole level and the last one"
            )
        if "+" in level and level != "+":
            raise InvalidTopic(f"topic filter {topic_filter[:100]!r}: + must be a whole level")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether one valid filter matches one topic name (MQTT rules, `$` rule included)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


class _Node(Generic[V]):
    """One level of the trie; wildcard children live in their own slots for a fast walk."""

    __slots__ = ("entries", "literal", "multi", "plus")

    def __init__(self) -> None:
        # None rather than empty dicts: most nodes are leaves and an empty dict costs 64 bytes.
        self.literal: dict[str, _Node[V]] | None = None
        self.plus: _Node[V] | None = None
        self.entries: dict[Hashable, V] | None = None  # filters that end at this node
        self.multi: dict[Hashable, V] | None = None  # filters that end with this node + "/#"

    def is_bare(self) -> bool:
        """True when nothing hangs from this node, so it can be pruned."""
        return not (self.entries or self.multi or self.literal or self.plus)


# One step of a walk down the trie: (parent, level, child).
_Step = tuple[_Node[V], str, _Node[V]]


class TopicTree(Generic[V]):
    """Topic filters stored by level; each filter holds a dict key -> value (e.g. subscriber)."""

    __slots__ = ("_nodes", "_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._size = 0
        self._nodes = 0  # nodes below the root, kept so tests can prove pruning works

    def __len__(self) -> int:
        """Number of (filter, key) entries."""
        return self._size

    def is_empty(self) -> bool:
        """True when the tree holds no entry."""
        return self._size == 0

    def add(self, topic_filter: str, key: Hashable, value: V) -> bool:
        """Store `value` under (filter, key); True if new, False if it replaced one."""
        validate_topic_filter(topic_filter)
        levels = topic_filter.split("/")
        multi = levels[-1] == "#"
        if multi:
            levels.pop()
        node = self._root
        for level in levels:
            if level == "+":
                child = node.plus
                if child is None:
                    child = node.plus = _Node()
                    self._nodes += 1
            else:
                literal = node.literal
                if literal is None:
                    literal = node.literal = {}
                child = literal.get(level)
                if child is None:
                    child = literal[level] = _Node()
                    self._nodes += 1
            node = child
        if multi:
            entries = node.multi
            if entries is None:
                entries = node.multi = {}
        else:
            entries = node.entries
            if entries is None:
                entries = node.entries = {}
        new = key not in entries
        entries[key] = value
        if new:
            self._size += 1
        return new

    def get(self, topic_filter: str, key: Hashable) -> V | None:
        """The value stored under (filter, key), or None."""
        found = self._find(topic_filter)
        if found is None:
            return None
        _, node, multi = found
        entries = node.multi if multi else node.entries
        return None if entries is None else entries.get(key)

    def remove(self, topic_filter: str, key: Hashable) -> bool:
        """Remove (filter, key); True if it was there. Nodes left bare are pruned."""
        # No validation needed: add() never stores an invalid filter, so a bad one is not found.
        found = self._find(topic_filter)
        if found is None:
            return False
        path, node, multi = found
        entries = node.multi if multi else node.entries
        if entries is None or key not in entries:
            return False
        del entries[key]
        self._size -= 1
        if not entries:
            if multi:
                node.multi = None
            else:
                node.entries = None
        for parent, level, child in reversed(path):
            if not child.is_bare():
                break
            if level == "+":
                parent.plus = None
            else:
                literal = parent.literal
                assert literal is not None
                del literal[level]
                if not literal:
                    parent.literal = None
            self._nodes -= 1
        return True

    def match(self, topic: str) -> list[V]:
        """Every value whose filter matches `topic`, a valid topic name (no wildcards)."""
        out: list[V] = []
        if self._size == 0:
            return out
        nodes = [self._root]
        # MQTT 4.7.2: a topic starting with "$" is not matched by a leading + or #.
        wild = not topic.startswith("$")
        for level in topic.split("/"):
            following: list[_Node[V]] = []
            for node in nodes:
                if wild:
                    multi = node.multi
                    if multi is not None:
                        out.extend(multi.values())
                    plus = node.plus
                    if plus is not None:
                        following.append(plus)
                literal = node.literal
                if literal is not None:
                    child = literal.get(level)
                    if child is not None:
                        following.append(child)
            if not following:
                return out
            nodes = following
            wild = True
        for node in nodes:
            entries = node.entries
            if entries is not None:
                out.extend(entries.values())
            # "a/#" also matches "a" itself.
            multi = node.multi
            if multi is not None:
                out.extend(multi.values())
        return out

    def _find(self, topic_filter: str) -> tuple[list[_Step[V]], _Node[V], bool] | None:
        """The (parent, level, child) steps to a filter's node, the node, and if it ends in '#'."""
        levels = topic_filter.split("/")
        multi = levels[-1] == "#"
        if multi:
            levels.pop()
        path: list[_Step[V]] = []
        node = self._root
        for level in levels:
            if level == "+":
                child = node.plus
            else:
                literal = node.literal
                child = None if literal is None else literal.get(level)
            if child is None:
                return None
            path.append((node, level, child))
            node = child
        return path, node, multi

    def _count_nodes(self) -> int:
        """Walk the trie and count nodes below the root (for tests of pruning)."""
        count = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.plus is not None:
                stack.append(node.plus)
            if node.literal is not None:
                stack.extend(node.literal.values())
            count += 1
        return count - 1
