"""WebSocket masking: the C routine and the pure-Python fallback agree with RFC 6455."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.transport import mask as mask_module
from broker.transport.mask import apply_mask, c_apply_mask, py_apply_mask

RFC_MASK = bytes.fromhex("37fa213d")


def reference_mask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


IMPLEMENTATIONS = [pytest.param(py_apply_mask, id="python")]
if c_apply_mask is not None:
    IMPLEMENTATIONS.append(pytest.param(c_apply_mask, id="c"))


def test_codec_uses_c_routine_when_available() -> None:
    if c_apply_mask is None:
        assert apply_mask is py_apply_mask
        assert not mask_module.HAVE_C_MASK
    else:
        assert apply_mask is c_apply_mask
        assert mask_module.HAVE_C_MASK


def test_c_routine_is_installed_here() -> None:
    # websockets is a declared dependency for exactly this routine; a missing wheel is a bug.
    assert c_apply_mask is not None


@pytest.mark.parametrize("fn", IMPLEMENTATIONS)
def test_rfc6455_hello_example(fn: mask_module.MaskFunction) -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    assert fn(b"Hello", RFC_MASK) == bytes.fromhex("7f9f4d5158")
    assert fn(bytes.fromhex("7f9f4d5158"), RFC_MASK) == b"Hello"


@pytest.mark.parametrize("fn", IMPLEMENTATIONS)
@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099])
def test_every_length_matches_reference(fn: mask_module.MaskFunction, length: int) -> None:
    data = bytes(range(256)) * (length // 256 + 1)
    data = data[:length]
    key = b"\x00\xff\x5a\xa5"
    out = fn(data, key)
    assert type(out) is bytes
    assert out == reference_mask(data, key)


@pytest.mark.parametrize("fn", IMPLEMENTATIONS)
def test_leading_zero_bytes_are_kept(fn: mask_module.MaskFunction) -> None:
    # int.from_bytes drops leading zeros; to_bytes(n) must restore them.
    assert fn(b"\x01\x02\x03\x04\x05", b"\x01\x02\x03\x04") == b"\x00\x00\x00\x00\x04"


@pytest.mark.parametrize("fn", IMPLEMENTATIONS)
def test_accepts_bytearray_and_memoryview(fn: mask_module.MaskFunction) -> None:
    data = bytes(range(50))
    expected = reference_mask(data, RFC_MASK)
    assert fn(bytearray(data), bytearray(RFC_MASK)) == expected
    assert fn(memoryview(b"xx" + data)[2:], RFC_MASK) == expected


def test_python_fallback_rejects_bad_mask() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        py_apply_mask(b"abc", b"abc")


@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_fallback_equals_c_and_reference(data: bytes, key: bytes) -> None:
    expected = reference_mask(data, key)
    assert py_apply_mask(data, key) == expected
    assert apply_mask(data, key) == expected
    assert py_apply_mask(py_apply_mask(data, key), key) == data
