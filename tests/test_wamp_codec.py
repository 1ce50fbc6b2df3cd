"""WAMP codec: byte-exact messages in JSON and MessagePack, the binary convention, batching,
every validation rule, hypothesis round trips across serializers, fuzzing."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import struct
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.subprotocols.wamp import codec as codec_module
from broker.subprotocols.wamp.codec import SUBPROTOCOLS, WampCodec, parse
from broker.subprotocols.wamp.messages import (
    CALL,
    ERROR,
    INVOCATION,
    MAX_ID,
    MESSAGE_CLASSES,
    MESSAGE_NAMES,
    PUBLISH,
    SUBSCRIBE,
    YIELD,
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    Message,
    ProtocolError,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)
from broker.subprotocols.wamp.serializers import DecodeError, encode_json, encode_msgpack

Decoded = list[Message | ProtocolError]

JSON = WampCodec("json")
MSGPACK = WampCodec("msgpack")
CODECS = [WampCodec.for_subprotocol(token) for token in SUBPROTOCOLS]
CODEC_IDS = list(SUBPROTOCOLS)


def decode_json(text: str | bytes, max_depth: int = 32, max_items: int = 100_000) -> Decoded:
    data = text.encode() if isinstance(text, str) else text
    return WampCodec("json", max_depth=max_depth, max_items=max_items).decode(data, True)


def decode_msgpack(data: bytes, max_depth: int = 32, max_items: int = 100_000) -> Decoded:
    return WampCodec("msgpack", max_depth=max_depth, max_items=max_items).decode(data, False)


def error_of(decoded: Decoded) -> str:
    check_result(decoded)
    assert decoded, "expected a ProtocolError, got nothing"
    last = decoded[-1]
    assert isinstance(last, ProtocolError), decoded
    return last.message


def check_result(decoded: Decoded) -> None:
    """Messages and errors only; at most one error, and only last."""
    assert type(decoded) is list
    for item in decoded:
        assert isinstance(item, ProtocolError) or type(item) in MESSAGE_CLASSES.values(), item
    for item in decoded[:-1]:
        assert not isinstance(item, ProtocolError), decoded


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (True is not 1, 1 is not 1.0, b"a" is not "a")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) in MESSAGE_CLASSES.values():
        return same(a.to_list(), b.to_list())
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def normalized(message: Message) -> Message:
    """`message` as the decoder gives it back: empty optional trailing fields are None."""
    fields = {field.name: getattr(message, field.name) for field in dataclasses.fields(message)}
    for name in ("args", "kwargs"):
        if name in fields and not fields[name]:
            fields[name] = None
    if isinstance(message, Unsubscribed | Unregistered) and not message.details:
        fields["details"] = None
    return type(message)(**fields)


# --- byte-exact messages ---------------------------------------------------------------------

KW = {"firstname": "John", "surname": "Doe"}

# (message, its compact JSON); most are the spec's own examples.
EXAMPLES: list[tuple[Message, str]] = [
    (
        Hello("somerealm", {"roles": {"publisher": {}, "subscriber": {}}}),
        '[1,"somerealm",{"roles":{"publisher":{},"subscriber":{}}}]',
    ),
    (Welcome(9129137332, {"roles": {"broker": {}}}), '[2,9129137332,{"roles":{"broker":{}}}]'),
    (
        Abort({"message": "The realm does not exist."}, "wamp.error.no_such_realm"),
        '[3,{"message":"The realm does not exist."},"wamp.error.no_such_realm"]',
    ),
    (
        Challenge("wampcra", {"challenge": "{}"}),
        '[4,"wampcra",{"challenge":"{}"}]',
    ),
    (
        Authenticate("gir1mSx+deCDUV7wRM5SGIn/+R/ClqLZuH4m7FJeBVI=", {}),
        '[5,"gir1mSx+deCDUV7wRM5SGIn/+R/ClqLZuH4m7FJeBVI=",{}]',
    ),
    (
        Goodbye({"message": "The host is shutting down now."}, "wamp.close.system_shutdown"),
        '[6,{"message":"The host is shutting down now."},"wamp.close.system_shutdown"]',
    ),
    (
        Error(SUBSCRIBE, 713845233, {}, "wamp.error.not_authorized"),
        '[8,32,713845233,{},"wamp.error.not_authorized"]',
    ),
    (
        Error(
            INVOCATION,
            6131533,
            {},
            "com.myapp.error.object_write_protected",
            ["Object is write protected."],
            {"severity": 3},
        ),
        '[8,68,6131533,{},"com.myapp.error.object_write_protected",'
        '["Object is write protected."],{"severity":3}]',
    ),
    (Publish(239714735, {}, "com.myapp.mytopic1"), '[16,239714735,{},"com.myapp.mytopic1"]'),
    (
        Publish(239714735, {}, "com.myapp.mytopic1", ["Hello, world!"]),
        '[16,239714735,{},"com.myapp.mytopic1",["Hello, world!"]]',
    ),
    (
        Publish(
            239714735, {}, "com.myapp.mytopic1", None, {"color": "orange", "sizes": [23, 42, 7]}
        ),
        '[16,239714735,{},"com.myapp.mytopic1",[],{"color":"orange","sizes":[23,42,7]}]',
    ),
    (Published(239714735, 4429313566), "[17,239714735,4429313566]"),
    (Subscribe(713845233, {}, "com.myapp.mytopic1"), '[32,713845233,{},"com.myapp.mytopic1"]'),
    (Subscribed(713845233, 5512315355), "[33,713845233,5512315355]"),
    (Unsubscribe(85346237, 5512315355), "[34,85346237,5512315355]"),
    (Unsubscribed(85346237), "[35,85346237]"),
    (
        Unsubscribed(0, {"subscription": 5512315355, "reason": "wamp.authentication.lost"}),
        '[35,0,{"subscription":5512315355,"reason":"wamp.authentication.lost"}]',
    ),
    (Event(5512315355, 4429313566, {}), "[36,5512315355,4429313566,{}]"),
    (
        Event(5512315355, 4429313566, {}, ["Hello, world!"]),
        '[36,5512315355,4429313566,{},["Hello, world!"]]',
    ),
    (
        Event(5512315355, 4429313566, {}, None, {"color": "orange", "sizes": [23, 42, 7]}),
        '[36,5512315355,4429313566,{},[],{"color":"orange","sizes":[23,42,7]}]',
    ),
    (Call(7814135, {}, "com.myapp.ping"), '[48,7814135,{},"com.myapp.ping"]'),
    (Call(7814135, {}, "com.myapp.add2", [23, 7]), '[48,7814135,{},"com.myapp.add2",[23,7]]'),
    (
        Call(7814135, {}, "com.myapp.user.new", ["johnny"], KW),
        '[48,7814135,{},"com.myapp.user.new",["johnny"],{"firstname":"John","surname":"Doe"}]',
    ),
    (Cancel(7814135, {"mode": "kill"}), '[49,7814135,{"mode":"kill"}]'),
    (Result(7814135, {}), "[50,7814135,{}]"),
    (Result(7814135, {}, [30]), "[50,7814135,{},[30]]"),
    (
        Result(7814135, {}, None, {"userid": 123, "karma": 10}),
        '[50,7814135,{},[],{"userid":123,"karma":10}]',
    ),
    (
        Register(25349185, {}, "com.myapp.myprocedure1"),
        '[64,25349185,{},"com.myapp.myprocedure1"]',
    ),
    (Registered(25349185, 2103333224), "[65,25349185,2103333224]"),
    (Unregister(788923562, 2103333224), "[66,788923562,2103333224]"),
    (Unregistered(788923562), "[67,788923562]"),
    (
        Unregistered(0, {"registration": 2103333224, "reason": "wamp.authentication.lost"}),
        '[67,0,{"registration":2103333224,"reason":"wamp.authentication.lost"}]',
    ),
    (Invocation(6131533, 9823526, {}), "[68,6131533,9823526,{}]"),
    (
        Invocation(6131533, 9823529, {}, ["johnny"], KW),
        '[68,6131533,9823529,{},["johnny"],{"firstname":"John","surname":"Doe"}]',
    ),
    (Interrupt(6131533, {"mode": "kill"}), '[69,6131533,{"mode":"kill"}]'),
    (Yield(6131533, {}), "[70,6131533,{}]"),
    (Yield(6131533, {}, ["Hello, world!"]), '[70,6131533,{},["Hello, world!"]]'),
    (
        Yield(6131533, {}, None, {"userid": 123, "karma": 10}),
        '[70,6131533,{},[],{"userid":123,"karma":10}]',
    ),
]


def test_examples_cover_every_type() -> None:
    assert {type(m) for m, _ in EXAMPLES} == set(MESSAGE_CLASSES.values())
    assert MESSAGE_CLASSES.keys() == MESSAGE_NAMES.keys()
    for code, cls in MESSAGE_CLASSES.items():
        assert code == cls.TYPE


@pytest.mark.parametrize(("message", "text"), EXAMPLES, ids=lambda x: str(x)[:40])
def test_json_byte_exact(message: Message, text: str) -> None:
    assert JSON.encode(message) == text.encode()
    assert decode_json(text) == [message]
    # The spec prints its examples with spaces; they read the same.
    spaced = json.dumps(json.loads(text))
    assert spaced != text
    assert decode_json(spaced) == [message]


@pytest.mark.parametrize(("message", "text"), EXAMPLES, ids=lambda x: str(x)[:40])
def test_msgpack_matches_json(message: Message, text: str) -> None:
    data = MSGPACK.encode(message)
    assert msgpack.unpackb(data, raw=False) == json.loads(text)
    assert decode_msgpack(data) == [message]


def _u32(n: int) -> bytes:
    return b"\xce" + struct.pack(">I", n)


def _u64(n: int) -> bytes:
    return b"\xcf" + struct.pack(">Q", n)


MSGPACK_EXAMPLES: list[tuple[Message, bytes]] = [
    (
        Subscribe(713845233, {}, "com.myapp.mytopic1"),
        b"\x94\x20" + _u32(713845233) + b"\x80\xb2com.myapp.mytopic1",
    ),
    (Published(239714735, 4429313566), b"\x93\x11" + _u32(239714735) + _u64(4429313566)),
    (Unsubscribed(85346237), b"\x92\x23" + _u32(85346237)),
    (
        Event(5512315355, 4429313566, {}, ["Hello, world!"]),
        b"\x95\x24" + _u64(5512315355) + _u64(4429313566) + b"\x80\x91\xadHello, world!",
    ),
    (
        Call(7814135, {}, "com.myapp.user.new", ["johnny"], KW),
        b"\x96\x30"
        + _u32(7814135)
        + b"\x80\xb2com.myapp.user.new\x91\xa6johnny"
        + b"\x82\xa9firstname\xa4John\xa7surname\xa3Doe",
    ),
    (Yield(1, {}, [b"\x01\x02", "\x01\x02"]), b"\x94\x46\x01\x80\x92\xc4\x02\x01\x02\xa2\x01\x02"),
]


@pytest.mark.parametrize(("message", "data"), MSGPACK_EXAMPLES, ids=lambda x: str(x)[:40])
def test_msgpack_byte_exact(message: Message, data: bytes) -> None:
    assert MSGPACK.encode(message) == data
    assert decode_msgpack(data) == [message]


def test_codec_frame_kinds() -> None:
    assert WampCodec("json").text is True
    assert WampCodec("msgpack").text is False
    assert WampCodec("json", batched=True).text is True
    assert SUBPROTOCOLS["wamp.2.msgpack.batched"] == ("msgpack", True)
    with pytest.raises(ValueError, match="serializer"):
        WampCodec("cbor")  # type: ignore[arg-type]


# --- trailing args and kwargs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (Event(1, 2, {}, [], {}), "[36,1,2,{}]"),
        (Event(1, 2, {}, None, None), "[36,1,2,{}]"),
        (Event(1, 2, {}, [1], {}), "[36,1,2,{},[1]]"),
        (Event(1, 2, {}, [1], None), "[36,1,2,{},[1]]"),
        (Event(1, 2, {}, None, {"a": 1}), '[36,1,2,{},[],{"a":1}]'),
        (Event(1, 2, {}, [], {"a": 1}), '[36,1,2,{},[],{"a":1}]'),
        (Event(1, 2, {}, [1], {"a": 1}), '[36,1,2,{},[1],{"a":1}]'),
        (Publish(1, {}, "t", [], {}), '[16,1,{},"t"]'),
        (Error(CALL, 1, {}, "e", [], {}), '[8,48,1,{},"e"]'),
        (Error(CALL, 1, {}, "e", None, {"k": None}), '[8,48,1,{},"e",[],{"k":null}]'),
        (Result(1, {}, [None]), "[50,1,{},[null]]"),
        (Yield(1, {}, [], {}), "[70,1,{}]"),
        (Unsubscribed(1, {}), "[35,1]"),
        (Unregistered(1, None), "[67,1]"),
    ],
)
def test_trailing_fields_omitted(message: Message, text: str) -> None:
    assert JSON.encode(message) == text.encode()
    assert decode_json(text) == [normalized(message)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[16,1,{},"t",[]]', Publish(1, {}, "t")),
        ('[16,1,{},"t",[],{}]', Publish(1, {}, "t")),
        ('[16,1,{},"t",[1],{}]', Publish(1, {}, "t", [1])),
        ("[36,1,2,{},[],{}]", Event(1, 2, {})),
        ("[35,0,{}]", Unsubscribed(0)),
        ("[70,1,{},[],{}]", Yield(1, {})),
    ],
)
def test_empty_trailing_fields_decode_to_none(text: str, message: Message) -> None:
    assert decode_json(text) == [message]
    assert decode_msgpack(msgpack.packb(json.loads(text))) == [message]


def test_encode_raw() -> None:
    items = Event(1, 2, {}, ["x"]).to_list()
    assert JSON.encode_raw(items) == b'[36,1,2,{},["x"]]'
    assert MSGPACK.encode_raw(items) == MSGPACK.encode(Event(1, 2, {}, ["x"]))
    assert WampCodec("json", batched=True).encode_raw(items) == b'[36,1,2,{},["x"]]\x1e'


def test_message_classes() -> None:
    assert Publish(1, {}, "t") == Publish(1, {}, "t", None, None)
    assert Publish(1, {}, "t") != Call(1, {}, "t")  # type: ignore[comparison-overlap]
    assert Event(1, 2, {}, [b"a"]) != Event(1, 2, {}, ["a"])
    assert repr(Subscribe(1, {}, "t")) == "Subscribe(request=1, options={}, topic='t')"
    assert ProtocolError("x") == ProtocolError("x")
    assert ProtocolError("x") != ProtocolError("y")
    assert repr(ProtocolError("x")) == "ProtocolError(message='x')"
    assert not hasattr(Publish(1, {}, "t"), "__dict__")
    with pytest.raises(AttributeError):
        ProtocolError("x").message = "y"  # type: ignore[misc]


# --- binary ----------------------------------------------------------------------------------

SPEC_BYTES = bytes.fromhex("10e3ff9053075c526f5fc06d4fe37cdb")
SPEC_JSON = '"\\u0000EOP/kFMHXFJvX8BtT+N82w=="'


def test_json_binary_spec_example() -> None:
    event = Event(1, 2, {}, [SPEC_BYTES])
    assert JSON.encode(event) == f"[36,1,2,{{}},[{SPEC_JSON}]]".encode()
    assert decode_json(f"[36,1,2,{{}},[{SPEC_JSON}]]") == [event]


def test_json_binary_nested_everywhere() -> None:
    blob = bytes(range(256))
    message = Publish(
        1,
        {"blob": b"", "nested": [{"deep": [blob]}]},
        "t",
        [b"\x00", [b"\xff"], "text", "mid\x00dle"],
        {"k": {"b": blob, "s": "x"}, "\x00key": b"v"},
    )
    data = JSON.encode(message)
    assert b'"\\u0000"' in data  # empty bytes
    assert b'"\\u0000key"' in data  # keys stay strings
    assert decode_json(data) == [message]
    assert same(decode_json(data)[0], message)


def test_json_string_with_nul_inside_stays_string() -> None:
    [event] = decode_json('[36,1,2,{},["a\\u0000b"]]')
    assert isinstance(event, Event)
    assert event.args == ["a\x00b"]


@pytest.mark.parametrize(
    "payload",
    ['"\\u0000AAA"', '"\\u0000A==="', '"\\u0000AA AA"', '"\\u0000é"', '"\\u0000AA\\nAA"'],
)
def test_json_binary_invalid_base64(payload: str) -> None:
    assert "base64" in error_of(decode_json(f"[36,1,2,{{}},[{payload}]]"))


def test_json_binary_in_a_uri_is_not_a_uri() -> None:
    message = error_of(decode_json('[32,1,{},"\\u0000AAAA"]'))
    assert message == "SUBSCRIBE: topic must be a URI string, not binary"


def test_msgpack_bin_and_str() -> None:
    data = MSGPACK.encode(Event(1, 2, {}, [b"ab", "ab"], {"b": b"", "s": ""}))
    assert b"\xc4\x02ab\xa2ab" in data
    assert b"\xa1b\xc4\x00\xa1s\xa0" in data
    [event] = decode_msgpack(data)
    assert isinstance(event, Event)
    assert same(event.args, [b"ab", "ab"])
    assert same(event.kwargs, {"b": b"", "s": ""})


def test_cross_serializer_bytes() -> None:
    event = Event(1, 2, {"x": b"\x00"}, [SPEC_BYTES, "\x01", {"a": [b"z"]}])
    from_json = decode_json(JSON.encode(event))
    from_msgpack = decode_msgpack(MSGPACK.encode(event))
    assert same(from_json, from_msgpack)
    assert same(from_json, [event])


def test_encode_rejects_what_cannot_round_trip() -> None:
    for codec in (JSON, MSGPACK):
        with pytest.raises(ValueError, match=r"cannot be serialized|can not serialize"):
            codec.encode(Event(1, 2, {}, [{1, 2}]))
    with pytest.raises(ValueError, match="NUL"):
        JSON.encode(Event(1, 2, {}, ["\x00abc"]))
    with pytest.raises(ValueError, match="NUL"):
        JSON.encode(Event(1, 2, {"a": ["\x00"]}, [b"fine"]))
    with pytest.raises(ValueError, match="Out of range float"):
        JSON.encode(Event(1, 2, {}, [math.nan]))
    with pytest.raises(ValueError, match="out of range"):
        MSGPACK.encode(Event(1, 2, {}, [1 << 64]))
    # A key starting with NUL is no binary: it stays a key.
    assert JSON.encode(Event(1, 2, {"\x00": 1})) == b'[36,1,2,{"\\u0000":1}]'


# --- batched ---------------------------------------------------------------------------------

BATCH: list[Message] = [
    Publish(1, {}, "a.b", [1]),
    Subscribe(2, {"match": "prefix"}, "a"),
    Call(3, {}, "f", [b"\x01"], {"k": "v"}),
]


def test_json_batched_framing() -> None:
    codec = WampCodec("json", batched=True)
    assert codec.encode(Published(1, 2)) == b"[17,1,2]\x1e"
    data = b"".join(codec.encode(m) for m in BATCH)
    assert data.count(b"\x1e") == 3
    assert codec.decode(data, True) == BATCH
    assert codec.decode(b"", True) == []
    assert codec.decode(b"[17,1,2]\x1e[17,3,4]\x1e", True) == [Published(1, 2), Published(3, 4)]


def test_json_batched_truncated() -> None:
    codec = WampCodec("json", batched=True)
    data = b"".join(codec.encode(m) for m in BATCH)
    decoded = codec.decode(data[:-1], True)
    assert decoded[:2] == BATCH[:2]
    assert "after the last separator" in error_of(decoded)
    decoded = codec.decode(data[:-5], True)
    assert decoded[:2] == BATCH[:2]
    assert error_of(decoded).startswith("batch: ")


def test_json_batched_bad_message_stops_the_batch() -> None:
    codec = WampCodec("json", batched=True)
    decoded = codec.decode(b"[17,1,2]\x1e[17,0,2]\x1e[17,3,4]\x1e", True)
    assert decoded[0] == Published(1, 2)
    assert error_of(decoded) == "batch: message 2: PUBLISHED: request id 0 out of range [1, 2^53]"
    assert len(decoded) == 2
    assert "message 1: invalid JSON" in error_of(codec.decode(b"\x1e", True))
    # A huge run of separators costs one failed message, not a list of a million.
    assert len(codec.decode(b"\x1e" * 1_000_000, True)) == 1


def test_msgpack_batched_framing() -> None:
    codec = WampCodec("msgpack", batched=True)
    single = MSGPACK.encode(Published(1, 2))
    assert codec.encode(Published(1, 2)) == struct.pack(">I", len(single)) + single
    data = b"".join(codec.encode(m) for m in BATCH)
    assert codec.decode(data, False) == BATCH
    assert codec.decode(b"", False) == []


def test_msgpack_batched_truncated() -> None:
    codec = WampCodec("msgpack", batched=True)
    data = b"".join(codec.encode(m) for m in BATCH)
    decoded = codec.decode(data[:-1], False)
    assert decoded[:2] == BATCH[:2]
    assert "only" in error_of(decoded)
    last = codec.encode(BATCH[2])
    decoded = codec.decode(data[: -len(last) + 2], False)
    assert decoded == [
        *BATCH[:2],
        ProtocolError("batch: 2 bytes left, too few for a length prefix"),
    ]
    assert "message 1: invalid MessagePack" in error_of(codec.decode(b"\x00\x00\x00\x00", False))
    # A length prefix that claims more than is there.
    assert "only 1 left" in error_of(codec.decode(b"\xff\xff\xff\xff\x90", False))
    # A message followed by extra bytes inside its own length.
    assert "bytes after the message" in error_of(codec.decode(b"\x00\x00\x00\x02\x90\x90", False))


# --- validation ------------------------------------------------------------------------------

# (JSON text, the ProtocolError's message).
INVALID: list[tuple[str, str]] = [
    ("[]", "empty array: a WAMP message starts with its type"),
    ("{}", "a WAMP message must be a JSON array, not an object"),
    ('"x"', "a WAMP message must be a JSON array, not a string"),
    ("1", "a WAMP message must be a JSON array, not a number"),
    ("null", "a WAMP message must be a JSON array, not true, false or null"),
    ('["16",1,{},"t"]', "message type must be an integer, not string"),
    ('[16.0,1,{},"t"]', "message type must be an integer, not number"),
    ('[true,1,{},"t"]', "message type must be an integer, not bool"),
    ("[999,1]", "unknown message type 999"),
    ("[0]", "unknown message type 0"),
    ("[7,{},{}]", "unknown message type 7"),
    ("[-1]", "unknown message type -1"),
    # wrong count
    ("[32,1,{}]", "SUBSCRIBE: 3 items, expected 4"),
    ('[32,1,{},"t",[]]', "SUBSCRIBE: 5 items, expected 4"),
    ("[16,1,{}]", "PUBLISH: 3 items, expected 4 to 6"),
    ('[16,1,{},"t",[],{},1]', "PUBLISH: 7 items, expected 4 to 6"),
    ("[48,1,{}]", "CALL: 3 items, expected 4 to 6"),
    ("[70,1]", "YIELD: 2 items, expected 3 to 5"),
    ("[70,1,{},[],{},[]]", "YIELD: 6 items, expected 3 to 5"),
    ("[35]", "UNSUBSCRIBED: 1 items, expected 2 to 3"),
    ("[35,1,{},{}]", "UNSUBSCRIBED: 4 items, expected 2 to 3"),
    ('[1,"realm"]', "HELLO: 2 items, expected 3"),
    ("[8,48,1,{}]", "ERROR: 4 items, expected 5 to 7"),
    # ids
    ('[32,0,{},"t"]', "SUBSCRIBE: request id 0 out of range [1, 2^53]"),
    (
        '[32,9007199254740993,{},"t"]',
        "SUBSCRIBE: request id 9007199254740993 out of range [1, 2^53]",
    ),
    ('[32,-1,{},"t"]', "SUBSCRIBE: request id -1 out of range [1, 2^53]"),
    ('[32,"1",{},"t"]', "SUBSCRIBE: request id must be an integer, not string"),
    ('[32,1.0,{},"t"]', "SUBSCRIBE: request id must be an integer, not number"),
    ('[32,true,{},"t"]', "SUBSCRIBE: request id must be an integer, not bool"),
    ('[32,null,{},"t"]', "SUBSCRIBE: request id must be an integer, not null"),
    ('[16,0,{},"t"]', "PUBLISH: request id 0 out of range [1, 2^53]"),
    ('[16,1.5,{},"t"]', "PUBLISH: request id must be an integer, not number"),
    ('[48,9007199254740993,{},"p"]', "CALL: request id 9007199254740993 out of range [1, 2^53]"),
    ("[70,0,{}]", "YIELD: request id 0 out of range [1, 2^53]"),
    ("[35,-1]", "UNSUBSCRIBED: request id -1 out of range [0, 2^53]"),
    ("[67,9007199254740993]", "UNREGISTERED: request id 9007199254740993 out of range [0, 2^53]"),
    ("[34,1,-1]", "UNSUBSCRIBE: subscription id -1 out of range [0, 2^53]"),
    (
        "[34,1,9007199254740993]",
        "UNSUBSCRIBE: subscription id 9007199254740993 out of range [0, 2^53]",
    ),
    ("[2,-5,{}]", "WELCOME: session id -5 out of range [0, 2^53]"),
    ("[36,1,9007199254740993,{}]", "EVENT: publication id 9007199254740993 out of range [0, 2^53]"),
    ('[36,"1",2,{}]', "EVENT: subscription id must be an integer, not string"),
    ('[66,1,"r"]', "UNREGISTER: registration id must be an integer, not string"),
    ("[17,0,1]", "PUBLISHED: request id 0 out of range [1, 2^53]"),
    ("[50,0,{}]", "RESULT: request id 0 out of range [1, 2^53]"),
    ("[68,0,1,{}]", "INVOCATION: request id 0 out of range [1, 2^53]"),
    ("[49,0,{}]", "CANCEL: request id 0 out of range [1, 2^53]"),
    ("[69,0,{}]", "INTERRUPT: request id 0 out of range [1, 2^53]"),
    # ERROR's request type
    ('[8,99,1,{},"e"]', "ERROR: request type 99 is not a message that ERROR answers"),
    ('[8,8,1,{},"e"]', "ERROR: request type 8 is not a message that ERROR answers"),
    ('[8,"48",1,{},"e"]', "ERROR: request type must be an integer, not string"),
    ('[8,48,0,{},"e"]', "ERROR: request id 0 out of range [1, 2^53]"),
    ('[8,48,1,{},""]', "ERROR: error must be a non-empty URI"),
    # URIs and strings
    ('[32,1,{},""]', "SUBSCRIBE: topic must be a non-empty URI"),
    ("[32,1,{},5]", "SUBSCRIBE: topic must be a URI string, not number"),
    ('[16,1,{},""]', "PUBLISH: topic must be a non-empty URI"),
    ("[16,1,{},null]", "PUBLISH: topic must be a URI string, not null"),
    ('[48,1,{},""]', "CALL: procedure must be a non-empty URI"),
    ('[64,1,{},["p"]]', "REGISTER: procedure must be a URI string, not list"),
    ('[1,"",{}]', "HELLO: realm must be a non-empty URI"),
    ("[1,{},{}]", "HELLO: realm must be a URI string, not dict"),
    ('[3,{},""]', "ABORT: reason must be a non-empty URI"),
    ("[6,{},1]", "GOODBYE: reason must be a URI string, not number"),
    ("[4,1,{}]", "CHALLENGE: authmethod must be a string, not number"),
    ("[5,null,{}]", "AUTHENTICATE: signature must be a string, not null"),
    # dicts and lists
    ('[32,1,[],"t"]', "SUBSCRIBE: options must be a dict, not list"),
    ('[16,1,null,"t"]', "PUBLISH: options must be a dict, not null"),
    ('[1,"realm",[]]', "HELLO: details must be a dict, not list"),
    ('[5,"sig","extra"]', "AUTHENTICATE: extra must be a dict, not string"),
    ('[16,1,{},"t",{}]', "PUBLISH: args must be a list, not dict"),
    ('[16,1,{},"t",[],[]]', "PUBLISH: kwargs must be a dict, not list"),
    ('[48,1,{},"p",null]', "CALL: args must be a list, not null"),
    ('[48,1,{},"p",[],"kw"]', "CALL: kwargs must be a dict, not string"),
    ("[70,1,[]]", "YIELD: options must be a dict, not list"),
    ('[70,1,{},"a"]', "YIELD: args must be a list, not string"),
    ("[70,1,{},[],[]]", "YIELD: kwargs must be a dict, not list"),
    ("[36,1,2,{},{}]", "EVENT: args must be a list, not dict"),
    ("[35,0,[]]", "UNSUBSCRIBED: details must be a dict, not list"),
    ('[8,48,1,{},"e",{}]', "ERROR: args must be a list, not dict"),
    # JSON itself
    ("[1,", "invalid JSON: Expecting value at character 3"),
    ("[1] [2]", "invalid JSON: Extra data at character 4"),
    ("", "invalid JSON: Expecting value at character 0"),
    ("[35,NaN]", "NaN is not JSON"),
    ('[35,1,{"a":Infinity}]', "Infinity is not JSON"),
    ('[35,1,{"a":-Infinity}]', "-Infinity is not JSON"),
    ('[35,1,{"a":1e400}]', "number 1e400 out of range (JSON cannot carry infinity)"),
    ('[35,1,{"a":-1e400}]', "number -1e400 out of range (JSON cannot carry infinity)"),
    ('[35,1,{"a":18446744073709551616}]', "integer 18446744073709551616 out of range"),
    ('[35,1,{"a":-9223372036854775809}]', "integer -9223372036854775809 out of range"),
    ('[35,1,{"a":' + "9" * 5000 + "}]", "integer 999999999999999999999999... out of range"),
    ('[35,1,{"a":"\\ud800"}]', "string holds a lone surrogate (\\ud800-\\udfff)"),
    ('[35,1,{"\\udfff":1}]', "string holds a lone surrogate (\\ud800-\\udfff)"),
    ("[35,1,{'a':1}]", "invalid JSON: Expecting property name enclosed in double quotes"),
    ('[35,1,{"a":"\x01"}]', "invalid JSON: Invalid control character"),
]


INVALID_IDS = [text[:40] for text, _ in INVALID]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=INVALID_IDS)
def test_invalid_json(text: str, expected: str) -> None:
    message = error_of(decode_json(text))
    assert message.startswith(expected), message
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=INVALID_IDS)
def test_invalid_msgpack(text: str, expected: str) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        return  # not JSON, not a message: nothing to say about it in MessagePack
    if any(
        expected.startswith(word)
        for word in ("NaN", "Infinity", "-Infinity", "string", "number", "integer")
    ) or not isinstance(value, list):
        return  # what only JSON can say (or MessagePack says in its own words)
    message = error_of(decode_msgpack(msgpack.packb(value)))
    assert message.startswith(expected), message


@pytest.mark.parametrize(
    "text",
    [
        '[32,9007199254740992,{},"t"]',
        '[32,1,{"match":"prefix"},"a"]',
        "[35,0]",
        '[35,0,{"subscription":1,"reason":"r"}]',
        "[67,0]",
        "[34,1,0]",
        "[66,1,0]",
        "[2,0,{}]",
        "[36,0,0,{}]",
        '[4,"",{}]',
        '[5,"",{}]',
        '[8,68,1,{},"e"]',
        '[8,32,1,{},"e"]',
        '[8,16,1,{},"e"]',
        '[8,34,1,{},"e"]',
        '[8,64,1,{},"e"]',
        '[8,66,1,{},"e"]',
        '[35,1,{"a":18446744073709551615,"b":-9223372036854775808}]',
        '[35,1,{"a":1e308,"b":-0.0,"c":5e-324}]',
        " \n[17, 1, 2]\t ",
        '[35,1,{"a":"\\ud83d\\ude00"}]',
        '[35,1,{"a":"\\u00e9"}]',
        '[1,"r",{"a":{"b":[1,"x",null,true,false,1.5]}}]',
    ],
)
def test_valid_edge_cases(text: str) -> None:
    [message] = decode_json(text)
    assert not isinstance(message, ProtocolError), message
    # Every decoded message is carried exactly by both serializers.
    assert same(decode_json(JSON.encode(message)), [message])
    assert same(decode_msgpack(MSGPACK.encode(message)), [message])


def test_values_keep_their_types() -> None:
    [event] = decode_json('[36,1,2,{},[1,1.0,true,null,"1",-0.0,18446744073709551615]]')
    assert isinstance(event, Event)
    assert same(event.args, [1, 1.0, True, None, "1", -0.0, 18446744073709551615])


def nested(depth: int, inner: str = "1") -> str:
    """A JSON EVENT whose message array is `depth` levels deep."""
    return "[36,1,2,{},[" * 1 + "[" * (depth - 2) + inner + "]" * (depth - 2) + "]]"


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
def test_depth_limit(codec_name: str) -> None:
    def run(text: str, **limits: int) -> Decoded:
        if codec_name == "json":
            return decode_json(text, **limits)
        return decode_msgpack(msgpack.packb(json.loads(text)), **limits)

    assert isinstance(run(nested(32))[0], Event)
    assert error_of(run(nested(33))) == "nesting deeper than 32"
    assert isinstance(run(nested(5), max_depth=5)[0], Event)
    assert error_of(run(nested(6), max_depth=5)) == "nesting deeper than 5"
    assert error_of(run(nested(6, '{"a":1}'), max_depth=6)) == "nesting deeper than 6"
    # Brackets inside strings are no nesting.
    assert isinstance(run('[36,1,2,{},["' + "[{" * 100 + '"]]')[0], Event)


def test_deep_nesting_never_recurses_far() -> None:
    assert error_of(decode_json("[" * 100_000 + "]" * 100_000)) == "nesting deeper than 32"
    assert error_of(decode_json("[" * 100_000)) == "nesting deeper than 32"
    deep = b"\x91" * 100_000 + b"\xc0"
    assert error_of(decode_msgpack(deep)) == "nesting deeper than 32"
    assert error_of(decode_msgpack(b"\x94\x24\x01\x02" + b"\x81\xa1a" * 40 + b"\xc0")) == (
        "nesting deeper than 32"
    )


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
def test_items_limit(codec_name: str) -> None:
    def run(args: list[Any], **limits: int) -> Decoded:
        value = [36, 1, 2, {}, args]
        if codec_name == "json":
            return decode_json(json.dumps(value), **limits)
        return decode_msgpack(msgpack.packb(value), **limits)

    # Values: the array, its 4 fields, the args list's items and nested values.
    assert isinstance(run([0] * 5, max_items=11)[0], Event)
    assert error_of(run([0] * 6, max_items=11)) == "more than 11 values in one message"
    assert error_of(run([[0, 0], [0, 0, 0]], max_items=11)) == "more than 11 values in one message"
    assert isinstance(run([{"a": 1, "b": 2, "c": 3, "d": 4}], max_items=11)[0], Event)
    assert error_of(run([{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}], max_items=11)) == (
        "more than 11 values in one message"
    )
    assert isinstance(run(list(range(50_000)))[0], Event)
    assert error_of(run(list(range(100_000)))) == "more than 100000 values in one message"


def test_frame_kind_mismatch() -> None:
    message = error_of(JSON.decode(b"[17,1,2]", False))
    assert message == "wamp.2.json takes text WebSocket messages, not binary"
    message = error_of(MSGPACK.decode(MSGPACK.encode(Published(1, 2)), True))
    assert message == "wamp.2.msgpack takes binary WebSocket messages, not text"
    batched = WampCodec("json", batched=True)
    assert error_of(batched.decode(b"[17,1,2]\x1e", False)) == (
        "wamp.2.json.batched takes text WebSocket messages, not binary"
    )
    assert error_of(WampCodec("msgpack", batched=True).decode(b"", True)) == (
        "wamp.2.msgpack.batched takes binary WebSocket messages, not text"
    )


def test_invalid_utf8_text() -> None:
    assert error_of(JSON.decode(b'[1,"\xff",{}]', True)) == (
        "text message is not valid UTF-8 (at byte 4)"
    )
    # Surrogates encoded in UTF-8 are not UTF-8 either.
    assert "not valid UTF-8" in error_of(JSON.decode(b'[1,"\xed\xa0\x80",{}]', True))


def test_bytes_like_input() -> None:
    data = JSON.encode(Published(1, 2))
    assert JSON.decode(bytearray(data), True) == [Published(1, 2)]  # type: ignore[arg-type]
    assert JSON.decode(memoryview(data), True) == [Published(1, 2)]  # type: ignore[arg-type]
    packed = MSGPACK.encode(Published(1, 2))
    assert MSGPACK.decode(memoryview(packed), False) == [Published(1, 2)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x93\x24\xd4\x05\x00\x80", "MessagePack extension types are not allowed"),
        (b"\x93\x24\xc7\x00\x05\x80", "MessagePack extension type 5 is not allowed"),
        (b"\x93\x24\xd6\xff\x00\x00\x00\x01\x80", "MessagePack extension types are not allowed"),
        (b"\x93\x24\xc7\x0c\xff" + b"\x00" * 12, "MessagePack extension types are not allowed"),
        (b"\x93\x24\xc7\x00\xff\x80", "MessagePack extension types are not allowed"),
        (b"\x93\x23\x01\x81\x01\x02", "invalid MessagePack: int is not allowed for map key"),
        (b"\x93\x23\x01\x81\xc0\x02", "invalid MessagePack: "),
        (b"\x93\x23\x01\x81\xc4\x01k\x02", "map key must be a string, not bytes"),
        (b"\x95\x24\x01\x02\x80\x91\x81\xc4\x01k\x02", "map key must be a string, not bytes"),
        (b"\x95\x24\x01\x02\x80\x91\xcb\x7f\xf8" + b"\x00" * 6, "NaN or infinity"),
        (b"\x95\x24\x01\x02\x80\x91\xcb\xff\xf0" + b"\x00" * 6, "NaN or infinity"),
        (b"\x95\x24\x01\x02\x80\x91\xca\x7f\x80\x00\x00", "NaN or infinity"),
        (b"\x95\x24\x01\x02\x80\x91\xa2\x00a", "string starting with NUL"),
        (b"\x95\x24\x01\x02\x80\x91\xd9\x01\x00", "string starting with NUL"),
        (b"\x95\x24\x01\x02\x80\x91\xda\x00\x01\x00", "string starting with NUL"),
        (b"\x95\x24\x01\x02\x80\x91\xdb\x00\x00\x00\x01\x00", "string starting with NUL"),
        (b"\x93\x01\xa3\xff\xfe\xfd\x80", "MessagePack str is not valid UTF-8"),
        (b"\x93\x01\xa3\xed\xa0\x80\x80", "MessagePack str is not valid UTF-8"),
        (b"\x93\x11\x01", "invalid MessagePack: "),
        (b"\x93\x11\x01\x02\x03", "invalid MessagePack: bytes after the message"),
        (b"", "invalid MessagePack: "),
        (b"\xc1", "invalid MessagePack: "),
        (b"\xdd\xff\xff\xff\xff", "invalid MessagePack: an array or map longer than the data"),
        (b"\xdf\xff\xff\xff\xff", "invalid MessagePack: an array or map longer than the data"),
        (b"\x93\x11\x01\xdb\xff\xff\xff\xff", "invalid MessagePack: "),
        (b"\x93\x11\x01\xc6\xff\xff\xff\xff", "invalid MessagePack: "),
        (b"\x81\xa1a\x01", "a WAMP message must be a MessagePack array, not dict"),
        (b"\xc4\x01a", "a WAMP message must be a MessagePack array, not bytes"),
        (b"\x93\x11\xc3\x02", "PUBLISHED: request id must be an integer, not bool"),
        (b"\x93\x11\xcb" + struct.pack(">d", 1.0) + b"\x02", "PUBLISHED: request id must be an"),
        (b"\x93\x11\xcf" + struct.pack(">Q", MAX_ID + 1) + b"\x02", "PUBLISHED: request id 9007"),
        (b"\x93\x11\xd3" + struct.pack(">q", -1) + b"\x02", "PUBLISHED: request id -1 out"),
    ],
)
def test_invalid_msgpack_bytes(data: bytes, expected: str) -> None:
    message = error_of(decode_msgpack(data))
    assert message.startswith(expected), message
    assert "\n" not in message


def test_msgpack_false_alarms_still_decode() -> None:
    # Look like NaN or a NUL-led str byte by byte, but are not.
    event = Event(1, 2, {"\x00k": 0.0}, ["\x7f", "\xff", 0.0, -1.0, 2.0**-1074, "x" * 40])
    assert decode_msgpack(MSGPACK.encode(event)) == [event]
    assert decode_msgpack(MSGPACK.encode(Event(1, 2, {}, ["\x00" * 0, "a\x00"]))) == [
        Event(1, 2, {}, ["", "a\x00"])
    ]


# --- the fast paths agree with the table -----------------------------------------------------

ANY_FIELD = st.one_of(
    st.integers(min_value=-2, max_value=MAX_ID + 2),
    st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, True, 1.0, None, "", "t", [], [1], {}, {"a": 1}]),
)


@given(
    code=st.sampled_from([PUBLISH, CALL, YIELD, ERROR, SUBSCRIBE]),
    fields=st.lists(ANY_FIELD, max_size=7),
)
def test_fast_paths_agree_with_the_table(code: int, fields: list[Any]) -> None:
    items = [code, *fields]
    try:
        by_table: Message | None = codec_module._parse_by_table(list(items), code)
    except DecodeError:
        by_table = None
    try:
        parsed: Message | None = parse(list(items))
    except DecodeError:
        parsed = None
    assert parsed == by_table


# --- hypothesis: round trips -----------------------------------------------------------------

TEXT = st.text(max_size=20).map(lambda s: "x" + s if s.startswith("\x00") else s)
KEYS = st.text(max_size=10)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.binary(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
DICTS = st.dictionaries(KEYS, VALUES, max_size=4)
ARGS = st.one_of(st.none(), st.lists(VALUES, max_size=4))
KWARGS = st.one_of(st.none(), DICTS)
IDS = st.integers(min_value=0, max_value=MAX_ID)
REQUESTS = st.integers(min_value=1, max_value=MAX_ID)
URIS = st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("\x00"))
REQUEST_TYPES = st.sampled_from([16, 32, 34, 48, 64, 66, 68])

MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, URIS, DICTS),
    st.builds(Welcome, IDS, DICTS),
    st.builds(Abort, DICTS, URIS),
    st.builds(Challenge, TEXT, DICTS),
    st.builds(Authenticate, TEXT, DICTS),
    st.builds(Goodbye, DICTS, URIS),
    st.builds(Error, REQUEST_TYPES, REQUESTS, DICTS, URIS, ARGS, KWARGS),
    st.builds(Publish, REQUESTS, DICTS, URIS, ARGS, KWARGS),
    st.builds(Published, REQUESTS, IDS),
    st.builds(Subscribe, REQUESTS, DICTS, URIS),
    st.builds(Subscribed, REQUESTS, IDS),
    st.builds(Unsubscribe, REQUESTS, IDS),
    st.builds(Unsubscribed, st.integers(min_value=0, max_value=MAX_ID), st.none() | DICTS),
    st.builds(Event, IDS, IDS, DICTS, ARGS, KWARGS),
    st.builds(Call, REQUESTS, DICTS, URIS, ARGS, KWARGS),
    st.builds(Cancel, REQUESTS, DICTS),
    st.builds(Result, REQUESTS, DICTS, ARGS, KWARGS),
    st.builds(Register, REQUESTS, DICTS, URIS),
    st.builds(Registered, REQUESTS, IDS),
    st.builds(Unregister, REQUESTS, IDS),
    st.builds(Unregistered, st.integers(min_value=0, max_value=MAX_ID), st.none() | DICTS),
    st.builds(Invocation, REQUESTS, IDS, DICTS, ARGS, KWARGS),
    st.builds(Interrupt, REQUESTS, DICTS),
    st.builds(Yield, REQUESTS, DICTS, ARGS, KWARGS),
)

ROUND_TRIP = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@ROUND_TRIP
@given(message=MESSAGES)
def test_round_trip(codec: WampCodec, message: Message) -> None:
    decoded = codec.decode(codec.encode(message), codec.text)
    assert same(decoded, [normalized(message)]), decoded


@ROUND_TRIP
@given(message=MESSAGES)
def test_cross_serializer(message: Message) -> None:
    from_json = decode_json(encode_json(message.to_list()))
    from_msgpack = decode_msgpack(encode_msgpack(message.to_list()))
    assert same(from_json, from_msgpack)
    assert same(from_json, [normalized(message)])


@pytest.mark.parametrize("codec", [c for c in CODECS if c.batched], ids=["json", "msgpack"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGES, max_size=6))
def test_batched_round_trip(codec: WampCodec, messages: list[Message]) -> None:
    data = b"".join(codec.encode(m) for m in messages)
    assert same(codec.decode(data, codec.text), [normalized(m) for m in messages])


# --- fuzzing ---------------------------------------------------------------------------------


def check_decoded(codec: WampCodec, data: bytes, text: bool) -> None:
    """Never raises; only messages, then maybe one error; what it decodes re-encodes exactly in
    both serializers (the router hands a msgpack client's payload to JSON subscribers)."""
    decoded = codec.decode(data, text)
    check_result(decoded)
    for message in decoded:
        if isinstance(message, ProtocolError):
            assert message.message
            assert "\n" not in message.message
            continue
        for other in (JSON, MSGPACK):
            again = other.decode(other.encode(message), other.text)
            assert same(again, [message]), (message, again)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@FUZZ
@given(data=st.binary(max_size=200), text=st.booleans())
def test_fuzz_random_bytes(codec: WampCodec, data: bytes, text: bool) -> None:
    check_decoded(codec, data, text)


JSONISH = st.recursive(
    st.one_of(
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.floats(),
        st.text(max_size=8),
        st.booleans(),
        st.none(),
        st.sampled_from(["\x00", "\x00AAAA", "\x00AA", "\ud800"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    code=st.sampled_from([*MESSAGE_CLASSES, 0, 7, 1000]),
    fields=st.lists(JSONISH, max_size=7),
)
def test_fuzz_shaped_values(code: int, fields: list[Any]) -> None:
    value = [code, *fields]
    text = json.dumps(value, allow_nan=True)
    check_decoded(JSON, text.encode("utf-8", "surrogatepass"), True)
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, UnicodeEncodeError):
        return
    check_decoded(MSGPACK, packed, False)


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGES, min_size=1, max_size=3), data=st.data())
def test_fuzz_mutated_encodings(codec: WampCodec, messages: list[Message], data: Any) -> None:
    wire = bytearray(b"".join(codec.encode(m) for m in messages))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "drop", "insert", "dup"]))
        at = data.draw(st.integers(min_value=0, max_value=max(len(wire) - 1, 0)))
        if op == "flip" and wire:
            wire[at] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "set" and wire:
            wire[at] = data.draw(st.sampled_from([0x00, 0x1E, 0x22, 0x5B, 0x7F, 0xC1, 0xFF]))
        elif op == "cut":
            del wire[at:]
        elif op == "drop" and wire:
            del wire[at]
        elif op == "insert":
            wire[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "dup":
            wire[at:at] = wire[at : at + 8]
    check_decoded(codec, bytes(wire), codec.text)


def test_binary_convention_is_base64_with_padding() -> None:
    for size in range(5):
        blob = bytes(range(size))
        text = JSON.encode(Event(1, 2, {}, [blob]))
        expected = "\\u0000" + base64.b64encode(blob).decode()
        assert f'"{expected}"'.encode() in text


def test_json_batched_takes_and_answers_autobahns_0x18_separator() -> None:
    # autobahn writes "\30" (octal: 0x18) where the spec says 0x1E; take either, answer alike.
    codec = WampCodec("json", batched=True)
    assert codec.encode(Published(1, 2)).endswith(b"\x1e")
    decoded = codec.decode(b'[17,1,2]\x18[17,3,4]\x18', True)
    assert decoded == [Published(1, 2), Published(3, 4)]
    assert codec.encode(Published(1, 2)).endswith(b"\x18")
