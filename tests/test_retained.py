"""MemoryRetainedStore: set/get/delete, filter matching with the $ rule, limit, expiry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.core.message import Message
from broker.core.retained import RetainedStore, RetainedStoreFull
from broker.core.topics import InvalidTopic
from broker.store.memory import MemoryRetainedStore
from tests.test_topics import filters, spec_matches, topics


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def msg(topic: str, payload: bytes = b"x", expiry: float | None = None) -> Message:
    return Message(topic=topic, payload=payload, retain=True, expiry=expiry)


def topics_of(messages: list[Message]) -> list[str]:
    return sorted(m.topic for m in messages)


def test_is_a_retained_store() -> None:
    store: RetainedStore = MemoryRetainedStore()
    assert len(store) == 0


def test_set_get_replace_delete() -> None:
    store = MemoryRetainedStore()
    first = msg("a/b", b"1")
    store.set(first)
    assert store.get("a/b") is first
    assert store.get("a") is None
    second = msg("a/b", b"2")
    store.set(second)
    assert store.get("a/b") is second
    assert len(store) == 1
    store.set(msg("a/b", b""))  # empty payload deletes
    assert store.get("a/b") is None
    assert len(store) == 0
    assert store._node_count() == 0


def test_deleting_an_absent_topic_is_harmless() -> None:
    store = MemoryRetainedStore()
    store.set(msg("a", b""))
    assert len(store) == 0


def test_delete_keeps_the_nodes_others_need() -> None:
    store = MemoryRetainedStore()
    store.set(msg("a"))
    store.set(msg("a/b/c"))
    store.set(msg("a/b/c", b""))
    assert store._node_count() == 1
    assert topics_of(store.matching("#")) == ["a"]
    store.set(msg("a", b""))
    assert store._node_count() == 0


def test_invalid_topic_and_filter() -> None:
    store = MemoryRetainedStore()
    with pytest.raises(InvalidTopic):
        store.set(msg("a/+"))
    with pytest.raises(InvalidTopic):
        store.matching("a/#/b")


def test_matching() -> None:
    store = MemoryRetainedStore()
    for topic in ("sport", "sport/tennis", "sport/tennis/p1", "sport/golf", "/finance", "a//b"):
        store.set(msg(topic))
    assert topics_of(store.matching("sport/#")) == [
        "sport",
        "sport/golf",
        "sport/tennis",
        "sport/tennis/p1",
    ]
    assert topics_of(store.matching("sport/+")) == ["sport/golf", "sport/tennis"]
    assert topics_of(store.matching("sport/tennis")) == ["sport/tennis"]
    assert topics_of(store.matching("+")) == ["sport"]
    assert topics_of(store.matching("+/+")) == ["/finance", "sport/golf", "sport/tennis"]
    assert topics_of(store.matching("a/+/b")) == ["a//b"]
    assert store.matching("nothing/#") == []
    assert store.matching("nothing") == []


def test_dollar_topics_need_an_explicit_first_level() -> None:
    store = MemoryRetainedStore()
    store.set(msg("$SYS/uptime"))
    store.set(msg("$SYS"))
    store.set(msg("x"))
    assert topics_of(store.matching("#")) == ["x"]
    assert topics_of(store.matching("+/uptime")) == []
    assert topics_of(store.matching("+")) == ["x"]
    assert topics_of(store.matching("$SYS/#")) == ["$SYS", "$SYS/uptime"]
    assert topics_of(store.matching("$SYS/+")) == ["$SYS/uptime"]


def test_limit_refuses_new_topics_only() -> None:
    store = MemoryRetainedStore(max_messages=2)
    store.set(msg("a"))
    store.set(msg("b"))
    with pytest.raises(RetainedStoreFull):
        store.set(msg("c"))
    assert store.get("c") is None
    assert store._node_count() == 2
    replacement = msg("a", b"new")
    store.set(replacement)  # replacing still works when full
    assert store.get("a") is replacement
    store.set(msg("b", b""))  # so does deleting
    store.set(msg("c"))  # and then there is room again
    assert topics_of(store.matching("#")) == ["a", "c"]


def test_zero_limit_retains_nothing() -> None:
    store = MemoryRetainedStore(max_messages=0)
    with pytest.raises(RetainedStoreFull):
        store.set(msg("a"))
    store.set(msg("a", b""))


def test_expiry_is_relative_to_when_stored() -> None:
    clock = FakeClock()
    store = MemoryRetainedStore(clock=clock)
    store.set(msg("a", expiry=10))
    store.set(msg("b"))
    clock.now += 4
    got = store.get("a")
    assert got is not None
    assert got.expiry == pytest.approx(6)  # MQTT 5: what remains of the interval
    assert got.payload == b"x"
    assert [m.expiry for m in store.matching("a")] == [pytest.approx(6)]
    clock.now += 6
    assert store.get("a") is None
    assert topics_of(store.matching("#")) == ["b"]
    assert len(store) == 1
    assert store._node_count() == 1


def test_expired_messages_free_their_place() -> None:
    clock = FakeClock()
    store = MemoryRetainedStore(max_messages=1, clock=clock)
    store.set(msg("a", expiry=1))
    with pytest.raises(RetainedStoreFull):
        store.set(msg("b"))
    clock.now += 1
    store.set(msg("b"))
    assert topics_of(store.matching("#")) == ["b"]


def test_replacing_cancels_the_old_deadline() -> None:
    clock = FakeClock()
    store = MemoryRetainedStore(clock=clock)
    store.set(msg("a", expiry=1))
    forever = msg("a")
    store.set(forever)
    clock.now += 5
    assert store.get("a") is forever
    longer = msg("a", expiry=10)
    store.set(longer)
    clock.now += 5
    got = store.get("a")
    assert got is not None
    assert got.expiry == pytest.approx(5)


def test_zero_expiry_deletes() -> None:
    store = MemoryRetainedStore(clock=FakeClock())
    store.set(msg("a"))
    store.set(msg("a", expiry=0))
    assert store.get("a") is None
    assert len(store) == 0


def test_expiry_bookkeeping_stays_bounded() -> None:
    clock = FakeClock()
    store = MemoryRetainedStore(clock=clock)
    for n in range(10_000):
        store.set(msg("a", expiry=100 + n))
    assert len(store._expiring) <= 2 * len(store) + 64 + 1


@given(
    stored=st.lists(topics(), max_size=25),
    deleted=st.lists(topics(), max_size=10),
    probes=st.lists(filters(), min_size=1, max_size=10),
)
def test_matching_agrees_with_the_spec(
    stored: list[str], deleted: list[str], probes: list[str]
) -> None:
    store = MemoryRetainedStore()
    for topic in stored:
        store.set(msg(topic))
    for topic in deleted:
        store.set(msg(topic, b""))
    live = set(stored) - set(deleted)
    assert len(store) == len(live)
    for topic_filter in probes:
        expected = sorted(t for t in live if spec_matches(topic_filter, t))
        assert topics_of(store.matching(topic_filter)) == expected
    for topic in live:
        store.set(msg(topic, b""))
    assert store._node_count() == 0
