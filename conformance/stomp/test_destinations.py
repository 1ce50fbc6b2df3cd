"""Destinations (issue bullets 8 and 9): ``/topic/<canonical topic or filter>`` is pub/sub with
MQTT-style ``+`` and ``#`` over ``/``-separated levels (RabbitMQ: ``.``-separated words with
``*`` and ``#``; :class:`support.Names` writes each test's destinations in the target's syntax);
other prefixes get ERROR naming the accepted ones; frames missing a required header get ERROR
naming it (STOMP 1.2 "SEND", "SUBSCRIBE": ``destination`` and ``id`` are REQUIRED).
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import Names, Server, assert_names, raw_session


def test_single_level_wildcard(connected: StompFactory, names: Names) -> None:
    """``+`` matches exactly one level: ``sensors/+/temp``."""
    c = connected()
    c.subscribe(names.topic("sensors", "+", "temp"), "s1")
    pub = connected()
    pub.send(names.topic("sensors", "room1", "temp"), "match")
    pub.send(names.topic("sensors", "room1", "hum"), "other leaf")
    pub.send(names.topic("sensors", "room1", "x", "temp"), "too deep")
    pub.send(names.topic("sensors", "temp"), "too shallow")
    pub.send(names.topic("sensors", "room9", "temp"), "marker")
    got = c.messages_until("marker")
    assert [m.body for m in got] == ["match"]
    assert got[0].headers["destination"] == names.topic("sensors", "room1", "temp")


def test_multi_level_wildcard(connected: StompFactory, names: Names) -> None:
    """``#`` matches the rest, any number of levels, the parent level included."""
    c = connected()
    c.subscribe(names.topic("sensors", "#"), "s1")
    pub = connected()
    pub.send(names.topic("sensors"), "parent")
    pub.send(names.topic("sensors", "a"), "one")
    pub.send(names.topic("sensors", "a", "b", "c"), "three")
    pub.send(names.topic("other", "a"), "not under sensors")
    pub.send(names.topic("sensors", "marker"), "marker")
    assert [m.body for m in c.messages_until("marker")] == ["parent", "one", "three"]


def test_wildcard_and_exact_subscriptions_each_deliver(
    connected: StompFactory, names: Names
) -> None:
    """A message matching two subscriptions of one connection comes once per subscription."""
    c = connected()
    c.subscribe(names.topic("a", "b"), "exact")
    c.subscribe(names.topic("a", "#"), "wild")
    c.send(names.topic("a", "b"), "both")
    got = sorted(c.expect_message().headers["subscription"] for _ in range(2))
    assert got == ["exact", "wild"]


def test_levels_are_slash_separated(connected: StompFactory, names: Names, server: Server) -> None:
    """Ours: ``/`` separates levels, so ``a.b`` is one level (``+`` matches it, ``a/+`` does
    not)."""
    if not server.strict:
        pytest.skip("level syntax is each broker's own (RabbitMQ: '.' separates words)")
    c = connected()
    c.subscribe(names.topic("a", "+"), "s1")
    c.send(names.topic("a.b"), "one level, not under a/")
    c.send(names.topic("a", "marker"), "marker")
    assert c.messages_until("marker") == []


def test_dollar_topics_not_matched_by_leading_wildcard(
    connected: StompFactory, uid: str, server: Server
) -> None:
    """DESIGN.md: ``$`` topics are not matched by filters that begin with a wildcard."""
    if not server.strict:
        pytest.skip("the $-topic rule is MQTT's, which wsbroker applies to every protocol")
    c = connected()
    c.subscribe("/topic/+/" + uid, "s1")
    c.send(f"/topic/$conf/{uid}", "hidden")
    c.send(f"/topic/conf/{uid}", "marker")
    assert c.messages_until("marker") == []


@pytest.mark.parametrize("command", ["SEND", "SUBSCRIBE"])
@pytest.mark.parametrize("prefix", ["/foo/bar", "/exchangeX/y", "topic/no-slash", "/topics/x"])
@async_test
async def test_unknown_destination_prefix_is_an_error(
    server: Server, command: str, prefix: str
) -> None:
    """A destination that is neither ``/topic/…`` nor ``/queue/…``: ERROR naming the accepted
    prefixes."""
    async with raw_session(server) as c:
        headers = {"destination": prefix, "receipt": "r1"}
        if command == "SUBSCRIBE":
            headers["id"] = "s1"
        c.send(command, headers, "x" if command == "SEND" else b"")
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "/topic", "/queue")


@pytest.mark.parametrize(
    ("command", "headers", "missing"),
    [
        ("SEND", {}, "destination"),
        ("SUBSCRIBE", {"id": "s1"}, "destination"),
        ("SUBSCRIBE", {"destination": "DEST"}, "id"),
        ("UNSUBSCRIBE", {}, "id"),
    ],
)
@async_test
async def test_missing_required_header_is_an_error(
    server: Server, names: Names, command: str, headers: dict[str, str], missing: str
) -> None:
    """1.2: SEND and SUBSCRIBE need ``destination``; SUBSCRIBE and UNSUBSCRIBE need ``id`` (1.1
    and 1.2). Without it: ERROR naming the header, then close."""
    if server.rabbitmq and command == "SUBSCRIBE" and missing == "id":
        pytest.skip("RabbitMQ 3.10 accepts SUBSCRIBE without id (it makes one up)")
    headers = {k: names.topic("req") if v == "DEST" else v for k, v in headers.items()}
    async with raw_session(server) as c:
        c.send(command, {**headers, "receipt": "r1"})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, missing)


@async_test
async def test_subscribe_without_id_1_1_is_an_error(server: Server, names: Names) -> None:
    """1.1 SUBSCRIBE: ``id`` is required as in 1.2."""
    if server.rabbitmq:
        pytest.skip("RabbitMQ 3.10 accepts SUBSCRIBE without id (it makes one up)")
    async with raw_session(server, "1.1", protocols="v11.stomp") as c:
        c.send("SUBSCRIBE", {"destination": names.topic("noid"), "receipt": "r1"})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "id")


@async_test
async def test_subscribe_without_id_1_0_is_accepted(server: Server, names: Names) -> None:
    """1.0 SUBSCRIBE: ``id`` is optional."""
    dest = names.topic("noid10")
    async with raw_session(server, "1.0", protocols="v10.stomp") as c:
        c.send("SUBSCRIBE", {"destination": dest, "receipt": "r1"})
        await c.expect_receipt("r1")
        c.send("SEND", {"destination": dest}, "1.0")
        assert (await c.expect("MESSAGE")).body == b"1.0"
