"""A small sans-I/O STOMP codec for the tests: build any frame byte by byte, parse what comes back.

Building never checks anything (tests send malformed frames on purpose). Parsing follows the
spec of the negotiated version (header escaping per version, ``content-length`` bodies, EOLs
between frames) and keeps every repeated header, so tests can see exactly what the server sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "HEARTBEAT",
    "Frame",
    "FrameReader",
    "Headers",
    "ProtocolError",
    "encode",
    "escape",
    "unescape",
]

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

# Frames whose headers are never escaped, whatever the version (1.2 "Value Encoding").
UNESCAPED_COMMANDS = frozenset({"CONNECT", "CONNECTED", "STOMP"})
_ESCAPES_11 = {"\\": "\\\\", "\n": "\\n", ":": "\\c"}
_ESCAPES_12 = {**_ESCAPES_11, "\r": "\\r"}
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class ProtocolError(ValueError):
    """The server sent bytes that are not a STOMP frame of the negotiated version."""


@dataclass(frozen=True)
class Frame:
    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    # The WebSocket opcode of the message whose bytes ended this frame (1 text, 2 binary).
    opcode: int | None = field(default=None, compare=False)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (repeated headers: the first one wins)."""
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(f"{self.command} has no {name!r} header: {self!r}")
        return value

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self.headers)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 80 else self.body[:80] + b"..."
        hdrs = ", ".join(f"{k}:{v}" for k, v in self.headers)
        op = {1: " text", 2: " binary"}.get(self.opcode or 0, "")
        return f"<{self.command}{op} [{hdrs}] {body!r}>"


# A heart-beat: an EOL where a frame could start.
HEARTBEAT = Frame("<heart-beat>")


def escape(value: str, version: str) -> str:
    """``value`` escaped as a header name or value of ``version`` (1.0: as is)."""
    if version == "1.0":
        return value
    table = _ESCAPES_12 if version == "1.2" else _ESCAPES_11
    return "".join(table.get(ch, ch) for ch in value)


def unescape(value: str, version: str) -> str:
    """Undo :func:`escape`; an undefined escape raises ProtocolError (1.1 and 1.2)."""
    if version == "1.0":
        return value
    table = {v: k for k, v in (_ESCAPES_12 if version == "1.2" else _ESCAPES_11).items()}

    def sub(m: re.Match[str]) -> str:
        seq = m.group(0)
        if seq not in table:
            raise ProtocolError(f"undefined escape {seq!r} in header {value!r}")
        return table[seq]

    return _ESCAPE_RE.sub(sub, value)


def _pairs(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def encode(
    command: str,
    headers: Headers | None = None,
    body: bytes | str = b"",
    *,
    version: str = "1.2",
    eol: str = "\n",
    content_length: bool = False,
    escaped: bool | None = None,
    nul: bool = True,
) -> bytes:
    """One frame as bytes. ``escaped`` defaults to the version's rule for ``command``;
    ``content_length`` adds the header (the body's byte length) after the others."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if escaped is None:
        escaped = command not in UNESCAPED_COMMANDS
    lines = [command]
    pairs = _pairs(headers)
    if content_length:
        pairs.append(("content-length", str(len(data))))
    for k, v in pairs:
        if escaped:
            k, v = escape(k, version), escape(v, version)
        lines.append(f"{k}:{v}")
    head = eol.join(lines) + eol + eol
    return head.encode("utf-8") + data + (b"\x00" if nul else b"")


class FrameReader:
    """Incremental parser for what a server sends: feed bytes, get frames and heart-beats."""

    def __init__(self, version: str = "1.2", *, keep_heartbeats: bool = False) -> None:
        self.version = version
        self.keep_heartbeats = keep_heartbeats
        self._buf = bytearray()

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet make a whole frame."""
        return bytes(self._buf)

    def feed(self, data: bytes, opcode: int | None = None) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            frame = self._next(opcode)
            if frame is None:
                return frames
            if frame is HEARTBEAT and not self.keep_heartbeats:
                continue
            frames.append(frame)

    def _next(self, opcode: int | None) -> Frame | None:
        buf = self._buf
        if buf[:1] == b"\n":
            del buf[:1]
            return HEARTBEAT
        if buf[:2] == b"\r\n":
            del buf[:2]
            return HEARTBEAT
        blank = _BLANK_LINE.search(buf)
        if blank is None:
            return None
        head_end, body_start = blank.start(), blank.end()
        head = bytes(buf[:head_end]).decode("utf-8")
        lines = [line.removesuffix("\r") for line in head.split("\n")]
        command = lines[0]
        escaped = self.version != "1.0" and command not in UNESCAPED_COMMANDS
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"header line without a colon: {line!r} in {head!r}")
            if escaped:
                name, value = unescape(name, self.version), unescape(value, self.version)
            headers.append((name, value))
        length = next((v for k, v in headers if k == "content-length"), None)
        if length is not None:
            n = int(length)
            if len(buf) < body_start + n + 1:
                return None
            body = bytes(buf[body_start : body_start + n])
            if buf[body_start + n] != 0:
                raise ProtocolError(f"no NUL after content-length {n} body in {bytes(buf)!r}")
            del buf[: body_start + n + 1]
        else:
            nul = buf.find(b"\x00", body_start)
            if nul < 0:
                return None
            body = bytes(buf[body_start:nul])
            del buf[: nul + 1]
        return Frame(command, tuple(headers), body, opcode)
