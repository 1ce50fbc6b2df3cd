"""Listening sockets, the connections they hold, their timers and their graceful end."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import ssl
from typing import TYPE_CHECKING

import anyio

from broker import __version__
from broker.subprotocols.base import AdapterContext
from broker.subprotocols.registry import Registry
from broker.transport.connection import ClientConnection
from broker.transport.http import Request

if TYPE_CHECKING:
    from broker.config import Settings

log = logging.getLogger("broker.connection")
server_log = logging.getLogger("broker.server")

# How often deadlines (handshake, ping, idle, close) are checked, at most.
_TICK_SECONDS = 0.25


class Listener:
    """The broker's port: accepts connections and keeps the set of them."""

    def __init__(self, settings: Settings, context: AdapterContext, registry: Registry) -> None:
        self.settings = settings
        self.context = context
        self.registry = registry
        self.loop = asyncio.get_running_loop()
        self.connections: set[ClientConnection] = set()
        self.websockets = 0  # connections past the upgrade
        self.dropped_messages = 0
        self.slow_disconnects = 0
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-"
        self._drained = anyio.Event()
        # Connections with something queued; one callback per loop iteration writes them all.
        self._dirty: list[ClientConnection] = []
        self.addresses: list[tuple[str, int]] = []

    # used by connections

    def now(self) -> float:
        return self.loop.time()

    def next_session_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    @property
    def open_count(self) -> int:
        return len(self.connections)

    def attach(self, connection: ClientConnection) -> None:
        self.connections.add(connection)

    def detach(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._drained.set()

    def schedule_flush(self, connection: ClientConnection) -> None:
        """Have `connection` written out at the end of this loop iteration."""
        dirty = self._dirty
        if not dirty:
            self.loop.call_soon(self._flush_all)
        dirty.append(connection)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            connection.flush()

    def count_dropped(self) -> None:
        self.dropped_messages += 1

    def count_slow_disconnect(self) -> None:
        self.slow_disconnects += 1

    def http_route(self, request: Request) -> tuple[int, bytes, str]:
        """Plain HTTP on the WebSocket port: (status, body, content type)."""
        if request.path == "/healthz":
            if request.method not in ("GET", "HEAD"):
                return 405, b"use GET\n", "text/plain; charset=utf-8"
            body = {"status": "ok", "version": __version__, "connections": self.websockets}
            return 200, json.dumps(body).encode(), "application/json"
        return 404, b"not found\n", "text/plain; charset=utf-8"

    def connection_opened(self, connection: ClientConnection) -> None:
        """Count and log a connection that finished its upgrade."""
        self.websockets += 1
        log.info(
            "opened peer=%s subprotocol=%s path=%s",
            connection.peer,
            connection.subprotocol or "raw",
            connection.path,
            extra={
                "event": "connection_opened",
                "peer": connection.peer,
                "subprotocol": connection.subprotocol or "raw",
                "path": connection.path,
                "session": connection.session_id,
            },
        )

    def connection_closed(self, connection: ClientConnection, code: int, reason: str) -> None:
        """Count and log the end of an upgraded connection."""
        self.websockets -= 1
        log.info(
            "closed peer=%s subprotocol=%s code=%d reason=%s",
            connection.peer,
            connection.subprotocol or "raw",
            code,
            reason or "-",
            extra={
                "event": "connection_closed",
                "peer": connection.peer,
                "subprotocol": connection.subprotocol or "raw",
                "code": code,
                "reason": reason,
                "session": connection.session_id,
            },
        )

    # lifecycle

    async def start(self) -> list[tuple[str, int]]:
        """Bind and listen; return the bound (host, port) addresses."""
        settings = self.settings
        tls: ssl.SSLContext | None = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(settings.tls_cert, settings.tls_key)
        self._server = await self.loop.create_server(
            lambda: ClientConnection(self),
            settings.host,
            settings.port,
            ssl=tls,
            ssl_handshake_timeout=settings.handshake_timeout if tls else None,
            reuse_address=True,
            backlog=1024,
        )
        addresses = [sock.getsockname()[:2] for sock in self._server.sockets]
        self.addresses = addresses
        for host, port in addresses:
            shown = f"[{host}]" if ":" in host else host
            server_log.info(
                "listening on %s://%s:%d",
                settings.scheme,
                shown,
                port,
                extra={"event": "listening", "host": host, "port": port},
            )
        return addresses

    async def keep_time(self) -> None:
        """Run every connection's deadlines, forever."""
        while True:
            await anyio.sleep(_TICK_SECONDS)
            now = self.now()
            for connection in list(self.connections):
                connection.tick(now)

    async def shutdown(self) -> None:
        """Stop accepting, close every client with 1001, wait for them (bounded), drop the rest."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            with anyio.move_on_after(self.settings.close_timeout):
                await self._drained.wait()
        for connection in list(self.connections):
            connection.abort("shutdown")
        if self._server is not None:
            await self._server.wait_closed()
        server_log.info("stopped", extra={"event": "stopped"})
