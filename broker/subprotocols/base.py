"""What an adapter is, and what it sees of its connection (the transport implements `Link`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from broker.core.message import Delivery, Message

if TYPE_CHECKING:
    from broker.config import Settings
    from broker.core.broker import Broker


class Link(Protocol):
    """One open WebSocket connection, as its adapter sees it: no sockets, no frames."""

    session_id: str
    peer: str
    path: str
    query: str
    subprotocol: str | None

    def send_message(self, data: bytes, *, text: bool) -> None:
        """Queue one whole message."""

    def send_delivery(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        *,
        text: bool,
        droppable: bool,
    ) -> None:
        """Queue a delivery's `form`, encoded once for all connections that share it.

        `text` must follow from the form and the message: the frame is shared as well.
        """

    def send_patched(
        self,
        delivery: Delivery,
        form: Hashable,
        build: Callable[[Message], bytes],
        offset: int,
        patch: bytes,
    ) -> None:
        """Queue a binary delivery's shared `form` with `patch` over its bytes at `offset`.

        For what differs per connection in an otherwise shared encoding (a packet id).
        """

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake."""

    def set_receive_timeout(self, seconds: float | None) -> None:
        """Call on_receive_timeout when nothing arrives for this long (None: never)."""


class Adapter(Protocol):
    """One connection's protocol session, driven by the transport."""

    def on_open(self) -> None:
        """The handshake is done; the link can send."""

    def on_message(self, data: bytes, text: bool) -> None:
        """One whole message arrived."""

    def on_close(self) -> None:
        """The connection is gone; release what the session holds."""

    def on_receive_timeout(self) -> None:
        """Nothing arrived within the timeout the adapter set; the link is still open."""

    def on_shutdown(self) -> None:
        """The server is stopping: say goodbye in the protocol's words (a 1001 close follows)."""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """Broker-wide things every adapter may use."""

    broker: Broker
    settings: Settings


AdapterFactory = Callable[[Link, AdapterContext], Adapter]
# Called before the upgrade with (path, query): a reason to refuse it with 400, or None.
PathCheck = Callable[[str, str], "str | None"]
