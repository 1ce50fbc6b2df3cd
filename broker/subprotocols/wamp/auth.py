"""A WAMP session's authentication: what HELLO asks for, a CHALLENGE if needed, the decision.

Anonymous, ticket and WAMP-CRA (salted secrets too); the core's Authenticator decides, and, for
WAMP-CRA, hands out the shared key (`Principals.secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.core.auth import Credentials, Identity, Principals, Secret
from broker.core.broker import Broker
from broker.core.realm import random_id

PROVIDER = "static"
# The role of a principal whose authenticator names none (the static one always does).
DEFAULT_ROLE = "authenticated"
_CHALLENGED = ("ticket", "wampcra")
_FAILED = "wamp.error.authentication_failed"
_MAX_SHOWN = 5  # offered methods repeated in an error message


@dataclass(frozen=True, slots=True)
class WampIdentity:
    """Who the session is, as WELCOME announces it (`session`: the id a challenge promised)."""

    authid: str | None
    authrole: str
    authmethod: str
    authprovider: str = PROVIDER
    session: int | None = None


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


@dataclass(frozen=True, slots=True)
class _Pending:
    method: str
    authid: str
    secret: Secret | None = None  # wampcra
    challenge: str = ""  # wampcra
    session: int | None = None


def wampcra_signature(key: bytes, challenge: str) -> str:
    """A WAMP-CRA signature: base64(HMAC-SHA256(key, challenge))."""
    return base64.b64encode(hmac.digest(key, challenge.encode(), hashlib.sha256)).decode()


def _timestamp() -> str:
    """Now in UTC, ISO 8601 with milliseconds, as the WAMP-CRA challenge has it."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class AuthFlow:
    """One session's way through authentication: the first offered method the realm allows."""

    def __init__(self, broker: Broker, realm: str, details: dict[str, Any], peer: str) -> None:
        self._broker = broker
        self._realm = realm
        self._details = details
        self._peer = peer
        self._pending: _Pending | None = None

    def start(self) -> Decision:
        """Decide on HELLO alone, or ask for a challenge."""
        offered = self._details.get("authmethods", ["anonymous"])
        authid = self._details.get("authid")
        if not isinstance(offered, list) or not all(isinstance(m, str) for m in offered):
            return AuthFailure(
                "wamp.error.protocol_violation",
                "HELLO.Details.authmethods must be a list of strings",
            )
        if authid is not None and not isinstance(authid, str):
            return AuthFailure(
                "wamp.error.protocol_violation", "HELLO.Details.authid must be a string"
            )
        authenticator = self._broker.authenticator
        principals = authenticator if isinstance(authenticator, Principals) else None
        mine = frozenset[str]()
        if principals is not None and authid:
            mine = principals.methods(self._realm, authid)
        for method in offered:
            if method == "anonymous":
                identity = authenticator.authenticate(
                    Credentials("wamp", self._peer, realm=self._realm, method="anonymous")
                )
                if identity is not None:
                    return self._identity(identity, None, "anonymous")
            elif authid and method in mine and method in _CHALLENGED:
                return self._challenge(method, authid)
        if principals is not None and authid:
            # An unknown authid (or one without any method offered) is challenged all the same,
            # with a challenge it cannot meet: its failure then looks like a wrong ticket/secret.
            anyone = principals.methods(self._realm, None)
            for method in offered:
                if method in anyone and method in _CHALLENGED:
                    return self._challenge(method, authid)
        needy = any(method in _CHALLENGED for method in offered)
        shown = ", ".join(repr(m[:40]) for m in offered[:_MAX_SHOWN])
        return AuthFailure(
            "wamp.error.no_auth_method",
            f"realm {self._realm!r} accepts none of the authmethods offered ({shown})"
            + ("; ticket and wampcra need an authid" if not authid and needy else ""),
        )

    def authenticate(self, signature: str, extra: dict[str, Any]) -> WampIdentity | AuthFailure:
        """The client's AUTHENTICATE for the challenge `start` asked for (valid once)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return AuthFailure(_FAILED, "no challenge is pending")
        if pending.method == "ticket":
            identity = self._broker.authenticator.authenticate(
                Credentials(
                    "wamp",
                    self._peer,
                    username=pending.authid,
                    password=signature.encode(),
                    realm=self._realm,
                    method="ticket",
                )
            )
            if identity is None:
                return AuthFailure(_FAILED, "authid or ticket not accepted")
            return self._identity(identity, pending.authid, "ticket")
        secret = pending.secret
        assert secret is not None
        expected = wampcra_signature(secret.key, pending.challenge).encode()
        if not hmac.compare_digest(expected, signature.encode()):
            return AuthFailure(_FAILED, "authid or signature not accepted")
        return WampIdentity(pending.authid, secret.role, "wampcra", PROVIDER, pending.session)

    def _challenge(self, method: str, authid: str) -> ChallengeToSend | AuthFailure:
        if method == "ticket":
            self._pending = _Pending("ticket", authid)
            return ChallengeToSend("ticket", {})
        principals = self._broker.authenticator
        assert isinstance(principals, Principals)
        secret = principals.secret(self._realm, authid, method)
        if secret is None:
            return AuthFailure(_FAILED, "authid or signature not accepted")
        # The id WELCOME is to carry, drawn now because the signed challenge names it.
        session = random_id()
        challenge = json.dumps(
            {
                "authid": authid,
                "authrole": secret.role,
                "authmethod": "wampcra",
                "authprovider": PROVIDER,
                "nonce": secrets.token_urlsafe(32),
                "timestamp": _timestamp(),
                "session": session,
            }
        )
        self._pending = _Pending(method, authid, secret, challenge, session)
        extra: dict[str, Any] = {"challenge": challenge}
        if secret.salt is not None:
            extra |= {"salt": secret.salt, "iterations": secret.iterations, "keylen": secret.keylen}
        return ChallengeToSend("wampcra", extra)

    def _identity(
        self, identity: Identity, authid: str | None, method: str
    ) -> WampIdentity | AuthFailure:
        if identity.realm is not None and identity.realm != self._realm:
            return AuthFailure("wamp.error.not_authorized", f"not authorized in {self._realm!r}")
        role = identity.role or ("anonymous" if method == "anonymous" else DEFAULT_ROLE)
        return WampIdentity(identity.user or authid, role, method, PROVIDER)
