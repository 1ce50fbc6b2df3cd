"""WAMP URIs: their rules, and the mapping to the realm's canonical topics and filters."""

from __future__ import annotations

import re
from typing import Literal

Match = Literal["exact", "prefix", "wildcard"]
MATCHES: tuple[Match, ...] = ("exact", "prefix", "wildcard")

# Loose URIs (the spec's default): components free of whitespace, '.' and '#'. We also keep out
# what a canonical topic level cannot hold ('/', '+', NUL), so every URI has a topic.
_COMPONENT = r"[^\s.#/+\x00]+"
_URI = re.compile(rf"({_COMPONENT}\.)*{_COMPONENT}")
_WILDCARD = re.compile(rf"(({_COMPONENT})?\.)*({_COMPONENT})?")
_PREFIX = re.compile(rf"({_COMPONENT}\.)*({_COMPONENT})?")
MAX_URI_LENGTH = 1024


class InvalidUri(ValueError):
    """Not a URI (or pattern) we accept: answered with wamp.error.invalid_uri."""


def check_uri(uri: str, match: Match = "exact") -> None:
    """Raise InvalidUri unless `uri` is a valid URI, or a valid pattern for `match`."""
    pattern = _URI if match == "exact" else _WILDCARD if match == "wildcard" else _PREFIX
    if len(uri) > MAX_URI_LENGTH or pattern.fullmatch(uri) is None:
        raise InvalidUri(f"{uri[:100]!r} is not a valid URI for match={match!r}")


def topic_of(uri: str) -> str:
    """The canonical topic of a (valid) URI: `a.b.c` is `a/b/c`."""
    return uri.replace(".", "/")


def uri_of(topic: str) -> str | None:
    """The URI of a canonical topic, or None when it has none (a level holding '.', an empty
    level or one a URI cannot hold): such topics are not visible to WAMP."""
    uri = topic.replace("/", ".")
    if "." in topic or _URI.fullmatch(uri) is None:
        return None
    return uri


def filter_of(uri: str, match: Match) -> str:
    """The topic filter that covers a subscription: exactly for exact and wildcard; for a
    prefix (a string prefix of the URI, as WAMP defines it) a superset, checked with
    `prefix_matches`."""
    if match == "exact":
        return topic_of(uri)
    if match == "wildcard":
        return "/".join(level or "+" for level in uri.split("."))
    whole, _, _ = uri.rpartition(".")  # the levels the prefix holds whole
    return topic_of(whole) + "/#" if whole else "#"
