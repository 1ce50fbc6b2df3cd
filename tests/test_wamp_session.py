"""WampSession rule by rule, through a fake link: no sockets, a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from broker.config import Settings
from broker.core.broker import Broker
from broker.core.message import Delivery, Message
from broker.core.realm import Subscription
from broker.subprotocols.base import AdapterContext
from broker.subprotocols.wamp.codec import WampCodec
from broker.subprotocols.wamp.messages import (
    Abort,
    Call,
    Cancel,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)
from broker.subprotocols.wamp.messages import Message as WampMessage
from broker.subprotocols.wamp.session import WampSession
from tests.fakes import FakeClock, FakeLink


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.settings = Settings(realms=["realm1", "other"])
        self.broker = Broker(realms=self.settings.realms, clock=self.clock)
        self.context = AdapterContext(self.broker, self.settings)

    def client(self, subprotocol: str = "wamp.2.json") -> Client:
        return Client(self, subprotocol)

    def joined(self, subprotocol: str = "wamp.2.json") -> Client:
        client = self.client(subprotocol)
        client.hello()
        return client

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.broker.timers.run_due(self.clock.now)


class Client:
    def __init__(self, harness: Harness, subprotocol: str) -> None:
        self.link = FakeLink()
        self.link.subprotocol = subprotocol
        self.session = WampSession(self.link, harness.context)
        self.session.on_open()
        serializer = "msgpack" if "msgpack" in subprotocol else "json"
        self.codec = WampCodec(serializer, batched=subprotocol.endswith(".batched"))
        self.id = 0
        self.request = 0

    def send(self, message: WampMessage) -> None:
        self.session.on_message(self.codec.encode(message), self.codec.text)

    def next_request(self) -> int:
        self.request += 1
        return self.request

    def received(self) -> list[WampMessage]:
        out: list[WampMessage] = []
        for data, text in zip(self.link.sent, self.link.texts, strict=True):
            for message in self.codec.decode(data, text):
                assert not hasattr(message, "message") or isinstance(message, Abort | Goodbye)
                out.append(message)  # type: ignore[arg-type]
        self.link.sent.clear()
        self.link.texts.clear()
        return out

    def one(self, kind: type) -> Any:
        messages = self.received()
        assert [type(m) for m in messages] == [kind], messages
        return messages[0]

    def hello(self, realm: str = "realm1") -> Welcome:
        roles = {"subscriber": {}, "publisher": {}, "caller": {}}
        roles["callee"] = {"features": {"call_canceling": True}}
        self.send(Hello(realm, {"roles": roles}))
        welcome: Welcome = self.one(Welcome)
        self.id = welcome.session
        return welcome

    def subscribe(self, topic: str, **options: Any) -> int:
        self.send(Subscribe(self.next_request(), options, topic))
        subscribed: Subscribed = self.one(Subscribed)
        return subscribed.subscription

    def publish(self, topic: str, *args: Any, **options: Any) -> None:
        self.send(Publish(self.next_request(), options, topic, list(args)))

    def register(self, procedure: str, **options: Any) -> int:
        self.send(Register(self.next_request(), options, procedure))
        registered: Registered = self.one(Registered)
        return registered.registration


@pytest.fixture
def harness() -> Harness:
    return Harness()


# --- the session -----------------------------------------------------------------------------


def test_welcome_announces_both_roles(harness: Harness) -> None:
    welcome = harness.client().hello()
    assert 1 <= welcome.session <= 2**53
    roles = welcome.details["roles"]
    assert roles["broker"]["features"]["pattern_based_subscription"] is True
    assert roles["dealer"]["features"]["call_canceling"] is True
    assert welcome.details["realm"] == "realm1"


def test_unknown_realm_is_aborted(harness: Harness) -> None:
    client = harness.client()
    client.send(Hello("nowhere", {"roles": {}}))
    abort: Abort = client.one(Abort)
    assert abort.reason == "wamp.error.no_such_realm"
    assert client.link.closed is not None


def test_anything_before_hello_is_a_protocol_violation(harness: Harness) -> None:
    client = harness.client()
    client.send(Subscribe(1, {}, "a.b"))
    assert client.one(Abort).reason == "wamp.error.protocol_violation"


def test_a_second_hello_is_a_protocol_violation(harness: Harness) -> None:
    client = harness.joined()
    client.send(Hello("realm1", {}))
    assert client.one(Abort).reason == "wamp.error.protocol_violation"


def test_malformed_message_aborts_without_touching_others(harness: Harness) -> None:
    bad, good = harness.joined(), harness.joined()
    good.subscribe("a.b")
    bad.session.on_message(b'[16, 0, {}, "a.b"]', True)
    assert bad.one(Abort).reason == "wamp.error.protocol_violation"
    other = harness.joined()
    other.publish("a.b", 1)
    assert isinstance(good.one(Event), Event)


def test_goodbye_is_answered_with_goodbye_and_out(harness: Harness) -> None:
    client = harness.joined()
    client.send(Goodbye({}, "wamp.close.close_realm"))
    assert client.one(Goodbye).reason == "wamp.close.goodbye_and_out"
    assert client.link.closed is not None


def test_shutdown_says_goodbye_and_waits_for_the_reply(harness: Harness) -> None:
    client = harness.joined()
    client.session.on_shutdown()
    assert client.one(Goodbye).reason == "wamp.close.system_shutdown"
    client.send(Goodbye({}, "wamp.close.goodbye_and_out"))
    assert client.link.closed is not None


# --- pub/sub ---------------------------------------------------------------------------------


def test_publish_reaches_subscribers_not_the_publisher(harness: Harness) -> None:
    publisher, subscriber = harness.joined(), harness.joined("wamp.2.msgpack")
    publisher_sub = publisher.subscribe("com.x")
    sub = subscriber.subscribe("com.x")
    assert sub == publisher_sub  # one id per (topic, match)
    publisher.publish("com.x", 1, b"\x00bin", acknowledge=True)
    assert isinstance(publisher.one(Published), Published)
    event: Event = subscriber.one(Event)
    assert event.subscription == sub
    assert event.args == [1, b"\x00bin"]


def test_exclude_me_false_and_disclose_me(harness: Harness) -> None:
    client = harness.joined()
    client.subscribe("com.me")
    client.publish("com.me", "hi", exclude_me=False, disclose_me=True)
    event: Event = client.one(Event)
    assert event.details["publisher"] == client.id


def test_exclude_and_eligible(harness: Harness) -> None:
    publisher = harness.joined()
    a, b = harness.joined(), harness.joined()
    a.subscribe("com.list")
    b.subscribe("com.list")
    publisher.publish("com.list", 1, exclude=[a.id])
    assert a.received() == []
    assert isinstance(b.one(Event), Event)
    publisher.publish("com.list", 2, eligible=[a.id])
    assert isinstance(a.one(Event), Event)
    assert b.received() == []


@pytest.mark.parametrize(
    ("pattern", "match", "topic", "hit"),
    [
        ("com.a", "prefix", "com.a.b", True),
        ("com.a", "prefix", "com.ab", True),
        ("com.a", "prefix", "com.b", False),
        ("com..z", "wildcard", "com.y.z", True),
        ("com..z", "wildcard", "com.y.y", False),
    ],
)
def test_pattern_subscriptions_carry_the_topic(
    harness: Harness, pattern: str, match: str, topic: str, hit: bool
) -> None:
    subscriber, publisher = harness.joined(), harness.joined()
    subscriber.subscribe(pattern, match=match)
    publisher.publish(topic, 1)
    events = subscriber.received()
    if hit:
        assert [e.details["topic"] for e in events] == [topic]  # type: ignore[attr-defined]
    else:
        assert events == []


def test_retained_events_on_request(harness: Harness) -> None:
    publisher = harness.joined()
    publisher.publish("com.state", {"on": True}, retain=True)
    late = harness.joined()
    late.send(Subscribe(late.next_request(), {"get_retained": True}, "com.state"))
    subscribed, event = late.received()
    assert isinstance(subscribed, Subscribed)
    assert isinstance(event, Event)
    assert event.args == [{"on": True}]
    assert event.details.get("retained") is True


def test_unsubscribe(harness: Harness) -> None:
    client = harness.joined()
    sub = client.subscribe("com.u")
    client.send(Unsubscribe(client.next_request(), sub))
    assert isinstance(client.one(Unsubscribed), Unsubscribed)
    client.send(Unsubscribe(client.next_request(), sub))
    assert client.one(Error).error == "wamp.error.no_such_subscription"


def test_invalid_uri(harness: Harness) -> None:
    client = harness.joined()
    client.send(Subscribe(client.next_request(), {}, "a..b"))
    assert client.one(Error).error == "wamp.error.invalid_uri"
    client.publish("a b", 1, acknowledge=True)
    assert client.one(Error).error == "wamp.error.invalid_uri"


def test_wamp_events_reach_other_protocols_and_back(harness: Harness) -> None:
    received: list[Message] = []

    class Other:
        session_id = "mqtt:x"

        def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
            received.append(delivery.message)

    harness.broker.default_realm.subscribe(Subscription(Other(), "sensors/+/temp"))
    client = harness.joined()
    client.subscribe("sensors..temp", match="wildcard")
    client.publish("sensors.room1.temp", 21.5)
    assert received[0].payload == b"21.5"
    assert received[0].content_type == "application/json"
    harness.broker.default_realm.publish(Message("sensors/room2/temp", b"\xff\x01"))
    event: Event = client.one(Event)
    assert event.args == [b"\xff\x01"]


# --- RPC -------------------------------------------------------------------------------------


def test_call_invocation_yield_result(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined("wamp.2.msgpack")
    registration = callee.register("com.add")
    caller.send(Call(caller.next_request(), {}, "com.add", [2, 3]))
    invocation: Invocation = callee.one(Invocation)
    assert invocation.registration == registration
    assert invocation.args == [2, 3]
    callee.send(Yield(invocation.request, {}, [5]))
    result: Result = caller.one(Result)
    assert result.args == [5]


def test_errors_pass_through_with_args_and_kwargs(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.fail")
    caller.send(Call(caller.next_request(), {}, "com.fail"))
    invocation: Invocation = callee.one(Invocation)
    callee.send(Error(68, invocation.request, {}, "com.error.bad", ["why"], {"code": 7}))
    error: Error = caller.one(Error)
    assert (error.error, error.args, error.kwargs) == ("com.error.bad", ["why"], {"code": 7})


def test_no_such_procedure_and_already_exists(harness: Harness) -> None:
    client = harness.joined()
    client.send(Call(client.next_request(), {}, "com.none"))
    assert client.one(Error).error == "wamp.error.no_such_procedure"
    client.register("com.once")
    other = harness.joined()
    other.send(Register(other.next_request(), {}, "com.once"))
    assert other.one(Error).error == "wamp.error.procedure_already_exists"


def test_progressive_results(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.slow")
    caller.send(Call(caller.next_request(), {"receive_progress": True}, "com.slow"))
    invocation: Invocation = callee.one(Invocation)
    assert invocation.details.get("receive_progress") is True
    callee.send(Yield(invocation.request, {"progress": True}, [1]))
    callee.send(Yield(invocation.request, {}, [2]))
    results = caller.received()
    assert [(r.details.get("progress"), r.args) for r in results] == [(True, [1]), (None, [2])]  # type: ignore[attr-defined]


def test_cancel_killnowait(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.long")
    request = caller.next_request()
    caller.send(Call(request, {}, "com.long"))
    invocation: Invocation = callee.one(Invocation)
    caller.send(Cancel(request, {"mode": "killnowait"}))
    assert caller.one(Error).error == "wamp.error.canceled"
    assert callee.one(Interrupt).request == invocation.request


def test_router_enforces_call_timeout(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.never")
    caller.send(Call(caller.next_request(), {"timeout": 500}, "com.never"))
    callee.one(Invocation)
    harness.advance(0.6)
    assert caller.one(Error).error in ("wamp.error.canceled", "wamp.error.timeout")
    assert isinstance(callee.one(Interrupt), Interrupt)


def test_callee_leaving_mid_call_cancels_it(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.gone")
    caller.send(Call(caller.next_request(), {}, "com.gone"))
    callee.one(Invocation)
    callee.session.on_close()
    assert caller.one(Error).error == "wamp.error.canceled"


def test_pattern_registration_tells_the_procedure(harness: Harness) -> None:
    callee, caller = harness.joined(), harness.joined()
    callee.register("com.api", match="prefix")
    caller.send(Call(caller.next_request(), {"disclose_me": True}, "com.api.users.get"))
    invocation: Invocation = callee.one(Invocation)
    assert invocation.details["procedure"] == "com.api.users.get"
    assert invocation.details["caller"] == caller.id


def test_reserved_uris_are_not_authorized(harness: Harness) -> None:
    client = harness.joined()
    client.send(Register(client.next_request(), {}, "wamp.session.count"))
    assert client.one(Error).error == "wamp.error.not_authorized"


def test_a_nan_is_refused_even_where_msgpack_could_carry_it(harness: Harness) -> None:
    # JSON subscribers could not be given it: values must cross serializers exactly.
    client = harness.joined("wamp.2.msgpack")
    client.publish("com.nan", float("nan"), acknowledge=True)
    assert client.one(Abort).reason == "wamp.error.protocol_violation"


def test_cancel_falls_back_to_skip_for_a_callee_that_cannot_be_interrupted(
    harness: Harness,
) -> None:
    callee, caller = harness.client(), harness.joined()
    callee.send(Hello("realm1", {"roles": {"callee": {}}}))
    callee.one(Welcome)
    callee.register("com.plain")
    request = caller.next_request()
    caller.send(Call(request, {}, "com.plain"))
    callee.one(Invocation)
    caller.send(Cancel(request, {"mode": "kill"}))
    assert caller.one(Error).error == "wamp.error.canceled"
    assert callee.received() == []
