"""WebSocket payload (un)masking (RFC 6455 section 5.3): C routine when available."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

__all__ = ["HAVE_C_MASK", "apply_mask", "c_apply_mask", "py_apply_mask"]

BytesLike: TypeAlias = bytes | bytearray | memoryview
MaskFunction: TypeAlias = Callable[[BytesLike, bytes | bytearray], bytes]


def py_apply_mask(data: BytesLike, mask: bytes | bytearray) -> bytes:
    """XOR ``data`` with the repeating 4-byte ``mask``, in pure Python."""
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    n = len(data)
    if n == 0:
        return b""
    # One big-integer XOR over the whole buffer beats a per-byte loop by two orders of magnitude.
    repeated = bytes(mask) * ((n + 3) >> 2)
    if len(repeated) != n:
        repeated = repeated[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


c_apply_mask: MaskFunction | None
try:
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - depends on the installed wheel
    c_apply_mask = None
else:
    c_apply_mask = _c_apply_mask

HAVE_C_MASK = c_apply_mask is not None

#: The routine the codec uses: websockets' C extension when importable, else pure Python.
apply_mask: MaskFunction = c_apply_mask if c_apply_mask is not None else py_apply_mask
