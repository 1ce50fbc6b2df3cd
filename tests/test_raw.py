from __future__ import annotations

import pytest

from broker.core.message import JSON, TEXT_PLAIN, Message
from broker.core.topics import InvalidTopic
from broker.subprotocols.raw import MAX_FILTERS, check_path, is_text, parse_target


def test_path_names_the_topic_and_default_filter() -> None:
    assert parse_target("/topics/sensors/room1/temp", "") == (
        "sensors/room1/temp",
        ["sensors/room1/temp"],
    )


def test_subscribe_filters_keep_plus_as_wildcard() -> None:
    topic, filters = parse_target("/topics/x", "subscribe=a/+/c&other=1&subscribe=%23")
    assert topic == "x"
    assert filters == ["a/+/c", "#"]


def test_percent_encoded_topic() -> None:
    assert parse_target("/topics/%24SYS/a%20b", "")[0] == "$SYS/a b"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/", ""),
        ("/topics/", ""),
        ("/topic/x", ""),
        ("/topics/a/+", ""),
        ("/topics/a/%23", ""),
        ("/topics/x", "subscribe=a/#/b"),
        ("/topics/x", "subscribe="),
        ("/topics/%FF", ""),
        ("/topics/x", "&".join(["subscribe=a"] * (MAX_FILTERS + 1))),
    ],
)
def test_bad_targets_are_refused_with_a_reason(path: str, query: str) -> None:
    with pytest.raises((ValueError, InvalidTopic)):
        parse_target(path, query)
    reason = check_path(path, query)
    assert reason


def test_refusal_says_what_to_offer() -> None:
    reason = check_path("/nope", "")
    assert reason is not None
    assert "/topics/<topic>" in reason


@pytest.mark.parametrize(
    ("payload", "content_type", "text"),
    [
        (b"hi", TEXT_PLAIN, True),
        (b'{"a":1}', JSON, True),
        (b'{"a":1}', "application/vnd.x+json; charset=utf-8", True),
        (b"hi", None, False),
        (b"hi", "application/octet-stream", False),
        (b"\xff", TEXT_PLAIN, False),
    ],
)
def test_text_frame_only_for_declared_text_that_is_utf8(
    payload: bytes, content_type: str | None, text: bool
) -> None:
    assert is_text(Message("t", payload, content_type=content_type)) is text
