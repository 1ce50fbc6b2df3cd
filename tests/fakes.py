"""A fake Link and clock, to drive adapters without sockets or an event loop."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable

from broker.core.message import Delivery, Message

_ids = itertools.count(1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLink:
    """Records what the adapter sends; `closed` holds the close it asked for."""

    def __init__(self, *, binary_only: bool = False) -> None:
        self.binary_only = binary_only
        self.texts: list[bool] = []  # for each message in `sent`: did it go as text?
        self.session_id = f"link-{next(_ids)}"
        self.peer = "127.0.0.1:1"
        self.path = "/mqtt"
        self.query = ""
        self.subprotocol: str | None = "mqtt"
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.receive_timeout: float | None = None

    def send_message(self, data: bytes, *, text: bool) -> None:
        assert not (text and self.binary_only), "this protocol goes in binary frames"
        if self.closed is None:
            self.sent.append(data)
            self.texts.append(text)

    def send_delivery(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        *,
        text: bool,
        droppable: bool,
    ) -> None:
        self.send_message(delivery.wire(form, build), text=text)

    def send_patched(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        offset: int,
        patch: bytes,
    ) -> None:
        data = delivery.wire(form, build)
        self.send_message(data[:offset] + patch + data[offset + len(patch) :], text=False)

    def close(self, code: int, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def set_receive_timeout(self, seconds: float | None) -> None:
        self.receive_timeout = seconds
