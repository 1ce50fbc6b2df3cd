"""What a STOMP session refuses: each refusal becomes an ERROR frame, then the close."""

from __future__ import annotations

from collections.abc import Sequence

from broker.subprotocols.stomp.frames import Frame

# WebSocket close codes after the ERROR frame.
WS_NORMAL = 1000
WS_PROTOCOL_ERROR = 1002  # the client broke STOMP
WS_POLICY = 1008  # a limit or a refusal


class StompError(Exception):
    """A frame the server refuses: ERROR with `message` (and `detail` as body), then close."""

    def __init__(
        self,
        message: str,
        detail: str = "",
        *,
        code: int = WS_PROTOCOL_ERROR,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code
        self.headers = headers


def required(frame: Frame, name: str) -> str:
    """The header's value; StompError naming it when the frame lacks it."""
    value = frame.header(name)
    if value is None:
        raise StompError(
            f"missing header '{name}'", f"a {frame.command} frame needs a '{name}' header"
        )
    return value
