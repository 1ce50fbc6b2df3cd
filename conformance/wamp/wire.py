"""WAMP messages on the wire, without I/O: codes, serializers and the batched framings.

JSON follows the WAMP binary convention (a byte string travels as a JSON string that starts with
``\\0`` followed by its Base64); MessagePack carries bytes as ``bin`` and text as ``str``.
Batched JSON ends each message with 0x1e; batched MessagePack prefixes each with its length
(32 bits, big-endian).
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "ABORT",
    "AUTHENTICATE",
    "CALL",
    "CANCEL",
    "CHALLENGE",
    "ERROR",
    "EVENT",
    "GOODBYE",
    "HELLO",
    "INTERRUPT",
    "INVOCATION",
    "MAX_ID",
    "NAMES",
    "PUBLISH",
    "PUBLISHED",
    "RECORD_SEPARATOR",
    "REGISTER",
    "REGISTERED",
    "RESULT",
    "SUBPROTOCOLS",
    "SUBSCRIBE",
    "SUBSCRIBED",
    "UNREGISTER",
    "UNREGISTERED",
    "UNSUBSCRIBE",
    "UNSUBSCRIBED",
    "WELCOME",
    "YIELD",
    "Codec",
    "DecodeError",
    "codec_for",
    "from_json_value",
    "to_json_value",
]

HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 1, 2, 3, 4, 5, 6, 8
PUBLISH, PUBLISHED = 16, 17
SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 32, 33, 34, 35, 36
CALL, CANCEL, RESULT = 48, 49, 50
REGISTER, REGISTERED, UNREGISTER, UNREGISTERED, INVOCATION, INTERRUPT, YIELD = (
    64,
    65,
    66,
    67,
    68,
    69,
    70,
)
NAMES = {
    HELLO: "HELLO", WELCOME: "WELCOME", ABORT: "ABORT", CHALLENGE: "CHALLENGE",
    AUTHENTICATE: "AUTHENTICATE", GOODBYE: "GOODBYE", ERROR: "ERROR", PUBLISH: "PUBLISH",
    PUBLISHED: "PUBLISHED", SUBSCRIBE: "SUBSCRIBE", SUBSCRIBED: "SUBSCRIBED",
    UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBSCRIBED: "UNSUBSCRIBED", EVENT: "EVENT", CALL: "CALL",
    CANCEL: "CANCEL", RESULT: "RESULT", REGISTER: "REGISTER", REGISTERED: "REGISTERED",
    UNREGISTER: "UNREGISTER", UNREGISTERED: "UNREGISTERED", INVOCATION: "INVOCATION",
    INTERRUPT: "INTERRUPT", YIELD: "YIELD",
}  # fmt: skip

MAX_ID = 2**53
SUBPROTOCOLS = ("wamp.2.json", "wamp.2.msgpack", "wamp.2.json.batched", "wamp.2.msgpack.batched")
RECORD_SEPARATOR = b"\x1e"


class DecodeError(ValueError):
    """What the router sent is not a WAMP message in the negotiated serialization."""


def to_json_value(value: Any) -> Any:
    """``value`` with every ``bytes`` turned into the WAMP JSON binary string."""
    if isinstance(value, bytes | bytearray):
        return "\0" + base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def from_json_value(value: Any) -> Any:
    """The inverse of :func:`to_json_value`: ``"\\0<base64>"`` strings become ``bytes``."""
    if isinstance(value, str):
        if value.startswith("\0"):
            return base64.b64decode(value[1:])
        return value
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: from_json_value(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Codec:
    """One WAMP WebSocket subprotocol: how messages become WebSocket messages and back."""

    subprotocol: str
    # Batched JSON's separator: 0x1e in the spec; autobahn-python and Crossbar write 0x18.
    separator: bytes = RECORD_SEPARATOR

    @property
    def json(self) -> bool:
        return ".json" in self.subprotocol

    @property
    def batched(self) -> bool:
        return self.subprotocol.endswith(".batched")

    @property
    def binary(self) -> bool:
        """Whether the WebSocket messages are binary (MessagePack) rather than text (JSON)."""
        return not self.json

    def encode_one(self, msg: list[Any]) -> bytes:
        """One message, serialized, without batch framing."""
        if self.json:
            return json.dumps(to_json_value(msg), separators=(",", ":")).encode()
        return bytes(msgpack.packb(msg, use_bin_type=True))

    def decode_one(self, data: bytes) -> Any:
        try:
            if self.json:
                return from_json_value(json.loads(data.decode("utf-8")))
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
            raise DecodeError(f"{self.subprotocol}: cannot decode {data[:80]!r}: {e}") from e

    def frame(self, *encoded: bytes) -> bytes:
        """Serialized messages as the payload of one WebSocket message."""
        if not self.batched:
            assert len(encoded) == 1, "only batched subprotocols carry several messages"
            return encoded[0]
        if self.json:
            return b"".join(e + self.separator for e in encoded)
        return b"".join(struct.pack("!I", len(e)) + e for e in encoded)

    def encode(self, *msgs: list[Any]) -> bytes:
        return self.frame(*(self.encode_one(m) for m in msgs))

    def decode(self, payload: bytes) -> list[Any]:
        """The messages in one WebSocket message."""
        if not self.batched:
            return [self.decode_one(payload)]
        out: list[Any] = []
        if self.json:
            if not payload.endswith(self.separator):
                raise DecodeError(
                    f"batched JSON not ended by {self.separator!r}: {payload[-40:]!r}"
                )
            out.extend(self.decode_one(part) for part in payload.split(self.separator)[:-1])
            return out
        pos = 0
        while pos < len(payload):
            if pos + 4 > len(payload):
                raise DecodeError(f"batched MessagePack: truncated length at {pos}")
            (n,) = struct.unpack_from("!I", payload, pos)
            end = pos + 4 + n
            if end > len(payload):
                raise DecodeError(f"batched MessagePack: length {n} past the end at {pos}")
            out.append(self.decode_one(payload[pos + 4 : end]))
            pos = end
        return out


def codec_for(subprotocol: str, separator: bytes = RECORD_SEPARATOR) -> Codec:
    if subprotocol not in SUBPROTOCOLS:
        raise ValueError(f"not a WAMP subprotocol this suite knows: {subprotocol!r}")
    return Codec(subprotocol, separator)
