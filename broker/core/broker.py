"""Broker-wide core state: realms, the login hook, deadlines, session records and counters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from broker.core.auth import AllowAll, Authenticator
from broker.core.queues import WorkQueues
from broker.core.realm import Realm, default_work_queues, random_id
from broker.core.retained import RetainedStore
from broker.core.rpc import Procedures
from broker.core.sessions import SessionStore
from broker.core.timers import Timers


@dataclass(slots=True)
class BrokerStats:
    """Counters every adapter adds to; `$SYS/broker/...` publishes them."""

    clients_connected: int = 0
    messages_received: int = 0  # protocol packets/frames of any kind
    messages_sent: int = 0
    publish_received: int = 0
    publish_sent: int = 0
    publish_dropped: int = 0  # queued QoS 1/2 messages lost to a full session queue


def memory_session_store() -> SessionStore:
    """The default session store: records kept in memory."""
    from broker.store.memory import MemorySessionStore

    return MemorySessionStore()


def memory_retained_store() -> RetainedStore:
    """The default retained store: a MemoryRetainedStore with its default limit."""
    # Imported here, not at the top: broker.store imports broker.core, which imports this file.
    from broker.store.memory import MemoryRetainedStore

    return MemoryRetainedStore()


class Broker:
    """The realms of one broker, each with its own retained store; no I/O."""

    __slots__ = (
        "_realms",
        "authenticator",
        "clock",
        "default_realm",
        "realms",
        "sessions",
        "started",
        "stats",
        "timers",
    )

    def __init__(
        self,
        realms: Iterable[str] = ("realm1",),
        default_realm: str = "realm1",
        retained_factory: Callable[[], RetainedStore] = memory_retained_store,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.monotonic,
        sessions: SessionStore | None = None,
        queues_factory: Callable[[], WorkQueues] = default_work_queues,
    ) -> None:
        self.authenticator: Authenticator = authenticator or AllowAll()
        self.clock = clock
        self.started = clock()
        self.timers = Timers()
        self.stats = BrokerStats()
        self.sessions: SessionStore = sessions if sessions is not None else memory_session_store()
        self._realms: dict[str, Realm] = {}
        for name in realms:
            if not name:
                raise ValueError("a realm name must not be empty")
            if name not in self._realms:
                procedures = Procedures(self.timers, clock, new_id=random_id)
                self._realms[name] = Realm(name, retained_factory(), queues_factory(), procedures)
        if default_realm not in self._realms:
            # Refuse rather than add it: a typo in the configuration should not pass silently.
            raise ValueError(f"default realm {default_realm!r} is not among the realms")
        self.default_realm: Realm = self._realms[default_realm]
        self.realms: Mapping[str, Realm] = MappingProxyType(self._realms)

    def realm(self, name: str | None = None) -> Realm | None:
        """The named realm (the default one for None), or None when no such realm exists."""
        if name is None:
            return self.default_realm
        return self._realms.get(name)
