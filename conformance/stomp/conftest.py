"""Fixtures for the STOMP conformance suite.

Target: ``WSBROKER_URL=ws://host:port`` runs the suite against that server; otherwise a broker
from this checkout is started with :data:`OWN_BROKER_ARGS` (small limits, so tests are fast).
``WSBROKER_TARGET`` names the target (``wsbroker``, ``rabbitmq``, anything else); when unset it is
``wsbroker`` for our own broker or when ``GET /healthz`` answers JSON with a ``status``.

From the environment, for an external target:

- ``WSBROKER_STOMP_PATH``: the STOMP WebSocket path (default ``/stomp``; RabbitMQ: ``/ws``);
- ``WSBROKER_MQTT_URL`` / ``WSBROKER_MQTT_PATH``: the MQTT-over-WebSocket endpoint for the
  cross-protocol tests (default: ``WSBROKER_URL`` and ``/mqtt``);
- ``WSBROKER_STOMP_REALM``: a second realm (RabbitMQ: vhost) that CONNECT ``host`` selects;
- ``WSBROKER_STOMP_<LIMIT>``: the target's limits (see :class:`support.Limits`), e.g.
  ``WSBROKER_STOMP_MAX_FRAME_SIZE``; a test that needs an unknown limit skips.

``server.strict``: on our own broker the suite also requires the issue's choices where the spec
leaves room (``server:wsbroker/…``, the heart-beat floor, ERROR before closing a silent client…).
Against other servers it accepts every behaviour the spec allows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.conftest import url_of
from conformance.server import (
    BrokerProcess,
    suite_broker,
    target_name,
)
from conformance.stomp.clients import StompPy
from conformance.stomp.support import Limits, Names, Server

OWN_LIMITS = Limits(
    max_frame_size=65536,
    max_headers=32,
    max_header_length=1024,
    max_frame_rate=2000,
    heartbeat_min=100,
    max_subscriptions=64,
    max_transaction_frames=64,
    queue_max_backlog=100,
    queue_max_unacked=1000,
)
OWN_REALM = "conf-realm"


def _flags(limits: Limits) -> list[str]:
    flags = {
        "max_frame_size": "--stomp-max-frame-size",
        "max_headers": "--stomp-max-headers",
        "max_header_length": "--stomp-max-header-length",
        "max_frame_rate": "--stomp-max-frame-rate",
        "heartbeat_min": "--stomp-heartbeat-min",
        "max_subscriptions": "--stomp-max-subscriptions",
        "max_transaction_frames": "--stomp-max-transaction-frames",
        "queue_max_backlog": "--queue-max-backlog",
        "queue_max_unacked": "--queue-max-unacked",
    }
    args: list[str] = []
    for name, flag in flags.items():
        args += [flag, str(getattr(limits, name))]
    return args


OWN_BROKER_ARGS = (*_flags(OWN_LIMITS), "--realms", f"realm1,{OWN_REALM}")


@pytest.fixture(scope="session")
def broker_process() -> Iterator[BrokerProcess | None]:
    """Overrides the suite-wide fixture: our broker, started with the STOMP suite's settings."""
    with suite_broker(*OWN_BROKER_ARGS) as bp:
        yield bp


@pytest.fixture(scope="session")
def broker_url(broker_process: BrokerProcess | None) -> str:
    """This suite's broker (the suite-wide fixture would keep the first suite's)."""
    return url_of(broker_process)


@pytest.fixture(scope="session")
def server(broker_process: BrokerProcess | None, broker_url: str) -> Server:
    """The server under test: its name, endpoints and limits."""
    named = target_name(broker_process, broker_url)
    own_process = broker_process is not None
    return Server(
        name=named,
        url=broker_url,
        path=os.environ.get("WSBROKER_STOMP_PATH") or "/stomp",
        mqtt_url=(os.environ.get("WSBROKER_MQTT_URL") or broker_url).rstrip("/"),
        mqtt_path=os.environ.get("WSBROKER_MQTT_PATH") or "/mqtt",
        realm=OWN_REALM if own_process else os.environ.get("WSBROKER_STOMP_REALM") or None,
        limits=OWN_LIMITS if own_process else Limits.from_env(),
    )


@pytest.fixture
def uid() -> str:
    """A short unique string for this test's destinations."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def names(server: Server, uid: str) -> Names:
    """This test's own destinations, in the target's syntax."""
    return Names(server, uid)


StompFactory = Callable[..., StompPy]


@pytest.fixture
def stomp(server: Server) -> Iterator[StompFactory]:
    """``stomp(version="1.2", heartbeats=(0, 0), ...)``: a StompPy, not connected yet, closed at
    the end of the test."""
    made: list[StompPy] = []

    def make(**kwargs: Any) -> StompPy:
        kwargs.setdefault("vhost", server.host)
        c = StompPy(server.url, server.path, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(Exception):
            c.close()


@pytest.fixture
def connected(stomp: StompFactory) -> StompFactory:
    """Like ``stomp`` but already connected (CONNECTED received)."""

    def make(**kwargs: Any) -> StompPy:
        c = stomp(**kwargs)
        c.connect()
        return c

    return make
