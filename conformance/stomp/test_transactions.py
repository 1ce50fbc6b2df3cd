"""Transactions: BEGIN, COMMIT, ABORT (STOMP 1.2 "BEGIN", "COMMIT", "ABORT", "SEND" and "ACK"
``transaction`` header; issue bullet 5).

SENDs and ACKs inside a transaction take effect only on COMMIT; ABORT and the end of the
connection discard them. A SEND outside the transaction is the barrier that shows nothing from
inside it got through.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.clients import StompPy
from conformance.stomp.conftest import StompFactory
from conformance.stomp.support import Names, Server, assert_names, raw_session, require_limit


def _listener(connected: StompFactory, dest: str) -> StompPy:
    c = connected()
    c.subscribe(dest, "s1")
    return c


def test_sends_take_effect_on_commit(connected: StompFactory, names: Names) -> None:
    """1.2 "COMMIT": the transaction's SENDs are delivered on COMMIT, in order, not before."""
    dest = names.topic("tx")
    sub = _listener(connected, dest)
    pub = connected()
    pub.begin("tx-1")
    pub.send(dest, "t1", transaction="tx-1")
    # No receipt inside: RabbitMQ sends a transactional SEND's RECEIPT only on COMMIT.
    pub.send(dest, "t2", transaction="tx-1")
    pub.send(dest, "outside", receipt=True)
    assert sub.messages_until("outside") == [], "transactional SENDs went out before COMMIT"
    pub.commit("tx-1")
    assert sub.bodies(2) == ["t1", "t2"]


def test_abort_discards_sends(connected: StompFactory, names: Names) -> None:
    """1.2 "ABORT": the transaction's SENDs are dropped."""
    dest = names.topic("abort")
    sub = _listener(connected, dest)
    pub = connected()
    pub.begin("tx-a")
    pub.send(dest, "never", transaction="tx-a")
    pub.abort("tx-a")
    pub.send(dest, "marker", receipt=True)
    assert sub.messages_until("marker") == []


@pytest.mark.parametrize("how", ["disconnect", "drop"])
def test_end_of_connection_discards_open_transaction(
    connected: StompFactory, names: Names, how: str
) -> None:
    """1.2 "BEGIN": open transactions are implicitly aborted when the client sends DISCONNECT
    or the connection fails."""
    dest = names.topic("txend")
    sub = _listener(connected, dest)
    pub = connected()
    pub.begin("tx-d")
    pub.send(dest, "never", transaction="tx-d")
    pub.send(names.topic("elsewhere"), "barrier", receipt=True)
    if how == "disconnect":
        pub.disconnect()
    else:
        pub.drop()
    other = connected()
    other.send(dest, "marker", receipt=True)
    assert sub.messages_until("marker") == []


@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_ack_in_transaction_takes_effect_on_commit(
    connected: StompFactory, names: Names, outcome: str
) -> None:
    """1.2 "ACK" ``transaction``: an ACK inside a transaction counts only once committed; after
    ABORT the message is still unacked and comes back when its consumer leaves."""
    q = names.queue()
    c = connected()
    c.subscribe(q, "s1", ack="client-individual")
    c.send(q, "m1", receipt=True)
    msg = c.expect_message()
    c.begin("tx-ack")
    c.ack(msg, transaction="tx-ack")
    if outcome == "commit":
        c.commit("tx-ack")
    else:
        c.abort("tx-ack")
    after = connected()
    after.subscribe(q, "after")
    c.drop()
    if outcome == "abort":
        again = after.expect_message()
        assert again.body == "m1"
        assert again.headers.get("redelivered") == "true"
    after.send(q, "marker", receipt=True)
    assert after.messages_until("marker") == []


def test_transaction_id_reusable_after_commit(connected: StompFactory, names: Names) -> None:
    """A finished transaction's id may start a new one."""
    dest = names.topic("reuse")
    sub = _listener(connected, dest)
    pub = connected()
    for round_ in ("one", "two"):
        pub.begin("tx-r")
        pub.send(dest, round_, transaction="tx-r")
        pub.commit("tx-r")
    assert sub.bodies(2) == ["one", "two"]


def test_two_transactions_at_once(connected: StompFactory, names: Names) -> None:
    """Transactions are independent: committing one leaves the other open."""
    dest = names.topic("two")
    sub = _listener(connected, dest)
    pub = connected()
    pub.begin("a")
    pub.begin("b")
    pub.send(dest, "from a", transaction="a")
    pub.send(dest, "from b", transaction="b")
    pub.commit("b")
    assert sub.bodies(1) == ["from b"]
    pub.abort("a")
    pub.send(dest, "marker", receipt=True)
    assert sub.messages_until("marker") == []


@pytest.mark.parametrize(
    ("command", "headers"),
    [
        ("COMMIT", {"transaction": "no-such-tx"}),
        ("ABORT", {"transaction": "no-such-tx"}),
        ("SEND", {"transaction": "no-such-tx"}),
    ],
)
@async_test
async def test_unknown_transaction_is_an_error(
    server: Server, names: Names, command: str, headers: dict[str, str]
) -> None:
    """COMMIT, ABORT or SEND naming a transaction that was never begun: ERROR naming it."""
    if command == "SEND":
        headers = {**headers, "destination": names.topic("tx")}
    async with raw_session(server) as c:
        c.send(command, {**headers, "receipt": "r1"}, "x" if command == "SEND" else b"")
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "transaction")


@async_test
async def test_reused_transaction_id_is_an_error(server: Server) -> None:
    """BEGIN of a transaction id that is still open: ERROR (the issue's choice; the spec is
    silent)."""
    if not server.strict:
        pytest.skip("the spec says nothing of a second BEGIN (RabbitMQ 3.10 answers RECEIPT)")
    async with raw_session(server) as c:
        c.send("BEGIN", {"transaction": "tx-1"})
        c.send("BEGIN", {"transaction": "tx-1", "receipt": "r2"})
        error = await c.expect_error_and_close()
        assert_names(error, "transaction")


@pytest.mark.parametrize("command", ["BEGIN", "COMMIT", "ABORT"])
@async_test
async def test_missing_transaction_header_is_an_error(server: Server, command: str) -> None:
    """BEGIN / COMMIT / ABORT MUST have ``transaction``: ERROR naming the header."""
    async with raw_session(server) as c:
        c.send(command, {"receipt": "r1"})
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        assert_names(error, "transaction")


@async_test
async def test_transaction_frame_limit(server: Server, names: Names) -> None:
    """Past ``stomp_max_transaction_frames`` frames in one transaction: ERROR, then close (ours)."""
    if not server.strict:
        pytest.skip("a cap on frames per transaction is wsbroker's own setting")
    limit = require_limit(server.limits.max_transaction_frames, "max_transaction_frames")
    dest = names.topic("txlimit")
    async with raw_session(server) as c:
        c.send("BEGIN", {"transaction": "big"})
        c.send_bytes(
            b"".join(
                f"SEND\ndestination:{dest}\ntransaction:big\n\n{i}\x00".encode()
                for i in range(limit + 1)
            )
        )
        error = await c.expect_error_and_close()
        assert_names(error, "transaction")
