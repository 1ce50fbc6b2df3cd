"""ACK and NACK (STOMP 1.2 "ACK", "NACK", "SUBSCRIBE ack Header"; 1.1 ACK by message-id and
subscription; issue bullets 4 and 8), on ``/queue`` destinations where an unacked message is
held and redelivered.

What was acked is checked by leaving: a consumer that drops its connection hands its unacked
messages back, and a second consumer must get exactly those (redelivered) before a marker.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.clients import StompPy
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import Names, Server, assert_names, raw_session


def _fill(c: StompPy, dest: str, *bodies: str) -> None:
    for body in bodies:
        c.send(dest, body, receipt=True)


def _handed_back(connected: StompFactory, holder: StompPy, dest: str, n: int) -> list[str]:
    """Drop ``holder`` (which holds every message of queue ``dest``) while a second consumer
    waits; the ``n`` bodies handed back to it, and nothing more before a marker."""
    after = connected()
    after.subscribe(dest, "after", ack="auto")
    holder.drop()
    got = [after.expect_message() for _ in range(n)]
    for m in got:
        assert m.headers.get("redelivered") == "true", m.headers
    after.send(dest, "marker", receipt=True)
    extra = [m.body for m in after.messages_until("marker")]
    assert extra == [], f"handed back beyond the {n} expected: {extra}"
    return sorted(m.body for m in got)


def test_client_individual_ack_acks_only_that_message(
    connected: StompFactory, names: Names
) -> None:
    """``client-individual``: an ACK covers only the message it names."""
    q = names.queue()
    c = connected()
    c.subscribe(q, "s1", ack="client-individual")
    _fill(c, q, "m1", "m2", "m3")
    msgs = {m.body: m for m in (c.expect_message() for _ in range(3))}
    c.ack(msgs["m2"])
    assert _handed_back(connected, c, q, 2) == ["m1", "m3"]


def test_client_ack_is_cumulative(connected: StompFactory, names: Names) -> None:
    """``client``: an ACK acknowledges that message and every earlier one delivered to the
    subscription (1.2 "SUBSCRIBE ack Header")."""
    q = names.queue()
    c = connected()
    c.subscribe(q, "s1", ack="client")
    _fill(c, q, "m1", "m2", "m3")
    msgs = [c.expect_message() for _ in range(3)]
    assert [m.body for m in msgs] == ["m1", "m2", "m3"]
    c.ack(msgs[1])
    assert _handed_back(connected, c, q, 1) == ["m3"]


def test_nack_redelivers_with_redelivered_header(
    connected: StompFactory, names: Names, server: Server
) -> None:
    """NACK hands the message back; it comes again with ``redelivered:true``, and its first
    delivery did not say so (ours: no header; others may say ``false``)."""
    q = names.queue()
    c = connected()
    c.subscribe(q, "s1", ack="client-individual")
    _fill(c, q, "again")
    first = c.expect_message()
    assert first.headers.get("redelivered", "false") == "false", first.headers
    if server.strict:
        assert "redelivered" not in first.headers
    c.nack(first)
    second = c.expect_message()
    assert second.body == "again"
    assert second.headers.get("redelivered") == "true", second.headers
    c.ack(second)
    assert _handed_back(connected, c, q, 0) == []


def test_ack_1_1_by_message_id_and_subscription(connected: StompFactory, names: Names) -> None:
    """1.1 ACK names ``message-id`` and ``subscription``; an acked message is gone."""
    q = names.queue()
    c = connected(version="1.1")
    c.subscribe(q, "s1", ack="client-individual")
    _fill(c, q, "m1", "m2")
    msgs = {m.body: m for m in (c.expect_message() for _ in range(2))}
    c.ack(msgs["m1"])
    c.nack(msgs["m2"])
    again = c.expect_message()
    assert again.body == "m2"
    assert again.headers.get("redelivered") == "true"
    c.ack(again)
    assert _handed_back(connected, c, q, 0) == []


def test_1_2_ack_header_only_for_client_modes(
    connected: StompFactory, names: Names, server: Server
) -> None:
    """1.2 MESSAGE: ``ack`` is there for client / client-individual subscriptions; ours leaves it
    out for auto."""
    q_auto, q_client = names.queue("auto"), names.queue("client")
    c = connected()
    c.subscribe(q_auto, "a", ack="auto")
    c.subscribe(q_client, "c", ack="client")
    c.send(q_auto, "auto", receipt=True)
    c.send(q_client, "client", receipt=True)
    got = {m.body: m.headers for m in (c.expect_message() for _ in range(2))}
    assert got["client"].get("ack"), got
    if server.strict:
        assert "ack" not in got["auto"], got


@pytest.mark.parametrize("command", ["ACK", "NACK"])
@async_test
async def test_ack_of_unknown_id_is_an_error(server: Server, command: str) -> None:
    """ACK / NACK naming no message the server delivered: ERROR naming ``id``, then close."""
    async with raw_session(server) as c:
        c.send(command, {"id": "no-such-message", "receipt": "r1"})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "id")


@pytest.mark.parametrize("command", ["ACK", "NACK"])
@async_test
async def test_ack_without_id_is_an_error(server: Server, command: str) -> None:
    """1.2 ACK / NACK MUST have an ``id``: ERROR naming the header, then close."""
    async with raw_session(server) as c:
        c.send(command, {"receipt": "r1"})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "id")


def test_ack_1_1_without_subscription_is_an_error(
    connected: StompFactory, names: Names, server: Server
) -> None:
    """1.1 ACK needs ``message-id`` and ``subscription``: without the latter, ERROR naming it."""
    if server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 takes a 1.1 ACK without subscription (its message-id "
            "encodes the subscription)"
        )
    q = names.queue()
    c = connected(version="1.1")
    c.subscribe(q, "s1", ack="client-individual")
    c.send(q, "m1", receipt=True)
    msg = c.expect_message()
    c.send_frame("ACK", {"message-id": msg.headers["message-id"], "receipt": "r-ack"})
    error = c.expect_error()
    assert_names(error, "subscription")
