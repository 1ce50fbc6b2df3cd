"""Who may connect, and to which realm: the hook every protocol's login goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented when it connected."""

    protocol: str
    peer: str
    username: str | None = None
    password: bytes | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """An accepted client: its user name, and its realm (None: the default realm)."""

    user: str | None = None
    realm: str | None = None


class Authenticator(Protocol):
    """Decides on a login: an Identity to accept it, None to refuse it."""

    def authenticate(self, credentials: Credentials) -> Identity | None: ...


class AllowAll:
    """Accept everyone into the default realm (until authentication is configured)."""

    def authenticate(self, credentials: Credentials) -> Identity | None:
        return Identity(user=credentials.username)
