"""JSON and MessagePack as WAMP carries them: one value tree in, bytes out, and back.

What a decoder returns, both encoders carry exactly (the router hands what a msgpack client sent
to JSON subscribers and back): str, bytes, int in [-2^63, 2^64), finite float, bool, None, list,
and dict with str keys. So decoding rejects what the other serializer could not carry: NaN and
infinities, integers out of MessagePack's range, lone surrogates (JSON), map keys that are not
strings, and MessagePack strings that start with NUL (JSON would read them back as bytes).

Checking a whole tree is a walk in Python, so the decoders first look at the raw input, at C
speed, for anything that could need one; typical messages pay no walk.
"""

from __future__ import annotations

import base64
import binascii
import json
import json.encoder
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any, Final, cast

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "DecodeError",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
]

_MIN_INT: Final = -(1 << 63)
_MAX_INT: Final = (1 << 64) - 1
_NUL: Final = "\x00"


class DecodeError(ValueError):
    """The peer's bytes are not a WAMP message; the text says why, briefly."""


# --- checks over a decoded tree ---------------------------------------------------------------


def _unbase64(text: str) -> bytes:
    """The bytes of a JSON string that follows the binary convention ("\\0" + base64)."""
    try:
        return base64.b64decode(text[1:], validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(
            f"string starting with \\u0000 is not valid base64 (binary convention): {text[1:41]!r}"
        ) from None


def _check_unicode(text: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise DecodeError("string holds a lone surrogate (\\ud800-\\udfff)") from None


def _walk(root: list[Any], from_json: bool, max_depth: int, max_items: int) -> None:
    """Check the limits and the cross-serializer rules over `root`, in place.

    From JSON, strings that start with NUL become bytes (the binary convention).
    """
    count = 1
    stack: list[tuple[list[Any] | dict[Any, Any], int]] = [(root, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        count += len(node)
        if count > max_items:
            raise DecodeError(f"more than {max_items} values in one message")
        pairs: Any
        if type(node) is dict:
            for key in node:
                if type(key) is not str:
                    raise DecodeError(f"map key must be a string, not {type(key).__name__}")
                if from_json:
                    _check_unicode(key)
            pairs = node.items()
        else:
            pairs = enumerate(node)
        for slot, value in pairs:
            kind = type(value)
            if kind is str:
                if value[:1] == _NUL:
                    if not from_json:
                        raise DecodeError(
                            "string starting with NUL (JSON would carry it as binary)"
                        )
                    node[slot] = _unbase64(value)
                elif from_json:
                    _check_unicode(value)
            elif kind is list or kind is dict:
                if depth >= max_depth:
                    raise DecodeError(f"nesting deeper than {max_depth}")
                push((value, depth + 1))
            elif kind is float and not math.isfinite(value):
                raise DecodeError("NaN or infinity (JSON cannot carry it)")


def _nul_strings(value: Any) -> bool:
    """Whether a str value (not a key) anywhere in `value` starts with NUL."""
    stack = [value]
    while stack:
        node = stack.pop()
        for item in node.values() if type(node) is dict else node:
            kind = type(item)
            if kind is str:
                if item[:1] == _NUL:
                    return True
            elif kind is list or kind is dict or kind is tuple:
                stack.append(item)
    return False


# --- JSON -------------------------------------------------------------------------------------


def _json_int(text: str) -> int:
    # Up to 18 characters (sign included) is always in range: the common case stays one call.
    if len(text) < 19:
        return int(text)
    if len(text) > 21:
        raise DecodeError(f"integer {text[:24]}... out of range [-2^63, 2^64)")
    value = int(text)
    if not _MIN_INT <= value <= _MAX_INT:
        raise DecodeError(f"integer {text} out of range [-2^63, 2^64)")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # only for an infinity (NaN cannot come from a JSON number)
        raise DecodeError(f"number {text[:40]} out of range (JSON cannot carry infinity)")
    return value


def _json_constant(text: str) -> Any:
    raise DecodeError(f"{text} is not JSON")


_JSON_DECODER: Final = json.JSONDecoder(
    parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
)
# The decoder's C scanner, called directly: JSONDecoder.decode costs 40% more (two regex
# matches for whitespace around the value). It is used only when the value fills the text.
_json_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.scanner.make_scanner(
    cast(Any, _JSON_DECODER)
)
# What makes a JSON message need a walk: a \u0000 (binary convention) or a surrogate escape.
_JSON_SUSPECT: Final = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])").search


def _json_value(text: str) -> Any:
    try:
        value, end = _json_scan(text, 0)
        if end == len(text):
            return value
    except StopIteration:
        pass
    # Whitespace around the value, or an error: the full decoder says which, and where.
    return _JSON_DECODER.decode(text)


def decode_json(text: str, max_depth: int, max_items: int) -> list[Any]:
    """One JSON-serialized WAMP message (already UTF-8-decoded) as a list; DecodeError if not."""
    try:
        value = _json_value(text)
    except DecodeError:
        raise
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # int() past the interpreter's digit limit, and the like
        raise DecodeError(f"invalid JSON: {str(exc)[:80]}") from None
    except RecursionError:
        raise DecodeError(f"nesting deeper than {max_depth}") from None
    if type(value) is not list:
        raise DecodeError(f"a WAMP message must be a JSON array, not {_json_kind(value)}")
    # Every JSON value takes at least one character, and every level of nesting one bracket.
    if (
        len(text) > max_items
        or (text.find("\\u") >= 0 and _JSON_SUSPECT(text) is not None)
        or text.count("[") + text.count("{") > max_depth
    ):
        _walk(value, True, max_depth, max_items)
    return value


def _json_kind(value: object) -> str:
    if type(value) is dict:
        return "an object"
    if type(value) is str:
        return "a string"
    return "a number" if type(value) in (int, float) else "true, false or null"


def _json_default(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return _NUL + base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be serialized in a WAMP message")


def _json_encoder() -> Callable[[Any], str]:
    """Compact JSON text, as ensure_ascii=False and allow_nan=False make it."""
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:
        return json.JSONEncoder(
            ensure_ascii=False,
            allow_nan=False,
            check_circular=False,
            separators=(",", ":"),
            default=_json_default,
        ).encode
    # JSONEncoder.encode builds this C encoder anew for every call, which costs a third of the
    # time of encoding a typical EVENT. Its arguments are those JSONEncoder passes it.
    encode = make_encoder(
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    join = "".join

    def encode_text(value: Any) -> str:
        return join(encode(value, 0))

    return encode_text


_json_text: Final = _json_encoder()


def encode_json(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, bytes as "\\u0000" + base64.

    ValueError for what JSON cannot carry exactly: NaN or infinity, a value of another type, or
    a string that starts with NUL (it would be read back as bytes).
    """
    try:
        text = _json_text(value)
    except (TypeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    # A NUL is escaped as \u0000: only then can a string starting with one be in the output.
    if text.find("\\u0000") >= 0 and _nul_strings(value):
        raise ValueError("a string starting with NUL cannot be carried in JSON (reads as binary)")
    return text.encode()


# --- MessagePack ------------------------------------------------------------------------------

# Each byte's class, for a look at what a MessagePack message may hold at C speed: "c" may start
# an array or a map (their count bounds the nesting depth), "b" a bin (bytes, maybe a map key),
# "h" a float or a non-empty fixstr, "z" what is suspect right after one (0x7F or 0xFF begins
# a NaN or an infinity; NUL, a str starting with NUL), "l" a longer str. False alarms only cost
# a walk. (bytes.find is twice as fast as `in` here, and re much slower than either.)
_MSGPACK_CLASSES: Final = bytes(
    ord("c")
    if 0x80 <= byte <= 0x9F or 0xDC <= byte <= 0xDF
    else ord("b")
    if 0xC4 <= byte <= 0xC6
    else ord("h")
    if byte in (0xCA, 0xCB) or 0xA1 <= byte <= 0xBF
    else ord("z")
    if byte in (0x00, 0x7F, 0xFF)
    else ord("l")
    if 0xD9 <= byte <= 0xDB
    else ord(".")
    for byte in range(256)
)
_STR_HEADERS: Final = ((0xD9, 2), (0xDA, 3), (0xDB, 5))  # str 8/16/32: header, bytes before text


def _long_str_starts_with_nul(data: bytes) -> bool:
    for header, skip in _STR_HEADERS:
        at = data.find(header)
        while at >= 0:
            if data[at + skip : at + skip + 1] == b"\x00":
                return True
            at = data.find(header, at + 1)
    return False


def _msgpack_suspect(data: bytes, max_depth: int) -> bool:
    """Whether `data` may hold what needs a walk: bytes, a NaN, a str starting with NUL, or
    more levels than `max_depth`."""
    classes = data.translate(_MSGPACK_CLASSES)
    return (
        classes.find(b"b") >= 0
        or classes.find(b"hz") >= 0
        or classes.count(b"c") > max_depth
        or (classes.find(b"l") >= 0 and _long_str_starts_with_nul(data))
    )


def _msgpack_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"MessagePack extension type {code} is not allowed")


_unpackb: Final = msgpack.unpackb


def decode_msgpack(data: bytes, max_depth: int, max_items: int) -> list[Any]:
    """One MessagePack-serialized WAMP message as a list; DecodeError if not."""
    size = len(data)
    count = size if size < max_items else max_items
    try:
        value = _unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=size,
            max_bin_len=size,
            max_array_len=count,
            max_map_len=count,
            max_ext_len=0,
            ext_hook=_msgpack_ext,
        )
    except DecodeError:
        raise
    except UnicodeDecodeError:
        raise DecodeError("MessagePack str is not valid UTF-8") from None
    except msgpack.StackError:
        raise DecodeError(f"nesting deeper than {max_depth}") from None
    except msgpack.ExtraData:
        raise DecodeError("invalid MessagePack: bytes after the message") from None
    except (ValueError, msgpack.UnpackException) as exc:
        reason = str(exc)
        if "max_ext_len" in reason or "timestamp" in reason:
            raise DecodeError("MessagePack extension types are not allowed") from None
        if "max_array_len" in reason or "max_map_len" in reason:
            if size > max_items:
                raise DecodeError(f"more than {max_items} values in one message") from None
            raise DecodeError("invalid MessagePack: an array or map longer than the data") from None
        raise DecodeError(f"invalid MessagePack: {reason[:80] or type(exc).__name__}") from None
    if type(value) is not list:
        raise DecodeError(f"a WAMP message must be a MessagePack array, not {type(value).__name__}")
    # Every MessagePack value takes at least one byte.
    if size > max_items or _msgpack_suspect(data, max_depth):
        _walk(value, False, max_depth, max_items)
    return value


# Not thread-safe, and nothing here needs it to be: packing plain values never calls back into
# Python. One shared packer, since each one holds a buffer of its own (256 KiB by default).
_PACKER: Final = msgpack.Packer(use_bin_type=True, autoreset=True, buf_size=4096)
_pack: Final = _PACKER.pack


def encode_msgpack(value: Any) -> bytes:
    """`value` as MessagePack: str as str, bytes as bin. ValueError for what it cannot carry."""
    try:
        data: bytes = _pack(value)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None
    return data
