"""RFC 7692 permessage-deflate: negotiation parsing and the per-connection compressor."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.transport.deflate import (
    DeflateParams,
    InvalidCompressedData,
    MessageTooBig,
    PerMessageDeflate,
    negotiate,
)

TAIL = b"\x00\x00\xff\xff"


def client_compress(compressor: zlib._Compress, data: bytes) -> bytes:
    """What an RFC 7692 client sends: sync flush, tail stripped."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def client_inflate(decompressor: zlib._Decompress, data: bytes) -> bytes:
    return decompressor.decompress(data + TAIL)


# --- negotiation -------------------------------------------------------------------------


def accepted(offer: str) -> tuple[str, DeflateParams]:
    result = negotiate(offer)
    assert result is not None, offer
    response, codec = result
    return response, codec.params


@pytest.mark.parametrize("offer", [None, "", "   ", "x-webkit-deflate-frame", "deflate-frame"])
def test_no_offer_no_extension(offer: str | None) -> None:
    assert negotiate(offer) is None


def test_bare_offer() -> None:
    assert accepted("permessage-deflate") == (
        "permessage-deflate",
        DeflateParams(False, False, 15, 15),
    )


def test_browser_offer_client_max_window_bits_without_value_is_not_echoed() -> None:
    # What Chrome and Firefox send. Without a value in the offer we must not state one.
    response, params = accepted("permessage-deflate; client_max_window_bits")
    assert response == "permessage-deflate"
    assert params.client_max_window_bits == 15


def test_client_max_window_bits_with_value_is_confirmed() -> None:
    response, params = accepted("permessage-deflate; client_max_window_bits=10")
    assert response == "permessage-deflate; client_max_window_bits=10"
    assert params.client_max_window_bits == 10


@pytest.mark.parametrize("bits", range(9, 16))
def test_server_max_window_bits_is_honoured(bits: int) -> None:
    response, params = accepted(f"permessage-deflate; server_max_window_bits={bits}")
    assert response == f"permessage-deflate; server_max_window_bits={bits}"
    assert params.server_max_window_bits == bits


def test_server_max_window_bits_8_is_declined() -> None:
    # zlib cannot compress raw DEFLATE with a 256-byte window (documented decision).
    assert negotiate("permessage-deflate; server_max_window_bits=8") is None


def test_declined_offer_falls_back_to_next_offer() -> None:
    offer = (
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9"
    )
    response, params = accepted(offer)
    assert response == "permessage-deflate; server_max_window_bits=9"
    assert params.server_max_window_bits == 9


def test_client_max_window_bits_8_is_accepted() -> None:
    response, params = accepted("permessage-deflate; client_max_window_bits=8")
    assert response == "permessage-deflate; client_max_window_bits=8"
    assert params.client_max_window_bits == 8


def test_no_context_takeover_flags() -> None:
    response, params = accepted(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    )
    assert response == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert params == DeflateParams(True, True, 15, 15)


def test_all_parameters_together() -> None:
    response, params = accepted(
        "permessage-deflate;client_max_window_bits=12 ; server_max_window_bits=11;"
        " server_no_context_takeover;client_no_context_takeover"
    )
    assert response == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=11; client_max_window_bits=12"
    )
    assert params == DeflateParams(True, True, 11, 12)


def test_quoted_values() -> None:
    assert (
        accepted('permessage-deflate; server_max_window_bits="10"')[1].server_max_window_bits == 10
    )
    # A quoted-pair unescapes to its character.
    assert (
        accepted('permessage-deflate; client_max_window_bits="1\\2"')[1].client_max_window_bits
        == 12
    )


def test_first_acceptable_offer_among_other_extensions() -> None:
    response, params = accepted(
        "x-webkit-deflate-frame, foo; bar=1, permessage-deflate; client_no_context_takeover"
    )
    assert response == "permessage-deflate; client_no_context_takeover"
    assert params.client_no_context_takeover


def test_names_are_case_insensitive() -> None:
    assert accepted("PerMessage-Deflate; Server_No_Context_Takeover")[1].server_no_context_takeover


@pytest.mark.parametrize(
    "params",
    [
        "unknown_param",
        "unknown=1",
        "server_no_context_takeover; server_no_context_takeover",
        "client_max_window_bits; client_max_window_bits=10",
        "server_max_window_bits=10; server_max_window_bits=10",
        "server_no_context_takeover=1",
        'client_no_context_takeover=""',
        "server_max_window_bits",
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=08",
        "server_max_window_bits=010",
        "server_max_window_bits=+9",
        "server_max_window_bits=9.0",
        "server_max_window_bits=",
        "server_max_window_bits=abc",
        'server_max_window_bits="1 0"',
        "client_max_window_bits=7",
        "client_max_window_bits=16",
        "client_max_window_bits=\u0661\u0660",  # Arabic-Indic digits
        "client_max_window_bits=",
        "a b",
        "=10",
    ],
)
def test_bad_offers_are_declined(params: str) -> None:
    assert negotiate(f"permessage-deflate; {params}") is None
    # ...and skipped, not fatal: a later good offer is still accepted.
    assert accepted(f"permessage-deflate; {params}, permessage-deflate")[0] == "permessage-deflate"


def test_comma_inside_quotes_does_not_split() -> None:
    assert negotiate('permessage-deflate; server_max_window_bits="9,permessage-deflate"') is None
    response, _ = accepted('permessage-deflate; x="a,b", permessage-deflate')
    assert response == "permessage-deflate"


def test_malformed_element_is_skipped() -> None:
    assert accepted('b@d;;x, "quoted", permessage-deflate')[0] == "permessage-deflate"
    assert accepted(", ,permessage-deflate,")[0] == "permessage-deflate"


def test_unterminated_quote_declines_rest() -> None:
    assert negotiate('foo; x="abc, permessage-deflate') is None


def test_each_negotiation_returns_a_fresh_codec() -> None:
    a = negotiate("permessage-deflate")
    b = negotiate("permessage-deflate")
    assert a is not None
    assert b is not None
    assert a[1] is not b[1]


@given(st.text(max_size=200))
def test_negotiate_never_raises(offer: str) -> None:
    result = negotiate(offer)
    if result is not None:
        assert result[0].startswith("permessage-deflate")


# --- compression -------------------------------------------------------------------------


def test_rfc7692_hello_example() -> None:
    # Section 7.2.3.1 and 7.2.3.2: "Hello", then "Hello" again sharing the LZ77 window.
    codec = PerMessageDeflate()
    assert codec.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert codec.compress(b"Hello") == bytes.fromhex("f200110000")


def test_rfc7692_examples_decompress() -> None:
    codec = PerMessageDeflate()
    assert codec.decompress(bytes.fromhex("f248cdc9c90700"), max_size=100) == b"Hello"
    assert codec.decompress(bytes.fromhex("f200110000"), max_size=100) == b"Hello"
    # Section 7.2.3.3: the same message in a stored (uncompressed) block.
    stored = bytes.fromhex("0005 00fa ff 48656c6c6f 00".replace(" ", ""))
    assert PerMessageDeflate().decompress(stored, max_size=100) == b"Hello"


def test_rfc7692_bfinal_example() -> None:
    # Section 7.2.3.4: a block with BFINAL set; the next message starts a new stream.
    codec = PerMessageDeflate()
    assert codec.decompress(bytes.fromhex("f348cdc9c90700"), max_size=100) == b"Hello"
    assert codec.decompress(bytes.fromhex("f248cdc9c90700"), max_size=100) == b"Hello"


def test_server_no_context_takeover_makes_messages_independent() -> None:
    codec = PerMessageDeflate(DeflateParams(server_no_context_takeover=True))
    first = codec.compress(b"Hello")
    second = codec.compress(b"Hello")
    assert first == second == bytes.fromhex("f248cdc9c90700")
    data = os.urandom(300) * 3
    for _ in range(3):
        # A client that resets its decompressor per message must read each one alone.
        assert zlib.decompressobj(wbits=-15).decompress(codec.compress(data) + TAIL) == data


def test_context_takeover_shares_the_window() -> None:
    codec = PerMessageDeflate()
    reader = zlib.decompressobj(wbits=-15)
    data = os.urandom(1000)
    first = codec.compress(data)
    second = codec.compress(data)
    assert len(second) < 50 < len(first)
    assert client_inflate(reader, first) == data
    assert client_inflate(reader, second) == data


@pytest.mark.parametrize("bits", range(9, 16))
def test_server_max_window_bits_limits_distances(bits: int) -> None:
    codec = PerMessageDeflate(DeflateParams(server_max_window_bits=bits))
    # Repeats at a distance beyond any window: an inflater with exactly `bits` must cope.
    data = os.urandom(700) * 4 + os.urandom(40000) * 2
    reader = zlib.decompressobj(wbits=-bits)
    for _ in range(2):
        assert client_inflate(reader, codec.compress(data)) == data


def test_server_window_8_is_refused() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        PerMessageDeflate(DeflateParams(server_max_window_bits=8))


@pytest.mark.parametrize("bits", [7, 16])
def test_window_bits_range_checked(bits: int) -> None:
    with pytest.raises(ValueError, match="between 8 and 15"):
        PerMessageDeflate(DeflateParams(client_max_window_bits=bits))


def test_empty_message_is_a_single_zero_byte() -> None:
    codec = PerMessageDeflate()
    assert codec.compress(b"") == b"\x00"
    assert codec.decompress(b"\x00", max_size=0) == b""
    assert codec.decompress(b"", max_size=0) == b""


@pytest.mark.parametrize(
    "params",
    [
        DeflateParams(),
        DeflateParams(server_no_context_takeover=True),
        DeflateParams(client_no_context_takeover=True),
        DeflateParams(True, True, 9, 9),
        DeflateParams(False, False, 12, 8),
        DeflateParams(True, False, 10, 15),
    ],
)
def test_round_trip_with_each_parameter_set(params: DeflateParams) -> None:
    server = PerMessageDeflate(params)
    client_bits = max(params.client_max_window_bits, 9)  # zlib compresses with 9 at least
    client_writer = zlib.compressobj(wbits=-client_bits)
    client_reader = zlib.decompressobj(wbits=-params.server_max_window_bits)
    messages = [b"", b"Hello", os.urandom(2000), b"abc" * 5000, b"Hello", os.urandom(10) * 100]
    for message in messages:
        if params.client_no_context_takeover:
            client_writer = zlib.compressobj(wbits=-client_bits)
        if params.server_no_context_takeover:
            client_reader = zlib.decompressobj(wbits=-params.server_max_window_bits)
        sent = client_compress(client_writer, message)
        assert server.decompress(sent, max_size=len(message)) == message
        assert client_inflate(client_reader, server.compress(message)) == message


def test_client_no_context_takeover_uses_fresh_decompressor() -> None:
    # With client_no_context_takeover a fresh inflater per message is enough (and no window kept).
    codec = PerMessageDeflate(DeflateParams(client_no_context_takeover=True))
    for _ in range(3):
        assert codec.decompress(bytes.fromhex("f248cdc9c90700"), max_size=5) == b"Hello"
    # A message referring back to the previous one cannot be read without the shared window.
    with pytest.raises(InvalidCompressedData):
        codec.decompress(bytes.fromhex("f200110000"), max_size=5)


def test_max_size_boundary() -> None:
    writer = zlib.compressobj(wbits=-15)
    sent = client_compress(writer, b"x" * 1000)
    assert PerMessageDeflate().decompress(sent, max_size=1000) == b"x" * 1000
    with pytest.raises(MessageTooBig):
        PerMessageDeflate().decompress(sent, max_size=999)
    assert issubclass(MessageTooBig, ValueError)


def test_compression_bomb_is_refused_without_inflating_it() -> None:
    writer = zlib.compressobj(wbits=-15, level=9)
    chunk = bytes(1 << 20)
    bomb = b"".join(writer.compress(chunk) for _ in range(200))  # 200 MiB of zeros
    bomb += writer.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(bomb) < 300_000
    codec = PerMessageDeflate()
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooBig):
            codec.decompress(bomb, max_size=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_corrupt_data_raises_invalid_compressed_data() -> None:
    codec = PerMessageDeflate()
    with pytest.raises(InvalidCompressedData) as info:
        codec.decompress(b"\xff\xff\xff\xff", max_size=100)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, zlib.error)


@given(st.lists(st.binary(max_size=3000), max_size=8), st.booleans(), st.booleans())
def test_round_trip_property(messages: list[bytes], snct: bool, cnct: bool) -> None:
    server = PerMessageDeflate(DeflateParams(snct, cnct, 15, 15))
    client_writer = zlib.compressobj(wbits=-15)
    client_reader = zlib.decompressobj(wbits=-15)
    for message in messages:
        if cnct:
            client_writer = zlib.compressobj(wbits=-15)
        if snct:
            client_reader = zlib.decompressobj(wbits=-15)
        assert server.decompress(client_compress(client_writer, message), max_size=3000) == message
        assert client_inflate(client_reader, server.compress(message)) == message


@given(st.binary(max_size=200))
def test_garbage_only_raises_documented_errors(data: bytes) -> None:
    codec = PerMessageDeflate()
    try:
        out = codec.decompress(data, max_size=1000)
    except (MessageTooBig, InvalidCompressedData):
        return
    assert len(out) <= 1000
