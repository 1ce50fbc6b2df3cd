"""Sans-I/O STOMP 1.0/1.1/1.2 codec: a byte stream in, frames out; a frame in, bytes out."""

from __future__ import annotations

import re
from collections.abc import Iterable

from broker.subprotocols.stomp.frames import (
    CLIENT_COMMANDS,
    MAX_COMMAND_LENGTH,
    SERVER_COMMANDS,
    UNESCAPED_COMMANDS,
    Event,
    Frame,
    FrameError,
    Version,
    _frame,
    valid_command,
)

__all__ = ["FrameReader", "encode", "encode_headers", "escape", "unescape"]

# Choices where the specifications leave room (also in the report to the session's owner):
# - CRLF ends a line in every version (as RabbitMQ accepts), and only the CR of a CRLF is
#   dropped: a CR elsewhere in a line is part of the name or value.
# - A header line is split at its first colon in every version; later colons are the value's.
# - A NUL before the blank line that ends the headers is an error (a frame without that blank
#   line would otherwise swallow the frames behind it).
# - The size of a frame is its bytes from the first of its command to its NUL, both included;
#   the EOLs between frames are not counted. A header line's length leaves out its EOL.
# - content-length must be plain ASCII digits (leading zeros allowed), nothing around them.

_EOL_RUN = re.compile(rb"[\r\n]+").match
_ESCAPE_SEQUENCE = re.compile(r"\\(.?)", re.DOTALL).sub
_UNESCAPES: dict[Version, dict[str, str]] = {
    "1.1": {"n": "\n", "c": ":", "\\": "\\"},
    "1.2": {"n": "\n", "c": ":", "\\": "\\", "r": "\r"},
}
_COMMANDS = CLIENT_COMMANDS | SERVER_COMMANDS
# Longest digit string a content-length may have once its leading zeros are gone.
_MAX_LENGTH_DIGITS = 18


class _Violation(Exception):
    """Raised inside the reader; becomes the FrameError that ends the stream."""


def escape(value: str, version: Version) -> str:
    """A header name or value as it goes on the wire in `version` (1.0 has no escapes)."""
    if version == "1.0":
        return value
    cr = version == "1.2" and "\r" in value
    # Most values need nothing, and four `in` tests cost half of four replaces.
    if cr or "\\" in value or "\n" in value or ":" in value:
        value = value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
        if cr:
            value = value.replace("\r", "\\r")
    return value


def unescape(value: str, version: Version) -> str:
    """A header name or value as received in `version`; ValueError on an undefined escape."""
    if version == "1.0" or "\\" not in value:
        return value
    table = _UNESCAPES[version]

    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        try:
            return table[char]
        except KeyError:
            if not char:
                raise ValueError(
                    f"lone backslash at the end of header text {value[:40]!r} (STOMP {version})"
                ) from None
            sequence = "\\" + char
            raise ValueError(
                f"undefined escape {sequence!r} in header text {value[:40]!r} (STOMP {version})"
            ) from None

    return _ESCAPE_SEQUENCE(replace, value)


def _header_lines(headers: Iterable[tuple[str, str]], version: Version, raw: bool) -> str:
    """The `name:value` lines; `raw`: nothing is escaped (1.0, or CONNECT, STOMP, CONNECTED)."""
    lines = []
    for name, value in headers:
        if not name:
            raise ValueError("empty header name")
        if "\x00" in name or "\x00" in value:
            raise ValueError(f"header {name[:40]!r} holds a NUL")
        if raw:
            if ":" in name:
                raise ValueError(f"header name {name[:40]!r} holds a colon and cannot be escaped")
            if "\n" in name or "\n" in value:
                raise ValueError(f"header {name[:40]!r} holds a newline and cannot be escaped")
        else:
            name = escape(name, version)
            value = escape(value, version)
        # Only 1.2 escapes CR; a CR just before the LF would be read as a CRLF line end.
        if value[-1:] == "\r":
            raise ValueError(f"header {name[:40]!r} ends in a CR and cannot be escaped")
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


def encode_headers(headers: Iterable[tuple[str, str]], version: Version) -> bytes:
    """Just the header lines, each `name:value\\n`, escaped per version (for frames built in parts).

    ValueError for a header the version cannot carry (see `encode`).
    """
    return _header_lines(headers, version, version == "1.0").encode()


def encode(frame: Frame, version: Version) -> bytes:
    """The frame's bytes: command, escaped headers, blank line, body, NUL. LF line endings.

    ValueError for what could not be read back as the same frame: an empty header name, a NUL
    in a header, a newline (or a colon in a name) where nothing is escaped, a body holding a NUL
    without content-length, or a first content-length that is not the body's length.
    """
    command = frame.command
    headers = frame.headers
    body = frame.body
    length = None
    for name, value in headers:
        if name == "content-length":
            length = value
            break
    if length is None:
        if b"\x00" in body:
            raise ValueError(f"{command} body holds a NUL but the frame has no content-length")
    elif (
        not (length.isascii() and length.isdigit())
        or len(length.lstrip("0")) > _MAX_LENGTH_DIGITS
        or int(length) != len(body)
    ):
        raise ValueError(f"content-length {length[:40]!r} but the body has {len(body)} bytes")
    raw = version == "1.0" or command in UNESCAPED_COMMANDS
    head = f"{command}\n{_header_lines(headers, version, raw)}\n"
    return b"".join((head.encode(), body, b"\x00"))


def _shown(raw: bytes | bytearray) -> str:
    """Received bytes quoted for an error message: short, on one line, never raw."""
    return repr(bytes(raw[:40]).decode("utf-8", "replace"))


def _check_command(line: bytes | bytearray) -> None:
    """Raise unless `line` (its EOL removed) is a well-formed command."""
    if not (0 < len(line) <= MAX_COMMAND_LENGTH and line.isalpha() and line.isupper()):
        raise _Violation(f"invalid command {_shown(line)}")


_NEGOTIATING = frozenset({"CONNECT", "STOMP"})


def _blank_line(data: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
    """(where the blank line ending the headers is, where the body starts), or (-1, -1)."""
    blank = data.find(b"\n\n", start, end)
    crlf = data.find(b"\n\r\n", start, blank + 1 if blank >= 0 else end)
    if crlf >= 0:
        return crlf, crlf + 3
    if blank >= 0:
        return blank, blank + 2
    return -1, -1


class FrameReader:
    """Parses the client's STOMP byte stream into frames; a FrameError ends it."""

    __slots__ = (
        "_body_at",
        "_buf",
        "_checked",
        "_command",
        "_cr",
        "_failed",
        "_headers",
        "_held",
        "_length",
        "_max_frame",
        "_max_headers",
        "_max_line",
        "_nheaders",
        "_scan",
        "version",
    )

    def __init__(
        self,
        *,
        max_frame_size: int = 1 << 20,
        max_headers: int = 100,
        max_header_length: int = 8192,
    ) -> None:
        if max_frame_size < 1 or max_headers < 0 or max_header_length < 1:
            raise ValueError("STOMP reader limits must be positive")
        self.version: Version = "1.2"
        self._max_frame = max_frame_size
        self._max_headers = max_headers
        self._max_line = max_header_length
        self._failed = False
        # Where nothing is pending, `_buf` is empty; otherwise it holds one incomplete frame from
        # its first byte, and the fields below say how far it was parsed (offsets into _buf).
        self._buf = bytearray()
        self._cr = False  # a lone CR ended the input between frames: maybe half a CRLF
        self._body_at = 0  # 0 while the headers are incomplete, then where the body starts
        self._scan = 0  # searched up to here for the blank line, or (in the body) for the NUL
        self._checked = 0  # start of the first header line not yet checked
        self._nheaders = 0  # complete header lines before _checked
        self._command = ""
        self._headers: tuple[tuple[str, str], ...] = ()
        self._length = -1  # the body's content-length, or -1: up to the first NUL
        # Bytes after a CONNECT or STOMP frame, parsed on the next call (once the session has
        # set the version the CONNECT negotiated: escaping depends on it).
        self._held = b""

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse any split of the byte stream; a FrameError, if any, comes last and the reader
        then stays failed (returns [] for everything after).

        Parsing stops after a CONNECT or STOMP frame; the next call (`receive_data(b"")` will
        do) goes on with what followed it, read with the version set meanwhile.
        """
        out: list[Event] = []
        if self._failed:
            return out
        if type(data) is not bytes:
            data = bytes(data)
        if self._held:
            data, self._held = self._held + data, b""
        try:
            pos = 0
            if self._buf:
                self._buf += data
                resumed = self._resume(out)
                if resumed is None:
                    return out
                data, pos = resumed
                if out[-1].command in _NEGOTIATING:  # type: ignore[union-attr]
                    self._held = data[pos:]
                    return out
            elif self._cr:
                self._cr = False
                data = b"\r" + data
            self._parse(data, pos, out)
        except _Violation as exc:
            self._failed = True
            self._buf = bytearray()
            self._headers = ()
            out.append(FrameError(str(exc)))
        return out

    def _parse(self, data: bytes, pos: int, out: list[Event]) -> None:
        """Parse the frames of `data` from `pos`; keep an incomplete one in the buffer."""
        n = len(data)
        max_frame = self._max_frame
        append = out.append
        while pos < n:
            c = data[pos]
            if c == 10 or c == 13:
                # One C-speed scan over the whole run of EOLs (heart-beats, padding); it
                # matches, since data[pos] is CR or LF.
                eols = _EOL_RUN(data, pos).end()  # type: ignore[union-attr]
                bad = data.find(b"\r\r", pos, eols)
                if bad < 0:
                    if data[eols - 1] != 13:
                        pos = eols
                        continue
                    if eols == n:
                        self._cr = True  # maybe the first half of a CRLF
                        return
                    bad = eols - 1
                # A CR not followed by LF starts a command line; parsing it reports it as bad.
                pos = bad
            limit = pos + max_frame
            window = n if n < limit else limit
            blank, body_at = _blank_line(data, pos, window)
            if blank < 0:
                self._scan = self._checked = self._nheaders = 0
                self._head_so_far(data, pos, n)
                self._buf += memoryview(data)[pos:]
                return
            command, headers, length = self._parse_head(data, pos, blank, body_at - pos)
            if length >= 0:
                end = body_at + length
                if end >= n:
                    self._pend(data, pos, body_at, command, headers, length)
                    return
                if data[end]:
                    raise _Violation(f"no NUL after the body of content-length {length}")
            else:
                end = data.find(b"\x00", body_at, window)
                if end < 0:
                    if n >= limit:
                        raise self._too_large()
                    self._pend(data, pos, body_at, command, headers, length)
                    return
            append(_frame(command, headers, data[body_at:end]))
            pos = end + 1
            if command in _NEGOTIATING:
                # What follows a CONNECT is read with the version it settles: wait for it.
                self._held = data[pos:]
                return

    def _pend(
        self,
        data: bytes,
        pos: int,
        body_at: int,
        command: str,
        headers: tuple[tuple[str, str], ...],
        length: int,
    ) -> None:
        """Keep the frame at `pos`, headers parsed, until its body is complete."""
        self._buf += memoryview(data)[pos:]
        self._body_at = body_at - pos
        self._scan = len(data) - pos
        self._command = command
        self._headers = headers
        self._length = length

    def _resume(self, out: list[Event]) -> tuple[bytes, int] | None:
        """Go on with the pending frame; once complete, (all bytes, where the next starts)."""
        buf = self._buf
        n = len(buf)
        limit = self._max_frame
        window = n if n < limit else limit
        body_at = self._body_at
        if not body_at:
            scan = self._scan
            blank, body_at = _blank_line(buf, scan, window)
            if blank < 0:
                self._head_so_far(buf, 0, n)
                return None
            self._command, self._headers, self._length = self._parse_head(buf, 0, blank, body_at)
            self._body_at = self._scan = body_at
        length = self._length
        if length >= 0:
            end = body_at + length
            if end >= n:
                return None
            if buf[end]:
                raise _Violation(f"no NUL after the body of content-length {length}")
        else:
            end = buf.find(b"\x00", self._scan, window)
            if end < 0:
                if n >= limit:
                    raise self._too_large()
                self._scan = n
                return None
        data = bytes(buf)
        self._buf = bytearray()  # a fresh one: a long frame leaves a large allocation behind
        out.append(_frame(self._command, self._headers, data[body_at:end]))
        self._body_at = 0
        self._headers = ()
        return data, end + 1

    def _too_large(self) -> _Violation:
        return _Violation(f"frame too large (limit {self._max_frame} bytes)")

    def _head_so_far(self, data: bytes | bytearray, start: int, n: int) -> None:
        """Raise if the incomplete headers at `start` already break a rule; note how far they
        were checked, so that each byte is looked at once however the stream is split."""
        scanned = start + self._scan
        if data.find(b"\x00", scanned, n) >= 0:
            raise _Violation("NUL before the end of the headers")
        line = start + self._checked
        search = line if line > scanned else scanned
        max_line = self._max_line
        while (eol := data.find(b"\n", search, n)) >= 0:
            stop = eol - 1 if eol > line and data[eol - 1] == 13 else eol
            if line == start:
                _check_command(data[line:stop])
            else:
                if stop - line > max_line:
                    raise self._line_too_long()
                colon = data.find(b":", line, stop)
                if colon < 0:
                    raise _Violation(f"header line without a colon: {_shown(data[line:stop])}")
                if colon == line:
                    raise _Violation("empty header name")
                self._nheaders += 1
                if self._nheaders > self._max_headers:
                    raise self._too_many_headers()
            line = search = eol + 1
        self._checked = line - start
        tail = n - line
        cr = 1 if tail and data[n - 1] == 13 else 0  # maybe the first half of a CRLF
        if line == start:
            part = data[line : n - cr]
            if tail - cr > MAX_COMMAND_LENGTH or (part and not (part.isalpha() and part.isupper())):
                raise _Violation(f"invalid command {_shown(part)}")
        elif tail - cr > max_line:
            raise self._line_too_long()
        if n - start >= self._max_frame:
            raise self._too_large()
        self._scan = n - start - 2 if n - start > 2 else 0

    def _line_too_long(self) -> _Violation:
        return _Violation(f"header line too long (limit {self._max_line} bytes)")

    def _too_many_headers(self) -> _Violation:
        return _Violation(f"too many headers (limit {self._max_headers})")

    def _parse_head(
        self, data: bytes | bytearray, start: int, stop: int, size: int
    ) -> tuple[str, tuple[tuple[str, str], ...], int]:
        """(command, headers, content-length or -1) of the complete head data[start:stop]
        (its last EOL left out); `size` is the head's length with its blank line."""
        try:
            head = data[start:stop].decode()
        except UnicodeDecodeError:
            raise _Violation("command or headers not valid UTF-8") from None
        if "\x00" in head:
            raise _Violation("NUL before the end of the headers")
        lines = head.split("\n")
        if "\r" in head:
            lines = [line[:-1] if line[-1:] == "\r" else line for line in lines]
        command = lines[0]
        if command not in _COMMANDS and not valid_command(command):
            raise _Violation(f"invalid command {command[:40]!r}")
        del lines[0]
        if len(lines) > self._max_headers:
            raise self._too_many_headers()
        max_line = self._max_line
        if stop - start > max_line:
            # Only now can a line be too long; lengths are in bytes, not characters.
            ascii_only = len(head) == stop - start
            for line in lines:
                if len(line) > max_line or (not ascii_only and len(line.encode()) > max_line):
                    raise self._line_too_long()
        headers = []
        for line in lines:
            colon = line.find(":")
            if colon <= 0:
                if colon < 0:
                    raise _Violation(f"header line without a colon: {line[:40]!r}")
                raise _Violation("empty header name")
            headers.append((line[:colon], line[colon + 1 :]))
        version = self.version
        if version != "1.0" and "\\" in head and command not in UNESCAPED_COMMANDS:
            try:
                headers = [(unescape(k, version), unescape(v, version)) for k, v in headers]
            except ValueError as exc:
                raise _Violation(str(exc)) from None
        length = -1
        if "content-length" in head:
            for name, value in headers:
                if name == "content-length":
                    length = self._content_length(value, size)
                    break
        return command, tuple(headers), length

    def _content_length(self, value: str, size: int) -> int:
        if not (value.isascii() and value.isdigit()):
            raise _Violation(f"invalid content-length {value[:40]!r}")
        digits = value.lstrip("0")
        if len(digits) > _MAX_LENGTH_DIGITS or size + int(digits or "0") + 1 > self._max_frame:
            raise _Violation(
                f"frame too large: content-length {value[:40]} (limit {self._max_frame} bytes)"
            )
        return int(digits or "0")
