"""A small, bounded HTTP/1.1 request-head parser and response builder (sans-I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class BadRequest(Exception):
    """The request cannot be served; `status` and the message say why."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request head; header names are lower-case, repeats joined with ', '."""

    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def parse_request(buffer: bytes | bytearray) -> tuple[Request, int] | None:
    """Parse a request head from `buffer`: (request, bytes used), or None until it is complete."""
    end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise BadRequest(431, "request head too large")
        return None
    try:
        head = bytes(buffer[:end]).decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "request head is not ASCII") from None
    request_line, *lines = head.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not all(c in _TOKEN_CHARS for c in method.encode()):
        raise BadRequest(400, "malformed method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, "only HTTP/1.1 is supported")
    if not target.startswith("/"):
        raise BadRequest(400, "request target must be an absolute path")
    if len(lines) > MAX_HEADERS:
        raise BadRequest(431, "too many header fields")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or not all(c in _TOKEN_CHARS for c in name.encode()):
            raise BadRequest(400, f"malformed header line: {line[:40]!r}")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(method, target, version, headers), end + 4


def response(
    status: int,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    *,
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    """Build a complete response; a non-101 response closes the connection."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if status != 101:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def header_tokens(value: str | None) -> list[str]:
    """Split a comma-separated header value into its non-empty, stripped elements."""
    if not value:
        return []
    return [token for token in (part.strip() for part in value.split(",")) if token]
