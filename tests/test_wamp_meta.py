"""The WAMP meta API (wamp.session.*, wamp.subscription.*, wamp.registration.*) through sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.subprotocols.wamp.messages import (
    Call,
    Error,
    Event,
    Goodbye,
    Register,
    Result,
    Subscribe,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
)
from broker.subprotocols.wamp.router import WampRealm
from tests.test_wamp_session import Client, Harness


@pytest.fixture
def harness() -> Harness:
    return Harness()


def call(client: Client, procedure: str, *args: Any, **kwargs: Any) -> Any:
    """The one result value of a meta call (asserting a RESULT)."""
    client.send(Call(client.next_request(), {}, procedure, list(args), kwargs))
    result: Result = client.one(Result)
    if result.args is None:
        return None
    assert len(result.args) == 1, result.args
    return result.args[0]


def error(client: Client, procedure: str, *args: Any, **kwargs: Any) -> str:
    """The error URI a meta call gets (asserting an ERROR)."""
    client.send(Call(client.next_request(), {}, procedure, list(args), kwargs))
    answer: Error = client.one(Error)
    assert answer.request_type == 48
    return answer.error


def events(client: Client) -> list[tuple[str, list[Any]]]:
    """The (topic, args) of each EVENT received, for a prefix subscription on wamp.*."""
    out = []
    for message in client.received():
        assert isinstance(message, Event), message
        out.append((message.details["topic"], message.args or []))
    return out


def observer(harness: Harness, prefix: str) -> Client:
    client = harness.joined()
    client.subscribe(prefix, match="prefix")
    return client


def parse(created: str) -> datetime:
    assert created.endswith("Z"), created
    assert len(created) == len("2024-01-01T00:00:00.000Z"), created
    return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --- dispatch and arguments --------------------------------------------------------------------


def test_unknown_meta_procedure_is_no_such_procedure(harness: Harness) -> None:
    client = harness.joined()
    meta = client.session._router.meta  # type: ignore[union-attr]
    assert meta.handles("wamp.session.count")
    assert not meta.handles("wamp.session.nothing")
    assert error(client, "wamp.session.nothing") == "wamp.error.no_such_procedure"


@pytest.mark.parametrize(
    ("procedure", "args", "kwargs"),
    [
        ("wamp.session.get", [], {}),  # missing
        ("wamp.session.get", ["1"], {}),  # not an id
        ("wamp.session.get", [True], {}),  # a bool is no id
        ("wamp.session.get", [1, 2], {}),  # too many
        ("wamp.session.get", [1], {"session": 1}),  # twice
        ("wamp.session.get", [], {"nope": 1}),  # unknown keyword
        ("wamp.session.count", ["anonymous"], {}),  # not a list
        ("wamp.session.list", [[1]], {}),  # not a list of strings
        ("wamp.session.kill", [1], {"message": 5}),
        ("wamp.subscription.list", [1], {}),
        ("wamp.subscription.lookup", [1], {}),
        ("wamp.subscription.lookup", ["a.b", {"match": "regex"}], {}),
        ("wamp.subscription.lookup", ["a.b", "exact"], {}),
        ("wamp.subscription.match", [], {}),
        ("wamp.subscription.get", [1.5], {}),
        ("wamp.subscription.list_subscribers", [None], {}),
        ("wamp.subscription.count_subscribers", [], {}),
        ("wamp.registration.list", [], {"session": 1}),
        ("wamp.registration.lookup", [], {}),
        ("wamp.registration.match", [{}], {}),
        ("wamp.registration.get", ["x"], {}),
        ("wamp.registration.list_callees", [], {}),
        ("wamp.registration.count_callees", [[1]], {}),
    ],
)
def test_bad_arguments_are_invalid_argument(
    harness: Harness, procedure: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    client = harness.joined()
    assert error(client, procedure, *args, **kwargs) == "wamp.error.invalid_argument"


def test_malformed_uris_are_invalid_uri(harness: Harness) -> None:
    client = harness.joined()
    assert error(client, "wamp.subscription.lookup", "a..b") == "wamp.error.invalid_uri"
    assert error(client, "wamp.subscription.match", "a b") == "wamp.error.invalid_uri"
    assert error(client, "wamp.registration.match", "a..b") == "wamp.error.invalid_uri"
    assert error(client, "wamp.registration.lookup", "a.b.", {"match": "exact"}) == (
        "wamp.error.invalid_uri"
    )
    # a pattern is valid for its own match policy
    assert call(client, "wamp.subscription.lookup", "a..b", {"match": "wildcard"}) is None


# --- wamp.session.* --------------------------------------------------------------------------


def test_session_count_and_list_include_the_caller(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    harness.client().hello("other")  # another realm is not counted
    assert call(a, "wamp.session.count") == 2
    assert sorted(call(a, "wamp.session.list")) == sorted([a.id, b.id])
    b.session.on_close()
    assert call(a, "wamp.session.count") == 1
    assert call(a, "wamp.session.list") == [a.id]


def test_session_count_and_list_filter_by_authrole(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    b.session.authrole = "backend"
    assert call(a, "wamp.session.count", ["backend"]) == 1
    assert call(a, "wamp.session.list", ["backend"]) == [b.id]
    assert call(a, "wamp.session.list", filter_authroles=["anonymous", "backend"]) == [a.id, b.id]
    assert call(a, "wamp.session.count", []) == 0
    assert call(a, "wamp.session.list", None) == [a.id, b.id]  # null: no filter


def test_session_get(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined("wamp.2.msgpack")
    details = call(a, "wamp.session.get", b.id)
    assert details == {
        "session": b.id,
        "realm": "realm1",
        "authid": str(b.id),
        "authrole": "anonymous",
        "authmethod": "anonymous",
        "authprovider": "static",
        "transport": {"channel_framing": "websocket", "channel_serializer": "msgpack"},
    }
    assert call(a, "wamp.session.get", session=a.id)["session"] == a.id  # oneself too
    assert error(a, "wamp.session.get", 12345) == "wamp.error.no_such_session"


def test_session_kill(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    assert call(a, "wamp.session.kill", b.id, reason="com.app.bye", message="go") is None
    goodbye: Goodbye = b.one(Goodbye)
    assert (goodbye.reason, goodbye.details) == ("com.app.bye", {"message": "go"})
    assert b.link.closed is not None
    assert call(a, "wamp.session.list") == [a.id]
    assert error(a, "wamp.session.kill", b.id) == "wamp.error.no_such_session"


def test_session_kill_defaults_to_close_normal_without_message(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    call(a, "wamp.session.kill", b.id)
    goodbye: Goodbye = b.one(Goodbye)
    assert (goodbye.reason, goodbye.details) == ("wamp.close.normal", {})


def test_session_kill_of_oneself_is_no_such_session(harness: Harness) -> None:
    a = harness.joined()
    assert error(a, "wamp.session.kill", a.id) == "wamp.error.no_such_session"
    assert a.link.closed is None


def test_session_kill_with_a_bad_reason_is_invalid_uri(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    assert error(a, "wamp.session.kill", b.id, reason="not a uri") == "wamp.error.invalid_uri"
    assert b.received() == []


def test_kill_by_authid_and_authrole_spare_the_caller(harness: Harness) -> None:
    a, b, c, d = (harness.joined() for _ in range(4))
    for client in (a, b, c):
        client.session.authid = "alice"
    d.session.authrole = "backend"
    assert call(a, "wamp.session.kill_by_authid", "alice", message="m") == 2
    assert b.one(Goodbye).details == {"message": "m"}
    assert isinstance(c.one(Goodbye), Goodbye)
    assert call(a, "wamp.session.kill_by_authrole", "backend", reason="com.r") == 1
    assert d.one(Goodbye).reason == "com.r"
    assert call(a, "wamp.session.kill_by_authrole", "anonymous") == 0  # only the caller left
    assert call(a, "wamp.session.list") == [a.id]


def test_kill_all_sends_no_on_leave(harness: Harness) -> None:
    a, b, c = harness.joined(), harness.joined(), harness.joined()
    a.subscribe("wamp.session.on_leave")
    assert call(a, "wamp.session.kill_all") == 2
    assert b.one(Goodbye).reason == "wamp.close.normal"
    assert isinstance(c.one(Goodbye), Goodbye)
    assert call(a, "wamp.session.list") == [a.id]
    # and later leaves are told again
    d = harness.joined()
    d.session.on_close()
    event: Event = a.one(Event)
    assert event.args == [d.id, str(d.id), "anonymous"]


def test_on_join_carries_the_details_of_session_get(harness: Harness) -> None:
    watcher = harness.joined()
    watcher.subscribe("wamp.session.on_join")
    newcomer = harness.joined()
    event: Event = watcher.one(Event)
    assert event.args == [call(watcher, "wamp.session.get", newcomer.id)]
    assert event.kwargs is None


def test_on_leave_carries_id_authid_and_authrole(harness: Harness) -> None:
    watcher = harness.joined()
    watcher.subscribe("wamp.session.on_leave")
    leaver = harness.joined()
    leaver.send(Goodbye({}, "wamp.close.close_realm"))
    event: Event = watcher.one(Event)
    assert event.args == [leaver.id, str(leaver.id), "anonymous"]


@pytest.mark.parametrize(
    ("pattern", "match"),
    [
        ("wamp.session.on_join", "exact"),
        ("wam", "prefix"),  # a string prefix of the meta URIs
        ("..on_join", "wildcard"),
        ("wamp..on_join", "wildcard"),
    ],
)
def test_pattern_observers_hear_meta_events(harness: Harness, pattern: str, match: str) -> None:
    watcher = harness.joined()
    watcher.send(Subscribe(watcher.next_request(), {"match": match}, pattern))
    watcher.received()  # SUBSCRIBED, and a "wam" prefix is news it hears of itself
    newcomer = harness.joined()
    event: Event = watcher.one(Event)
    assert event.args is not None
    assert event.args[0]["session"] == newcomer.id


def test_no_meta_event_is_built_without_observers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = harness.joined()
    emitted: list[str] = []
    monkeypatch.setattr(WampRealm, "emit", lambda self, uri, args, kwargs=None: emitted.append(uri))
    client.subscribe("com.a")
    client.register("com.p")
    harness.joined().session.on_close()
    assert emitted == []
    watcher = harness.joined()
    sub = watcher.subscribe("wamp.session.on_leave")
    harness.joined().session.on_close()
    assert emitted == ["wamp.session.on_join", "wamp.session.on_leave"]
    watcher.send(Unsubscribe(watcher.next_request(), sub))
    harness.joined().session.on_close()
    assert emitted == ["wamp.session.on_join", "wamp.session.on_leave"]


def test_meta_events_stay_in_their_realm(harness: Harness) -> None:
    watcher = harness.joined()
    watcher.subscribe("wamp.session.on_join")
    harness.client().hello("other")
    assert watcher.received() == []


# --- wamp.subscription.* ---------------------------------------------------------------------


def test_subscription_events_in_the_spec_order(harness: Harness) -> None:
    watcher = observer(harness, "wamp.subscription.")
    a, b = harness.joined(), harness.joined()
    sub = a.subscribe("com.topic")
    [(create, create_args), subscribe] = events(watcher)
    assert create == "wamp.subscription.on_create"
    assert create_args[0] == a.id
    assert create_args[1] == call(watcher, "wamp.subscription.get", sub)
    assert subscribe == ("wamp.subscription.on_subscribe", [a.id, sub])
    assert b.subscribe("com.topic") == sub
    assert events(watcher) == [("wamp.subscription.on_subscribe", [b.id, sub])]
    b.send(Unsubscribe(b.next_request(), sub))
    assert isinstance(b.one(Unsubscribed), Unsubscribed)
    assert events(watcher) == [("wamp.subscription.on_unsubscribe", [b.id, sub])]
    a.send(Unsubscribe(a.next_request(), sub))
    assert events(watcher) == [
        ("wamp.subscription.on_unsubscribe", [a.id, sub]),
        ("wamp.subscription.on_delete", [a.id, sub]),
    ]


def test_a_leaving_subscriber_is_unsubscribed_with_its_id(harness: Harness) -> None:
    watcher = observer(harness, "wamp.")
    a = harness.joined()
    watcher.received()  # a's on_join
    sub = a.subscribe("com.leave", match="prefix")
    watcher.received()
    a.session.on_close()
    assert events(watcher) == [
        ("wamp.subscription.on_unsubscribe", [a.id, sub]),
        ("wamp.subscription.on_delete", [a.id, sub]),
        ("wamp.session.on_leave", [a.id, str(a.id), "anonymous"]),
    ]


def test_subscriptions_to_meta_topics_are_no_news_and_hidden(harness: Harness) -> None:
    watcher = observer(harness, "wamp.subscription.")
    other = harness.joined()
    meta_sub = other.subscribe("wamp.session.on_join")
    assert watcher.received() == []
    assert call(watcher, "wamp.subscription.list") == {"exact": [], "prefix": [], "wildcard": []}
    assert call(watcher, "wamp.subscription.lookup", "wamp.session.on_join") is None
    assert call(watcher, "wamp.subscription.match", "wamp.session.on_join") is None
    assert error(watcher, "wamp.subscription.get", meta_sub) == "wamp.error.not_authorized"
    assert error(watcher, "wamp.subscription.count_subscribers", meta_sub) == (
        "wamp.error.not_authorized"
    )
    other.send(Unsubscribe(other.next_request(), meta_sub))
    other.one(Unsubscribed)
    assert watcher.received() == []


def test_subscription_list_lookup_and_match(harness: Harness) -> None:
    client = harness.joined()
    exact = client.subscribe("com.a.b")
    prefix = client.subscribe("com.a", match="prefix")
    wildcard = client.subscribe("com..b", match="wildcard")
    other = client.subscribe("org.x")
    assert call(client, "wamp.subscription.list") == {
        "exact": [exact, other],
        "prefix": [prefix],
        "wildcard": [wildcard],
    }
    assert call(client, "wamp.subscription.lookup", "com.a.b") == exact
    assert call(client, "wamp.subscription.lookup", "com.a.b", {}) == exact
    assert call(client, "wamp.subscription.lookup", "com.a", {"match": "prefix"}) == prefix
    assert call(client, "wamp.subscription.lookup", "com.a", options={"match": "prefix"}) == (
        prefix
    )
    assert call(client, "wamp.subscription.lookup", "com..b", {"match": "wildcard"}) == wildcard
    assert call(client, "wamp.subscription.lookup", "com.a") is None
    assert call(client, "wamp.subscription.match", "com.a.b") == [exact, prefix, wildcard]
    assert call(client, "wamp.subscription.match", "com.ab") == [prefix]  # a string prefix
    assert call(client, "wamp.subscription.match", "com.z.b") == [wildcard]
    assert call(client, "wamp.subscription.match", "net.none") is None


def test_subscription_get_and_subscribers(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    sub = a.subscribe("com..c", match="wildcard")
    harness.advance(90)
    later = a.subscribe("com.later")
    b.subscribe("com..c", match="wildcard")
    details = call(a, "wamp.subscription.get", sub)
    assert set(details) == {"id", "created", "uri", "match"}
    assert (details["id"], details["uri"], details["match"]) == (sub, "com..c", "wildcard")
    created = parse(details["created"])
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    later_created = parse(call(a, "wamp.subscription.get", later)["created"])
    assert round((later_created - created).total_seconds()) == 90
    assert call(a, "wamp.subscription.get", sub)["created"] == details["created"]  # stable
    assert call(a, "wamp.subscription.list_subscribers", sub) == [a.id, b.id]
    assert call(a, "wamp.subscription.count_subscribers", sub) == 2
    assert call(a, "wamp.subscription.count_subscribers", subscription=later) == 1


@pytest.mark.parametrize(
    "procedure",
    [
        "wamp.subscription.get",
        "wamp.subscription.list_subscribers",
        "wamp.subscription.count_subscribers",
    ],
)
def test_unknown_subscription(harness: Harness, procedure: str) -> None:
    client = harness.joined()
    assert error(client, procedure, 777) == "wamp.error.no_such_subscription"


# --- wamp.registration.* ---------------------------------------------------------------------


def test_registration_events_in_the_spec_order(harness: Harness) -> None:
    watcher = observer(harness, "wamp.registration.")
    a, b = harness.joined(), harness.joined()
    reg = a.register("com.shared", invoke="roundrobin")
    [(create, create_args), register] = events(watcher)
    assert create == "wamp.registration.on_create"
    assert create_args == [a.id, call(watcher, "wamp.registration.get", reg)]
    assert create_args[1]["invoke"] == "roundrobin"
    assert register == ("wamp.registration.on_register", [a.id, reg])
    assert b.register("com.shared", invoke="roundrobin") == reg
    assert events(watcher) == [("wamp.registration.on_register", [b.id, reg])]
    a.send(Unregister(a.next_request(), reg))
    assert isinstance(a.one(Unregistered), Unregistered)
    assert events(watcher) == [("wamp.registration.on_unregister", [a.id, reg])]
    b.session.on_close()  # the last callee leaves
    assert events(watcher) == [
        ("wamp.registration.on_unregister", [b.id, reg]),
        ("wamp.registration.on_delete", [b.id, reg]),
    ]


def test_a_refused_register_is_no_news(harness: Harness) -> None:
    watcher = observer(harness, "wamp.registration.")
    a, b = harness.joined(), harness.joined()
    a.register("com.single")
    watcher.received()
    b.send(Register(b.next_request(), {}, "com.single"))
    assert b.one(Error).error == "wamp.error.procedure_already_exists"
    assert watcher.received() == []


def test_registration_list_lookup_and_match(harness: Harness) -> None:
    client = harness.joined()
    exact = client.register("com.api.get")
    prefix = client.register("com.api", match="prefix")
    wildcard = client.register("com..get", match="wildcard")
    assert call(client, "wamp.registration.list") == {
        "exact": [exact],
        "prefix": [prefix],
        "wildcard": [wildcard],
    }
    assert call(client, "wamp.registration.lookup", "com.api.get") == exact
    assert call(client, "wamp.registration.lookup", "com.api", {"match": "prefix"}) == prefix
    assert call(client, "wamp.registration.lookup", "com..get", {"match": "wildcard"}) == wildcard
    assert call(client, "wamp.registration.lookup", "com.api") is None
    # match: the one a call would go to (exact, else longest prefix, else wildcard)
    assert call(client, "wamp.registration.match", "com.api.get") == exact
    assert call(client, "wamp.registration.match", "com.api.put") == prefix
    assert call(client, "wamp.registration.match", "com.x.get") == wildcard
    assert call(client, "wamp.registration.match", "org.none") is None
    assert call(client, "wamp.registration.match", "wamp.session.count") is None


def test_registration_get_and_callees(harness: Harness) -> None:
    a, b = harness.joined(), harness.joined()
    reg = a.register("com.pool", invoke="random")
    b.register("com.pool", invoke="random")
    details = call(a, "wamp.registration.get", reg)
    assert set(details) == {"id", "created", "uri", "match", "invoke"}
    assert (details["id"], details["uri"], details["match"], details["invoke"]) == (
        reg,
        "com.pool",
        "exact",
        "random",
    )
    parse(details["created"])
    assert call(a, "wamp.registration.list_callees", reg) == [a.id, b.id]
    assert call(a, "wamp.registration.count_callees", registration=reg) == 2


@pytest.mark.parametrize(
    "procedure",
    [
        "wamp.registration.get",
        "wamp.registration.list_callees",
        "wamp.registration.count_callees",
    ],
)
def test_unknown_registration(harness: Harness, procedure: str) -> None:
    client = harness.joined()
    assert error(client, procedure, 777) == "wamp.error.no_such_registration"


def test_meta_procedures_cannot_be_registered(harness: Harness) -> None:
    client = harness.joined()
    client.send(Register(client.next_request(), {}, "wamp.subscription.list"))
    assert client.one(Error).error == "wamp.error.not_authorized"
