"""RECEIPT and ERROR (STOMP 1.2 "Header receipt", "RECEIPT", "ERROR", "DISCONNECT"; issue
bullet 6).

Every frame carrying ``receipt`` gets a RECEIPT with that ``receipt-id`` (DISCONNECT's before the
close); an ERROR has a ``message`` header, ``receipt-id`` when the failing frame asked for a
receipt, and the connection is closed after it.
"""

from __future__ import annotations

import pytest

from conformance.aio import async_test
from conformance.stomp.rawstomp import RawStomp
from conformance.stomp.support import Names, Server, event, raw_session, run_js


async def _delivered(c: RawStomp, dest: str) -> dict[str, str]:
    """SEND one message to ``dest`` (subscribed with client-individual); its MESSAGE headers."""
    c.send("SEND", {"destination": dest, "receipt": "r-fill"}, "x")
    got = [await c.next_frame(), await c.next_frame()]
    msg = next(f for f in got if f.command == "MESSAGE")
    return dict(msg.headers)


FRAMES = ["SUBSCRIBE", "SEND", "UNSUBSCRIBE", "BEGIN", "COMMIT", "ABORT", "ACK", "NACK"]


@pytest.mark.parametrize("command", FRAMES)
@async_test
async def test_receipt_for_each_frame(server: Server, names: Names, command: str) -> None:
    """1.2 "Header receipt": any client frame other than CONNECT may ask for a receipt; the
    server answers RECEIPT with ``receipt-id`` equal to it."""
    q = names.queue()
    async with raw_session(server) as c:
        headers: dict[str, str]
        if command == "SUBSCRIBE":
            headers = {"destination": q, "id": "s1"}
        elif command == "SEND":
            headers = {"destination": q}
        elif command == "UNSUBSCRIBE":
            await c.subscribe(q, "s1")
            headers = {"id": "s1"}
        elif command == "BEGIN":
            headers = {"transaction": "t1"}
        elif command in ("COMMIT", "ABORT"):
            c.send("BEGIN", {"transaction": "t1"})
            headers = {"transaction": "t1"}
        else:
            await c.subscribe(q, "s1", ack="client-individual")
            msg = await _delivered(c, q)
            headers = {"id": msg["ack"]}
        rid = f"receipt-{command.lower()}-77"
        c.send(command, {**headers, "receipt": rid}, "body" if command == "SEND" else b"")
        # A NACKed message may come back before the RECEIPT.
        receipt = await c.expect_receipt(rid, skip=("MESSAGE",))
        assert receipt.body == b""


@async_test
async def test_receipt_id_with_special_characters(server: Server, names: Names) -> None:
    """A receipt value is escaped like any header: ``receipt-id`` gives it back unchanged."""
    async with raw_session(server) as c:
        rid = "a:b\\c d"
        c.send("SEND", {"destination": names.topic("rid"), "receipt": rid}, "x")
        await c.expect_receipt(rid)


@async_test
async def test_receipts_come_in_order(server: Server, names: Names) -> None:
    """Receipts for a connection's frames come in the order of the frames."""
    dest = names.topic("ordered")
    async with raw_session(server) as c:
        c.send_bytes(
            b"".join(f"SEND\ndestination:{dest}\nreceipt:r{i}\n\nx\x00".encode() for i in range(20))
        )
        got = [(await c.expect("RECEIPT")).get("receipt-id") for _ in range(20)]
        assert got == [f"r{i}" for i in range(20)]


@async_test
async def test_disconnect_receipt_comes_before_the_close(server: Server) -> None:
    """1.2 "DISCONNECT": the server acknowledges a DISCONNECT that asks for a receipt with
    RECEIPT, then closes the connection."""
    if server.rabbitmq:
        pytest.skip(
            "RabbitMQ 3.10 Web-STOMP closes the WebSocket (1000 'STOMP died') without "
            "the RECEIPT for DISCONNECT"
        )
    async with raw_session(server) as c:
        c.send("DISCONNECT", {"receipt": "bye-1"})
        before, _ = await c.expect_closed()
        assert [f.command for f in before] == ["RECEIPT"], before
        assert before[0].get("receipt-id") == "bye-1"


@async_test
async def test_error_has_message_and_receipt_id(server: Server) -> None:
    """1.2 "ERROR": a ``message`` header with a short description; when the failing frame asked
    for a receipt, ``receipt-id`` names it (SHOULD; required of ours)."""
    async with raw_session(server) as c:
        c.send("SEND", {"receipt": "failing-1"}, "no destination")
        error = await c.expect_error_and_close(close_required=server.closes_after_error)
        if server.strict or "receipt-id" in error:
            assert error.get("receipt-id") == "failing-1", error


@async_test
async def test_error_then_close(server: Server) -> None:
    """1.2 "ERROR": the server MUST close the connection just after sending ERROR; nothing
    else follows it."""
    if not server.closes_after_error:
        pytest.skip(
            "RabbitMQ 3.10 keeps the connection open after an ERROR about one frame "
            "(missing header, unknown destination, bad transaction…)"
        )
    async with raw_session(server) as c:
        c.send("SUBSCRIBE", {"id": "s1", "receipt": "r1"})
        await c.expect_error_and_close()


def test_stompjs_receipts(server: Server, names: Names) -> None:
    """@stomp/stompjs ``watchForReceipt``: receipts for SUBSCRIBE, SEND and UNSUBSCRIBE, then
    the DISCONNECT receipt that ``deactivate()`` waits for."""
    dest = names.topic("jsreceipts")
    events = run_js(server, "receipts", destination=dest)
    assert event(events, "receipts")["ids"] == [f"sub-{dest}", "r-send", "r-unsub"]
    disconnected = event(events, "disconnected")
    if not server.rabbitmq:
        assert disconnected["receipt"] is not None, "no RECEIPT for DISCONNECT"
