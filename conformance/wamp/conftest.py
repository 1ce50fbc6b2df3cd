"""Fixtures for the WAMP conformance suite.

Target: ``WSBROKER_URL=ws://host:port`` runs the suite against that router; otherwise a broker
from this checkout is started with :data:`OWN_BROKER_ARGS`. ``WSBROKER_TARGET`` names the target
(``wsbroker``, ``crossbar``, anything else); when unset it is ``wsbroker`` for our own broker or
when ``GET /healthz`` answers JSON with a ``status``.

From the environment, for an external target:

- ``WSBROKER_WAMP_PATH``: the WAMP WebSocket path (default ``/ws``);
- ``WSBROKER_WAMP_REALM``: the default realm (default ``realm1``);
- ``WSBROKER_WAMP_REALM2``: a second configured realm (the isolation tests skip without it);
- ``WSBROKER_WAMP_AUTH_REALM`` and the principals (see :class:`support.Auth`):
  ``WSBROKER_WAMP_TICKET_USER`` / ``_TICKET`` / ``_TICKET_ROLE``, ``WSBROKER_WAMP_DENIED_PREFIX``
  (a URI prefix where the ticket user's role may do nothing), ``WSBROKER_WAMP_CRA_USER`` /
  ``_CRA_SECRET`` / ``_CRA_ROLE``, ``WSBROKER_WAMP_SCRA_USER`` / ``_SECRET`` / ``_SALT`` /
  ``_ITERATIONS`` / ``_KEYLEN`` / ``_ROLE`` (salted WAMP-CRA). The authentication tests skip
  when they are not given, also for our own broker until it has a way to configure them.
- ``WSBROKER_MAX_MESSAGE_SIZE``: the largest message the target accepts (default 1 MiB).

``server.strict``: on our own broker the suite also holds it to the issue's choices where the
spec leaves room; against other routers it accepts every behaviour the spec allows.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from conformance.conftest import url_of
from conformance.server import (
    BrokerProcess,
    suite_broker,
    target_max_message_size,
    target_name,
)
from conformance.wamp.support import SERIALIZERS, Auth, Salted, Server, Uris

OWN_REALM2 = "conf-realm"
OWN_AUTH_REALM = "conf-auth"
# The principals our broker is started with, for the authentication tests.
OWN_AUTH = Auth(
    realm=OWN_AUTH_REALM,
    ticket_user="joe",
    ticket="t1ck3t-joe",
    ticket_role="frontend",
    cra_user="peter",
    cra_secret="s3cret-peter",
    cra_role="backend",
    salted=Salted(
        user="salty", secret="s3cret-salty", salt="pepper", iterations=100, keylen=16, role="ops"
    ),
)
_OWN_WAMP_AUTH = {
    OWN_AUTH_REALM: {
        "anonymous": True,  # as the suite's Crossbar realm: some tests join it anonymously
        "principals": [
            {"authid": "joe", "authrole": "frontend", "method": "ticket", "ticket": "t1ck3t-joe"},
            {
                "authid": "peter",
                "authrole": "backend",
                "method": "wampcra",
                "secret": "s3cret-peter",
            },
            {
                "authid": "salty",
                "authrole": "ops",
                "method": "wampcra",
                "secret": "s3cret-salty",
                "salt": "pepper",
                "iterations": 100,
                "keylen": 16,
            },
        ],
    }
}
OWN_BROKER_ARGS = (
    "--realms",
    f"realm1,{OWN_REALM2},{OWN_AUTH_REALM}",
    "--wamp-auth",
    json.dumps(_OWN_WAMP_AUTH),
)


@pytest.fixture(scope="session")
def broker_process() -> Iterator[BrokerProcess | None]:
    """Overrides the suite-wide fixture: our broker, started with the WAMP suite's settings."""
    with suite_broker(*OWN_BROKER_ARGS) as bp:
        yield bp


@pytest.fixture(scope="session")
def broker_url(broker_process: BrokerProcess | None) -> str:
    """This suite's broker (the suite-wide fixture would keep the first suite's)."""
    return url_of(broker_process)


@pytest.fixture(scope="session")
def server(broker_process: BrokerProcess | None, broker_url: str) -> Server:
    """The router under test: its name, endpoint, realms and principals."""
    named = target_name(broker_process, broker_url)
    own_process = broker_process is not None
    return Server(
        name=named,
        url=broker_url,
        path=os.environ.get("WSBROKER_WAMP_PATH") or "/ws",
        realm=os.environ.get("WSBROKER_WAMP_REALM") or "realm1",
        realm2=OWN_REALM2 if own_process else os.environ.get("WSBROKER_WAMP_REALM2") or None,
        auth=OWN_AUTH if own_process else Auth.from_env(),
        mqtt_path=os.environ.get("WSBROKER_MQTT_PATH") or "/mqtt",
        stomp_path=os.environ.get("WSBROKER_STOMP_PATH") or "/stomp",
        max_message_size=target_max_message_size(),
    )


@pytest.fixture
def uid() -> str:
    """A short unique string for this test's URIs."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def uris(uid: str) -> Uris:
    """This test's own URIs: ``uris("a", "b")`` is ``conf.<uid>.a.b``."""
    return Uris(uid)


@pytest.fixture(params=SERIALIZERS)
def ser(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per serializer: json and msgpack."""
    return str(request.param)
