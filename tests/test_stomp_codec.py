"""STOMP codec: byte-exact frames per version, escaping, limits, splits, round trips, fuzzing."""

from __future__ import annotations

import copy
import pickle
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.subprotocols.stomp.codec import (
    FrameReader,
    encode,
    encode_headers,
    escape,
    unescape,
)
from broker.subprotocols.stomp.frames import (
    CLIENT_COMMANDS,
    SERVER_COMMANDS,
    UNESCAPED_COMMANDS,
    VERSIONS,
    Event,
    Frame,
    FrameError,
    Version,
)


def read(wire: bytes, version: Version = "1.2", **limits: int) -> list[Event]:
    return read_chunks([wire], version, **limits)


def read_chunks(chunks: list[bytes], version: Version = "1.2", **limits: int) -> list[Event]:
    reader = FrameReader(**limits)
    reader.version = version
    events: list[Event] = []
    for chunk in chunks:
        new = reader.receive_data(chunk)
        # As the session does: after a CONNECT, go on with what the reader held back.
        while new and isinstance(new[-1], Frame) and new[-1].command in ("CONNECT", "STOMP"):
            events += new
            new = reader.receive_data(b"")
        events += new
    return events


def check_stream(events: list[Event]) -> None:
    """Only frames and errors; at most one error, and only last."""
    for event in events:
        assert type(event) in (Frame, FrameError), event
    for event in events[:-1]:
        assert type(event) is Frame, events


def error_of(events: list[Event]) -> str:
    assert events, "expected a FrameError, got nothing"
    check_stream(events)
    last = events[-1]
    assert isinstance(last, FrameError), events
    return last.message


def failed(events: list[Event]) -> bool:
    return bool(events) and type(events[-1]) is FrameError


def same_verdict(whole: list[Event], chunked: list[Event]) -> None:
    """However it was split, a stream gives the same frames, and an error or not.

    The error's message may differ: a split can show a violation before all of it has arrived.
    """
    check_stream(whole)
    check_stream(chunked)
    assert [e for e in chunked if type(e) is Frame] == [e for e in whole if type(e) is Frame]
    assert failed(chunked) == failed(whole)


def read_every_way(wire: bytes, version: Version = "1.2", **limits: int) -> list[Event]:
    """The events of `wire` fed whole; the same fed byte by byte and split at every offset."""
    whole = read(wire, version, **limits)
    splits = [[wire[i : i + 1] for i in range(len(wire))]]
    splits += [[wire[:cut], wire[cut:]] for cut in range(1, len(wire))]
    for chunks in splits:
        chunked = read_chunks(chunks, version, **limits)
        if failed(whole):
            same_verdict(whole, chunked)
        else:
            assert chunked == whole, chunks
    return whole


# --- byte-exact frames -----------------------------------------------------------------------

DEST = ("destination", "/topic/a")

# (id, wire, events), read in 1.2 unless the id says otherwise.
CASES: list[tuple[str, bytes, list[Event]]] = [
    ("lf", b"SEND\ndestination:/topic/a\n\nhello\x00", [Frame("SEND", (DEST,), b"hello")]),
    (
        "crlf",
        b"SEND\r\ndestination:/topic/a\r\n\r\nhello\x00",
        [Frame("SEND", (DEST,), b"hello")],
    ),
    (
        "mixed eols",
        b"SEND\r\ndestination:/topic/a\nreceipt:1\r\n\nhi\x00",
        [Frame("SEND", (DEST, ("receipt", "1")), b"hi")],
    ),
    ("no headers", b"DISCONNECT\n\n\x00", [Frame("DISCONNECT")]),
    ("no headers crlf", b"DISCONNECT\r\n\r\n\x00", [Frame("DISCONNECT")]),
    (
        "repeated headers kept in order",
        b"MESSAGE\nfoo:World\nfoo:Hello\nbar:x\n\n\x00",
        [Frame("MESSAGE", (("foo", "World"), ("foo", "Hello"), ("bar", "x")))],
    ),
    (
        "content-length body holds NULs",
        b"SEND\ncontent-length:5\n\na\x00b\x00c\x00",
        [Frame("SEND", (("content-length", "5"),), b"a\x00b\x00c")],
    ),
    (
        "content-length zero",
        b"SEND\ncontent-length:0\n\n\x00",
        [Frame("SEND", (("content-length", "0"),))],
    ),
    (
        "content-length leading zeros",
        b"SEND\ncontent-length:003\n\n\x00\x00\x00\x00",
        [Frame("SEND", (("content-length", "003"),), b"\x00\x00\x00")],
    ),
    (
        "first content-length wins",
        b"SEND\ncontent-length:1\ncontent-length:x\n\n\x00\x00",
        [Frame("SEND", (("content-length", "1"), ("content-length", "x")), b"\x00")],
    ),
    (
        "body to the first NUL keeps its EOLs",
        b"SEND\n\n\n\nline\r\n\x00",
        [Frame("SEND", (), b"\n\nline\r\n")],
    ),
    (
        "eols between frames",
        b"\n\r\n\nSEND\n\na\x00\n\r\n\n\nSEND\n\nb\x00\r\n\n",
        [Frame("SEND", (), b"a"), Frame("SEND", (), b"b")],
    ),
    ("heart-beats only", b"\n\r\n\n\r\n", []),
    (
        "several frames in one chunk",
        b"BEGIN\ntransaction:t\n\n\x00SEND\ndestination:/topic/a\ntransaction:t\n\nx\x00"
        b"COMMIT\ntransaction:t\n\n\x00",
        [
            Frame("BEGIN", (("transaction", "t"),)),
            Frame("SEND", (DEST, ("transaction", "t")), b"x"),
            Frame("COMMIT", (("transaction", "t"),)),
        ],
    ),
    ("split at the first colon", b"SEND\na:b:c\n\n\x00", [Frame("SEND", (("a", "b:c"),))]),
    ("whitespace kept", b"SEND\n a : b \n\n\x00", [Frame("SEND", ((" a ", " b "),))]),
    ("empty value", b"SEND\na:\n\n\x00", [Frame("SEND", (("a", ""),))]),
    ("CR inside a value", b"SEND\na:b\rc\n\n\x00", [Frame("SEND", (("a", "b\rc"),))]),
    (
        "only the CR of a CRLF goes",
        b"SEND\na:b\r\r\n\r\n\x00",
        [Frame("SEND", (("a", "b\r"),))],
    ),
    (
        "utf-8 headers",
        "SEND\ndestination:/topic/café\nñ:☃\n\n\x00".encode(),
        [Frame("SEND", (("destination", "/topic/café"), ("ñ", "☃")))],
    ),
    ("unknown command is the session's business", b"FOO\n\n\x00", [Frame("FOO")]),
    (
        "32-letter command",
        b"A" * 32 + b"\n\n\x00",
        [Frame("A" * 32)],
    ),
    (
        "escapes",
        b"SEND\na\\cb:c\\nd\\re\\\\f\n\n\x00",
        [Frame("SEND", (("a:b", "c\nd\re\\f"),))],
    ),
    (
        "escaped colon in a value",
        b"SEND\nk:v\\cw\n\n\x00",
        [Frame("SEND", (("k", "v:w"),))],
    ),
    (
        "CONNECT never unescaped",
        b"CONNECT\naccept-version:1.2\nlogin:a\\nb\npasscode:x\\ty\\\n\n\x00",
        [
            Frame(
                "CONNECT",
                (("accept-version", "1.2"), ("login", "a\\nb"), ("passcode", "x\\ty\\")),
            )
        ],
    ),
    (
        "STOMP never unescaped",
        b"STOMP\nhost:a\\cb\n\n\x00",
        [Frame("STOMP", (("host", "a\\cb"),))],
    ),
    (
        "CONNECTED never unescaped",
        b"CONNECTED\nserver:x\\ty\n\n\x00",
        [Frame("CONNECTED", (("server", "x\\ty"),))],
    ),
]


@pytest.mark.parametrize(("wire", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exact(wire: bytes, events: list[Event]) -> None:
    assert read_every_way(wire) == events


def test_repeated_header_first_wins() -> None:
    (frame,) = read(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00")
    assert isinstance(frame, Frame)
    assert frame.header("foo") == "World"
    assert frame.header("bar") is None


def test_lone_cr_between_frames_waits_for_its_lf() -> None:
    reader = FrameReader()
    assert reader.receive_data(b"SEND\n\na\x00\r") == [Frame("SEND", (), b"a")]
    assert reader.receive_data(b"") == []
    assert reader.receive_data(b"\nSEND\n\nb\x00") == [Frame("SEND", (), b"b")]


@pytest.mark.parametrize("wire", [b"\rSEND\n\n\x00", b"\r\rSEND\n\n\x00", b"SEND\n\n\x00\rX"])
def test_cr_without_lf_between_frames_is_a_bad_command(wire: bytes) -> None:
    assert "invalid command" in error_of(read_every_way(wire))


def test_eol_flood_costs_only_a_scan() -> None:
    reader = FrameReader(max_frame_size=64)
    assert reader.receive_data(b"\r\n" * (1 << 20)) == []
    assert reader.receive_data(b"\n" * (1 << 20)) == []
    assert reader.receive_data(b"SEND\n\nx\x00") == [Frame("SEND", (), b"x")]


def test_large_frame_in_many_chunks() -> None:
    body = bytes(range(256)) * 4000
    wire = encode(Frame("SEND", (("content-length", str(len(body))),), body), "1.2")
    chunks = [wire[i : i + 1000] for i in range(0, len(wire), 1000)]
    assert read_chunks(chunks) == [Frame("SEND", (("content-length", str(len(body))),), body)]
    body_to_nul = body.replace(b"\x00", b"")
    wire = encode(Frame("SEND", (), body_to_nul), "1.2")
    chunks = [wire[i : i + 999] for i in range(0, len(wire), 999)]
    assert read_chunks(chunks) == [Frame("SEND", (), body_to_nul)]


def test_input_may_be_any_bytes_like() -> None:
    reader = FrameReader()
    events = reader.receive_data(bytearray(b"SEND\n\nab"))  # type: ignore[arg-type]
    events += reader.receive_data(memoryview(b"c\x00SEND\n\nd\x00"))  # type: ignore[arg-type]
    assert events == [Frame("SEND", (), b"abc"), Frame("SEND", (), b"d")]
    for event in events:
        assert type(event) is Frame
        assert type(event.body) is bytes


# --- escaping, per version ---------------------------------------------------------------------

# (version, wire form, decoded form): escape(decoded) == wire and unescape(wire) == decoded.
ESCAPES: list[tuple[Version, str, str]] = [
    ("1.2", "a\\nb", "a\nb"),
    ("1.2", "a\\rb", "a\rb"),
    ("1.2", "a\\cb", "a:b"),
    ("1.2", "a\\\\b", "a\\b"),
    ("1.2", "\\\\n", "\\n"),
    ("1.2", "\\r\\n\\c\\\\", "\r\n:\\"),
    ("1.2", "plain", "plain"),
    ("1.1", "a\\nb", "a\nb"),
    ("1.1", "a\\cb", "a:b"),
    ("1.1", "a\\\\b", "a\\b"),
    ("1.1", "a\rb", "a\rb"),  # 1.1 has no \r: a CR goes as it is
    ("1.1", "\\\\c", "\\c"),
    ("1.0", "a\\nb", "a\\nb"),
    ("1.0", "a:b", "a:b"),
    ("1.0", "a\\", "a\\"),
    ("1.0", "\\t", "\\t"),
]


@pytest.mark.parametrize(("version", "wire", "decoded"), ESCAPES)
def test_escaping_table(version: Version, wire: str, decoded: str) -> None:
    assert escape(decoded, version) == wire
    assert unescape(wire, version) == decoded
    frame = Frame("SEND", (("k", decoded),))
    assert read(encode(frame, version), version) == [frame]
    assert read(b"SEND\nk:" + wire.encode() + b"\n\n\x00", version) == [frame]


UNDEFINED: list[tuple[Version, str]] = [
    ("1.2", "a\\tb"),
    ("1.2", "a\\"),
    ("1.2", "\\x"),
    ("1.2", "\\C"),
    ("1.2", "\\ "),
    ("1.1", "a\\rb"),
    ("1.1", "a\\tb"),
    ("1.1", "a\\"),
]


@pytest.mark.parametrize(("version", "wire"), UNDEFINED)
def test_undefined_escape(version: Version, wire: str) -> None:
    with pytest.raises(ValueError, match=r"escape|backslash"):
        unescape(wire, version)
    message = error_of(read_every_way(b"SEND\nk:" + wire.encode() + b"\n\n\x00", version))
    assert "escape" in message or "backslash" in message
    assert version in message
    message = error_of(read(b"SEND\n" + wire.encode() + b":v\n\n\x00", version))
    assert "escape" in message or "backslash" in message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("command", sorted(UNESCAPED_COMMANDS))
def test_connect_frames_never_escaped(version: Version, command: str) -> None:
    wire = command.encode() + b"\nlogin:a\\nb\\t\\\npasscode:x:y\n\n\x00"
    frame = Frame(command, (("login", "a\\nb\\t\\"), ("passcode", "x:y")))
    assert read_every_way(wire, version) == [frame]
    assert encode(frame, version) == wire


def test_connect_body_follows_content_length() -> None:
    wire = b"CONNECT\ncontent-length:2\nk:a\\\n\n\x00\x00\x00"
    assert read(wire, "1.1") == [
        Frame("CONNECT", (("content-length", "2"), ("k", "a\\")), b"\x00\x00")
    ]


def test_version_is_settable_between_frames() -> None:
    reader = FrameReader()
    assert reader.version == "1.2"
    wire = b"SEND\nk:a\\nb\n\n\x00"
    assert reader.receive_data(wire) == [Frame("SEND", (("k", "a\nb"),))]
    reader.version = "1.0"
    assert reader.receive_data(wire) == [Frame("SEND", (("k", "a\\nb"),))]
    reader.version = "1.1"
    assert reader.receive_data(wire) == [Frame("SEND", (("k", "a\nb"),))]


# --- rejected input ----------------------------------------------------------------------------

REJECTED: list[tuple[str, bytes, str]] = [
    ("lowercase command", b"send\n\n\x00", "invalid command 'send'"),
    ("command with a space", b"SEND \n\n\x00", "invalid command 'SEND '"),
    ("http request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "invalid command 'GET / HTTP/1.1'"),
    ("33-letter command", b"A" * 33 + b"\n\n\x00", "invalid command"),
    ("command with a digit", b"SEND2\n\n\x00", "invalid command"),
    ("non-ascii command", "SÉND\n\n\x00".encode(), "invalid command"),
    ("nul as command", b"\x00", "NUL before the end of the headers"),
    ("header without colon", b"SEND\nabc\n\n\x00", "header line without a colon: 'abc'"),
    ("empty header name", b"SEND\n:v\n\n\x00", "empty header name"),
    ("invalid utf-8 value", b"SEND\na:\xff\n\n\x00", "not valid UTF-8"),
    ("invalid utf-8 name", b"SEND\n\xc3(:v\n\n\x00", "not valid UTF-8"),
    ("surrogate in utf-8", b"SEND\na:\xed\xa0\x80\n\n\x00", "not valid UTF-8"),
    ("nul in a header", b"SEND\na:b\x00c\n\n\x00", "NUL before the end of the headers"),
    ("frame without blank line", b"SEND\na:b\n\x00", "NUL before the end of the headers"),
    ("negative content-length", b"SEND\ncontent-length:-1\n\n\x00", "invalid content-length"),
    ("empty content-length", b"SEND\ncontent-length:\n\n\x00", "invalid content-length ''"),
    ("content-length with space", b"SEND\ncontent-length: 1\n\nx\x00", "invalid content-length"),
    ("content-length after", b"SEND\ncontent-length:1 \n\nx\x00", "invalid content-length"),
    ("content-length hex", b"SEND\ncontent-length:0x1\n\nx\x00", "invalid content-length"),
    ("content-length float", b"SEND\ncontent-length:1.0\n\nx\x00", "invalid content-length"),
    (
        "content-length unicode digit",
        "SEND\ncontent-length:\u0661\n\nx\x00".encode(),  # ARABIC-INDIC DIGIT ONE
        "invalid content-length",
    ),
    (
        "content-length huge",
        b"SEND\ncontent-length:" + b"9" * 5000 + b"\n\n\x00",
        "frame too large: content-length",
    ),
    (
        "missing NUL after content-length body",
        b"SEND\ncontent-length:1\n\nab\x00",
        "no NUL after the body of content-length 1",
    ),
]


@pytest.mark.parametrize(
    ("wire", "message"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejected(wire: bytes, message: str) -> None:
    assert message in error_of(read(wire))
    assert error_of(read_chunks([wire[i : i + 1] for i in range(len(wire))]))


def test_rejected_every_split() -> None:
    for _, wire, _ in REJECTED:
        if len(wire) < 200:
            error_of(read_every_way(wire))


def test_error_comes_last_after_good_frames() -> None:
    events = read(b"SEND\n\na\x00SEND\n\nb\x00send\n\n\x00SEND\n\nc\x00")
    assert events[:2] == [Frame("SEND", (), b"a"), Frame("SEND", (), b"b")]
    assert error_of(events) == "invalid command 'send'"


def test_reader_stays_failed() -> None:
    reader = FrameReader()
    assert error_of(reader.receive_data(b"SEND\nbad\n\n\x00"))
    assert reader.receive_data(b"SEND\n\nx\x00") == []
    assert reader.receive_data(b"") == []


def test_failed_mid_frame_stays_failed() -> None:
    reader = FrameReader()
    assert reader.receive_data(b"SEND\ncontent-length:3\n\nab") == []
    assert error_of(reader.receive_data(b"cd\x00"))
    assert reader.receive_data(b"\x00SEND\n\nx\x00") == []


def test_errors_are_one_line() -> None:
    for wire in (b"SE\nND\n\n\x00", b"SEND\na\r\nb\n\n\x00", b"SEND\nk:\\\n\n\x00"):
        message = error_of(read(wire))
        assert "\n" not in message
        assert "\r" not in message


# --- limits: at the limit passes, one over fails, as soon as the bytes prove it ---------------


def sized_frame(size: int, with_length: bool) -> bytes:
    """A SEND frame of exactly `size` bytes, command through NUL."""
    head = b"SEND\ncontent-length:0000000\n\n" if with_length else b"SEND\n\n"
    body_length = size - len(head) - 1
    if with_length:
        head = b"SEND\ncontent-length:%07d\n\n" % body_length
    wire = head + b"x" * body_length + b"\x00"
    assert len(wire) == size
    return wire


@pytest.mark.parametrize("with_length", [True, False])
def test_max_frame_size(with_length: bool) -> None:
    wire = sized_frame(300, with_length)
    (frame,) = read(wire, max_frame_size=300)
    assert isinstance(frame, Frame)
    assert len(frame.body) == 300 - wire.index(b"\n\n") - 3
    assert read_chunks([wire[:150], wire[150:]], max_frame_size=300) == [frame]
    for events in (
        read(wire, max_frame_size=299),
        read_chunks([wire[:150], wire[150:]], max_frame_size=299),
    ):
        message = error_of(events)
        assert message.startswith("frame too large")
        assert message.endswith("(limit 299 bytes)")


def test_frame_too_large_from_content_length_alone() -> None:
    reader = FrameReader(max_frame_size=100)
    events = reader.receive_data(b"SEND\ncontent-length:1000\n\n")
    assert error_of(events) == "frame too large: content-length 1000 (limit 100 bytes)"


def test_frame_too_large_before_its_nul() -> None:
    reader = FrameReader(max_frame_size=100)
    assert reader.receive_data(b"SEND\n\n") == []
    for _ in range(93):
        assert reader.receive_data(b"x") == []  # 99 bytes: the NUL would make 100
    assert reader.receive_data(b"x") == [FrameError("frame too large (limit 100 bytes)")]


def test_frame_too_large_before_its_blank_line() -> None:
    reader = FrameReader(max_frame_size=1000, max_headers=1000)
    events: list[Event] = []
    fed = 0
    while not events:
        events = reader.receive_data(b"SEND\n" if not fed else b"a:b\n")
        fed += 5 if fed == 0 else 4
        assert fed < 1010
    assert fed >= 1000
    assert error_of(events) == "frame too large (limit 1000 bytes)"


def test_never_holds_more_than_the_limit() -> None:
    reader = FrameReader(max_frame_size=10_000)
    fed = 0
    chunk = b"SEND\n\n" + b"y" * 994
    events = reader.receive_data(chunk)
    while not events:
        fed += len(chunk)
        assert fed <= 10_000
        chunk = b"y" * 1000
        events = reader.receive_data(chunk)
    assert error_of(events) == "frame too large (limit 10000 bytes)"


def test_max_headers() -> None:
    wire = b"SEND\n" + b"".join(b"h%d:v\n" % i for i in range(5)) + b"\n\x00"
    assert len(read_every_way(wire, max_headers=5)[0].headers) == 5  # type: ignore[union-attr]
    assert error_of(read_every_way(wire, max_headers=4)) == "too many headers (limit 4)"
    assert error_of(read(b"SEND\na:b\n\n\x00", max_headers=0)) == "too many headers (limit 0)"
    assert read(b"SEND\n\n\x00", max_headers=0) == [Frame("SEND")]


def test_too_many_headers_before_the_blank_line() -> None:
    reader = FrameReader(max_headers=10)
    assert reader.receive_data(b"SEND\n" + b"a:b\n" * 10) == []
    assert error_of(reader.receive_data(b"a:b\n")) == "too many headers (limit 10)"


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_max_header_length(eol: bytes) -> None:
    line = b"k:" + b"v" * 18  # 20 bytes, escaped form
    wire = b"SEND" + eol + line + eol + eol + b"\x00"
    assert read_every_way(wire, max_header_length=20) == [Frame("SEND", (("k", "v" * 18),))]
    assert error_of(read_every_way(wire, max_header_length=19)) == (
        "header line too long (limit 19 bytes)"
    )


def test_header_length_counts_bytes_of_the_escaped_form() -> None:
    wire = "SEND\nk:é\\n\n\n\x00".encode()  # "k:é\n" is 4 characters, 6 bytes on the wire
    assert read(wire, max_header_length=6) == [Frame("SEND", (("k", "é\n"),))]
    assert error_of(read(wire, max_header_length=5)) == "header line too long (limit 5 bytes)"
    big = b"SEND\n" + b"a:b\n" * 10 + "k:é\\n\n\n\x00".encode()  # a head longer than the limit
    assert len(read(big, max_header_length=6)) == 1
    assert error_of(read(big, max_header_length=5))


def test_header_line_too_long_before_its_eol() -> None:
    reader = FrameReader(max_header_length=100)
    assert reader.receive_data(b"SEND\nk:" + b"v" * 98) == []
    assert reader.receive_data(b"\r") == []  # a CR may be the first half of a CRLF
    assert reader.receive_data(b"\nk:" + b"v" * 98) == []
    assert error_of(reader.receive_data(b"v")) == "header line too long (limit 100 bytes)"


def test_command_too_long_before_its_eol() -> None:
    reader = FrameReader()
    assert reader.receive_data(b"A" * 32) == []
    assert reader.receive_data(b"\r") == []
    assert error_of(reader.receive_data(b"A"))
    reader = FrameReader()
    assert reader.receive_data(b"A" * 32) == []
    assert "invalid command" in error_of(reader.receive_data(b"A"))


def test_bad_command_before_its_eol() -> None:
    reader = FrameReader()
    assert "invalid command 'GET /'" in error_of(reader.receive_data(b"GET /"))


def test_reader_limits_must_be_sane() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameReader(max_frame_size=0)
    with pytest.raises(ValueError, match="positive"):
        FrameReader(max_header_length=0)
    with pytest.raises(ValueError, match="positive"):
        FrameReader(max_headers=-1)


# --- encoding ----------------------------------------------------------------------------------

ENCODED: list[tuple[Frame, Version, bytes]] = [
    (Frame("SEND", (DEST,), b"hi"), "1.2", b"SEND\ndestination:/topic/a\n\nhi\x00"),
    (Frame("DISCONNECT"), "1.0", b"DISCONNECT\n\n\x00"),
    (
        Frame("MESSAGE", (("a:b", "c\nd\re\\"), ("a:b", "2"))),
        "1.2",
        b"MESSAGE\na\\cb:c\\nd\\re\\\\\na\\cb:2\n\n\x00",
    ),
    (Frame("MESSAGE", (("a:b", "c\nd\re\\"),)), "1.1", b"MESSAGE\na\\cb:c\\nd\re\\\\\n\n\x00"),
    (Frame("MESSAGE", (("ab", "c:d\\n"),)), "1.0", b"MESSAGE\nab:c:d\\n\n\n\x00"),
    (
        Frame("CONNECTED", (("version", "1.2"), ("server", "a:b\\c"))),
        "1.2",
        b"CONNECTED\nversion:1.2\nserver:a:b\\c\n\n\x00",
    ),
    (
        Frame("SEND", (("content-length", "3"),), b"\x00\x01\x00"),
        "1.2",
        b"SEND\ncontent-length:3\n\n\x00\x01\x00\x00",
    ),
    (
        Frame("ERROR", (("message", "é"),), "ü".encode()),
        "1.2",
        "ERROR\nmessage:é\n\nü\x00".encode(),
    ),
]


@pytest.mark.parametrize(("frame", "version", "wire"), ENCODED)
def test_encode_exact(frame: Frame, version: Version, wire: bytes) -> None:
    assert encode(frame, version) == wire
    assert read(wire, version) == [frame]


def test_encode_headers() -> None:
    headers = [("subscription", "1"), ("a:b", "x\ny")]
    assert encode_headers(headers, "1.2") == b"subscription:1\na\\cb:x\\ny\n"
    assert encode_headers((), "1.0") == b""
    assert encode_headers([("a", "b:c")], "1.0") == b"a:b:c\n"


UNREPRESENTABLE: list[tuple[Frame, Version, str]] = [
    (Frame("SEND", (("k", "a\nb"),)), "1.0", "newline"),
    (Frame("SEND", (("a\nb", "v"),)), "1.0", "newline"),
    (Frame("SEND", (("a:b", "v"),)), "1.0", "colon"),
    (Frame("CONNECT", (("login", "a\nb"),)), "1.2", "newline"),
    (Frame("CONNECTED", (("a:b", "v"),)), "1.1", "colon"),
    (Frame("SEND", (("k", "v\r"),)), "1.0", "CR"),
    (Frame("SEND", (("k", "v\r"),)), "1.1", "CR"),
    (Frame("STOMP", (("k", "v\r"),)), "1.2", "CR"),
    (Frame("SEND", (("", "v"),)), "1.2", "empty header name"),
    (Frame("SEND", (("k", "a\x00"),)), "1.2", "NUL"),
    (Frame("SEND", (("k\x00", "a"),)), "1.1", "NUL"),
    (Frame("SEND", (), b"a\x00b"), "1.2", "no content-length"),
    (Frame("SEND", (("content-length", "2"),), b"abc"), "1.2", "content-length '2'"),
    (Frame("SEND", (("content-length", "x"),), b"abc"), "1.2", "content-length 'x'"),
    (Frame("SEND", (("content-length", "9" * 5000),), b"abc"), "1.2", "content-length '999"),
]


@pytest.mark.parametrize(("frame", "version", "why"), UNREPRESENTABLE)
def test_encode_rejects_what_cannot_be_read_back(frame: Frame, version: Version, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        encode(frame, version)


def test_encode_headers_rejects_what_the_version_cannot_carry() -> None:
    with pytest.raises(ValueError, match="newline"):
        encode_headers([("k", "a\nb")], "1.0")
    with pytest.raises(ValueError, match="CR"):
        encode_headers([("k", "a\r")], "1.1")
    assert encode_headers([("k", "a\r")], "1.2") == b"k:a\\r\n"


# --- the event classes -------------------------------------------------------------------------


def test_frame_values() -> None:
    frame = Frame("SEND", [("a", "b")], bytearray(b"x"))  # type: ignore[arg-type]
    assert frame.headers == (("a", "b"),)
    assert type(frame.body) is bytes
    assert frame == Frame("SEND", (("a", "b"),), b"x")
    assert frame != Frame("SEND", (("a", "b"),), b"y")
    assert frame != FrameError("x")
    assert hash(frame) == hash(Frame("SEND", (("a", "b"),), b"x"))
    assert repr(frame) == "Frame('SEND', (('a', 'b'),), b'x')"
    assert copy.copy(frame) == frame
    assert pickle.loads(pickle.dumps(frame)) == frame
    with pytest.raises(AttributeError, match="immutable"):
        frame.body = b"y"
    with pytest.raises(AttributeError, match="immutable"):
        del frame.command
    assert Frame("ACK").headers == ()
    assert Frame("ACK").body == b""


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("send",), ValueError),
        (("",), ValueError),
        (("A" * 33,), ValueError),
        ((b"SEND",), ValueError),
        (("SEND", [("a",)]), TypeError),
        (("SEND", [("a", 1)]), TypeError),
        (("SEND", [["a", "b"]]), TypeError),
        (("SEND", (), "text"), TypeError),
    ],
)
def test_frame_checks_its_values(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        Frame(*args)


def test_frame_error_values() -> None:
    error = FrameError("bad")
    assert error == FrameError("bad")
    assert error != FrameError("worse")
    assert hash(error) == hash(FrameError("bad"))
    assert repr(error) == "FrameError('bad')"
    assert pickle.loads(pickle.dumps(error)) == error
    with pytest.raises(AttributeError, match="immutable"):
        error.message = "x"


# --- hypothesis: round trips -------------------------------------------------------------------

COMMANDS = sorted(CLIENT_COMMANDS | SERVER_COMMANDS)
CHAR = st.one_of(
    st.sampled_from(":\n\r\\ a"), st.characters(codec="utf-8", exclude_characters="\x00")
)
TEXT = st.text(CHAR, max_size=12)


def representable(name: str, value: str, version: Version, command: str) -> bool:
    if not name or name == "content-length":
        return False
    if version == "1.0" or command in UNESCAPED_COMMANDS:
        return ":" not in name and "\n" not in name + value and not value.endswith("\r")
    return version == "1.2" or not value.endswith("\r")


@st.composite
def frames(draw: st.DrawFn, version: Version) -> Frame:
    command = draw(st.sampled_from(COMMANDS))
    pairs = draw(st.lists(st.tuples(TEXT, TEXT), max_size=5))
    headers = [(n, v) for n, v in pairs if representable(n, v, version, command)]
    body = draw(st.binary(max_size=40))
    if b"\x00" in body or draw(st.booleans()):
        length = str(len(body)).zfill(draw(st.integers(0, 3)))
        headers.insert(draw(st.integers(0, len(headers))), ("content-length", length))
    return Frame(command, headers, body)


ROUND = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND
@given(st.data())
def test_roundtrip(data: st.DataObject) -> None:
    version: Version = data.draw(st.sampled_from(VERSIONS))
    frame = data.draw(frames(version))
    wire = encode(frame, version)
    assert read(wire, version) == [frame]
    # The same frame with CRLF line ends reads the same: no value ends in a CR.
    cut = wire.index(b"\n\n") + 2
    assert read(wire[:cut].replace(b"\n", b"\r\n") + wire[cut:], version) == [frame]


@ROUND
@given(st.data())
def test_roundtrip_any_chunking(data: st.DataObject) -> None:
    version: Version = data.draw(st.sampled_from(VERSIONS))
    sent = data.draw(st.lists(frames(version), max_size=5))
    stream = b"".join(
        data.draw(st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"])) + encode(frame, version)
        for frame in sent
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert read_chunks(chunks, version) == sent


@ROUND
@given(st.text(CHAR, max_size=30), st.sampled_from(VERSIONS))
def test_escape_roundtrip(text: str, version: Version) -> None:
    assert unescape(escape(text, version), version) == text


# --- fuzzing: never raise; frames, then at most one error --------------------------------------


def fuzz_limits() -> list[dict[str, int]]:
    return [{}, {"max_frame_size": 40, "max_headers": 2, "max_header_length": 12}]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6), st.sampled_from(VERSIONS))
def test_fuzz_random_bytes(chunks: list[bytes], version: Version) -> None:
    for limits in fuzz_limits():
        same_verdict(
            read(b"".join(chunks), version, **limits), read_chunks(chunks, version, **limits)
        )


SPECIAL = b"\x00\n\r:\\ \xff\xc3A"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    version: Version = data.draw(st.sampled_from(VERSIONS))
    sent = data.draw(st.lists(frames(version), min_size=1, max_size=3))
    wire = bytearray(b"\n".join(encode(frame, version) for frame in sent))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire)))
        kind = data.draw(st.integers(0, 2))
        byte = data.draw(st.sampled_from(SPECIAL) | st.integers(0, 255))
        if kind == 0 and at < len(wire):
            wire[at] = byte
        elif kind == 1:
            wire.insert(at, byte)
        elif at < len(wire):
            del wire[at]
    stream = bytes(wire)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for limits in fuzz_limits():
        same_verdict(read(stream, version, **limits), read_chunks(chunks, version, **limits))


def test_fuzz_seeded_mutations_of_every_case() -> None:
    rng = random.Random(1234)
    wires = [wire for _, wire, _ in CASES] + [wire for _, wire, _ in REJECTED]
    for wire in wires:
        for _ in range(50):
            mutated = bytearray(wire)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(mutated) + 1)
                byte = rng.choice(SPECIAL)
                if at < len(mutated) and rng.random() < 0.5:
                    mutated[at] = byte
                else:
                    mutated.insert(at, byte)
            stream = bytes(mutated)
            for version in VERSIONS:
                whole = read(stream, version)
                bytewise = read_chunks([stream[i : i + 1] for i in range(len(stream))], version)
                same_verdict(whole, bytewise)


def test_reading_stops_after_connect_until_the_version_is_set() -> None:
    reader = FrameReader()
    connect = b"CONNECT\naccept-version:1.0\n\n\x00"
    send = b"SEND\ndestination:/topic/a\nx:back\\slash\n\n\x00"
    assert reader.receive_data(connect + send) == [Frame("CONNECT", (("accept-version", "1.0"),))]
    reader.version = "1.0"
    frames = reader.receive_data(b"")
    assert frames == [Frame("SEND", (("destination", "/topic/a"), ("x", "back\\slash")))]


def test_reading_stops_after_a_connect_that_spanned_reads() -> None:
    reader = FrameReader()
    assert reader.receive_data(b"STOMP\naccept-version:1.1\n") == []
    assert reader.receive_data(b"\n\x00SEND\ndestination:/q\n\n\x00") == [
        Frame("STOMP", (("accept-version", "1.1"),))
    ]
    reader.version = "1.1"
    assert reader.receive_data(b"") == [Frame("SEND", (("destination", "/q"),))]
