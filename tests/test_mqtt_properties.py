"""MQTT 5.0 property table: every property round trip, placement, duplicates, value ranges."""

from __future__ import annotations

from typing import Any

import pytest

from broker.subprotocols.mqtt.packets import PacketType, Properties, ReasonCode
from broker.subprotocols.mqtt.properties import (
    PROPERTY_TABLE,
    WILL_PROPERTIES,
    DecodeError,
    decode_properties,
    decode_vbi,
    encode_properties,
    encode_vbi,
)

CONTEXTS = [WILL_PROPERTIES, *range(1, 16)]

# One sample value per property and its exact encoding after the identifier byte.
SAMPLES: dict[str, tuple[Any, bytes]] = {
    "payload_format_indicator": (1, b"\x01"),
    "message_expiry_interval": (0x01020304, b"\x01\x02\x03\x04"),
    "content_type": ("text/é", b"\x00\x07text/\xc3\xa9"),
    "response_topic": ("r/t", b"\x00\x03r/t"),
    "correlation_data": (b"\x00\xff", b"\x00\x02\x00\xff"),
    "subscription_identifiers": ((268_435_455,), b"\xff\xff\xff\x7f"),
    "session_expiry_interval": (0xFFFFFFFF, b"\xff\xff\xff\xff"),
    "assigned_client_identifier": ("id", b"\x00\x02id"),
    "server_keep_alive": (30, b"\x00\x1e"),
    "authentication_method": ("SCRAM", b"\x00\x05SCRAM"),
    "authentication_data": (b"d", b"\x00\x01d"),
    "request_problem_information": (0, b"\x00"),
    "will_delay_interval": (5, b"\x00\x00\x00\x05"),
    "request_response_information": (1, b"\x01"),
    "response_information": ("ri", b"\x00\x02ri"),
    "server_reference": ("s", b"\x00\x01s"),
    "reason_string": ("why", b"\x00\x03why"),
    "receive_maximum": (65535, b"\xff\xff"),
    "topic_alias_maximum": (0, b"\x00\x00"),
    "topic_alias": (1, b"\x00\x01"),
    "maximum_qos": (0, b"\x00"),
    "retain_available": (1, b"\x01"),
    "user_properties": ((("k", "v"),), b"\x00\x01k\x00\x01v"),
    "maximum_packet_size": (1, b"\x00\x00\x00\x01"),
    "wildcard_subscription_available": (0, b"\x00"),
    "subscription_identifier_available": (1, b"\x01"),
    "shared_subscription_available": (0, b"\x00"),
}

# Values that are a Protocol Error (section 3.x property descriptions).
OUT_OF_RANGE: dict[str, bytes] = {
    "payload_format_indicator": b"\x02",
    "subscription_identifiers": b"\x00",
    "request_problem_information": b"\x02",
    "request_response_information": b"\x02",
    "receive_maximum": b"\x00\x00",
    "topic_alias": b"\x00\x00",
    "maximum_qos": b"\x02",
    "retain_available": b"\x02",
    "maximum_packet_size": b"\x00\x00\x00\x00",
    "wildcard_subscription_available": b"\x02",
    "subscription_identifier_available": b"\x02",
    "shared_subscription_available": b"\xff",
}

ALLOWED = [(p, c) for p in PROPERTY_TABLE for c in CONTEXTS if p.contexts >> c & 1]
FORBIDDEN = [(p, c) for p in PROPERTY_TABLE for c in CONTEXTS if not p.contexts >> c & 1]


def test_table_is_complete() -> None:
    assert {p.name for p in PROPERTY_TABLE} == set(Properties.__dataclass_fields__)
    assert set(SAMPLES) == set(Properties.__dataclass_fields__)
    ids = [p.id for p in PROPERTY_TABLE]
    assert ids == sorted(set(ids))


def test_placement_matches_the_specification() -> None:
    allowed: dict[int, set[str]] = {}
    for prop, context in ALLOWED:
        allowed.setdefault(context, set()).add(prop.name)
    assert allowed[PacketType.PUBLISH] == {
        "payload_format_indicator",
        "message_expiry_interval",
        "content_type",
        "response_topic",
        "correlation_data",
        "subscription_identifiers",
        "topic_alias",
        "user_properties",
    }
    assert allowed[WILL_PROPERTIES] == {
        "payload_format_indicator",
        "message_expiry_interval",
        "content_type",
        "response_topic",
        "correlation_data",
        "will_delay_interval",
        "user_properties",
    }
    assert allowed[PacketType.SUBSCRIBE] == {"subscription_identifiers", "user_properties"}
    assert allowed[PacketType.UNSUBSCRIBE] == {"user_properties"}
    for ack in (PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP):
        assert allowed[ack] == {"reason_string", "user_properties"}
    assert allowed[PacketType.AUTH] == {
        "authentication_method",
        "authentication_data",
        "reason_string",
        "user_properties",
    }
    assert allowed[PacketType.DISCONNECT] == {
        "session_expiry_interval",
        "server_reference",
        "reason_string",
        "user_properties",
    }
    assert PacketType.PINGREQ not in allowed
    assert PacketType.PINGRESP not in allowed


@pytest.mark.parametrize(("prop", "context"), ALLOWED, ids=lambda x: str(x))
def test_every_property_round_trip(prop: Any, context: int) -> None:
    value, body = SAMPLES[prop.name]
    props = Properties(**{prop.name: value})
    wire = encode_properties(props, context)
    expected = bytes((prop.id,)) + body
    assert wire == encode_vbi(len(expected)) + expected
    assert decode_properties(wire, 0, len(wire), context, True) == (props, len(wire))


@pytest.mark.parametrize(("prop", "context"), FORBIDDEN, ids=lambda x: str(x))
def test_property_not_allowed(prop: Any, context: int) -> None:
    value, body = SAMPLES[prop.name]
    with pytest.raises(ValueError, match="not allowed"):
        encode_properties(Properties(**{prop.name: value}), context)
    wire = encode_vbi(1 + len(body)) + bytes((prop.id,)) + body
    with pytest.raises(DecodeError) as info:
        decode_properties(wire, 0, len(wire), context, True)
    assert info.value.reason_code == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("pid", [0x00, 0x04, 0x0A, 0x2B, 0x7F, 0x80])
def test_unknown_property(pid: int) -> None:
    wire = bytes((2, pid, 0))
    with pytest.raises(DecodeError) as info:
        decode_properties(wire, 0, 3, PacketType.PUBLISH, True)
    assert info.value.reason_code == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize(("prop", "context"), ALLOWED, ids=lambda x: str(x))
def test_duplicate_property(prop: Any, context: int) -> None:
    _, body = SAMPLES[prop.name]
    one = bytes((prop.id,)) + body
    wire = encode_vbi(2 * len(one)) + one + one
    repeatable = prop.name == "user_properties" or (
        prop.name == "subscription_identifiers" and context == PacketType.PUBLISH
    )
    if repeatable:
        props, _ = decode_properties(wire, 0, len(wire), context, True)
        assert len(getattr(props, prop.name)) == 2
    else:
        with pytest.raises(DecodeError) as info:
            decode_properties(wire, 0, len(wire), context, True)
        assert info.value.reason_code == ReasonCode.PROTOCOL_ERROR


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_value_out_of_range(name: str) -> None:
    prop = next(p for p in PROPERTY_TABLE if p.name == name)
    context = next(c for c in CONTEXTS if prop.contexts >> c & 1)
    wire = bytes((1 + len(OUT_OF_RANGE[name]), prop.id)) + OUT_OF_RANGE[name]
    with pytest.raises(DecodeError) as info:
        decode_properties(wire, 0, len(wire), context, True)
    assert info.value.reason_code == ReasonCode.PROTOCOL_ERROR
    value = 0 if prop.lo == 1 else prop.hi + 1
    fields: dict[str, Any] = {name: (value,) if name == "subscription_identifiers" else value}
    with pytest.raises(ValueError, match="outside"):
        encode_properties(Properties(**fields), context)


def test_subscription_identifier_direction() -> None:
    wire = b"\x02\x0b\x01"
    with pytest.raises(DecodeError) as info:
        decode_properties(wire, 0, 3, PacketType.PUBLISH, False)
    assert info.value.reason_code == ReasonCode.PROTOCOL_ERROR
    assert decode_properties(wire, 0, 3, PacketType.SUBSCRIBE, False)[0] == Properties(
        subscription_identifiers=(1,)
    )


def test_user_properties_keep_order() -> None:
    pairs = (("z", "1"), ("a", ""), ("z", "2"), ("", "x"))
    props = Properties(user_properties=pairs, reason_string="r")
    wire = encode_properties(props, PacketType.PUBACK)
    assert decode_properties(wire, 0, len(wire), PacketType.PUBACK, True)[0] == props


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"\x05\x1f\x00\x01", "property length past the end"),
        (b"\x03\x1f\x00\x05ab", "string past the property length"),
        (b"\x02\x21\x00", "truncated two-byte integer"),
        (b"\x03\x02\x00\x00", "truncated four-byte integer"),
        (b"\x01\x01", "truncated byte"),
        (b"\x04\x1f\x00\x01\xff", "bad UTF-8"),
        (b"\x04\x1f\x00\x01\x00", "NUL"),
        (b"\x80\x80\x80\x80\x01", "property length of 5 bytes"),
    ],
)
def test_malformed_properties(wire: bytes, why: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_properties(
            wire, 0, 4 if why == "property length past the end" else len(wire), 3, True
        )
    assert info.value.reason_code == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_variable_byte_integer(value: int, wire: bytes) -> None:
    # Examples of table 1-1 (section 1.5.5).
    assert encode_vbi(value) == wire
    assert decode_vbi(wire, 0, len(wire)) == (value, len(wire))


def test_variable_byte_integer_limits() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        encode_vbi(268_435_456)
    with pytest.raises(ValueError):  # noqa: PT011
        encode_vbi(-1)
    assert decode_vbi(b"\x80\x00", 0, 2) == (0, 2)  # non-minimal accepted on receive
