"""stomp.py over WebSocket (its ``WSTransport``), wrapped with blocking waits on its callbacks.

stomp.py runs a receiver thread; its listener callbacks fill ``queue.Queue``s and set
``threading.Event``s, and the test thread waits on those with a timeout. Nothing sleeps or polls.
``WSStompConnection`` speaks 1.2 only, so 1.0 and 1.1 connections are put together here from
the same transport and stomp.py's Protocol10/Protocol11.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import websocket
from stomp.adapter.ws import WSTransport  # type: ignore[import-untyped,unused-ignore]
from stomp.connect import BaseConnection  # type: ignore[import-untyped,unused-ignore]
from stomp.exception import InterruptedException  # type: ignore[import-untyped,unused-ignore]
from stomp.listener import ConnectionListener  # type: ignore[import-untyped,unused-ignore]
from stomp.protocol import Protocol10, Protocol11, Protocol12  # type: ignore[import-untyped,unused-ignore]
from stomp.utils import Frame  # type: ignore[import-untyped,unused-ignore]

__all__ = ["SUBPROTOCOL", "TIMEOUT", "StompPy", "subprotocol_for"]

TIMEOUT = 5.0
SUBPROTOCOL = {"1.0": "v10.stomp", "1.1": "v11.stomp", "1.2": "v12.stomp"}


def subprotocol_for(version: str) -> str:
    return SUBPROTOCOL[version]


class _Transport(WSTransport):  # type: ignore[misc]
    """stomp.py's WebSocket transport, plus: a close frame ends the connection at once, a read
    timeout is not a close, and the opcode of every data message is kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opcodes: list[int] = []

    def receive(self) -> bytes:
        try:
            opcode, data = self.socket.recv_data()
        except websocket.WebSocketTimeoutException:
            raise InterruptedException() from None
        except (websocket.WebSocketConnectionClosedException, OSError):
            return b""
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return b""
        self.opcodes.append(opcode)
        return bytes(data)

    def cleanup(self) -> None:
        # websocket-client's close() skips closing the socket once it has seen a close frame.
        sock = self.socket
        super().cleanup()
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.shutdown()

    def disconnect_socket(self) -> None:
        sock = self.socket
        if sock is not None and sock.sock is not None:
            # close() alone does not wake the receiver thread blocked in recv(); shutdown does.
            with contextlib.suppress(OSError):
                sock.sock.shutdown(socket.SHUT_RDWR)
        super().disconnect_socket()
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.shutdown()


class _WS10(BaseConnection, Protocol10):  # type: ignore[misc]
    def __init__(self, transport: _Transport, heartbeats: tuple[int, int]) -> None:
        BaseConnection.__init__(self, transport)
        Protocol10.__init__(self, transport)

    # BaseConnection.disconnect (a no-op) comes first in the MRO.
    disconnect = Protocol10.disconnect


class _WS11(BaseConnection, Protocol11):  # type: ignore[misc]
    def __init__(self, transport: _Transport, heartbeats: tuple[int, int]) -> None:
        BaseConnection.__init__(self, transport)
        Protocol11.__init__(self, transport, heartbeats)

    # BaseConnection.disconnect (a no-op) comes first in the MRO.
    disconnect = Protocol11.disconnect


class _WS12(BaseConnection, Protocol12):  # type: ignore[misc]
    def __init__(self, transport: _Transport, heartbeats: tuple[int, int]) -> None:
        BaseConnection.__init__(self, transport)
        Protocol12.__init__(self, transport, heartbeats)

    # BaseConnection.disconnect (a no-op) comes first in the MRO.
    disconnect = Protocol12.disconnect


_CLASSES: dict[str, type[BaseConnection]] = {"1.0": _WS10, "1.1": _WS11, "1.2": _WS12}


class _Listener(ConnectionListener):  # type: ignore[misc]
    def __init__(self, owner: StompPy) -> None:
        self.owner = owner

    def on_connected(self, frame: Frame) -> None:
        self.owner.connected_frame = frame
        self.owner.connected.set()

    def on_message(self, frame: Frame) -> None:
        self.owner.messages.put(frame)

    def on_error(self, frame: Frame) -> None:
        self.owner.errors.put(frame)
        self.owner.connected.set()  # wake a connect() that is waiting

    def on_receipt(self, frame: Frame) -> None:
        with self.owner.receipts_cond:
            self.owner.receipts.append(frame.headers.get("receipt-id", ""))
            self.owner.receipts_cond.notify_all()

    def on_heartbeat(self) -> None:
        self.owner.heartbeats.put(time.monotonic())

    def on_disconnected(self) -> None:
        self.owner.disconnected.set()
        self.owner.connected.set()


class StompPy:
    """A stomp.py connection to ``url`` + ``path`` speaking STOMP ``version``."""

    _ids = itertools.count(1)

    def __init__(
        self,
        url: str,
        path: str,
        *,
        version: str = "1.2",
        subprotocol: str | None = "",
        heartbeats: tuple[int, int] = (0, 0),
        vhost: str | None = None,
        binary_mode: bool = False,
        auto_decode: bool = True,
    ) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None, url
        assert parts.port is not None, url
        self.version = version
        if subprotocol == "":
            subprotocol = subprotocol_for(version)
        header = {"Sec-WebSocket-Protocol": subprotocol} if subprotocol else None
        self.transport = _Transport(
            [(parts.hostname, parts.port)],
            reconnect_attempts_max=1,
            timeout=TIMEOUT,
            vhost=vhost,
            auto_decode=auto_decode,
            ws_path=path,
            header=header,
            binary_mode=binary_mode,
        )
        self.conn: Any = _CLASSES[version](self.transport, heartbeats)
        self.messages: queue.Queue[Frame] = queue.Queue()
        self.errors: queue.Queue[Frame] = queue.Queue()
        self.heartbeats: queue.Queue[float] = queue.Queue()
        self.receipts: list[str] = []
        self.receipts_cond = threading.Condition()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connected_frame: Frame | None = None
        self._started = False
        self.conn.set_listener("conformance", _Listener(self))

    def __enter__(self) -> StompPy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def new_id(prefix: str = "r") -> str:
        return f"{prefix}-{next(StompPy._ids)}"

    # ----- connection

    def connect(
        self,
        login: str | None = None,
        passcode: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        with_connect_command: bool = False,
        timeout: float = TIMEOUT,
    ) -> Frame:
        """Open the WebSocket, send STOMP (or CONNECT) and wait for CONNECTED."""
        self.conn.transport.start()
        self._started = True
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if self.version != "1.0":
            kwargs["with_connect_command"] = with_connect_command
        self.conn.connect(login, passcode, wait=False, **kwargs)
        assert self.connected.wait(timeout), f"no CONNECTED within {timeout} s"
        if self.connected_frame is None:
            error = self.errors.get_nowait() if not self.errors.empty() else None
            raise AssertionError(f"connection refused: {error and (error.headers, error.body)}")
        return self.connected_frame

    def wait_receipt(self, receipt_id: str, timeout: float = TIMEOUT) -> None:
        with self.receipts_cond:
            ok = self.receipts_cond.wait_for(lambda: receipt_id in self.receipts, timeout)
        if not ok:
            errors = [(e.headers, e.body) for e in self.errors.queue]
            raise AssertionError(
                f"no RECEIPT {receipt_id!r} within {timeout} s; errors {errors}; "
                f"disconnected: {self.disconnected.is_set()}"
            )

    def _receipt(self, receipt: bool | str) -> str | None:
        if receipt is True:
            return self.new_id()
        return receipt or None

    # ----- frames

    def subscribe(
        self,
        destination: str,
        sub_id: str = "s1",
        ack: str = "auto",
        *,
        receipt: bool | str = True,
        **headers: str,
    ) -> None:
        """SUBSCRIBE; with ``receipt`` (default) wait until the server confirms it."""
        rid = self._receipt(receipt)
        if rid:
            headers["receipt"] = rid
        if self.version == "1.0":
            headers["id"] = sub_id
            self.conn.subscribe(destination, ack=ack, headers=headers)
        else:
            self.conn.subscribe(destination, sub_id, ack=ack, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def unsubscribe(self, sub_id: str = "s1", *, receipt: bool | str = True) -> None:
        rid = self._receipt(receipt)
        headers = {"receipt": rid} if rid else {}
        self.conn.unsubscribe(id=sub_id, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def send(
        self,
        destination: str,
        body: str | bytes = "",
        *,
        content_type: str | None = None,
        receipt: bool | str = False,
        transaction: str | None = None,
        **headers: str,
    ) -> None:
        rid = self._receipt(receipt)
        if rid:
            headers["receipt"] = rid
        if transaction is not None:
            headers["transaction"] = transaction
        self.conn.send(destination, body, content_type=content_type, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def _ack_args(self, msg: Frame) -> dict[str, Any]:
        if self.version == "1.2":
            return {"id": msg.headers["ack"]}
        if self.version == "1.1":
            return {"id": msg.headers["message-id"], "subscription": msg.headers["subscription"]}
        return {"id": msg.headers["message-id"]}

    def ack(
        self, msg: Frame, *, transaction: str | None = None, receipt: bool | str = True
    ) -> None:
        """ACK ``msg`` with the headers its version needs (1.2 ``id``; 1.1 ``message-id`` and
        ``subscription``); with ``receipt`` wait for the server to confirm."""
        rid = self._receipt(receipt)
        self.conn.ack(**self._ack_args(msg), transaction=transaction, receipt=rid)
        if rid:
            self.wait_receipt(rid)

    def nack(
        self, msg: Frame, *, transaction: str | None = None, receipt: bool | str = True
    ) -> None:
        rid = self._receipt(receipt)
        self.conn.nack(**self._ack_args(msg), transaction=transaction, receipt=rid)
        if rid:
            self.wait_receipt(rid)

    def begin(self, tx: str, *, receipt: bool | str = True) -> None:
        rid = self._receipt(receipt)
        self.conn.begin(tx, headers={"receipt": rid} if rid else {})
        if rid:
            self.wait_receipt(rid)

    def commit(self, tx: str, *, receipt: bool | str = True) -> None:
        rid = self._receipt(receipt)
        self.conn.commit(tx, headers={"receipt": rid} if rid else {})
        if rid:
            self.wait_receipt(rid)

    def abort(self, tx: str, *, receipt: bool | str = True) -> None:
        rid = self._receipt(receipt)
        self.conn.abort(tx, headers={"receipt": rid} if rid else {})
        if rid:
            self.wait_receipt(rid)

    def send_frame(self, command: str, headers: dict[str, str], body: str = "") -> None:
        """Any frame, as stomp.py sends it (no validation)."""
        self.conn.send_frame(command, headers, body)

    # ----- waiting for deliveries

    def expect_message(self, timeout: float = TIMEOUT) -> Frame:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            errors = list(self.errors.queue)
            raise AssertionError(f"no MESSAGE within {timeout} s (errors: {errors})") from None

    def expect_error(self, timeout: float = TIMEOUT) -> Frame:
        try:
            return self.errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no ERROR within {timeout} s") from None

    def expect_nothing(self, within: float) -> None:
        """A bounded wait that must end without a message (prefer a marker as a barrier)."""
        try:
            msg = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected MESSAGE {msg.headers} {msg.body!r}")

    def messages_until(self, marker: str | bytes, timeout: float = TIMEOUT) -> list[Frame]:
        """Every message before the first whose body is ``marker`` (consumed): a barrier."""
        deadline = time.monotonic() + timeout
        got: list[Frame] = []
        while True:
            msg = self.expect_message(max(deadline - time.monotonic(), 0.0))
            if msg.body == marker:
                return got
            got.append(msg)

    def bodies(self, n: int, timeout: float = TIMEOUT) -> list[Any]:
        return [self.expect_message(timeout).body for _ in range(n)]

    # ----- closing

    def disconnect(self, timeout: float = TIMEOUT) -> None:
        """DISCONNECT with a receipt; returns once the connection is closed."""
        if self._started and not self.disconnected.is_set():
            with contextlib.suppress(Exception):
                self.conn.disconnect()
            self.disconnected.wait(timeout)
        self.close()

    def drop(self) -> None:
        """Close the WebSocket without DISCONNECT (a client that just goes away)."""
        if self._started:
            with contextlib.suppress(Exception):
                self.transport.disconnect_socket()
            # stomp.py may report the end from either of its threads, or (racing) from neither.
            self.disconnected.set()
        self.close()

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if not self.disconnected.is_set():
            with contextlib.suppress(Exception):
                self.transport.disconnect_socket()
        with contextlib.suppress(Exception):
            self.transport.stop()
        with contextlib.suppress(Exception):
            self.transport.cleanup()
        if self.transport.io_thread is not None:
            self.transport.io_thread.join(TIMEOUT)


# stomp.py logs a warning when a connection drops; the suite checks drops itself.
logging.getLogger("stomp.py").setLevel(logging.ERROR)
