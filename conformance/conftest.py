"""Fixtures shared by the conformance suites.

Point the whole suite at another server with ``WSBROKER_URL=ws://host:port`` (and, if its limit
differs from the default, ``WSBROKER_MAX_MESSAGE_SIZE``); otherwise one broker from this checkout
is started for the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.server import (
    BrokerProcess,
    external_url,
    running_broker,
    target_max_message_size,
)


@pytest.fixture(scope="session")
def broker_process() -> Iterator[BrokerProcess | None]:
    """The broker started for this session, or None when the suite targets ``WSBROKER_URL``."""
    if external_url() is not None:
        yield None
        return
    with running_broker() as bp:
        yield bp


def url_of(broker_process: BrokerProcess | None) -> str:
    """``ws://host:port`` of the server under test (no trailing slash)."""
    if broker_process is None:
        url = external_url()
        assert url is not None
        return url.rstrip("/")
    return broker_process.url


@pytest.fixture(scope="session")
def broker_url(broker_process: BrokerProcess | None) -> str:
    """``ws://host:port`` of the server under test.

    Session-scoped, so cached with the first ``broker_process`` it met: a suite that overrides
    ``broker_process`` (its own flags) overrides this too, with ``url_of``.
    """
    return url_of(broker_process)


@pytest.fixture(scope="session")
def max_message_size() -> int:
    return target_max_message_size()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
