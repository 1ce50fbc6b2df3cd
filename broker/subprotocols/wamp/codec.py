"""Sans-I/O WAMP v2 codec: a WebSocket message in, WAMP messages out; a message in, bytes out.

Four subprotocols: JSON or MessagePack, each plain (one WAMP message per WebSocket message) or
batched (JSON: each message followed by 0x1E; MessagePack: each one after its 4-byte big-endian
length). The decoder checks every message's shape: its length, each field's type, id ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from broker.subprotocols.wamp.messages import (
    CALL,
    INVOCATION,
    MAX_ID,
    MESSAGE_CLASSES,
    MESSAGE_NAMES,
    PUBLISH,
    REGISTER,
    SUBSCRIBE,
    UNREGISTER,
    UNSUBSCRIBE,
    YIELD,
    Call,
    Message,
    ProtocolError,
    Publish,
    Yield,
)
from broker.subprotocols.wamp.serializers import (
    DecodeError,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
)

__all__ = ["SUBPROTOCOLS", "Serializer", "WampCodec"]

# Choices where the specification leaves room (also in the report to the session's owner):
# - Request ids are in [1, 2^53], except UNSUBSCRIBED/UNREGISTERED, whose request is 0 when the
#   router revokes a subscription/registration. Other ids (session, subscription, publication,
#   registration) are in [0, 2^53]: an unknown one is the session's to answer (no_such_...).
# - ERROR's request type must name a message that ERROR answers: SUBSCRIBE, UNSUBSCRIBE,
#   PUBLISH, REGISTER, UNREGISTER, CALL or INVOCATION (the spec: an invalid one is a protocol
#   violation).
# - URIs (realm, topic, procedure, error, reason) are checked only to be non-empty strings; URI
#   syntax is the session's (wamp.error.invalid_uri). AuthMethod and Signature are any string.
# - Empty trailing args/kwargs/details decode to None, as absent ones do.
# - A batch with no message in it (an empty WebSocket message) decodes to nothing; bytes after
#   the last complete message of a batch are a ProtocolError.

Serializer = Literal["json", "msgpack"]

SUBPROTOCOLS: Final[dict[str, tuple[Serializer, bool]]] = {
    "wamp.2.json": ("json", False),
    "wamp.2.msgpack": ("msgpack", False),
    "wamp.2.json.batched": ("json", True),
    "wamp.2.msgpack.batched": ("msgpack", True),
}

# Field kinds.
_REQUEST: Final = 0  # id in [1, 2^53]
_REQUEST_OR_0: Final = 1  # id in [0, 2^53]
_ID: Final = 2  # id in [0, 2^53]
_URI: Final = 3  # non-empty str
_STR: Final = 4  # str
_DICT: Final = 5  # dict (str keys: the serializers see to that)
_LIST: Final = 6  # list
_REQUEST_TYPE: Final = 7  # the type of a message ERROR answers

_ERROR_ANSWERS: Final = frozenset(
    {SUBSCRIBE, UNSUBSCRIBE, PUBLISH, REGISTER, UNREGISTER, CALL, INVOCATION}
)

_PAYLOAD: Final = ((_LIST, "args"), (_DICT, "kwargs"))

# type -> (name, required fields, optional trailing fields); each field is (kind, label).
_Fields = tuple[tuple[int, str], ...]
_SHAPES: Final[dict[int, tuple[_Fields, _Fields]]] = {
    1: (((_URI, "realm"), (_DICT, "details")), ()),
    2: (((_ID, "session id"), (_DICT, "details")), ()),
    3: (((_DICT, "details"), (_URI, "reason")), ()),
    4: (((_STR, "authmethod"), (_DICT, "extra")), ()),
    5: (((_STR, "signature"), (_DICT, "extra")), ()),
    6: (((_DICT, "details"), (_URI, "reason")), ()),
    8: (
        (
            (_REQUEST_TYPE, "request type"),
            (_REQUEST, "request id"),
            (_DICT, "details"),
            (_URI, "error"),
        ),
        _PAYLOAD,
    ),
    16: (((_REQUEST, "request id"), (_DICT, "options"), (_URI, "topic")), _PAYLOAD),
    17: (((_REQUEST, "request id"), (_ID, "publication id")), ()),
    32: (((_REQUEST, "request id"), (_DICT, "options"), (_URI, "topic")), ()),
    33: (((_REQUEST, "request id"), (_ID, "subscription id")), ()),
    34: (((_REQUEST, "request id"), (_ID, "subscription id")), ()),
    35: (((_REQUEST_OR_0, "request id"),), ((_DICT, "details"),)),
    36: (
        ((_ID, "subscription id"), (_ID, "publication id"), (_DICT, "details")),
        _PAYLOAD,
    ),
    48: (((_REQUEST, "request id"), (_DICT, "options"), (_URI, "procedure")), _PAYLOAD),
    49: (((_REQUEST, "request id"), (_DICT, "options")), ()),
    50: (((_REQUEST, "request id"), (_DICT, "details")), _PAYLOAD),
    64: (((_REQUEST, "request id"), (_DICT, "options"), (_URI, "procedure")), ()),
    65: (((_REQUEST, "request id"), (_ID, "registration id")), ()),
    66: (((_REQUEST, "request id"), (_ID, "registration id")), ()),
    67: (((_REQUEST_OR_0, "request id"),), ((_DICT, "details"),)),
    68: (
        ((_REQUEST, "request id"), (_ID, "registration id"), (_DICT, "details")),
        _PAYLOAD,
    ),
    69: (((_REQUEST, "request id"), (_DICT, "options")), ()),
    70: (((_REQUEST, "request id"), (_DICT, "options")), _PAYLOAD),
}
assert _SHAPES.keys() == MESSAGE_CLASSES.keys()

# type -> (class, name, kinds, labels, fewest items, most items): flat, for the decoder's loop.
_Spec = tuple[type[Message], str, tuple[int, ...], tuple[str, ...], int, int]
_SPECS: Final[dict[int, _Spec]] = {
    code: (
        MESSAGE_CLASSES[code],
        MESSAGE_NAMES[code],
        tuple(kind for kind, _ in required + optional),
        tuple(label for _, label in required + optional),
        1 + len(required),
        1 + len(required) + len(optional),
    )
    for code, (required, optional) in _SHAPES.items()
}

_KIND_NAMES: Final = {list: "list", dict: "dict", str: "string", bytes: "binary", bool: "bool"}


def _kind_name(value: object) -> str:
    kind = type(value)
    if value is None:
        return "null"
    if kind is int or kind is float:
        return "number"
    return _KIND_NAMES.get(kind, kind.__name__)


def _field_problem(name: str, label: str, kind: int, value: object) -> str:
    """Why `value` is not a valid `label` field of a `name` message."""
    if kind in (_REQUEST, _REQUEST_OR_0, _ID, _REQUEST_TYPE):
        if type(value) is not int:
            return f"{name}: {label} must be an integer, not {_kind_name(value)}"
        if kind == _REQUEST_TYPE:
            return f"{name}: request type {value} is not a message that ERROR answers"
        low = 1 if kind == _REQUEST else 0
        return f"{name}: {label} {value} out of range [{low}, 2^53]"
    if kind == _URI:
        if type(value) is str:
            return f"{name}: {label} must be a non-empty URI"
        return f"{name}: {label} must be a URI string, not {_kind_name(value)}"
    expected = {_STR: "a string", _DICT: "a dict", _LIST: "a list"}[kind]
    return f"{name}: {label} must be {expected}, not {_kind_name(value)}"


def _fast_publish_or_call(items: list[Any], cls: type[Publish | Call]) -> Message | None:
    """A valid PUBLISH or CALL, checked inline (per message, on the hot path); else None."""
    n = len(items)
    if n < 4 or n > 6:
        return None
    request = items[1]
    options = items[2]
    uri = items[3]
    if not (
        type(request) is int
        and 0 < request <= MAX_ID
        and type(options) is dict
        and type(uri) is str
        and uri
    ):
        return None
    if n == 4:
        return cls(request, options, uri)
    args = items[4]
    if type(args) is not list:
        return None
    if n == 5:
        return cls(request, options, uri, args or None)
    kwargs = items[5]
    if type(kwargs) is not dict:
        return None
    return cls(request, options, uri, args or None, kwargs or None)


def _fast_yield(items: list[Any]) -> Message | None:
    """A valid YIELD, checked inline (per message, on the hot path); else None."""
    n = len(items)
    if n < 3 or n > 5:
        return None
    request = items[1]
    options = items[2]
    if not (type(request) is int and 0 < request <= MAX_ID and type(options) is dict):
        return None
    if n == 3:
        return Yield(request, options)
    args = items[3]
    if type(args) is not list:
        return None
    if n == 4:
        return Yield(request, options, args or None)
    kwargs = items[4]
    if type(kwargs) is not dict:
        return None
    return Yield(request, options, args or None, kwargs or None)


def parse(items: list[Any]) -> Message:
    """The message that the decoded list `items` holds; DecodeError for any wrong shape or type.

    `items` is the decoder's own: its optional fields are set to None in place when empty.
    """
    if not items:
        raise DecodeError("empty array: a WAMP message starts with its type")
    code = items[0]
    if type(code) is not int:
        raise DecodeError(f"message type must be an integer, not {_kind_name(code)}")
    # The fast paths only ever accept; for anything else the table below decides, and says why.
    fast: Message | None = None
    if code == PUBLISH:
        fast = _fast_publish_or_call(items, Publish)
    elif code == CALL:
        fast = _fast_publish_or_call(items, Call)
    elif code == YIELD:
        fast = _fast_yield(items)
    if fast is not None:
        return fast
    return _parse_by_table(items, code)


def _parse_by_table(items: list[Any], code: int) -> Message:
    """`parse` for any message type, driven by the table of shapes; says what was wrong."""
    spec = _SPECS.get(code)
    if spec is None:
        raise DecodeError(f"unknown message type {code}")
    cls, name, kinds, labels, fewest, most = spec
    n = len(items)
    if not fewest <= n <= most:
        expected = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise DecodeError(f"{name}: {n} items, expected {expected}")
    for i in range(1, n):
        value = items[i]
        kind = kinds[i - 1]
        vtype = type(value)
        if kind == _DICT:
            if vtype is dict:
                continue
        elif kind <= _ID:
            if vtype is int and (1 if kind == _REQUEST else 0) <= value <= MAX_ID:
                continue
        elif kind == _URI:
            if vtype is str and value:
                continue
        elif kind == _LIST:
            if vtype is list:
                continue
        elif kind == _STR:
            if vtype is str:
                continue
        elif vtype is int and value in _ERROR_ANSWERS:
            continue
        raise DecodeError(_field_problem(name, labels[i - 1], kind, value))
    for i in range(fewest, n):
        if not items[i]:
            items[i] = None
    return cls(*items[1:])


class WampCodec:
    """Decodes the WebSocket messages of one WAMP connection and encodes what goes back."""

    __slots__ = ("_dumps", "_separator", "batched", "max_depth", "max_items", "serializer", "text")

    def __init__(
        self,
        serializer: Serializer,
        *,
        batched: bool = False,
        max_depth: int = 32,
        max_items: int = 100_000,
    ) -> None:
        if serializer not in ("json", "msgpack"):
            raise ValueError(f"unknown WAMP serializer {serializer!r}")
        if max_depth < 2 or max_items < 1:
            raise ValueError("max_depth must be at least 2 and max_items at least 1")
        self.serializer: Serializer = serializer
        self.batched = batched
        self.max_depth = max_depth
        self.max_items = max_items
        self.text = serializer == "json"  # JSON goes in text frames, MessagePack in binary ones
        self._separator = b"\x1e"  # batched JSON: until the peer shows it uses 0x18
        self._dumps: Callable[[Any], bytes] = encode_json if self.text else encode_msgpack

    @classmethod
    def for_subprotocol(cls, subprotocol: str, **limits: int) -> WampCodec:
        """The codec for a negotiated token of SUBPROTOCOLS (KeyError for any other)."""
        serializer, batched = SUBPROTOCOLS[subprotocol]
        return cls(serializer, batched=batched, **limits)

    def decode(self, data: bytes, text: bool) -> list[Message | ProtocolError]:
        """One WebSocket message in (a batched one may hold several WAMP messages); a
        ProtocolError, if any, comes last, after the messages decoded before it."""
        if text != self.text:
            frame = "text" if text else "binary"
            wanted = "text" if self.text else "binary"
            return [ProtocolError(f"{self._name()} takes {wanted} WebSocket messages, not {frame}")]
        if type(data) is not bytes:
            data = bytes(data)
        out: list[Message | ProtocolError] = []
        try:
            if not self.text:
                if self.batched:
                    self._msgpack_batch(data, out)
                else:
                    out.append(parse(decode_msgpack(data, self.max_depth, self.max_items)))
                return out
            try:
                chars = data.decode()
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"text message is not valid UTF-8 (at byte {exc.start})"
                ) from None
            if self.batched:
                self._json_batch(chars, out)
            else:
                out.append(parse(decode_json(chars, self.max_depth, self.max_items)))
        except DecodeError as exc:
            out.append(ProtocolError(str(exc)))
        return out

    def _json_batch(self, chars: str, out: list[Message | ProtocolError]) -> None:
        # The spec says 0x1E; autobahn (and so Crossbar) writes 0x18 ("\30" in octal). JSON
        # text holds neither raw, so the peer's last character tells which it uses, and we
        # answer with the same.
        if chars and chars[-1] == "\x18":
            self._separator = b"\x18"
        sep = self._separator.decode()
        start = 0
        end = chars.find(sep)
        while end >= 0:
            out.append(self._batched(decode_json, chars[start:end], len(out) + 1))
            start = end + 1
            end = chars.find(sep, start)
        if start < len(chars):
            raise DecodeError(
                f"batch: {len(chars) - start} characters after the last separator"
                " (every message must end with 0x1E)"
            )

    def _msgpack_batch(self, data: bytes, out: list[Message | ProtocolError]) -> None:
        pos = 0
        size = len(data)
        while pos < size:
            if size - pos < 4:
                raise DecodeError(f"batch: {size - pos} bytes left, too few for a length prefix")
            length = int.from_bytes(data[pos : pos + 4], "big")
            pos += 4
            if length > size - pos:
                raise DecodeError(
                    f"batch: message {len(out) + 1} of {length} bytes, only {size - pos} left"
                )
            out.append(self._batched(decode_msgpack, data[pos : pos + length], len(out) + 1))
            pos += length

    def _batched(
        self, decoder: Callable[[Any, int, int], list[Any]], part: Any, nth: int
    ) -> Message:
        """The `nth` message of a batch; its DecodeError says which one it was."""
        try:
            return parse(decoder(part, self.max_depth, self.max_items))
        except DecodeError as exc:
            raise DecodeError(f"batch: message {nth}: {exc}") from None

    def encode(self, message: Message) -> bytes:
        """One WebSocket message's payload (batched: one message, framed as the batched
        transport says). ValueError for a value the serializer cannot carry exactly."""
        return self.encode_raw(message.to_list())

    def encode_raw(self, items: list[Any]) -> bytes:
        """`encode` for a message already built as its list (one the session builds once)."""
        payload = self._dumps(items)
        if not self.batched:
            return payload
        if self.text:
            return payload + self._separator
        return len(payload).to_bytes(4, "big") + payload

    def _name(self) -> str:
        return f"wamp.2.{self.serializer}{'.batched' if self.batched else ''}"
