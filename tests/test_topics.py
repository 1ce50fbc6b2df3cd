"""Topic validation and TopicTree matching, against a reference matcher from the MQTT spec."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.core.topics import (
    InvalidTopic,
    TopicTree,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)


def spec_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 section 4.7, written level by level with no cleverness."""
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    # 4.7.2: a leading wildcard does not match a topic beginning with "$".
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, f_level in enumerate(f_levels):
        if f_level == "#":
            # 4.7.1.2: "#" matches the parent level and any number of child levels.
            return True
        if i >= len(t_levels):
            return False
        if f_level != "+" and f_level != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def keys_matching(tree: TopicTree[str], topic: str) -> list[str]:
    return sorted(tree.match(topic))


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "a/b", "/", "a//b", "/a", "a/", "$SYS/broker", "sport/tennis", "é/ü", " "]
)
def test_valid_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("a/+/b", "wildcard"),
        ("a/#", "wildcard"),
        ("a#", "wildcard"),
        ("a\0b", "NUL"),
        ("a" * 65536, "65535"),
        ("é" * 32768, "65535"),
        ("\ud800", "UTF-8"),
    ],
)
def test_invalid_topic_names(name: str, words: str) -> None:
    with pytest.raises(InvalidTopic, match=words):
        validate_topic_name(name)


def test_longest_topic_name_is_valid() -> None:
    validate_topic_name("a" * 65535)
    validate_topic_name("é" * 32767)  # 65534 bytes


def test_invalid_topic_is_a_value_error() -> None:
    assert issubclass(InvalidTopic, ValueError)


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "+", "a/#", "a/+", "+/+", "+/a/#", "/+", "a//#", "sport/tennis/+", "$SYS/#", "a/+/b"],
)
def test_valid_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize(
    ("topic_filter", "words"),
    [
        ("", "empty"),
        ("a/#/b", "last"),
        ("#/a", "last"),
        ("a#", "whole level"),
        ("a/b#", "whole level"),
        ("sport+", "whole level"),
        ("a/+b/c", "whole level"),
        ("++", "whole level"),
        ("##", "whole level"),
        ("a\0", "NUL"),
        ("a" * 65536, "65535"),
    ],
)
def test_invalid_filters(topic_filter: str, words: str) -> None:
    with pytest.raises(InvalidTopic, match=words):
        validate_topic_filter(topic_filter)


def test_add_rejects_an_invalid_filter() -> None:
    tree: TopicTree[str] = TopicTree()
    with pytest.raises(InvalidTopic):
        tree.add("a/#/b", "k", "v")
    assert len(tree) == 0
    assert tree._count_nodes() == 0


# --- MQTT 3.1.1 section 4.7 examples -----------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        # 4.7.1.2 multi-level wildcard
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "sport/tennis", True),
        ("sport/tennis/#", "sport/tennis", True),
        ("sport/tennis/#", "sport/tennisx", False),
        # 4.7.1.3 single-level wildcard
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player2", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+", "/finance", False),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+/tennis/#", "sport/tennis/player1", True),
        # 4.7.2 topics beginning with $
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("$SYS/#", "$SYS", True),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("+", "$SYS", False),
        ("a/+", "a/$b", True),
        ("a/#", "a/$b", True),
        # 4.7.3 empty levels and case
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        ("+", " ", True),
        ("ACCOUNTS", "Accounts", False),
    ],
)
def test_spec_examples(topic_filter: str, topic: str, expected: bool) -> None:
    assert spec_matches(topic_filter, topic) is expected
    tree: TopicTree[str] = TopicTree()
    tree.add(topic_filter, "k", topic_filter)
    assert tree.match(topic) == ([topic_filter] if expected else [])


# --- tree behaviour ------------------------------------------------------------------------


def test_add_replace_remove() -> None:
    tree: TopicTree[int] = TopicTree()
    assert tree.is_empty()
    assert tree.add("a/+", "s1", 1) is True
    assert tree.add("a/+", "s1", 2) is False  # replaced
    assert tree.add("a/+", "s2", 3) is True
    assert len(tree) == 2
    assert tree.get("a/+", "s1") == 2
    assert sorted(tree.match("a/b")) == [2, 3]
    assert tree.remove("a/+", "s1") is True
    assert tree.remove("a/+", "s1") is False
    assert tree.remove("a/#", "s2") is False
    assert tree.remove("x/y/z", "s2") is False
    assert tree.match("a/b") == [3]
    assert tree.remove("a/+", "s2") is True
    assert tree.is_empty()
    assert tree._nodes == 0
    assert tree._count_nodes() == 0


def test_same_key_on_overlapping_filters_gets_one_value_per_filter() -> None:
    tree: TopicTree[str] = TopicTree()
    for topic_filter in ("#", "a/#", "a/+", "a/b", "+/b", "+/+", "a/b/#"):
        tree.add(topic_filter, "s", topic_filter)
    assert sorted(tree.match("a/b")) == sorted(["#", "a/#", "a/+", "a/b", "+/b", "+/+", "a/b/#"])
    assert sorted(tree.match("a")) == ["#", "a/#"]


def test_hash_and_exact_at_the_same_node_prune_separately() -> None:
    tree: TopicTree[str] = TopicTree()
    tree.add("a", "k", "exact")
    tree.add("a/#", "k", "multi")
    assert sorted(tree.match("a")) == ["exact", "multi"]
    assert tree.remove("a", "k")
    assert tree.match("a") == ["multi"]
    assert tree._count_nodes() == 1
    assert tree.remove("a/#", "k")
    assert tree._count_nodes() == 0


def test_empty_tree_matches_nothing() -> None:
    tree: TopicTree[str] = TopicTree()
    assert tree.match("a/b") == []


# --- properties ----------------------------------------------------------------------------

LEVELS = st.sampled_from(["a", "b", "", "$s", "ab"])
FILTER_LEVELS = st.sampled_from(["a", "b", "", "$s", "+", "+"])


@st.composite
def topics(draw: st.DrawFn) -> str:
    topic = "/".join(draw(st.lists(LEVELS, min_size=1, max_size=5)))
    return topic or "/"  # a topic name must not be empty; "/" is two empty levels


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVELS, min_size=0, max_size=4))
    if not levels or levels == [""] or draw(st.booleans()):
        levels.append("#")  # a filter must not be empty
    return "/".join(levels)


@given(
    entries=st.lists(st.tuples(filters(), st.sampled_from(["k1", "k2", "k3"])), max_size=30),
    probes=st.lists(topics(), min_size=1, max_size=10),
)
def test_match_agrees_with_the_spec(entries: list[tuple[str, str]], probes: list[str]) -> None:
    tree: TopicTree[tuple[str, str]] = TopicTree()
    for topic_filter, key in entries:
        tree.add(topic_filter, key, (topic_filter, key))
    stored = set(entries)
    assert len(tree) == len(stored)
    for topic in probes:
        expected = Counter(entry for entry in stored if spec_matches(entry[0], topic))
        # A Counter, not a set: each (filter, key) must come back exactly once.
        assert Counter(tree.match(topic)) == expected


@given(
    ops=st.lists(st.tuples(st.booleans(), filters(), st.sampled_from(["k1", "k2"])), max_size=60)
)
def test_random_add_remove_leaves_no_garbage(ops: list[tuple[bool, str, str]]) -> None:
    tree: TopicTree[int] = TopicTree()
    model: dict[tuple[str, str], int] = {}
    for n, (adding, topic_filter, key) in enumerate(ops):
        if adding:
            assert tree.add(topic_filter, key, n) is ((topic_filter, key) not in model)
            model[(topic_filter, key)] = n
        else:
            assert tree.remove(topic_filter, key) is ((topic_filter, key) in model)
            model.pop((topic_filter, key), None)
        assert len(tree) == len(model)
        assert tree._nodes == tree._count_nodes()
    for topic_filter, key in list(model):
        assert tree.get(topic_filter, key) == model[(topic_filter, key)]
        assert tree.remove(topic_filter, key)
    assert tree.is_empty()
    assert tree._nodes == 0
    assert tree._count_nodes() == 0


@given(filters(), topics())
def test_topic_matches_agrees_with_the_spec(topic_filter: str, topic: str) -> None:
    assert topic_matches(topic_filter, topic) == spec_matches(topic_filter, topic)
