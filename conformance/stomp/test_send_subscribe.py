"""SEND, SUBSCRIBE, UNSUBSCRIBE and MESSAGE (STOMP 1.2 "SEND", "SUBSCRIBE", "UNSUBSCRIBE",
"MESSAGE"; issue bullet 4), with stomp.py and @stomp/stompjs.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import Names, Server, event, raw_session, run_js


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stompjs_round_trip_each_version(server: Server, names: Names, version: str) -> None:
    """@stomp/stompjs connects over each version it speaks (subprotocol ``v1N.stomp``,
    ``accept-version``), subscribes, sends and receives, and disconnects."""
    dest = names.topic("js", version.replace(".", ""))
    events = run_js(server, "pubsub", version=version, destination=dest, body=f"js {version}")
    connected = event(events, "connected")
    assert connected["headers"].get("version", "1.0") == version
    if not server.rabbitmq:
        assert connected["protocol"] == f"v{version.replace('.', '')}.stomp"
    msg = event(events, "message")
    assert msg["body"] == f"js {version}"
    assert msg["headers"]["destination"] == dest
    assert msg["headers"]["subscription"] == "sub-1"
    assert msg["headers"]["x-conformance"] == "js"
    assert msg["headers"]["content-type"] == "text/plain"


def test_message_headers(connected: StompFactory, names: Names, server: Server) -> None:
    """MESSAGE carries destination, message-id, subscription, content-type, content-length and
    the sender's own headers."""
    dest = names.topic("hdrs")
    c = connected()
    c.subscribe(dest, "sub-7")
    c.send(dest, '{"t": 1}', content_type="application/json", **{"x-user": "u1", "x-n": "2"})
    msg = c.expect_message()
    h = msg.headers
    assert h["destination"] == dest
    assert h["subscription"] == "sub-7"
    assert h["message-id"]
    assert h["content-type"] == "application/json"
    assert h["content-length"] == "8"
    assert h["x-user"] == "u1"
    assert h["x-n"] == "2"
    if server.strict:
        assert "ack" not in h, "ours: no ack header on auto-ack subscriptions"
        assert "redelivered" not in h, "ours: redelivered only on redelivery"


def test_message_ids_are_unique(connected: StompFactory, names: Names) -> None:
    """1.2 "MESSAGE": message-id is a unique identifier for that message."""
    dest = names.topic("ids")
    c = connected()
    c.subscribe(dest, "s1")
    for i in range(5):
        c.send(dest, str(i))
    ids = {c.expect_message().headers["message-id"] for _ in range(5)}
    assert len(ids) == 5


def test_every_subscriber_gets_a_topic_message(connected: StompFactory, names: Names) -> None:
    """``/topic`` is publish/subscribe: each subscribing connection gets a copy."""
    dest = names.topic("fanout")
    subs = [connected() for _ in range(3)]
    for i, s in enumerate(subs):
        s.subscribe(dest, f"s{i}")
    pub = connected()
    pub.send(dest, "to all", receipt=True)
    for i, s in enumerate(subs):
        msg = s.expect_message()
        assert msg.body == "to all"
        assert msg.headers["subscription"] == f"s{i}"


def test_two_subscriptions_on_one_connection(connected: StompFactory, names: Names) -> None:
    """Each subscription of a connection gets the message once, with its own id in
    ``subscription`` (1.2 "SUBSCRIBE id Header")."""
    dest = names.topic("multi")
    c = connected()
    c.subscribe(dest, "a")
    c.subscribe(names.topic("+"), "b")
    c.send(dest, "twice")
    got = sorted(c.expect_message().headers["subscription"] for _ in range(2))
    assert got == ["a", "b"]


def test_unsubscribe_stops_delivery(connected: StompFactory, names: Names) -> None:
    """After UNSUBSCRIBE (and its RECEIPT) nothing more comes for that subscription."""
    gone, stays = names.topic("gone"), names.topic("stays")
    c = connected()
    c.subscribe(gone, "g")
    c.subscribe(stays, "s")
    c.unsubscribe("g")
    c.send(gone, "not for you")
    c.send(stays, "marker")
    assert c.messages_until("marker") == []


def test_subscription_id_can_be_reused_after_unsubscribe(
    connected: StompFactory, names: Names
) -> None:
    """An id is free again once its subscription is gone."""
    first, second = names.topic("first"), names.topic("second")
    c = connected()
    c.subscribe(first, "s1")
    c.unsubscribe("s1")
    c.subscribe(second, "s1")
    c.send(first, "old")
    c.send(second, "new")
    msg = c.expect_message()
    assert (msg.body, msg.headers["destination"]) == ("new", second)


@pytest.mark.parametrize("ack", ["auto", "client", "client-individual"])
def test_subscribe_ack_modes_accepted(
    connected: StompFactory, names: Names, server: Server, ack: str
) -> None:
    """1.2 "SUBSCRIBE ack Header": auto, client and client-individual; 1.2 MESSAGE has an
    ``ack`` header for the client modes (ours: only for them)."""
    dest = names.topic("ackmode")
    c = connected()
    c.subscribe(dest, "s1", ack=ack)
    c.send(dest, ack)
    msg = c.expect_message()
    assert msg.body == ack
    if ack != "auto":
        assert msg.headers.get("ack"), f"1.2 MESSAGE needs an ack header for {ack}: {msg.headers}"
        c.ack(msg)
    elif server.strict:
        assert "ack" not in msg.headers


def test_topic_message_without_subscriber_is_dropped(connected: StompFactory, names: Names) -> None:
    """A topic message that matches no subscription is dropped, not kept for a later one."""
    dest = names.topic("nobody")
    c = connected()
    c.send(dest, "lost", receipt=True)
    c.subscribe(dest, "late")
    c.send(dest, "marker")
    assert c.messages_until("marker") == []


def test_large_body(connected: StompFactory, names: Names, server: Server) -> None:
    """A body of half the frame-size limit (or 32 KiB) arrives whole."""
    limit = server.limits.max_frame_size or 65536
    body = "x" * (limit // 2)
    dest = names.topic("large")
    c = connected()
    c.subscribe(dest, "s1")
    c.send(dest, body)
    assert c.expect_message().body == body


@async_test
async def test_publisher_order_is_kept(server: Server, names: Names) -> None:
    """Messages from one connection to one topic arrive in the order sent."""
    dest = names.topic("order")
    async with raw_session(server) as c:
        await c.subscribe(dest, "s1")
        c.send_bytes(b"".join(f"SEND\ndestination:{dest}\n\n{i}\x00".encode() for i in range(50)))
        got = [(await c.expect("MESSAGE")).body for _ in range(50)]
        assert got == [str(i).encode() for i in range(50)]
