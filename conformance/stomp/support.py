"""What the STOMP suite knows about the server under test, and the helpers built on it.

:class:`Server` bundles the target (``wsbroker``, ``rabbitmq``, other), its URLs and paths and its
limits. :class:`Names` turns a test's canonical topic levels into each target's destination syntax
(ours: ``/topic/a/b`` with ``+``/``#``; RabbitMQ: ``/topic/a.b`` with ``*``/``#``), so no test
spells a destination itself. :func:`run_js` runs the @stomp/stompjs driver under node.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.node import run_driver
from conformance.stomp.frames import Frame, Headers
from conformance.stomp.rawstomp import RawStomp, open_raw

__all__ = [
    "JS_DIR",
    "Limits",
    "Names",
    "Server",
    "assert_names",
    "event",
    "raw_session",
    "require_limit",
    "run_js",
]

JS_DIR = Path(__file__).resolve().parent / "js"


@dataclass(frozen=True)
class Limits:
    """The target's settings that tests depend on; None: unknown (those tests skip)."""

    max_frame_size: int | None = None
    max_headers: int | None = None
    max_header_length: int | None = None
    max_frame_rate: int | None = None
    heartbeat_min: int | None = None
    max_subscriptions: int | None = None
    max_transaction_frames: int | None = None
    queue_max_backlog: int | None = None
    queue_max_unacked: int | None = None

    @classmethod
    def from_env(cls) -> Limits:
        """``WSBROKER_STOMP_<FIELD>`` for each field (e.g. WSBROKER_STOMP_MAX_FRAME_SIZE)."""
        values: dict[str, int | None] = {}
        for name in cls.__dataclass_fields__:
            raw = os.environ.get(f"WSBROKER_STOMP_{name.upper()}")
            values[name] = int(raw) if raw else None
        return cls(**values)


@dataclass(frozen=True)
class Server:
    name: str  # "wsbroker", "rabbitmq" or another name
    url: str  # ws://host:port of the STOMP endpoint
    path: str  # STOMP WebSocket path
    mqtt_url: str  # ws://host:port of the MQTT endpoint (cross-protocol tests)
    mqtt_path: str
    realm: str | None  # a second realm / vhost, selected with CONNECT host
    limits: Limits

    @property
    def strict(self) -> bool:
        """Hold the server to the issue's choices where the spec leaves room (ours only)."""
        return self.name == "wsbroker"

    @property
    def rabbitmq(self) -> bool:
        return self.name == "rabbitmq"

    @property
    def host(self) -> str:
        """The CONNECT ``host`` that selects the default realm (RabbitMQ: the default vhost)."""
        return "/" if self.rabbitmq else "localhost"

    @property
    def credentials(self) -> tuple[str, str]:
        """A login and passcode the target accepts (ours: any, the auth hook allows all)."""
        return ("guest", "guest") if self.rabbitmq else ("conformance", "any-passcode")

    @property
    def stomp_url(self) -> str:
        return self.url + self.path

    @property
    def closes_after_error(self) -> bool:
        """Whether every ERROR is followed by a close (1.2: MUST). RabbitMQ 3.10 keeps the
        connection open after ERRORs about one frame (see docs/conformance-stomp-notes.md)."""
        return not self.rabbitmq


def require_limit(value: int | None, what: str) -> int:
    """The limit, or skip the test: an external target's limit must be given in the env."""
    if value is None:
        pytest.skip(f"the target's {what} is unknown: set WSBROKER_STOMP_{what.upper()}")
    return value


class Names:
    """Destinations private to one test, in the target's syntax."""

    def __init__(self, server: Server, uid: str) -> None:
        self.server = server
        self.uid = uid

    def levels(self, *levels: str) -> list[str]:
        return ["conf", self.uid, *levels]

    def mqtt_topic(self, *levels: str) -> str:
        """The canonical (MQTT) topic name or filter for ``levels`` under this test's prefix."""
        return "/".join(self.levels(*levels))

    def topic(self, *levels: str) -> str:
        """``/topic/...`` for the canonical topic (or filter, with ``+``/``#``) ``levels``."""
        parts = self.levels(*levels)
        if self.server.rabbitmq:
            return "/topic/" + ".".join("*" if p == "+" else p for p in parts)
        return "/topic/" + "/".join(parts)

    def queue(self, name: str = "q") -> str:
        return f"/queue/conf-{self.uid}-{name}"


def run_js(
    server: Server, scenario: str, timeout: float = 30.0, **params: Any
) -> list[dict[str, Any]]:
    """Run ``js/driver.mjs`` for ``scenario``; its JSON lines. Skips without node or npm ci."""
    return run_driver(JS_DIR, "@stomp/stompjs", server.stomp_url, scenario, timeout, params)


def event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The first event called ``name``."""
    for e in events:
        if e["event"] == name:
            return e
    raise AssertionError(f"no {name!r} event in {events}")


def assert_names(error: Frame | Any, *words: str) -> None:
    """The ERROR's ``message`` header or body names each of ``words`` (case-insensitive)."""
    if isinstance(error, Frame):
        message, body = error.get("message") or "", error.body.decode("utf-8", "replace")
    else:  # a stomp.py Frame
        message, body = error.headers.get("message", ""), str(error.body)
    assert message, f"ERROR without a message header: {error!r}"
    text = f"{message}\n{body}".lower()
    for word in words:
        assert word.lower() in text, f"the ERROR does not name {word!r}: {message!r} {body!r}"


@contextlib.asynccontextmanager
async def raw_session(
    server: Server,
    version: str | None = "1.2",
    *,
    protocols: str | None = "v12.stomp",
    headers: Headers | None = None,
    connect: bool = True,
) -> AsyncIterator[RawStomp]:
    """A RawStomp on the target, CONNECTed with ``accept-version: version`` unless not
    ``connect``; closed at the end."""
    async with open_raw(server.url, server.path, protocols) as c:
        if connect:
            await c.connect(version, headers, host=server.host)
        yield c
