"""RFC 6455 server-side frame codec: byte-exact cases, every failure rule, fuzzing."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.transport.deflate import DeflateParams, PerMessageDeflate
from broker.transport.frames import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ConnectionState,
    Event,
    Opcode,
    Ping,
    Pong,
    ProtocolFailure,
    ServerConnection,
    TextMessage,
    encode_frame,
)
from broker.transport.mask import py_apply_mask

RFC_MASK = bytes.fromhex("37fa213d")
TAIL = b"\x00\x00\xff\xff"


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes = RFC_MASK,
    length_bits: int | None = None,
) -> bytes:
    """A masked client-to-server frame; ``length_bits`` forces a (non-minimal) length form."""
    b0 = opcode | (0x80 if fin else 0) | rsv
    n = len(payload)
    if length_bits is None:
        length_bits = 7 if n < 126 else 16 if n < 65536 else 64
    if length_bits == 7:
        header = bytes((b0, 0x80 | n))
    elif length_bits == 16:
        header = struct.pack("!BBH", b0, 0xFE, n)
    else:
        header = struct.pack("!BBQ", b0, 0xFF, n)
    return header + mask + py_apply_mask(payload, mask)


def state_of(conn: ServerConnection) -> ConnectionState:
    """The state, read through a call so that mypy does not keep an earlier narrowing."""
    return conn.state


def close_body(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


Feeder = Callable[[ServerConnection, bytes], list[Event]]


def feed_whole(conn: ServerConnection, data: bytes) -> list[Event]:
    return conn.receive_data(data)


def feed_bytewise(conn: ServerConnection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


def feed_uneven(conn: ServerConnection, data: bytes) -> list[Event]:
    events: list[Event] = []
    i, step = 0, 1
    while i < len(data):
        events += conn.receive_data(data[i : i + step])
        i += step
        step = step % 7 + 3
    return events


@pytest.fixture(
    params=[feed_whole, feed_bytewise, feed_uneven], ids=["whole", "bytewise", "uneven"]
)
def feed(request: pytest.FixtureRequest) -> Feeder:
    fn: Feeder = request.param
    return fn


def assert_failure(conn: ServerConnection, events: list[Event], code: int) -> None:
    assert events
    failure = events[-1]
    assert isinstance(failure, ProtocolFailure), events
    assert failure.code == code
    assert not any(isinstance(e, ProtocolFailure) for e in events[:-1])
    assert conn.state is ConnectionState.CLOSED
    sent = conn.data_to_send()
    assert sent[:1] == b"\x88"
    assert struct.unpack("!H", sent[2:4])[0] == code
    assert sent[4:].decode() == failure.reason
    assert sent[1] == len(sent) - 2
    # Nothing more is parsed or sent after a failure.
    assert conn.receive_data(client_frame(Opcode.PING, b"x")) == []
    assert conn.data_to_send() == b""


def fails_with(data: bytes, code: int, feed: Feeder = feed_whole, **kwargs: object) -> None:
    conn = ServerConnection(**kwargs)  # type: ignore[arg-type]
    assert_failure(conn, feed(conn, data), code)


# --- RFC 6455 section 5.7 examples ---------------------------------------------------------


def test_rfc_single_frame_unmasked_text_is_what_we_send() -> None:
    assert encode_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")


def test_rfc_single_frame_masked_text(feed: Feeder) -> None:
    conn = ServerConnection()
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    assert client_frame(Opcode.TEXT, b"Hello") == data
    assert feed(conn, data) == [TextMessage(b"Hello")]
    assert conn.data_to_send() == b""
    assert conn.state is ConnectionState.OPEN


def test_rfc_fragmented_unmasked_text_is_what_we_send() -> None:
    assert encode_frame(Opcode.TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert encode_frame(Opcode.CONTINUATION, b"lo") == bytes.fromhex("80026c6f")


def test_rfc_fragmented_text_masked(feed: Feeder) -> None:
    data = client_frame(Opcode.TEXT, b"Hel", fin=False) + client_frame(Opcode.CONTINUATION, b"lo")
    assert feed(ServerConnection(), data) == [TextMessage(b"Hello")]


def test_rfc_unmasked_ping_is_what_we_send() -> None:
    assert encode_frame(Opcode.PING, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert ServerConnection().send_ping(b"Hello") == bytes.fromhex("890548656c6c6f")


def test_rfc_masked_pong(feed: Feeder) -> None:
    conn = ServerConnection()
    assert feed(conn, bytes.fromhex("8a8537fa213d7f9f4d5158")) == [Pong(b"Hello")]
    assert conn.data_to_send() == b""


def test_rfc_256_and_65536_byte_binary_headers() -> None:
    assert encode_frame(Opcode.BINARY, bytes(256))[:4] == bytes.fromhex("827e0100")
    assert encode_frame(Opcode.BINARY, bytes(65536))[:10] == bytes.fromhex("827f0000000000010000")


def test_unmasked_client_frame_fails(feed: Feeder) -> None:
    fails_with(bytes.fromhex("810548656c6c6f"), CloseCode.PROTOCOL_ERROR, feed)


# --- lengths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (0, "8200"),
        (1, "8201"),
        (125, "827d"),
        (126, "827e007e"),
        (127, "827e007f"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
        (70000, "827f0000000000011170"),
    ],
)
def test_encode_lengths(n: int, header: str) -> None:
    payload = bytes(range(256)) * (n // 256 + 1)
    payload = payload[:n]
    frame = encode_frame(Opcode.BINARY, payload)
    assert frame == bytes.fromhex(header) + payload


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_decode_lengths(n: int) -> None:
    payload = bytes(range(256)) * (n // 256 + 1)
    payload = payload[:n]
    for feeder in (feed_whole, feed_uneven):
        conn = ServerConnection()
        assert feeder(conn, client_frame(Opcode.BINARY, payload)) == [BinaryMessage(payload)]
    conn = ServerConnection()
    text = b"a" * n
    assert conn.receive_data(client_frame(Opcode.TEXT, text)) == [TextMessage(text)]


@pytest.mark.parametrize("n", [0, 5, 125, 126, 1000, 65535])
@pytest.mark.parametrize("bits", [16, 64])
def test_non_minimal_lengths_are_accepted(n: int, bits: int) -> None:
    if bits == 16 and n > 65535:
        return
    payload = b"z" * n
    conn = ServerConnection()
    data = client_frame(Opcode.BINARY, payload, length_bits=bits)
    assert feed_uneven(conn, data) == [BinaryMessage(payload)]


def test_64_bit_length_with_top_bit_fails(feed: Feeder) -> None:
    header = struct.pack("!BBQ", 0x82, 0xFF, 1 << 63)
    fails_with(header + RFC_MASK, CloseCode.PROTOCOL_ERROR, feed)


def test_huge_64_bit_length_fails_on_size_before_payload() -> None:
    header = struct.pack("!BBQ", 0x82, 0xFF, (1 << 63) - 1)
    fails_with(header, CloseCode.MESSAGE_TOO_BIG)


# --- sizes ---------------------------------------------------------------------------------


def test_message_at_limit_is_accepted() -> None:
    conn = ServerConnection(max_message_size=100)
    assert conn.receive_data(client_frame(Opcode.BINARY, bytes(100))) == [BinaryMessage(bytes(100))]


def test_single_frame_over_limit_fails_from_its_header_alone() -> None:
    conn = ServerConnection(max_message_size=100)
    frame = client_frame(Opcode.BINARY, bytes(101))
    # Only the header: no payload byte is needed (or buffered) to refuse it.
    events = conn.receive_data(frame[:4])
    assert_failure(conn, events, CloseCode.MESSAGE_TOO_BIG)
    assert events[-1] == ProtocolFailure(1009, "message too big")


def test_fragments_over_limit_fail(feed: Feeder) -> None:
    data = (
        client_frame(Opcode.TEXT, b"a" * 60, fin=False)
        + client_frame(Opcode.CONTINUATION, b"a" * 40, fin=False)
        + client_frame(Opcode.CONTINUATION, b"a", fin=True)
    )
    fails_with(data, CloseCode.MESSAGE_TOO_BIG, feed, max_message_size=100)


def test_fragments_at_limit_pass() -> None:
    conn = ServerConnection(max_message_size=100)
    data = (
        client_frame(Opcode.BINARY, b"a" * 60, fin=False)
        + client_frame(Opcode.CONTINUATION, b"b" * 40, fin=False)
        + client_frame(Opcode.CONTINUATION, b"", fin=True)
    )
    assert conn.receive_data(data) == [BinaryMessage(b"a" * 60 + b"b" * 40)]


def test_control_frames_do_not_count_towards_message_size() -> None:
    conn = ServerConnection(max_message_size=10)
    data = (
        client_frame(Opcode.TEXT, b"a" * 10, fin=False)
        + client_frame(Opcode.PING, b"p" * 125)
        + client_frame(Opcode.CONTINUATION, b"")
    )
    assert conn.receive_data(data) == [Ping(b"p" * 125), TextMessage(b"a" * 10)]


def test_buffer_holds_at_most_one_frame_under_the_limit() -> None:
    # A peer trickling a large frame cannot make us hold more than the limit plus a header.
    conn = ServerConnection(max_message_size=1000)
    frame = client_frame(Opcode.BINARY, bytes(1000))
    assert conn.receive_data(frame[:-1]) == []
    assert conn.receive_data(frame[-1:]) == [BinaryMessage(bytes(1000))]
    assert conn.receive_data(client_frame(Opcode.BINARY, bytes(1001))[:8]) == [
        ProtocolFailure(1009, "message too big")
    ]


def test_max_message_size_zero() -> None:
    conn = ServerConnection(max_message_size=0)
    assert conn.receive_data(client_frame(Opcode.TEXT)) == [TextMessage(b"")]
    fails_with(client_frame(Opcode.TEXT, b"a"), 1009, max_message_size=0)


def test_negative_max_message_size_rejected() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        ServerConnection(max_message_size=-1)


# --- header rules --------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcodes_fail(opcode: int, feed: Feeder) -> None:
    fails_with(client_frame(opcode, b"x"), CloseCode.PROTOCOL_ERROR, feed)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.CLOSE])
def test_reserved_bits_without_extension_fail(rsv: int, opcode: int) -> None:
    fails_with(client_frame(opcode, b"", rsv=rsv), CloseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("rsv", [0x20, 0x10])
def test_rsv2_rsv3_fail_even_with_deflate(rsv: int) -> None:
    conn = ServerConnection(deflate=PerMessageDeflate())
    assert_failure(conn, conn.receive_data(client_frame(1, b"", rsv=rsv)), 1002)


def test_rsv1_on_continuation_fails_with_deflate() -> None:
    conn = ServerConnection(deflate=PerMessageDeflate())
    data = client_frame(Opcode.BINARY, b"", fin=False) + client_frame(0, b"", rsv=0x40)
    assert_failure(conn, conn.receive_data(data), 1002)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_rsv1_on_control_frame_fails_with_deflate(opcode: int) -> None:
    conn = ServerConnection(deflate=PerMessageDeflate())
    assert_failure(conn, conn.receive_data(client_frame(opcode, b"", rsv=0x40)), 1002)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_fragmented_control_frame_fails(opcode: int, feed: Feeder) -> None:
    fails_with(client_frame(opcode, b"", fin=False), CloseCode.PROTOCOL_ERROR, feed)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_payload_limit(opcode: int) -> None:
    fails_with(client_frame(opcode, b"\x03\xe8" + b"a" * 124), CloseCode.PROTOCOL_ERROR)
    # Even a 126-byte length in the extended form is refused from the header alone.
    fails_with(client_frame(opcode, b"a" * 126)[:4], CloseCode.PROTOCOL_ERROR)
    conn = ServerConnection()
    events = conn.receive_data(client_frame(opcode, b"\x03\xe8" + b"a" * 123))
    assert len(events) == 1
    assert not isinstance(events[0], ProtocolFailure)


def test_continuation_without_message_fails(feed: Feeder) -> None:
    fails_with(client_frame(Opcode.CONTINUATION, b"x"), CloseCode.PROTOCOL_ERROR, feed)


def test_continuation_after_finished_message_fails() -> None:
    conn = ServerConnection()
    events = conn.receive_data(client_frame(Opcode.TEXT, b"a") + client_frame(0, b"b"))
    assert events[0] == TextMessage(b"a")
    assert_failure(conn, events, 1002)


@pytest.mark.parametrize("second", [Opcode.TEXT, Opcode.BINARY])
def test_new_message_inside_fragmented_message_fails(second: int, feed: Feeder) -> None:
    data = client_frame(Opcode.TEXT, b"a", fin=False) + client_frame(second, b"b")
    fails_with(data, CloseCode.PROTOCOL_ERROR, feed)


def test_events_before_a_failure_are_kept() -> None:
    conn = ServerConnection()
    data = client_frame(Opcode.BINARY, b"1") + client_frame(Opcode.PING, b"p") + b"\x82\x01x"
    events = conn.receive_data(data)
    assert events[:2] == [BinaryMessage(b"1"), Ping(b"p")]
    assert isinstance(events[2], ProtocolFailure)
    sent = conn.data_to_send()
    # The pong was queued before the failure's close frame.
    assert sent.startswith(b"\x8a\x01p\x88")


# --- fragmentation and interleaving --------------------------------------------------------


def test_control_frames_interleaved_with_fragments(feed: Feeder) -> None:
    conn = ServerConnection()
    data = (
        client_frame(Opcode.BINARY, b"ab", fin=False)
        + client_frame(Opcode.PING, b"1")
        + client_frame(Opcode.CONTINUATION, b"cd", fin=False)
        + client_frame(Opcode.PONG, b"2")
        + client_frame(Opcode.PING, b"")
        + client_frame(Opcode.CONTINUATION, b"ef", fin=True)
        + client_frame(Opcode.TEXT, b"next")
    )
    assert feed(conn, data) == [
        Ping(b"1"),
        Pong(b"2"),
        Ping(b""),
        BinaryMessage(b"abcdef"),
        TextMessage(b"next"),
    ]
    assert conn.data_to_send() == encode_frame(Opcode.PONG, b"1") + encode_frame(Opcode.PONG, b"")


def test_close_inside_fragmented_message(feed: Feeder) -> None:
    conn = ServerConnection()
    data = client_frame(Opcode.TEXT, b"ab", fin=False) + client_frame(
        Opcode.CLOSE, close_body(1000)
    )
    assert feed(conn, data) == [CloseReceived(1000, "")]
    assert conn.state is ConnectionState.CLOSED


def test_empty_fragments() -> None:
    conn = ServerConnection()
    data = (
        client_frame(Opcode.TEXT, b"", fin=False)
        + client_frame(0, b"", fin=False)
        + client_frame(0, b"", fin=True)
    )
    assert conn.receive_data(data) == [TextMessage(b"")]


def test_many_frames_in_one_chunk() -> None:
    conn = ServerConnection()
    frames = b"".join(client_frame(Opcode.BINARY, bytes([i]) * 64) for i in range(256))
    assert conn.receive_data(frames) == [BinaryMessage(bytes([i]) * 64) for i in range(256)]


def test_partial_frame_then_rest_with_next_frames() -> None:
    conn = ServerConnection()
    frame = client_frame(Opcode.BINARY, b"x" * 300)
    assert conn.receive_data(frame[:150]) == []
    assert conn.receive_data(frame[150:] + frame + frame[:1]) == [BinaryMessage(b"x" * 300)] * 2
    assert conn.receive_data(frame[1:]) == [BinaryMessage(b"x" * 300)]


def test_accepts_bytearray_and_memoryview_input() -> None:
    conn = ServerConnection()
    frame = client_frame(Opcode.TEXT, b"hi")
    assert conn.receive_data(bytearray(frame)) == [TextMessage(b"hi")]  # type: ignore[arg-type]
    assert conn.receive_data(memoryview(frame)) == [TextMessage(b"hi")]  # type: ignore[arg-type]
    big = client_frame(Opcode.BINARY, b"y" * 10000)
    assert conn.receive_data(memoryview(big)[:5000]) == []  # type: ignore[arg-type]
    assert conn.receive_data(memoryview(big)[5000:]) == [BinaryMessage(b"y" * 10000)]  # type: ignore[arg-type]


def test_message_payload_types_are_bytes() -> None:
    conn = ServerConnection()
    data = client_frame(1, b"a", fin=False) + client_frame(0, b"b") + client_frame(2, b"c" * 5000)
    for event in conn.receive_data(data):
        assert isinstance(event, TextMessage | BinaryMessage)
        assert type(event.data) is bytes


# --- UTF-8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "Hello", "κόσμε", "€", "𝄞 music", "\ufeffBOM", "\U0010ffff", "a\x00b"],
)
def test_valid_utf8_single_frame(text: str) -> None:
    conn = ServerConnection()
    raw = text.encode()
    assert conn.receive_data(client_frame(Opcode.TEXT, raw)) == [TextMessage(raw)]


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        b"\xc0\x80",  # overlong NUL
        b"\xe0\x80\x80",  # overlong
        b"\xed\xa0\x80",  # surrogate
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xf5\x80\x80\x80",
        b"abc\x80",  # lone continuation byte
        b"\xce",  # truncated at message end
        b"\xe2\x82",  # truncated at message end
    ],
)
def test_invalid_utf8_single_frame(raw: bytes, feed: Feeder) -> None:
    fails_with(client_frame(Opcode.TEXT, raw), CloseCode.INVALID_DATA, feed)


def test_invalid_utf8_in_binary_is_fine() -> None:
    conn = ServerConnection()
    assert conn.receive_data(client_frame(Opcode.BINARY, b"\xff")) == [BinaryMessage(b"\xff")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_utf8_split_across_fragments_is_valid(cut: int, feed: Feeder) -> None:
    raw = "𝄞".encode()  # 4 bytes
    data = client_frame(Opcode.TEXT, b"x" + raw[:cut], fin=False) + client_frame(0, raw[cut:])
    assert feed(ServerConnection(), data) == [TextMessage(b"x" + raw)]


def test_utf8_split_one_byte_per_fragment() -> None:
    raw = "κόσμε€𝄞".encode()
    data = client_frame(Opcode.TEXT, raw[:1], fin=False)
    for i in range(1, len(raw) - 1):
        data += client_frame(0, raw[i : i + 1], fin=False)
    data += client_frame(0, raw[-1:])
    assert ServerConnection().receive_data(data) == [TextMessage(raw)]


@pytest.mark.parametrize(
    "first",
    [
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80",
        b"ok\xff",
        b"\xf4\x90",
        b"\xed\xa0",  # a surrogate's first two bytes: already hopeless
        b"\xc0",
    ],
)
def test_invalid_utf8_fails_fast_in_first_fragment(first: bytes) -> None:
    # The message is not finished (and never will be): the failure comes right away.
    conn = ServerConnection()
    events = conn.receive_data(client_frame(Opcode.TEXT, first, fin=False))
    assert_failure(conn, events, CloseCode.INVALID_DATA)


def test_invalid_utf8_across_fragment_boundary_fails_at_second_fragment() -> None:
    conn = ServerConnection()
    assert conn.receive_data(client_frame(Opcode.TEXT, b"a\xe2\x82", fin=False)) == []
    events = conn.receive_data(client_frame(0, b"\x28", fin=False))
    assert_failure(conn, events, CloseCode.INVALID_DATA)


def test_incomplete_utf8_at_end_of_fragmented_message_fails(feed: Feeder) -> None:
    data = client_frame(Opcode.TEXT, b"a", fin=False) + client_frame(0, b"\xe2\x82")
    fails_with(data, CloseCode.INVALID_DATA, feed)


def test_utf8_state_resets_between_messages() -> None:
    conn = ServerConnection()
    data = (
        client_frame(Opcode.TEXT, "é".encode(), fin=False)
        + client_frame(0, b"")
        + client_frame(Opcode.TEXT, b"\xe2", fin=False)
        + client_frame(0, b"\x82\xac")
    )
    assert conn.receive_data(data) == [TextMessage("é".encode()), TextMessage("€".encode())]


# --- close handshake -----------------------------------------------------------------------

VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_valid_close_codes_are_echoed(code: int, feed: Feeder) -> None:
    conn = ServerConnection()
    events = feed(conn, client_frame(Opcode.CLOSE, close_body(code, b"bye")))
    assert events == [CloseReceived(code, "bye")]
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b"\x88\x02" + struct.pack("!H", code)
    assert conn.receive_data(client_frame(Opcode.TEXT, b"late")) == []


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_invalid_close_codes_fail(code: int) -> None:
    fails_with(client_frame(Opcode.CLOSE, close_body(code)), CloseCode.PROTOCOL_ERROR)


def test_close_without_body() -> None:
    conn = ServerConnection()
    assert conn.receive_data(client_frame(Opcode.CLOSE)) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"
    assert conn.state is ConnectionState.CLOSED


def test_close_with_one_byte_body_fails() -> None:
    fails_with(client_frame(Opcode.CLOSE, b"\x03"), CloseCode.PROTOCOL_ERROR)


def test_close_reason_utf8() -> None:
    conn = ServerConnection()
    body = close_body(1001, "κόσμε".encode())
    assert conn.receive_data(client_frame(Opcode.CLOSE, body)) == [CloseReceived(1001, "κόσμε")]
    fails_with(client_frame(Opcode.CLOSE, close_body(1000, b"\xce")), CloseCode.INVALID_DATA)


def test_bytes_after_close_are_ignored() -> None:
    conn = ServerConnection()
    data = client_frame(Opcode.CLOSE, close_body(1000)) + client_frame(Opcode.PING, b"x") + b"junk"
    assert conn.receive_data(data) == [CloseReceived(1000, "")]
    assert conn.data_to_send() == b"\x88\x02\x03\xe8"
    assert conn.receive_data(b"more junk") == []
    assert conn.data_to_send() == b""


def test_server_initiated_close() -> None:
    conn = ServerConnection()
    assert conn.send_close(1001, "going away") == b"\x88\x0c\x03\xe9going away"
    assert conn.state is ConnectionState.CLOSING
    assert conn.send_close() == b""
    assert conn.send_message(b"x", text=False) == b""
    assert conn.send_ping() == b""
    assert conn.send_pong() == b""
    # Messages still in flight from the peer are delivered; pings are still answered (RFC 6455
    # section 5.5.2: only the peer's close ends that duty, and only data frames must stop).
    data = client_frame(Opcode.TEXT, b"in flight") + client_frame(Opcode.PING, b"p")
    assert conn.receive_data(data) == [TextMessage(b"in flight"), Ping(b"p")]
    assert conn.data_to_send() == b"\x8a\x01p"
    assert conn.receive_data(client_frame(Opcode.CLOSE, close_body(1001))) == [
        CloseReceived(1001, "")
    ]
    assert state_of(conn) is ConnectionState.CLOSED
    assert conn.data_to_send() == b""  # no echo: our close is already out


def test_protocol_error_while_closing_sends_no_second_close() -> None:
    conn = ServerConnection()
    conn.send_close()
    events = conn.receive_data(b"\x81\x00")
    assert events == [ProtocolFailure(1002, "client frame not masked")]
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b""


def test_send_close_defaults_and_special_codes() -> None:
    assert ServerConnection().send_close() == b"\x88\x02\x03\xe8"
    assert ServerConnection().send_close(1005) == b"\x88\x00"
    assert ServerConnection().send_close(4000, "x") == b"\x88\x03\x0f\xa0x"
    for code in (999, 1006, 1015, 5000):
        with pytest.raises(ValueError, match="cannot be sent"):
            ServerConnection().send_close(code)


@pytest.mark.parametrize(
    ("reason", "expected_len"),
    [("a" * 123, 123), ("a" * 200, 123), ("é" * 62, 122), ("a" + "€" * 41, 121), ("𝄞" * 31, 120)],
)
def test_close_reason_truncated_on_character_boundary(reason: str, expected_len: int) -> None:
    frame = ServerConnection().send_close(1000, reason)
    assert frame[1] == 2 + expected_len
    body = frame[4:]
    assert len(body) == expected_len
    assert reason.startswith(body.decode("utf-8"))


def test_fail_maps_error_to_close_frame_once() -> None:
    conn = ServerConnection()
    assert conn.fail(1011, "internal error") == b"\x88\x10\x03\xf3internal error"
    assert conn.state is ConnectionState.CLOSED
    assert conn.fail(1011, "again") == b""
    assert conn.receive_data(client_frame(Opcode.TEXT, b"x")) == []
    assert conn.data_to_send() == b""


def test_fail_with_unsendable_code_sends_empty_close() -> None:
    assert ServerConnection().fail(1006, "gone") == b"\x88\x00"


# --- pings and sending ---------------------------------------------------------------------


def test_ping_is_answered(feed: Feeder) -> None:
    conn = ServerConnection()
    data = client_frame(Opcode.PING, b"abc") + client_frame(Opcode.PING, b"d" * 125)
    assert feed(conn, data) == [Ping(b"abc"), Ping(b"d" * 125)]
    assert conn.data_to_send() == b"\x8a\x03abc" + b"\x8a\x7d" + b"d" * 125
    assert conn.data_to_send() == b""


def test_send_frames() -> None:
    conn = ServerConnection()
    assert not conn.compressed
    assert conn.send_message(b"hi", text=True) == b"\x81\x02hi"
    assert conn.send_message(b"\x00", text=False) == b"\x82\x01\x00"
    assert conn.send_pong(b"x") == b"\x8a\x01x"
    with pytest.raises(ValueError, match="125"):
        conn.send_ping(b"x" * 126)


def test_encode_frame_variants() -> None:
    assert encode_frame(Opcode.TEXT, b"a", fin=False) == b"\x01\x01a"
    assert encode_frame(Opcode.CONTINUATION, b"a", fin=False) == b"\x00\x01a"
    assert encode_frame(Opcode.TEXT, b"a", rsv1=True) == b"\xc1\x01a"
    assert encode_frame(Opcode.BINARY, b"a" * 300, fin=False, rsv1=True)[:4] == b"\x42\x7e\x01\x2c"
    assert encode_frame(Opcode.BINARY, bytearray(b"ab")) == b"\x82\x02ab"  # type: ignore[arg-type]
    assert encode_frame(Opcode.BINARY, memoryview(b"ab")) == b"\x82\x02ab"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="control"):
        encode_frame(Opcode.PING, b"", fin=False)
    with pytest.raises(ValueError, match="control"):
        encode_frame(Opcode.CLOSE, b"x" * 126)


def test_encode_frame_is_shareable() -> None:
    frame = encode_frame(Opcode.BINARY, b"payload")
    assert type(frame) is bytes
    assert encode_frame(Opcode.BINARY, b"payload") == frame


def test_events_are_frozen_and_slotted() -> None:
    event = TextMessage(b"x")
    with pytest.raises(AttributeError):
        event.data = b"y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


# --- permessage-deflate in the codec -------------------------------------------------------


def deflate_conn(params: DeflateParams | None = None, **kwargs: int) -> ServerConnection:
    return ServerConnection(deflate=PerMessageDeflate(params), **kwargs)


def compress_message(compressor: zlib._Compress, data: bytes) -> bytes:
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def test_rfc7692_hello_received(feed: Feeder) -> None:
    conn = deflate_conn()
    data = client_frame(Opcode.TEXT, bytes.fromhex("f248cdc9c90700"), rsv=0x40)
    data += client_frame(Opcode.TEXT, bytes.fromhex("f200110000"), rsv=0x40)
    assert feed(conn, data) == [TextMessage(b"Hello"), TextMessage(b"Hello")]


def test_rfc7692_hello_sent() -> None:
    conn = deflate_conn()
    assert conn.compressed
    assert conn.send_message(b"Hello", text=True) == bytes.fromhex("c107f248cdc9c90700")
    assert conn.send_message(b"Hello", text=True) == bytes.fromhex("c105f200110000")


def test_rfc7692_fragmented_compressed_message() -> None:
    # Section 7.2.3.1: the compressed "Hello" split over two frames; RSV1 only on the first.
    conn = deflate_conn()
    data = client_frame(Opcode.TEXT, bytes.fromhex("f248cd"), fin=False, rsv=0x40)
    data += client_frame(0, bytes.fromhex("c9c90700"))
    assert feed_bytewise(conn, data) == [TextMessage(b"Hello")]


def test_uncompressed_message_on_deflate_connection() -> None:
    conn = deflate_conn()
    assert conn.receive_data(client_frame(Opcode.BINARY, b"raw")) == [BinaryMessage(b"raw")]


def test_compressed_round_trip_through_codec() -> None:
    conn = deflate_conn()
    writer = zlib.compressobj(wbits=-15)
    reader = zlib.decompressobj(wbits=-15)
    for message in [b"", b"abc" * 1000, "κόσμε".encode() * 50]:
        payload = compress_message(writer, message)
        events = conn.receive_data(client_frame(Opcode.TEXT, payload, rsv=0x40))
        assert events == [TextMessage(message)]
        frame = conn.send_message(message, text=False)
        assert frame[0] == 0xC2
        body = frame[2:] if frame[1] < 126 else frame[4:]
        assert reader.decompress(body + TAIL) == message


def test_compressed_invalid_utf8_fails() -> None:
    conn = deflate_conn()
    payload = compress_message(zlib.compressobj(wbits=-15), b"abc\xff")
    assert_failure(conn, conn.receive_data(client_frame(1, payload, rsv=0x40)), 1007)


def test_compressed_corrupt_data_fails_1007() -> None:
    conn = deflate_conn()
    assert_failure(conn, conn.receive_data(client_frame(2, b"\xff\xff\xff", rsv=0x40)), 1007)


def test_compressed_message_over_limit_fails() -> None:
    conn = deflate_conn(max_message_size=1000)
    payload = compress_message(zlib.compressobj(wbits=-15), bytes(1001))
    assert len(payload) < 100
    assert_failure(conn, conn.receive_data(client_frame(2, payload, rsv=0x40)), 1009)
    conn = deflate_conn(max_message_size=1000)
    payload = compress_message(zlib.compressobj(wbits=-15), bytes(1000))
    assert conn.receive_data(client_frame(2, payload, rsv=0x40)) == [BinaryMessage(bytes(1000))]


def test_compression_bomb_through_codec() -> None:
    writer = zlib.compressobj(wbits=-15, level=9)
    bomb = b"".join(writer.compress(bytes(1 << 20)) for _ in range(50))
    bomb += writer.flush(zlib.Z_SYNC_FLUSH)[:-4]
    conn = deflate_conn(max_message_size=1 << 20)
    data = client_frame(Opcode.BINARY, bomb[:1000], fin=False, rsv=0x40)
    data += client_frame(0, bomb[1000:])
    assert_failure(conn, conn.receive_data(data), CloseCode.MESSAGE_TOO_BIG)


def test_incompressible_message_at_limit_fits_on_the_wire() -> None:
    # Compressed random data is a little larger than the original; the wire limit allows it.
    import os

    message = os.urandom(100_000)
    payload = compress_message(zlib.compressobj(wbits=-15), message)
    assert len(payload) > len(message)
    conn = deflate_conn(max_message_size=100_000)
    assert conn.receive_data(client_frame(2, payload, rsv=0x40)) == [BinaryMessage(message)]


def test_client_no_context_takeover_through_codec() -> None:
    conn = deflate_conn(DeflateParams(client_no_context_takeover=True))
    for _ in range(3):
        payload = compress_message(zlib.compressobj(wbits=-15), b"Hello")
        assert conn.receive_data(client_frame(1, payload, rsv=0x40)) == [TextMessage(b"Hello")]


# --- property tests ------------------------------------------------------------------------

message_st = st.tuples(
    st.booleans(), st.binary(max_size=300) | st.text(max_size=100).map(str.encode)
)


@st.composite
def client_stream(draw: st.DrawFn, compress: bool = False) -> tuple[bytes, list[Event]]:
    """Random messages, randomly fragmented and masked, with pings in between."""
    messages = draw(st.lists(message_st, max_size=10))
    writer = zlib.compressobj(wbits=-15)
    out = bytearray()
    expected: list[Event] = []
    for is_text, body in messages:
        if is_text:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                is_text = False
        deflated = compress and draw(st.booleans())
        wire = compress_message(writer, body) if deflated else body
        cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=4)))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = (Opcode.TEXT if is_text else Opcode.BINARY) if i == 0 else 0
            rsv = 0x40 if deflated and i == 0 else 0
            mask = draw(st.binary(min_size=4, max_size=4))
            last = i == len(pieces) - 1
            out += client_frame(opcode, piece, fin=last, rsv=rsv, mask=mask)
            if last:
                expected.append(TextMessage(body) if is_text else BinaryMessage(body))
            if draw(st.integers(0, 4)) == 0:
                ping = draw(st.binary(max_size=125))
                out += client_frame(Opcode.PING, ping, mask=mask)
                expected.append(Ping(ping))
    return bytes(out), expected


def split_stream(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(client_stream(), st.lists(st.integers(0, 10_000), max_size=20))
def test_random_fragmented_masked_messages_round_trip(
    stream: tuple[bytes, list[Event]], cuts: list[int]
) -> None:
    data, expected = stream
    conn = ServerConnection()
    events: list[Event] = []
    for chunk in split_stream(data, cuts):
        events += conn.receive_data(chunk)
    assert events == expected
    pongs = [e for e in expected if isinstance(e, Ping)]
    assert conn.data_to_send() == b"".join(encode_frame(Opcode.PONG, p.payload) for p in pongs)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(client_stream(compress=True), st.lists(st.integers(0, 10_000), max_size=20))
def test_random_compressed_messages_round_trip(
    stream: tuple[bytes, list[Event]], cuts: list[int]
) -> None:
    data, expected = stream
    conn = deflate_conn()
    events: list[Event] = []
    for chunk in split_stream(data, cuts):
        events += conn.receive_data(chunk)
    assert events == expected


@given(st.lists(message_st, max_size=10))
def test_sent_messages_parse_back(messages: list[tuple[bool, bytes]]) -> None:
    # Our frames, masked as a client would, parse back to the same messages.
    server = ServerConnection()
    for is_text, body in messages:
        frame = server.send_message(body, text=is_text)
        header = 2 if len(body) < 126 else 4 if len(body) < 65536 else 10
        masked = bytes([frame[0], frame[1] | 0x80]) + frame[2:header] + RFC_MASK
        masked += py_apply_mask(frame[header:], RFC_MASK)
        events = ServerConnection().receive_data(masked)
        if is_text:
            try:
                body.decode()
            except UnicodeDecodeError:
                assert isinstance(events[0], ProtocolFailure)
                continue
        assert events == [TextMessage(body) if is_text else BinaryMessage(body)]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=500), st.lists(st.integers(0, 1000), max_size=10), st.booleans())
def test_garbage_never_raises(data: bytes, cuts: list[int], deflate: bool) -> None:
    conn = deflate_conn(max_message_size=200) if deflate else ServerConnection(max_message_size=200)
    events: list[Event] = []
    for chunk in split_stream(data, cuts):
        events += conn.receive_data(chunk)
    failures = [i for i, e in enumerate(events) if isinstance(e, ProtocolFailure)]
    assert len(failures) <= 1
    if failures:
        assert failures[0] == len(events) - 1
        assert conn.state is ConnectionState.CLOSED
    conn.data_to_send()
    closes = [e for e in events if isinstance(e, CloseReceived | ProtocolFailure)]
    assert len(closes) <= 1
    if closes:
        assert events[-1] is closes[0]
        assert conn.receive_data(data) == []


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 15), st.binary(max_size=130), st.booleans()), max_size=8))
def test_structured_garbage_never_raises(frames: list[tuple[int, bytes, bool]]) -> None:
    # Well-formed frame headers with random opcodes and flags reach deeper rules than noise.
    data = b"".join(
        client_frame(op, body, fin=fin, rsv=0x40 if op % 3 == 0 else 0) for op, body, fin in frames
    )
    conn = deflate_conn(max_message_size=300)
    events = feed_uneven(conn, data)
    failures = [e for e in events if isinstance(e, ProtocolFailure)]
    assert len(failures) <= 1
    if failures:
        assert events[-1] is failures[0]


# --- the lone-binary-frame shortcut ---------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 64, 125])
def test_lone_binary_frame_gives_its_payload(n: int) -> None:
    payload = bytes(range(n))
    assert ServerConnection().lone_binary(client_frame(Opcode.BINARY, payload)) == payload


@pytest.mark.parametrize(
    "data",
    [
        client_frame(Opcode.TEXT, b"text"),
        client_frame(Opcode.BINARY, b"x" * 126),  # 16-bit length
        client_frame(Opcode.BINARY, b"part", fin=False),
        client_frame(Opcode.BINARY, b"rsv", rsv=0x40),
        client_frame(Opcode.PING, b"ping"),
        client_frame(Opcode.BINARY, b"one") + client_frame(Opcode.BINARY, b"two"),
        client_frame(Opcode.BINARY, b"short")[:-1],
        encode_frame(Opcode.BINARY, b"unmasked"),
    ],
    ids=["text", "long", "fragment", "rsv1", "ping", "two", "partial", "unmasked"],
)
def test_lone_binary_declines_anything_else(data: bytes) -> None:
    assert ServerConnection().lone_binary(data) is None


def test_lone_binary_declines_while_a_frame_is_pending_or_over_the_limit() -> None:
    frame = client_frame(Opcode.BINARY, b"abc")
    pending = ServerConnection()
    assert pending.receive_data(frame[:2]) == []
    assert pending.lone_binary(frame) is None
    fragmented = ServerConnection()
    assert fragmented.receive_data(client_frame(Opcode.BINARY, b"a", fin=False)) == []
    assert fragmented.lone_binary(frame) is None
    assert ServerConnection(max_message_size=2).lone_binary(frame) is None


@given(st.binary(max_size=140))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_lone_binary_agrees_with_receive_data(data: bytes) -> None:
    payload = ServerConnection(max_message_size=100).lone_binary(data)
    if payload is not None:
        events = ServerConnection(max_message_size=100).receive_data(data)
        assert events == [BinaryMessage(payload)]


@given(st.binary(max_size=125), st.binary(min_size=4, max_size=4))
def test_lone_binary_of_any_masked_frame(payload: bytes, mask: bytes) -> None:
    data = client_frame(Opcode.BINARY, payload, mask=mask)
    assert ServerConnection().lone_binary(data) == payload
