"""WAMP arguments to a core payload and back, by the rules of DESIGN.md ("Payloads")."""

from __future__ import annotations

import base64
import json
from typing import Any

from broker.core.message import JSON

Arguments = tuple[list[Any] | None, dict[str, Any] | None]


def _binary_to_json(value: Any) -> Any:
    """JSON can't hold bytes: the WAMP JSON convention, a "\\0" + base64 string."""
    if isinstance(value, bytes):
        return "\x00" + base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_binary_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _binary_to_json(v) for k, v in value.items()}
    return value


def _binary_from_json(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("\x00"):
            try:
                return base64.b64decode(value[1:], validate=True)
            except ValueError:
                return value
        return value
    if isinstance(value, list):
        return [_binary_from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _binary_from_json(v) for k, v in value.items()}
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(
        _binary_to_json(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def payload_of(args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[bytes, str | None]:
    """(payload, content type) of a PUBLISH's arguments."""
    if args is not None and len(args) == 1 and not kwargs:
        value = args[0]
        if isinstance(value, bytes):
            return value, None  # binary stays binary, byte for byte
        return _dumps(value), JSON
    return _dumps({"args": args or [], "kwargs": kwargs or {}}), JSON


def arguments_of(payload: bytes, content_type: str | None = None) -> Arguments:
    """The EVENT arguments for a core payload: JSON gives its value, other text the string,
    other bytes the bytes. A WAMP publish's {"args", "kwargs"} envelope gives them back exactly.
    """
    if not payload and content_type is None:
        return [b""], None  # nothing says it is text: an empty binary value, as it went in
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return [payload], None
    try:
        value = json.loads(text)
        if "\\u0000" in text:  # only then can a binary string be in there
            value = _binary_from_json(value)
    except (ValueError, RecursionError):  # not JSON, or nested past what we follow
        return [text], None
    if isinstance(value, dict) and value.keys() == {"args", "kwargs"}:
        args, kwargs = value["args"], value["kwargs"]
        if isinstance(args, list) and isinstance(kwargs, dict):
            return args, kwargs or None
    return [value], None
