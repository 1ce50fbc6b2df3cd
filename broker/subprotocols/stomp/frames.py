"""STOMP frames as typed events: what the reader yields and what the encoder takes.

Both classes are slotted and immutable. The reader builds frames through `_frame`, which sets
the slots directly: the checks of the constructor are for frames that code builds, and the
reader has already made sure of everything they check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn

Version = Literal["1.0", "1.1", "1.2"]
VERSIONS: tuple[Version, ...] = ("1.0", "1.1", "1.2")

CLIENT_COMMANDS = frozenset(
    {
        "ABORT",
        "ACK",
        "BEGIN",
        "COMMIT",
        "CONNECT",
        "DISCONNECT",
        "NACK",
        "SEND",
        "STOMP",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
    }
)
SERVER_COMMANDS = frozenset({"CONNECTED", "ERROR", "MESSAGE", "RECEIPT"})
# Their headers are never escaped, in any version (1.2 "Value Encoding": 1.0 compatibility).
UNESCAPED_COMMANDS = frozenset({"CONNECT", "CONNECTED", "STOMP"})
MAX_COMMAND_LENGTH = 32


def valid_command(command: str) -> bool:
    """A non-empty run of at most 32 ASCII uppercase letters (known or not)."""
    return (
        0 < len(command) <= MAX_COMMAND_LENGTH
        and command.isascii()
        and command.isalpha()
        and command.isupper()
    )


def _to_bytes(body: object) -> bytes:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"a frame body must be bytes, not {type(body).__name__}")


def _immutable(self: object, name: str, value: object = None) -> NoReturn:
    raise AttributeError(f"{type(self).__name__} is immutable")


class Frame:
    """One STOMP frame: command, headers in order (repeats kept), body."""

    __slots__ = ("body", "command", "headers")
    __match_args__ = ("command", "headers", "body")

    command: str
    headers: tuple[tuple[str, str], ...]  # decoded (unescaped), in received order
    body: bytes

    def __init__(
        self, command: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        if type(command) is not str or not valid_command(command):
            raise ValueError(f"invalid STOMP command {command!r}")
        pairs = tuple(headers)
        for pair in pairs:
            if (
                type(pair) is not tuple
                or len(pair) != 2
                or type(pair[0]) is not str
                or type(pair[1]) is not str
            ):
                raise TypeError(f"a header must be a (name, value) pair of str, not {pair!r}")
        if type(body) is not bytes:
            body = _to_bytes(body)
        _set_command(self, command)
        _set_headers(self, pairs)
        _set_body(self, body)

    __setattr__ = _immutable
    __delattr__ = _immutable

    def header(self, name: str) -> str | None:
        """The value of the FIRST occurrence of `name` (STOMP: repeated headers, first wins)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __eq__(self, other: object) -> bool:
        if type(other) is not Frame:
            return NotImplemented
        return (
            self.command == other.command
            and self.headers == other.headers
            and self.body == other.body
        )

    def __hash__(self) -> int:
        return hash((self.command, self.headers, self.body))

    def __repr__(self) -> str:
        return f"Frame({self.command!r}, {self.headers!r}, {self.body!r})"

    def __reduce__(self) -> tuple[type[Frame], tuple[str, tuple[tuple[str, str], ...], bytes]]:
        return Frame, (self.command, self.headers, self.body)


_Setter = Callable[[Any, Any], None]
_set_command: _Setter = Frame.__dict__["command"].__set__
_set_headers: _Setter = Frame.__dict__["headers"].__set__
_set_body: _Setter = Frame.__dict__["body"].__set__
_new_frame = object.__new__


def _frame(command: str, headers: tuple[tuple[str, str], ...], body: bytes) -> Frame:
    """A frame from values already checked (the reader's): no validation, no copies."""
    frame: Frame = _new_frame(Frame)
    _set_command(frame, command)
    _set_headers(frame, headers)
    _set_body(frame, body)
    return frame


class FrameError:
    """The client broke the protocol; the session answers ERROR with `message`, then closes."""

    __slots__ = ("message",)
    __match_args__ = ("message",)

    message: str  # short, one line, names what was wrong (and the limit, for a limit)

    def __init__(self, message: str) -> None:
        _set_message(self, str(message))

    __setattr__ = _immutable
    __delattr__ = _immutable

    def __eq__(self, other: object) -> bool:
        if type(other) is not FrameError:
            return NotImplemented
        return self.message == other.message

    def __hash__(self) -> int:
        return hash(("FrameError", self.message))

    def __repr__(self) -> str:
        return f"FrameError({self.message!r})"

    def __reduce__(self) -> tuple[type[FrameError], tuple[str]]:
        return FrameError, (self.message,)


_set_message: _Setter = FrameError.__dict__["message"].__set__

Event = Frame | FrameError
