"""WAMP v2 router over WebSocket: Broker and Dealer roles, JSON and MessagePack."""

from __future__ import annotations

from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.registry import AdapterSpec
from broker.subprotocols.wamp.codec import SUBPROTOCOLS
from broker.subprotocols.wamp.session import WampSession


def _factory(link: Link, context: AdapterContext) -> WampSession:
    return WampSession(link, context)


SPEC = AdapterSpec(name="wamp", tokens=tuple(SUBPROTOCOLS), factory=_factory, paths=("/wamp",))
