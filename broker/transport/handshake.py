"""RFC 6455 opening handshake: validate the upgrade request and build the 101 response."""

from __future__ import annotations

import base64
import binascii
import hashlib

from broker.transport.http import BadRequest, Request, header_tokens, response

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def is_upgrade(request: Request) -> bool:
    """True when the request asks for a WebSocket (whether or not it asks well)."""
    return any(t.lower() == "websocket" for t in header_tokens(request.header("upgrade")))


def check_upgrade(request: Request) -> str:
    """Validate an upgrade request and return its key; raise BadRequest if it is not valid."""
    if request.method != "GET":
        raise BadRequest(405, "a WebSocket upgrade must use GET", (("Allow", "GET"),))
    if request.version != "HTTP/1.1":
        raise BadRequest(400, "a WebSocket upgrade needs HTTP/1.1")
    if not any(t.lower() == "upgrade" for t in header_tokens(request.header("connection"))):
        raise BadRequest(400, "missing 'Connection: Upgrade'")
    if request.header("host") is None:
        raise BadRequest(400, "missing Host header")
    version = request.header("sec-websocket-version")
    if version != "13":
        raise BadRequest(
            426,
            f"unsupported WebSocket version {version!r}: only 13 is supported",
            (("Sec-WebSocket-Version", "13"),),
        )
    key = request.header("sec-websocket-key")
    if key is None:
        raise BadRequest(400, "missing Sec-WebSocket-Key")
    try:
        raw_key = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw_key = b""
    if len(raw_key) != 16:
        raise BadRequest(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return key


def switching_protocols(key: str, subprotocol: str | None, extensions: str | None) -> bytes:
    """The 101 response that completes the handshake."""
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions is not None:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    return response(101, tuple(headers))
