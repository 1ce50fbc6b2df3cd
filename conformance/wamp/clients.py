"""autobahn-python (asyncio) sessions for the suite, and queues that collect what they receive.

:func:`connect` opens a WebSocket with one serializer, joins a realm (authenticating when told
to) and returns a :class:`Client` once WELCOME came, or raises :class:`Refused` with the ABORT.
Handlers put what they get into :class:`Inbox` queues that tests read with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import auth as _auth
from autobahn.wamp import exception as _exception
from autobahn.wamp import serializer as _serializer
from autobahn.wamp import types as _types

# autobahn's API is untyped: the suite uses it through these names, typed Any.
ApplicationError: Any = _exception.ApplicationError
CallOptions: Any = _types.CallOptions
CallResult: Any = _types.CallResult
CloseDetails: Any = _types.CloseDetails
ComponentConfig: Any = _types.ComponentConfig
PublishOptions: Any = _types.PublishOptions
RegisterOptions: Any = _types.RegisterOptions
SessionDetails: Any = _types.SessionDetails
SubscribeOptions: Any = _types.SubscribeOptions
JsonSerializer: Any = _serializer.JsonSerializer
MsgPackSerializer: Any = _serializer.MsgPackSerializer
auth: Any = _auth

__all__ = [
    "TIMEOUT",
    "ApplicationError",
    "CallOptions",
    "CallResult",
    "Client",
    "Credentials",
    "Event",
    "Inbox",
    "PublishOptions",
    "Refused",
    "RegisterOptions",
    "auth",
    "connect",
    "session",
]

TIMEOUT = 5.0


class Refused(Exception):
    """The router answered HELLO (or AUTHENTICATE) with ABORT, or closed the connection."""

    def __init__(self, reason: str | None, message: str | None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: ``method`` is ``ticket`` or ``wampcra``."""

    method: str
    authid: str
    secret: str


@dataclass
class Event:
    """One EVENT (or INVOCATION) as the handler got it."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    details: Any


class Inbox:
    """An asyncio queue of whatever a handler received, read with a deadline."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, item: Any) -> None:
        self.queue.put_nowait(item)

    async def get(self, within: float = TIMEOUT) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            raise AssertionError(f"nothing arrived within {within} s") from None

    def empty(self) -> bool:
        return self.queue.empty()

    def drain(self) -> list[Any]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


class _Session(ApplicationSession):
    def __init__(
        self,
        config: ComponentConfig,
        credentials: Credentials | None,
        joined: asyncio.Future[SessionDetails],
        left: asyncio.Future[CloseDetails],
        gone: asyncio.Future[None],
    ) -> None:
        super().__init__(config)
        self._credentials = credentials
        self._joined = joined
        self._left = left
        self._gone = gone
        self.challenges: list[Any] = []

    def onConnect(self) -> None:
        c = self._credentials
        if c is None:
            self.join(self.config.realm)
        else:
            self.join(self.config.realm, authmethods=[c.method], authid=c.authid)

    def onChallenge(self, challenge: Any) -> str:
        self.challenges.append(challenge)
        c = self._credentials
        assert c is not None, challenge
        assert challenge.method == c.method, challenge
        if c.method == "ticket":
            return c.secret
        key: Any = c.secret
        extra = challenge.extra
        if "salt" in extra:
            key = auth.derive_key(c.secret, extra["salt"], extra["iterations"], extra["keylen"])
        signature: bytes | str = auth.compute_wcs(key, extra["challenge"])
        return signature.decode("ascii") if isinstance(signature, bytes) else signature

    def onJoin(self, details: SessionDetails) -> None:
        if not self._joined.done():
            self._joined.set_result(details)

    def onLeave(self, details: CloseDetails) -> None:
        if not self._joined.done():
            self._joined.set_exception(Refused(details.reason, details.message))
        if not self._left.done():
            self._left.set_result(details)
        self.disconnect()

    def onDisconnect(self) -> None:
        if not self._joined.done():
            self._joined.set_exception(Refused(None, "connection closed before WELCOME"))
        if not self._left.done():
            self._left.set_result(CloseDetails(reason=None, message="transport closed"))
        if not self._gone.done():
            self._gone.set_result(None)


SERIALIZERS: dict[str, Callable[[], Any]] = {
    "json": lambda: JsonSerializer(),
    "msgpack": lambda: MsgPackSerializer(),
    "json.batched": lambda: JsonSerializer(batched=True),
    "msgpack.batched": lambda: MsgPackSerializer(batched=True),
}


@dataclass
class Client:
    """A joined autobahn-python session."""

    session: Any  # _Session
    details: SessionDetails
    left: asyncio.Future[CloseDetails]
    gone: asyncio.Future[None]
    transport: asyncio.BaseTransport
    protocol: Any
    inboxes: list[Inbox] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.details.session)

    @property
    def subprotocol(self) -> str:
        return str(self.protocol.websocket_protocol_in_use)

    async def subscribe(self, topic: str, **options: Any) -> tuple[Any, Inbox]:
        """Subscribe; events (with details) go to the returned inbox as :class:`Event`."""
        inbox = Inbox()

        def handler(*args: Any, details: Any = None, **kwargs: Any) -> None:
            inbox.put(Event(args, kwargs, details))

        sub = await asyncio.wait_for(
            self.session.subscribe(
                handler, topic, options=SubscribeOptions(details=True, **options)
            ),
            TIMEOUT,
        )
        self.inboxes.append(inbox)
        return sub, inbox

    async def call(self, procedure: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wait_for(self.session.call(procedure, *args, **kwargs), TIMEOUT)

    async def leave(self) -> CloseDetails:
        """GOODBYE; the router's reply as autobahn reports it."""
        if not self.left.done():
            self.session.leave()
        details = await asyncio.wait_for(asyncio.shield(self.left), TIMEOUT)
        await self.close()
        return details

    async def close(self) -> None:
        """Drop the connection (if still open) and wait until it is gone."""
        if not self.gone.done():
            self.transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.gone), TIMEOUT)


async def connect(
    url: str,
    path: str,
    realm: str,
    serializer: str = "json",
    credentials: Credentials | None = None,
) -> Client:
    """Join ``realm`` at ``url`` + ``path`` over ``serializer`` (a key of SERIALIZERS)."""
    loop = asyncio.get_running_loop()
    joined: asyncio.Future[SessionDetails] = loop.create_future()
    left: asyncio.Future[CloseDetails] = loop.create_future()
    gone: asyncio.Future[None] = loop.create_future()
    made: list[_Session] = []

    def make() -> _Session:
        s = _Session(ComponentConfig(realm=realm), credentials, joined, left, gone)
        made.append(s)
        return s

    factory_class: Any = WampWebSocketClientFactory
    factory = factory_class(make, url=url + path, serializers=[SERIALIZERS[serializer]()])
    # Autobahn answers pings itself; it must not close a session that a test keeps idle.
    factory.setProtocolOptions(autoPingInterval=0, openHandshakeTimeout=TIMEOUT)
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(factory, parts.hostname, parts.port), TIMEOUT
    )
    try:
        details = await asyncio.wait_for(asyncio.shield(joined), TIMEOUT)
    except BaseException:
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(gone), TIMEOUT)
        raise
    return Client(made[0], details, left, gone, transport, protocol)


@contextlib.asynccontextmanager
async def session(
    url: str,
    path: str,
    realm: str,
    serializer: str = "json",
    credentials: Credentials | None = None,
) -> AsyncIterator[Client]:
    """A joined :class:`Client`, closed at the end."""
    c = await connect(url, path, realm, serializer, credentials)
    try:
        yield c
    finally:
        await c.close()
