"""The WAMP meta API of a realm: wamp.session.*, wamp.subscription.*, wamp.registration.*."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.core.rpc import Registration
    from broker.subprotocols.wamp.router import TopicGroup, WampRealm
    from broker.subprotocols.wamp.session import WampSession

Arguments = tuple[list[Any] | None, dict[str, Any] | None]


class MetaError(Exception):
    """A meta procedure refused: ERROR with `error` (a wamp.error URI)."""

    def __init__(self, error: str, message: str = "") -> None:
        super().__init__(message or error)
        self.error = error


class MetaApi:
    """Answers the meta procedures and emits the meta events, for one realm's WAMP sessions."""

    def __init__(self, router: WampRealm) -> None:
        self._router = router

    def handles(self, procedure: str) -> bool:
        return False

    def call(
        self,
        caller: WampSession,
        procedure: str,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
    ) -> Arguments:
        raise MetaError("wamp.error.no_such_procedure", procedure)

    # events: the session calls these at each change

    def session_joined(self, session: WampSession) -> None:
        pass

    def session_left(self, session: WampSession) -> None:
        pass

    def subscribed(self, group: TopicGroup, session: WampSession, created: bool) -> None:
        pass

    def unsubscribed(self, group: TopicGroup, session: WampSession, deleted: bool) -> None:
        pass

    def registered(self, registration: Registration, session: WampSession, created: bool) -> None:
        pass

    def unregistered(self, registration: Registration, session: WampSession, deleted: bool) -> None:
        pass
