"""``/queue/<name>`` work queues (issue bullet 8): each message to exactly one subscriber, round
robin; held until acked (auto-ack consumers ack on send); redelivered with ``redelivered:true``
on NACK or when its consumer leaves unacked; waiting, bounded, while there is no consumer;
``prefetch-count`` (RabbitMQ's header) caps the unacked messages a consumer holds.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import (
    Names,
    Server,
    assert_names,
    event,
    raw_session,
    require_limit,
    run_js,
)


def test_each_message_goes_to_exactly_one_consumer(
    connected: StompFactory, names: Names, server: Server
) -> None:
    """Two consumers share the messages, each message to one of them, round robin."""
    q = names.queue()
    a, b = connected(), connected()
    a.subscribe(q, "a")
    b.subscribe(q, "b")
    pub = connected()
    for i in range(6):
        pub.send(q, f"m{i}", receipt=True)
    got_a = [a.expect_message().body for _ in range(3)]
    got_b = [b.expect_message().body for _ in range(3)]
    assert sorted(got_a + got_b) == [f"m{i}" for i in range(6)]
    if server.strict:
        assert {tuple(got_a), tuple(got_b)} == {("m0", "m2", "m4"), ("m1", "m3", "m5")}
    a.send(q, "marker-a", receipt=True)
    b.send(q, "marker-b", receipt=True)
    # Whoever gets a marker got nothing else (no duplicates) before it.
    for c in (a, b):
        body = c.expect_message().body
        assert body in ("marker-a", "marker-b"), body


def test_messages_wait_for_a_consumer(connected: StompFactory, names: Names) -> None:
    """A queue message with no consumer waits, in order, for the first one."""
    q = names.queue()
    pub = connected()
    for i in range(3):
        pub.send(q, f"w{i}", receipt=True)
    pub.disconnect()
    c = connected()
    c.subscribe(q, "late")
    assert c.bodies(3) == ["w0", "w1", "w2"]


def test_unacked_message_redelivered_when_consumer_leaves(
    connected: StompFactory, names: Names
) -> None:
    """A consumer that leaves without acking hands its messages back, ``redelivered:true``."""
    q = names.queue()
    first = connected()
    first.subscribe(q, "s1", ack="client-individual")
    first.send(q, "held", receipt=True)
    assert first.expect_message().body == "held"
    second = connected()
    second.subscribe(q, "s2", ack="client-individual")
    first.disconnect()
    again = second.expect_message()
    assert again.body == "held"
    assert again.headers.get("redelivered") == "true"
    second.ack(again)


def test_auto_ack_consumer_acks_on_send(connected: StompFactory, names: Names) -> None:
    """An auto-ack consumer's messages count as acked once sent: nothing comes back after it
    leaves."""
    q = names.queue()
    first = connected()
    first.subscribe(q, "s1", ack="auto")
    first.send(q, "gone", receipt=True)
    assert first.expect_message().body == "gone"
    second = connected()
    second.subscribe(q, "s2")
    first.drop()
    second.send(q, "marker", receipt=True)
    assert second.messages_until("marker") == []


def test_prefetch_count_caps_unacked_messages(connected: StompFactory, names: Names) -> None:
    """``prefetch-count:2``: the consumer holds at most 2 unacked messages; an ACK lets the
    next one through."""
    q = names.queue()
    pub = connected()
    for i in range(4):
        pub.send(q, f"p{i}", receipt=True)
    c = connected()
    c.subscribe(q, "s1", ack="client-individual", **{"prefetch-count": "2"})
    held = [c.expect_message() for _ in range(2)]
    assert [m.body for m in held] == ["p0", "p1"]
    c.expect_nothing(0.3)
    c.ack(held[0])
    assert c.expect_message().body == "p2"
    c.expect_nothing(0.3)


def test_stompjs_client_individual_queue(
    connected: StompFactory, names: Names, server: Server
) -> None:
    """@stomp/stompjs on a queue with client-individual: ``ack()`` m1 and m3, ``nack()`` m2,
    m2 comes back (``redelivered:true``) and is acked; nothing is left."""
    q = names.queue()
    events = run_js(server, "queue_ack", destination=q)
    delivered = event(events, "delivered")["messages"]
    assert [m["body"] for m in delivered] == ["m1", "m2", "m3"]
    again = event(events, "redelivered")
    assert again["body"] == "m2"
    assert again["headers"].get("redelivered") == "true"
    c = connected()
    c.subscribe(q, "check")
    c.send(q, "marker", receipt=True)
    assert c.messages_until("marker") == []


@async_test
async def test_full_backlog_send_is_an_error(server: Server, names: Names) -> None:
    """SEND to a queue whose backlog (no consumer) is full: ERROR, then close (ours)."""
    if not server.strict:
        pytest.skip(
            "a bounded backlog with ERROR on SEND is wsbroker's choice (RabbitMQ queues "
            "are unbounded unless x-max-length is set)"
        )
    backlog = require_limit(server.limits.queue_max_backlog, "queue_max_backlog")
    q = names.queue()
    async with raw_session(server) as c:
        for i in range(backlog):
            c.send("SEND", {"destination": q, "receipt": f"r{i}"}, str(i))
            await c.expect_receipt(f"r{i}")
        c.send("SEND", {"destination": q, "receipt": "over"}, "one too many")
        error = await c.expect_error_and_close()
        assert_names(error, "queue")
    async with raw_session(server) as c:
        c.send("SUBSCRIBE", {"destination": q, "id": "drain"})
        first = await c.expect("MESSAGE")
        assert first.body == b"0", "the backlog must keep what it held"
