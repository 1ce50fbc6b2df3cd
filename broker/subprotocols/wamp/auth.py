"""A WAMP session's authentication: what HELLO asks for, a CHALLENGE if needed, the decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.core.broker import Broker


@dataclass(frozen=True, slots=True)
class WampIdentity:
    """Who the session is, as WELCOME announces it."""

    authid: str | None
    authrole: str
    authmethod: str
    authprovider: str = "static"


@dataclass(frozen=True, slots=True)
class ChallengeToSend:
    """The session must send CHALLENGE(authmethod, extra) and wait for AUTHENTICATE."""

    authmethod: str
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """ABORT with `reason` (a wamp.error URI) and `message`."""

    reason: str
    message: str


Decision = WampIdentity | ChallengeToSend | AuthFailure


class AuthFlow:
    """One session's way through authentication (anonymous until a realm configures more)."""

    def __init__(self, broker: Broker, realm: str, details: dict[str, Any], peer: str) -> None:
        self._broker = broker
        self._realm = realm
        self._details = details
        self._peer = peer

    def start(self) -> Decision:
        """Decide on HELLO alone, or ask for a challenge."""
        methods = self._details.get("authmethods")
        if methods is None or (isinstance(methods, list) and "anonymous" in methods):
            return WampIdentity(None, "anonymous", "anonymous")
        return AuthFailure(
            "wamp.error.no_auth_method", f"none of the authmethods {methods!r} is offered here"
        )

    def authenticate(self, signature: str, extra: dict[str, Any]) -> WampIdentity | AuthFailure:
        """The client's AUTHENTICATE for the challenge `start` asked for."""
        return AuthFailure("wamp.error.authentication_failed", "no challenge was sent")
