"""STOMP 1.0, 1.1 and 1.2 over WebSocket."""

from __future__ import annotations

from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.registry import AdapterSpec
from broker.subprotocols.stomp.session import StompSession


def _factory(link: Link, context: AdapterContext) -> StompSession:
    return StompSession(link, context)


SPEC = AdapterSpec(
    name="stomp",
    tokens=("v12.stomp", "v11.stomp", "v10.stomp", "stomp"),
    factory=_factory,
    paths=("/stomp",),
)
