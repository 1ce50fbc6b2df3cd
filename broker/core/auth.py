"""Who may connect, and to which realm: the hook every protocol's login goes through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Methods whose client presents the secret itself (checked by `authenticate`); a principal of any
# other method shares a key with the broker and goes through `Principals.secret`.
PRESENTED_METHODS = frozenset({"ticket", "password"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented when it connected.

    `method` None is a protocol's plain login (MQTT, STOMP today); "anonymous", "ticket" or
    "password" ask an authenticator that knows principals to check them in `realm`.
    """

    protocol: str
    peer: str
    username: str | None = None
    password: bytes | None = None
    client_id: str | None = None
    realm: str | None = None  # None: the default realm
    method: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """An accepted client: its user name, its realm (None: the default realm) and its role."""

    user: str | None = None
    realm: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    """What a challenge-response login needs: the HMAC key, the role it grants, its salting."""

    key: bytes  # unsalted: the secret itself; salted: derive_key(secret, salt, ...)
    role: str
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32


class Authenticator(Protocol):
    """Decides on a login: an Identity to accept it, None to refuse it."""

    def authenticate(self, credentials: Credentials) -> Identity | None: ...


@runtime_checkable
class Principals(Protocol):
    """What an authenticator that knows principals adds, for challenge-response methods."""

    def methods(self, realm: str, user: str | None) -> frozenset[str]:
        """The methods `user` has in `realm` (for None: those any principal there has)."""
        ...

    def secret(self, realm: str, user: str, method: str) -> Secret | None:
        """The shared key for `user`'s `method`; for an unknown user, a decoy no one can match."""
        ...


class AllowAll:
    """Accept everyone into the default realm (until authentication is configured)."""

    def authenticate(self, credentials: Credentials) -> Identity | None:
        return Identity(user=credentials.username)


def derive_key(secret: str, salt: str, iterations: int = 1000, keylen: int = 32) -> bytes:
    """A salted secret as WAMP-CRA clients derive it: base64(PBKDF2-HMAC-SHA256(...))."""
    raw = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations, keylen)
    return base64.b64encode(raw)


@dataclass(frozen=True, slots=True)
class Principal:
    """One configured login: `secret` is the ticket (password) or the shared secret."""

    user: str
    role: str
    method: str
    secret: str
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32


@dataclass(frozen=True, slots=True)
class RealmPolicy:
    """Who may join one realm: anonymous clients (under which role) and the principals."""

    anonymous: bool = True
    anonymous_role: str = "anonymous"
    principals: tuple[Principal, ...] = ()


class _Realm:
    __slots__ = ("by_login", "decoys", "methods", "policy", "secrets")

    def __init__(self, policy: RealmPolicy) -> None:
        self.policy = policy
        self.by_login = {(p.user, p.method): p for p in policy.principals}
        self.methods = frozenset(p.method for p in policy.principals)
        # Derived once here: a PBKDF2 run per login would let timing tell real users from decoys.
        self.secrets = {
            (p.user, p.method): Secret(
                derive_key(p.secret, p.salt, p.iterations, p.keylen)
                if p.salt is not None
                else p.secret.encode(),
                p.role,
                p.salt,
                p.iterations,
                p.keylen,
            )
            for p in policy.principals
            if p.method not in PRESENTED_METHODS
        }
        # A decoy looks like the realm's first principal of its method, salted or not.
        self.decoys: dict[str, Secret] = {}
        for (_, method), secret in self.secrets.items():
            self.decoys.setdefault(method, secret)


class StaticAuthenticator:
    """Principals configured per realm; plain logins (method None) go to `fallback`."""

    def __init__(
        self,
        realms: Mapping[str, RealmPolicy],
        default_realm: str = "realm1",
        fallback: Authenticator | None = None,
    ) -> None:
        self._realms = {name: _Realm(policy) for name, policy in realms.items()}
        self._open = _Realm(RealmPolicy())
        self._default_realm = default_realm
        self._fallback: Authenticator = fallback or AllowAll()
        self._decoy_key = secrets.token_bytes(32)  # per process: decoys stay unguessable

    def _realm(self, name: str | None) -> _Realm:
        return self._realms.get(self._default_realm if name is None else name, self._open)

    def authenticate(self, credentials: Credentials) -> Identity | None:
        method = credentials.method
        if method is None:
            return self._fallback.authenticate(credentials)
        realm = self._realm(credentials.realm)
        if method == "anonymous":
            if not realm.policy.anonymous:
                return None
            return Identity(None, credentials.realm, realm.policy.anonymous_role)
        if method not in PRESENTED_METHODS or credentials.username is None:
            return None
        # A password login (MQTT, STOMP) is a ticket login under another name.
        principal = realm.by_login.get((credentials.username, "ticket"))
        expected = principal.secret.encode() if principal is not None else self._decoy_key
        # Compared even for an unknown user, so that the time taken does not tell.
        matched = hmac.compare_digest(expected, credentials.password or b"")
        if principal is None or not matched:
            return None
        return Identity(principal.user, credentials.realm, principal.role)

    def methods(self, realm: str, user: str | None) -> frozenset[str]:
        """The methods `user` has in `realm` (for None: those any principal there has)."""
        found = self._realm(realm)
        if user is None:
            return found.methods
        return frozenset(method for method in found.methods if (user, method) in found.by_login)

    def secret(self, realm: str, user: str, method: str) -> Secret | None:
        """The shared key for `user`'s `method`; for an unknown user, a decoy no one can match."""
        found = self._realm(realm)
        secret = found.secrets.get((user, method))
        if secret is not None:
            return secret
        model = found.decoys.get(method)
        if model is None:
            return None
        # Stable per user, so that asking twice does not reveal a made-up salt.
        login = f"{realm}\0{user}\0{method}".encode()
        key = hmac.digest(self._decoy_key, b"key\0" + login, "sha256")
        salt = hmac.digest(self._decoy_key, b"salt\0" + login, "sha256")[:12]
        shown = base64.b64encode(salt).decode() if model.salt is not None else None
        return Secret(key, model.role, shown, model.iterations, model.keylen)
