"""Realm and Broker: subscribe, fan-out with one shared Delivery, no-local, isolation."""

from __future__ import annotations

import logging

import pytest

from broker.core import (
    Broker,
    Delivery,
    InvalidTopic,
    Message,
    Realm,
    RetainedStoreFull,
    Subscription,
)
from broker.store.memory import MemoryRetainedStore


class FakeSubscriber:
    """Records what it is handed."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.received: list[tuple[Delivery, Subscription]] = []

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        self.received.append((delivery, subscription))

    def topics(self) -> list[str]:
        return [delivery.message.topic for delivery, _ in self.received]


class BrokenSubscriber(FakeSubscriber):
    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        raise RuntimeError("connection lost")


def make_realm(max_retained: int = 100) -> Realm:
    return Realm("test", MemoryRetainedStore(max_messages=max_retained))


def test_fan_out_shares_one_delivery() -> None:
    realm = make_realm()
    subscribers = [FakeSubscriber(f"s{n}") for n in range(5)]
    for subscriber in subscribers:
        realm.subscribe(Subscription(subscriber, "sensors/+/temp"))
    other = FakeSubscriber("other")
    realm.subscribe(Subscription(other, "sensors/room1/humidity"))
    message = Message("sensors/room1/temp", b"21.5")
    assert realm.publish(message) == 5
    deliveries = [s.received[0][0] for s in subscribers]
    assert all(d is deliveries[0] for d in deliveries)
    assert deliveries[0].message is message
    assert other.received == []
    # A wire form built by the first connection is reused by the others.
    calls: list[Message] = []

    def build(m: Message) -> bytes:
        calls.append(m)
        return m.payload

    assert {id(d.wire("raw", build)) for d in deliveries} == {id(message.payload)}
    assert len(calls) == 1


def test_delivery_carries_the_matching_subscription() -> None:
    realm = make_realm()
    s = FakeSubscriber("s")
    by_hash = Subscription(s, "a/#", qos=1, identifier=7)
    exact = Subscription(s, "a/b", qos=0)
    realm.subscribe(by_hash)
    realm.subscribe(exact)
    assert realm.publish(Message("a/b", b"x")) == 2  # one per matching subscription
    assert {id(subscription) for _, subscription in s.received} == {id(by_hash), id(exact)}


def test_publish_with_no_subscribers() -> None:
    assert make_realm().publish(Message("a", b"x")) == 0


def test_invalid_names_and_filters() -> None:
    realm = make_realm()
    s = FakeSubscriber("s")
    with pytest.raises(InvalidTopic):
        realm.subscribe(Subscription(s, "a/#/b"))
    with pytest.raises(InvalidTopic):
        realm.publish(Message("a/+", b"x"))
    with pytest.raises(InvalidTopic):
        realm.publish(Message("", b"x"))
    assert realm.subscription_count == 0


def test_resubscribe_replaces() -> None:
    realm = make_realm()
    s = FakeSubscriber("s")
    first = Subscription(s, "a", qos=0)
    second = Subscription(s, "a", qos=1)
    realm.subscribe(first)
    assert realm.subscription(s, "a") is first
    realm.subscribe(second)
    assert realm.subscription_count == 1
    assert realm.subscription(s, "a") is second
    assert realm.publish(Message("a", b"x")) == 1
    assert s.received[0][1] is second


def test_no_local() -> None:
    realm = make_realm()
    me = FakeSubscriber("me")
    echo = FakeSubscriber("echo")
    other = FakeSubscriber("other")
    realm.subscribe(Subscription(me, "chat", no_local=True))
    realm.subscribe(Subscription(echo, "chat"))
    realm.subscribe(Subscription(other, "chat", no_local=True))
    assert realm.publish(Message("chat", b"hi", origin="me")) == 2
    assert me.received == []
    assert len(other.received) == 1
    # A subscriber without no_local hears itself.
    assert realm.publish(Message("chat", b"hi", origin="echo")) == 3
    assert len(echo.received) == 2


def test_unsubscribe() -> None:
    realm = make_realm()
    s = FakeSubscriber("s")
    realm.subscribe(Subscription(s, "a/+"))
    realm.subscribe(Subscription(s, "b"))
    assert realm.unsubscribe(s, "a/+") is True
    assert realm.unsubscribe(s, "a/+") is False
    assert realm.unsubscribe(s, "never") is False
    assert realm.unsubscribe(FakeSubscriber("stranger"), "b") is False
    assert realm.publish(Message("a/x", b"1")) == 0
    assert realm.publish(Message("b", b"1")) == 1
    assert realm.unsubscribe(s, "b") is True
    assert realm.subscription_count == 0
    assert realm._by_subscriber == {}
    assert realm._tree._count_nodes() == 0


def test_unsubscribe_all() -> None:
    realm = make_realm()
    leaving = FakeSubscriber("leaving")
    staying = FakeSubscriber("staying")
    for topic_filter in ("a", "a/#", "+/b", "#"):
        realm.subscribe(Subscription(leaving, topic_filter))
    realm.subscribe(Subscription(staying, "a/b"))
    assert realm.unsubscribe_all(leaving) == 4
    assert realm.unsubscribe_all(leaving) == 0
    assert realm.subscription_count == 1
    assert realm.publish(Message("a/b", b"x")) == 1
    assert leaving.received == []
    assert realm.unsubscribe_all(staying) == 1
    assert realm._tree._count_nodes() == 0
    assert realm._by_subscriber == {}


def test_two_sessions_with_the_same_id_are_distinct_subscribers() -> None:
    realm = make_realm()
    old, new = FakeSubscriber("client-1"), FakeSubscriber("client-1")
    realm.subscribe(Subscription(old, "a"))
    realm.subscribe(Subscription(new, "a"))
    realm.unsubscribe_all(old)
    assert realm.publish(Message("a", b"x")) == 1
    assert len(new.received) == 1


def test_a_raising_subscriber_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    realm = make_realm()
    before, after = FakeSubscriber("before"), FakeSubscriber("after")
    realm.subscribe(Subscription(before, "t"))
    realm.subscribe(Subscription(BrokenSubscriber("broken"), "t"))
    realm.subscribe(Subscription(after, "t"))
    with caplog.at_level(logging.ERROR, logger="broker.core.realm"):
        assert realm.publish(Message("t", b"x")) == 2
    assert len(before.received) == 1
    assert len(after.received) == 1
    assert "broken" in caplog.text
    assert "connection lost" in caplog.text


def test_retained_on_publish_and_subscribe() -> None:
    realm = make_realm()
    kept = Message("sensors/a/temp", b"20", retain=True)
    realm.publish(kept)
    realm.publish(Message("sensors/b/temp", b"21"))  # not retained
    realm.publish(Message("$SYS/load", b"1", retain=True))
    assert realm.retained_count == 2
    s = FakeSubscriber("s")
    assert realm.subscribe(Subscription(s, "sensors/+/temp")) == [kept]
    assert realm.subscribe(Subscription(s, "#")) == [kept]  # not $SYS
    assert s.received == []  # the adapter decides whether to send retained messages
    clear = Message("sensors/a/temp", b"", retain=True)
    assert realm.publish(clear) == 2  # the clearing message still reaches both filters
    assert realm.retained_count == 1
    assert realm.subscribe(Subscription(s, "sensors/#")) == []


def test_retained_store_full_refuses_before_delivery() -> None:
    realm = make_realm(max_retained=1)
    s = FakeSubscriber("s")
    realm.subscribe(Subscription(s, "#"))
    realm.publish(Message("a", b"1", retain=True))
    with pytest.raises(RetainedStoreFull):
        realm.publish(Message("b", b"1", retain=True))
    assert s.topics() == ["a"]


def test_broker_realms_are_isolated() -> None:
    broker = Broker(realms=("realm1", "tenant2"))
    one, two = broker.realm("realm1"), broker.realm("tenant2")
    assert one is not None
    assert two is not None
    assert broker.realm() is one
    assert broker.default_realm is one
    assert broker.realm("nope") is None
    assert set(broker.realms) == {"realm1", "tenant2"}
    s1, s2 = FakeSubscriber("s1"), FakeSubscriber("s2")
    one.subscribe(Subscription(s1, "#"))
    two.subscribe(Subscription(s2, "#"))
    assert one.publish(Message("x", b"1", retain=True)) == 1
    assert s1.topics() == ["x"]
    assert s2.received == []
    assert one.retained_count == 1
    assert two.retained_count == 0


def test_broker_defaults_and_errors() -> None:
    broker = Broker()
    assert list(broker.realms) == ["realm1"]
    assert broker.default_realm.name == "realm1"
    with pytest.raises(ValueError, match="default realm"):
        Broker(realms=("a",), default_realm="b")
    with pytest.raises(ValueError, match="empty"):
        Broker(realms=("",), default_realm="")
    with pytest.raises(TypeError):
        broker.realms["new"] = broker.default_realm  # type: ignore[index]


def test_broker_uses_the_factory_per_realm() -> None:
    made: list[MemoryRetainedStore] = []

    def factory() -> MemoryRetainedStore:
        made.append(MemoryRetainedStore(max_messages=5))
        return made[-1]

    Broker(realms=("a", "b"), default_realm="a", retained_factory=factory)
    assert len(made) == 2


def test_remembered_matches_follow_every_change_of_subscriptions() -> None:
    realm = make_realm()
    a, b = FakeSubscriber("a"), FakeSubscriber("b")
    assert realm.publish(Message("t/x", b"0")) == 0
    realm.subscribe(Subscription(a, "t/+"))
    assert realm.publish(Message("t/x", b"1")) == 1
    realm.subscribe(Subscription(b, "$share/g/t/#"))
    assert realm.publish(Message("t/x", b"2")) == 2
    realm.subscribe(Subscription(a, "t/+", qos=1))  # replaced: the new options count
    realm.publish(Message("t/x", b"3"))
    assert a.received[-1][1].qos == 1
    realm.unsubscribe(b, "$share/g/t/#")
    assert realm.publish(Message("t/x", b"4")) == 1
    realm.unsubscribe_all(a)
    assert realm.publish(Message("t/x", b"5")) == 0


def test_shared_subscription_round_robin_and_no_retained() -> None:
    realm = make_realm()
    realm.publish(Message("jobs/1", b"r", retain=True))
    members = [FakeSubscriber(f"m{n}") for n in range(3)]
    for member in members:
        assert realm.subscribe(Subscription(member, "$share/workers/jobs/+")) == []
    for n in range(6):
        realm.publish(Message("jobs/1", b"%d" % n))
    assert [len(m.received) for m in members] == [2, 2, 2]
    assert realm.subscription(members[0], "$share/workers/jobs/+") is not None
    with pytest.raises(InvalidTopic):
        realm.subscribe(Subscription(members[0], "$share/bad+name/x"))
