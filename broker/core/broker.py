"""Broker-wide core state: the configured realms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from broker.core.realm import Realm
from broker.core.retained import RetainedStore


def memory_retained_store() -> RetainedStore:
    """The default retained store: a MemoryRetainedStore with its default limit."""
    # Imported here, not at the top: broker.store imports broker.core, which imports this file.
    from broker.store.memory import MemoryRetainedStore

    return MemoryRetainedStore()


class Broker:
    """The realms of one broker, each with its own retained store; no I/O."""

    __slots__ = ("_realms", "default_realm", "realms")

    def __init__(
        self,
        realms: Iterable[str] = ("realm1",),
        default_realm: str = "realm1",
        retained_factory: Callable[[], RetainedStore] = memory_retained_store,
    ) -> None:
        self._realms: dict[str, Realm] = {}
        for name in realms:
            if not name:
                raise ValueError("a realm name must not be empty")
            if name not in self._realms:
                self._realms[name] = Realm(name, retained_factory())
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
