"""What the WAMP suite knows about the router under test, and the helpers built on it.

:class:`Server` bundles the target (``wsbroker``, ``crossbar``, other), its endpoint, realms,
credentials and the few places where Crossbar.io legitimately differs. :class:`Peers` opens
autobahn-python and raw sessions for one test and closes them all at its end. :func:`run_js`
runs the autobahn-js driver under node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.node import run_driver
from conformance.wamp import clients, wire
from conformance.wamp.clients import Client, Credentials
from conformance.wamp.rawwamp import RawWamp, open_raw

__all__ = [
    "JS_DIR",
    "SERIALIZERS",
    "Auth",
    "Peers",
    "Salted",
    "Server",
    "Uris",
    "event",
    "js_peer",
    "peers",
    "run_js",
]

JS_DIR = Path(__file__).resolve().parent / "js"
SERIALIZERS = ("json", "msgpack")


@dataclass(frozen=True)
class Salted:
    user: str
    secret: str
    salt: str
    iterations: int
    keylen: int
    role: str


@dataclass(frozen=True)
class Auth:
    """The target's principals, from WSBROKER_WAMP_* (tests that need one skip without it)."""

    realm: str | None = None
    ticket_user: str | None = None
    ticket: str | None = None
    ticket_role: str | None = None
    denied_prefix: str | None = None  # where the ticket user's role may do nothing
    cra_user: str | None = None
    cra_secret: str | None = None
    cra_role: str | None = None
    salted: Salted | None = None

    @classmethod
    def from_env(cls) -> Auth:
        e = os.environ.get
        salted = None
        if e("WSBROKER_WAMP_SCRA_USER"):
            salted = Salted(
                user=e("WSBROKER_WAMP_SCRA_USER", ""),
                secret=e("WSBROKER_WAMP_SCRA_SECRET", ""),
                salt=e("WSBROKER_WAMP_SCRA_SALT", ""),
                iterations=int(e("WSBROKER_WAMP_SCRA_ITERATIONS") or 1000),
                keylen=int(e("WSBROKER_WAMP_SCRA_KEYLEN") or 32),
                role=e("WSBROKER_WAMP_SCRA_ROLE", ""),
            )
        return cls(
            realm=e("WSBROKER_WAMP_AUTH_REALM") or None,
            ticket_user=e("WSBROKER_WAMP_TICKET_USER") or None,
            ticket=e("WSBROKER_WAMP_TICKET") or None,
            ticket_role=e("WSBROKER_WAMP_TICKET_ROLE") or None,
            denied_prefix=e("WSBROKER_WAMP_DENIED_PREFIX") or None,
            cra_user=e("WSBROKER_WAMP_CRA_USER") or None,
            cra_secret=e("WSBROKER_WAMP_CRA_SECRET") or None,
            cra_role=e("WSBROKER_WAMP_CRA_ROLE") or None,
            salted=salted,
        )

    def need_realm(self) -> str:
        if not self.realm:
            pytest.skip("no authentication configured: set WSBROKER_WAMP_AUTH_REALM (and users)")
        return self.realm

    def need_ticket(self) -> Credentials:
        self.need_realm()
        if not (self.ticket_user and self.ticket):
            pytest.skip("no ticket user: set WSBROKER_WAMP_TICKET_USER / _TICKET / _TICKET_ROLE")
        return Credentials("ticket", self.ticket_user, self.ticket)

    def need_cra(self) -> Credentials:
        self.need_realm()
        if not (self.cra_user and self.cra_secret):
            pytest.skip("no WAMP-CRA user: set WSBROKER_WAMP_CRA_USER / _CRA_SECRET / _CRA_ROLE")
        return Credentials("wampcra", self.cra_user, self.cra_secret)

    def need_salted(self) -> Salted:
        self.need_realm()
        if self.salted is None:
            pytest.skip(
                "no salted WAMP-CRA user: set WSBROKER_WAMP_SCRA_USER / _SECRET / _SALT / "
                "_ITERATIONS / _KEYLEN / _ROLE"
            )
        return self.salted


@dataclass(frozen=True)
class Server:
    name: str  # "wsbroker", "crossbar" or another name
    url: str  # ws://host:port
    path: str  # the WAMP WebSocket path
    realm: str  # the default realm (realm1)
    realm2: str | None  # a second realm
    auth: Auth
    mqtt_path: str = "/mqtt"
    stomp_path: str = "/stomp"
    max_message_size: int = 1_048_576

    @property
    def strict(self) -> bool:
        """Hold the router to the issue's choices where the spec leaves room (ours only)."""
        return self.name == "wsbroker"

    @property
    def crossbar(self) -> bool:
        return self.name == "crossbar"

    @property
    def json_batch_separator(self) -> bytes:
        """What ends each batched JSON message: 0x1e per the spec; Crossbar writes and expects
        0x18 (autobahn-python's serializer spells it ``b"\\30"``, an octal escape)."""
        return b"\x18" if self.crossbar else wire.RECORD_SEPARATOR

    def crossbar_deviates(self, what: str) -> None:
        """Skip on Crossbar, which does ``what`` where the spec says otherwise (listed in
        docs/conformance-wamp-notes.md)."""
        if self.crossbar:
            pytest.skip(f"Crossbar deviates from the spec here: {what}")

    def need_realm2(self) -> str:
        if self.realm2 is None:
            pytest.skip("no second realm: set WSBROKER_WAMP_REALM2")
        return self.realm2

    def timeout_option(self, ms: int) -> int:
        """CALL.Options.timeout for ``ms`` milliseconds, in the unit the target reads it in.

        The spec says milliseconds; Crossbar (and autobahn's CallOptions) take it as seconds.
        """
        if self.crossbar:
            return max(1, math.ceil(ms / 1000))
        return ms

    def timeout_seconds(self, ms: int) -> float:
        """How long the target takes to time out a CALL given ``timeout_option(ms)``."""
        if self.crossbar:
            # seconds, in a batched timer with 1 s buckets
            return self.timeout_option(ms) + 1.0
        return ms / 1000


@dataclass(frozen=True)
class Uris:
    """URIs private to one test."""

    uid: str

    def __call__(self, *parts: str) -> str:
        return ".".join(("conf", self.uid, *parts))

    def disclosed(self, *parts: str) -> str:
        """Under ``conf.disclosed.``: where Crossbar's role config discloses (see the notes)."""
        return ".".join(("conf", "disclosed", self.uid, *parts))

    def topic(self, *parts: str) -> str:
        """The canonical (MQTT) topic of ``self(*parts)``: levels separated by ``/``."""
        return "/".join(("conf", self.uid, *parts))


class Peers:
    """Opens sessions for one test; :func:`peers` closes them all when the test ends."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._clients: list[Client] = []
        self._raw: list[RawWamp] = []

    async def autobahn(
        self,
        serializer: str = "json",
        *,
        realm: str | None = None,
        credentials: Credentials | None = None,
    ) -> Client:
        """A joined autobahn-python session over ``serializer``."""
        s = self.server
        c = await clients.connect(s.url, s.path, realm or s.realm, serializer, credentials)
        self._clients.append(c)
        return c

    async def raw(
        self,
        subprotocol: str = "wamp.2.json",
        *,
        realm: str | None = "",
        offer: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> RawWamp:
        """A raw peer; joined to ``realm`` (default: the default realm; None: not joined)."""
        s = self.server
        peer = await open_raw(
            s.url, s.path, subprotocol, offer=offer, separator=s.json_batch_separator
        )
        self._raw.append(peer)
        if realm is not None:
            await peer.join(realm or self.server.realm, details)
        return peer

    async def close(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                await c.close()
        for p in self._raw:
            with contextlib.suppress(Exception):
                await p.aclose()


@contextlib.asynccontextmanager
async def peers(server: Server) -> AsyncIterator[Peers]:
    p = Peers(server)
    try:
        yield p
    finally:
        await p.close()


async def bystander_round_trip(server: Server, peer: RawWamp | None, uris: Uris) -> None:
    """A session opened before some bad input still works: a publish reaches its own
    subscription (exclude_me false)."""
    assert peer is not None
    topic = uris("bystander", str(peer.next_id()))
    sub = await peer.subscribe(topic)
    pub = await peer.publish_acked(topic, ["still here"], exclude_me=False)
    ev = await peer.expect(wire.EVENT)
    assert ev[1:3] == [sub, pub], ev
    assert ev[4] == ["still here"], ev


def run_js(
    server: Server, scenario: str, timeout: float = 30.0, **params: Any
) -> list[dict[str, Any]]:
    """Run ``js/driver.mjs`` for ``scenario``; its JSON lines. Skips without node or npm ci."""
    params.setdefault("realm", server.realm)
    return run_driver(JS_DIR, "autobahn", server.url + server.path, scenario, timeout, params)


class JsPeer:
    """An autobahn-js scenario running under node while the test drives the other side: read
    its JSON lines as they come (``await js.event("ready")``), then ``await js.finish()``."""

    def __init__(self, proc: asyncio.subprocess.Process, scenario: str) -> None:
        self.proc = proc
        self.scenario = scenario
        self.events: list[dict[str, Any]] = []

    async def _line(self, within: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
            if not raw:
                return None
            if raw.startswith(b"{"):
                e: dict[str, Any] = json.loads(raw)
                self.events.append(e)
                return e

    async def event(self, name: str, within: float = 10.0) -> dict[str, Any]:
        """Read lines until the event ``name`` (AssertionError if the driver fails or ends)."""
        while True:
            e = await self._line(within)
            if e is None or e["event"] in ("fail", "timeout"):
                await self._fail(f"waiting for {name!r}")
            assert e is not None
            if e["event"] == name:
                return e

    async def finish(self, within: float = 10.0) -> list[dict[str, Any]]:
        """Read to the end; the driver must end with ``done``. All its events."""
        while (e := await self._line(within)) is not None:
            if e["event"] in ("fail", "timeout"):
                await self._fail("finishing")
        await asyncio.wait_for(self.proc.wait(), within)
        last = self.events[-1] if self.events else {"event": "no output"}
        if last["event"] != "done":
            await self._fail("finishing")
        return self.events

    async def _fail(self, doing: str) -> None:
        stderr = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(TimeoutError):
                stderr = await asyncio.wait_for(self.proc.stderr.read(), 2.0)
        raise AssertionError(
            f"autobahn-js scenario {self.scenario!r} failed while {doing}: events {self.events}; "
            f"stderr {stderr[-2000:]!r}"
        )


@contextlib.asynccontextmanager
async def js_peer(
    server: Server, scenario: str, run_for: float = 15.0, **params: Any
) -> AsyncIterator[JsPeer]:
    """Start ``js/driver.mjs`` for ``scenario`` (it gives up after ``run_for`` seconds); killed
    at the end if still running."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the autobahn-js tests need it")
    if not (JS_DIR / "node_modules" / "autobahn").is_dir():
        pytest.skip("conformance/wamp/js/node_modules is missing: run `npm ci` there")
    params.setdefault("timeout_ms", int(run_for * 1000))
    params.setdefault("realm", server.realm)
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "driver.mjs"), server.url + server.path, scenario, json.dumps(params),
        cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield JsPeer(proc, scenario)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The first event called ``name``."""
    for e in events:
        if e["event"] == name:
            return e
    raise AssertionError(f"no {name!r} event in {events}")
