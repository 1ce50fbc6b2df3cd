"""Session records that outlive a connection (MQTT persistent sessions, later STOMP/WAMP ones)."""

from __future__ import annotations

from typing import Protocol

# (protocol, realm, client id): client ids are unique per protocol and realm.
SessionKey = tuple[str, str, str]


class SessionStore(Protocol):
    """Where session records live between connections; the memory store keeps them as they are."""

    def get(self, key: SessionKey) -> object | None:
        """The record under `key`, or None."""

    def put(self, key: SessionKey, record: object) -> None:
        """Keep `record` under `key`, replacing any other."""

    def delete(self, key: SessionKey) -> None:
        """Forget the record under `key` (nothing happens if there is none)."""

    def __len__(self) -> int: ...
