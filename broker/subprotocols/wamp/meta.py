"""The WAMP meta API of a realm: wamp.session.*, wamp.subscription.*, wamp.registration.*.

Shapes are the Advanced Profile's (Session, Subscription and Registration Meta API); where it is
silent, Crossbar's: wamp.* subscriptions are the router's own and stay out of the subscription
meta API (no events, hidden from list/lookup/match, not_authorized for get and the subscribers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from broker.subprotocols.wamp.uris import MATCHES, InvalidUri, Match, check_uri

if TYPE_CHECKING:
    from broker.core.rpc import Registration
    from broker.subprotocols.wamp.router import TopicGroup, WampRealm
    from broker.subprotocols.wamp.session import WampSession

Arguments = tuple[list[Any] | None, dict[str, Any] | None]

INVALID_ARGUMENT = "wamp.error.invalid_argument"
INVALID_URI = "wamp.error.invalid_uri"
NO_SUCH_SESSION = "wamp.error.no_such_session"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NOT_AUTHORIZED = "wamp.error.not_authorized"
CLOSE_NORMAL = "wamp.close.normal"
PROTECTED = "wamp."


class MetaError(Exception):
    """A meta procedure refused: ERROR with `error` (a wamp.error URI)."""

    def __init__(self, error: str, message: str = "") -> None:
        super().__init__(message or error)
        self.error = error


def _bind(
    procedure: str,
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    names: tuple[str, ...],
    required: int = 0,
) -> list[Any]:
    """The values of `names`, given by position or keyword as Python binds them (None: absent)."""
    # Crossbar's meta procedures are Python functions, so clients pass either form.
    args = args or []
    if len(args) > len(names):
        raise MetaError(
            INVALID_ARGUMENT, f"{procedure} takes at most {len(names)} positional arguments"
        )
    values: list[Any] = [*args, *[None] * (len(names) - len(args))]
    for key, value in (kwargs or {}).items():
        if key not in names:
            raise MetaError(INVALID_ARGUMENT, f"{procedure} has no argument {key[:100]!r}")
        index = names.index(key)
        if index < len(args):
            raise MetaError(INVALID_ARGUMENT, f"{procedure}: {key!r} given twice")
        values[index] = value
    for name, value in zip(names[:required], values, strict=False):
        if value is None:
            raise MetaError(INVALID_ARGUMENT, f"{procedure} needs {name!r}")
    return values


def _id(name: str, value: Any) -> int:
    if type(value) is not int:
        raise MetaError(INVALID_ARGUMENT, f"{name} must be an integer id")
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MetaError(INVALID_ARGUMENT, f"{name} must be a string")
    return value


def _uri(name: str, value: Any, match: Match = "exact") -> str:
    uri = _string(name, value)
    try:
        check_uri(uri, match)
    except InvalidUri as exc:
        raise MetaError(INVALID_URI, str(exc)) from None
    return uri


def _match_of(options: Any) -> Match:
    """The match policy of lookup's options (the options of SUBSCRIBE or REGISTER)."""
    if options is None:
        return "exact"
    if not isinstance(options, dict):
        raise MetaError(INVALID_ARGUMENT, "options must be a dict")
    wanted = options.get("match", "exact")
    for match in MATCHES:
        if wanted == match:
            return match
    raise MetaError(INVALID_ARGUMENT, f"unknown match policy {str(wanted)[:20]!r}")


def _protected(group: TopicGroup) -> bool:
    return group.uri.startswith(PROTECTED)


def _may_hear_meta(group: TopicGroup) -> bool:
    """Whether some wamp.* URI could be covered by `group` (a superset of those that are)."""
    uri = group.uri
    if group.match == "exact":
        return uri.startswith(PROTECTED)
    if group.match == "prefix":
        return uri.startswith(PROTECTED) or PROTECTED.startswith(uri)
    return uri.partition(".")[0] in ("", "wamp")


class MetaApi:
    """Answers the meta procedures and emits the meta events, for one realm's WAMP sessions."""

    def __init__(self, router: WampRealm) -> None:
        self._router = router
        self._epoch: float | None = None  # wall time minus clock time, fixed on first use
        self._quiet_leaves = False  # wamp.session.kill_all: no on_leave (the spec's rule)
        # Ids of the subscriptions that may hear a meta event. router.emit tests every
        # subscription of the realm, so with none of these an event is not worth its cost.
        self._watchers: set[int] = set()

    def handles(self, procedure: str) -> bool:
        """Whether `procedure` is a meta procedure answered here."""
        return procedure in _PROCEDURES

    def call(
        self,
        caller: WampSession,
        procedure: str,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
    ) -> Arguments:
        """Run a meta procedure for `caller`: (args, kwargs) of its RESULT, or MetaError."""
        handler = _PROCEDURES.get(procedure)
        if handler is None:
            raise MetaError("wamp.error.no_such_procedure", procedure)
        return handler(self, caller, procedure, args, kwargs)

    # details

    def _iso(self, created: float) -> str:
        """A clock reading (monotonic seconds) as ISO 8601 UTC with milliseconds, as Crossbar."""
        # One offset for the realm's life, so a subscription's "created" never changes between
        # two calls, whatever the wall clock does.
        if self._epoch is None:
            self._epoch = time.time() - self._router.clock()
        moment = datetime.fromtimestamp(created + self._epoch, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def session_details(self, session: WampSession) -> dict[str, Any]:
        """The details of wamp.session.get and wamp.session.on_join."""
        return {
            "session": session.id,
            "realm": self._router.realm.name,
            "authid": session.authid,
            "authrole": session.authrole,
            "authmethod": session.authmethod,
            "authprovider": session.authprovider,
            "transport": _transport(session),
        }

    def subscription_details(self, group: TopicGroup) -> dict[str, Any]:
        """The SubscriptionDetails of the spec."""
        return {
            "id": group.id,
            "created": self._iso(group.created),
            "uri": group.uri,
            "match": group.match,
        }

    def registration_details(self, registration: Registration) -> dict[str, Any]:
        """The RegistrationDetails of the spec."""
        return {
            "id": registration.id,
            "created": self._iso(registration.created),
            "uri": registration.procedure,
            "match": registration.match,
            "invoke": registration.invoke,
        }

    # wamp.session.*

    def _sessions(self, procedure: str, filter_authroles: Any) -> list[WampSession]:
        sessions = list(self._router.sessions.values())
        if filter_authroles is None:
            return sessions
        if not isinstance(filter_authroles, list) or not all(
            isinstance(role, str) for role in filter_authroles
        ):
            raise MetaError(INVALID_ARGUMENT, f"{procedure}: filter_authroles must be a list")
        roles = set(filter_authroles)
        return [session for session in sessions if session.authrole in roles]

    def _session_count(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (roles,) = _bind(procedure, args, kwargs, ("filter_authroles",))
        return [len(self._sessions(procedure, roles))], None

    def _session_list(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        # The caller is attached to the realm too: listed, as in the spec and Crossbar.
        (roles,) = _bind(procedure, args, kwargs, ("filter_authroles",))
        return [[session.id for session in self._sessions(procedure, roles)]], None

    def _session_get(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (session_id,) = _bind(procedure, args, kwargs, ("session",), 1)
        session = self._router.sessions.get(_id("session", session_id))
        if session is None:
            raise MetaError(NO_SUCH_SESSION, f"no session {session_id} in this realm")
        return [self.session_details(session)], None

    def _close_reason(self, reason: Any, message: Any) -> tuple[str, str]:
        if reason is not None:
            reason = _uri("reason", reason)
        if message is not None:
            message = _string("message", message)
        return reason or CLOSE_NORMAL, message or ""

    def _kill(self, sessions: list[WampSession], reason: str, message: str) -> int:
        for session in sessions:
            session.kill(reason, message)
        return len(sessions)

    def _session_kill(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        session_id, reason, message = _bind(
            procedure, args, kwargs, ("session", "reason", "message"), 1
        )
        target = self._router.sessions.get(_id("session", session_id))
        reason, message = self._close_reason(reason, message)
        # The spec: the caller's own id is no_such_session, "no *other* session with that ID".
        if target is None or target is caller:
            raise MetaError(NO_SUCH_SESSION, f"no other session {session_id} in this realm")
        self._kill([target], reason, message)
        return None, None

    def _session_kill_by_authid(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        authid, reason, message = _bind(procedure, args, kwargs, ("authid", "reason", "message"), 1)
        authid = _string("authid", authid)
        reason, message = self._close_reason(reason, message)
        sessions = [
            session
            for session in self._router.sessions.values()
            if session.authid == authid and session is not caller
        ]
        return [self._kill(sessions, reason, message)], None

    def _session_kill_by_authrole(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        authrole, reason, message = _bind(
            procedure, args, kwargs, ("authrole", "reason", "message"), 1
        )
        authrole = _string("authrole", authrole)
        reason, message = self._close_reason(reason, message)
        sessions = [
            session
            for session in self._router.sessions.values()
            if session.authrole == authrole and session is not caller
        ]
        return [self._kill(sessions, reason, message)], None

    def _session_kill_all(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        reason, message = _bind(procedure, args, kwargs, ("reason", "message"))
        reason, message = self._close_reason(reason, message)
        sessions = [s for s in self._router.sessions.values() if s is not caller]
        self._quiet_leaves = True
        try:
            killed = self._kill(sessions, reason, message)
        finally:
            self._quiet_leaves = False
        return [killed], None

    # wamp.subscription.*

    def _group(self, subscription_id: Any) -> TopicGroup:
        group = self._router.by_id.get(_id("subscription", subscription_id))
        if group is None:
            raise MetaError(NO_SUCH_SUBSCRIPTION, f"no subscription {subscription_id}")
        if _protected(group):
            raise MetaError(NOT_AUTHORIZED, f"subscription {subscription_id} is the router's")
        return group

    def _subscription_list(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        _bind(procedure, args, kwargs, ())
        lists: dict[str, list[int]] = {match: [] for match in MATCHES}
        for group in self._router.groups.values():
            if not _protected(group):
                lists[group.match].append(group.id)
        return [lists], None

    def _subscription_lookup(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        topic, options = _bind(procedure, args, kwargs, ("topic", "options"), 1)
        match = _match_of(options)
        topic = _uri("topic", topic, match)
        group = self._router.groups.get((topic, match))
        return [None if group is None or _protected(group) else group.id], None

    def _subscription_match(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (topic,) = _bind(procedure, args, kwargs, ("topic",), 1)
        topic = _uri("topic", topic)
        groups = [
            group
            for group in self._router.groups.values()
            if not _protected(group) and group.covers(topic)
        ]
        groups.sort(key=lambda group: MATCHES.index(group.match))  # stable: oldest first
        # Nullable, as the spec and Crossbar: null rather than an empty list.
        return [[group.id for group in groups] or None], None

    def _subscription_get(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (subscription_id,) = _bind(procedure, args, kwargs, ("subscription",), 1)
        return [self.subscription_details(self._group(subscription_id))], None

    def _subscription_list_subscribers(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (subscription_id,) = _bind(procedure, args, kwargs, ("subscription",), 1)
        return [list(self._group(subscription_id).members)], None

    def _subscription_count_subscribers(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (subscription_id,) = _bind(procedure, args, kwargs, ("subscription",), 1)
        return [len(self._group(subscription_id).members)], None

    # wamp.registration.*

    def _registration(self, registration_id: Any) -> Registration:
        found = self._router.realm.procedures.registration(_id("registration", registration_id))
        if found is None:
            raise MetaError(NO_SUCH_REGISTRATION, f"no registration {registration_id}")
        return found

    def _registration_list(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        _bind(procedure, args, kwargs, ())
        lists: dict[str, list[int]] = {match: [] for match in MATCHES}
        for registration in self._router.realm.procedures.registrations():
            lists[registration.match].append(registration.id)
        return [lists], None

    def _registration_lookup(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        uri, options = _bind(procedure, args, kwargs, ("procedure", "options"), 1)
        match = _match_of(options)
        uri = _uri("procedure", uri, match)
        found = self._router.realm.procedures.find(uri, match)
        return [None if found is None else found.id], None

    def _registration_match(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (uri,) = _bind(procedure, args, kwargs, ("procedure",), 1)
        found = self._router.realm.procedures.lookup(_uri("procedure", uri))
        return [None if found is None else found.id], None

    def _registration_get(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (registration_id,) = _bind(procedure, args, kwargs, ("registration",), 1)
        return [self.registration_details(self._registration(registration_id))], None

    def _registration_list_callees(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (registration_id,) = _bind(procedure, args, kwargs, ("registration",), 1)
        callees = self._registration(registration_id).callees
        return [[callee.session_id for callee in callees]], None

    def _registration_count_callees(
        self, caller: WampSession, procedure: str, args: Any, kwargs: Any
    ) -> Arguments:
        (registration_id,) = _bind(procedure, args, kwargs, ("registration",), 1)
        return [len(self._registration(registration_id).callees)], None

    # events: the session calls these at each change

    def _emit(self, uri: str, args: list[Any]) -> None:
        if self._watchers:
            self._router.emit(uri, args)

    def session_joined(self, session: WampSession) -> None:
        """wamp.session.on_join(details)."""
        if self._watchers:
            self._emit("wamp.session.on_join", [self.session_details(session)])

    def session_left(self, session: WampSession) -> None:
        """wamp.session.on_leave(session, authid, authrole)."""
        if not self._quiet_leaves:
            self._emit("wamp.session.on_leave", [session.id, session.authid, session.authrole])

    def subscribed(self, group: TopicGroup, session: WampSession, created: bool) -> None:
        """on_create (when new), then on_subscribe, as the spec orders them."""
        if created and _may_hear_meta(group):
            self._watchers.add(group.id)
        # Crossbar's rule: subscribing to meta topics is no news, else each observer that
        # subscribes to wamp.subscription.* would be told of itself.
        if _protected(group):
            return
        if created:
            self._emit(
                "wamp.subscription.on_create", [session.id, self.subscription_details(group)]
            )
        self._emit("wamp.subscription.on_subscribe", [session.id, group.id])

    def unsubscribed(self, group: TopicGroup, session: WampSession, deleted: bool) -> None:
        """on_unsubscribe, then on_delete (when it was the last), as the spec orders them."""
        if deleted:
            self._watchers.discard(group.id)
        if _protected(group):
            return
        self._emit("wamp.subscription.on_unsubscribe", [session.id, group.id])
        if deleted:
            self._emit("wamp.subscription.on_delete", [session.id, group.id])

    def registered(self, registration: Registration, session: WampSession, created: bool) -> None:
        """on_create (when new), then on_register."""
        if created:
            self._emit(
                "wamp.registration.on_create",
                [session.id, self.registration_details(registration)],
            )
        self._emit("wamp.registration.on_register", [session.id, registration.id])

    def unregistered(self, registration: Registration, session: WampSession, deleted: bool) -> None:
        """on_unregister, then on_delete (when it was the last callee)."""
        self._emit("wamp.registration.on_unregister", [session.id, registration.id])
        if deleted:
            self._emit("wamp.registration.on_delete", [session.id, registration.id])


def _transport(session: WampSession) -> dict[str, Any]:
    """What the session's transport is, in Crossbar's key names (implementation defined)."""
    # Only what WampSession exposes: the peer address and the negotiated token sit on its
    # private link (a public hook is needed to add them).
    serializer, _batched = session.codec_key
    return {"channel_framing": "websocket", "channel_serializer": serializer}


_Handler = Callable[[MetaApi, "WampSession", str, Any, Any], Arguments]

_PROCEDURES: dict[str, _Handler] = {
    "wamp.session.count": MetaApi._session_count,
    "wamp.session.list": MetaApi._session_list,
    "wamp.session.get": MetaApi._session_get,
    "wamp.session.kill": MetaApi._session_kill,
    "wamp.session.kill_by_authid": MetaApi._session_kill_by_authid,
    "wamp.session.kill_by_authrole": MetaApi._session_kill_by_authrole,
    "wamp.session.kill_all": MetaApi._session_kill_all,
    "wamp.subscription.list": MetaApi._subscription_list,
    "wamp.subscription.lookup": MetaApi._subscription_lookup,
    "wamp.subscription.match": MetaApi._subscription_match,
    "wamp.subscription.get": MetaApi._subscription_get,
    "wamp.subscription.list_subscribers": MetaApi._subscription_list_subscribers,
    "wamp.subscription.count_subscribers": MetaApi._subscription_count_subscribers,
    "wamp.registration.list": MetaApi._registration_list,
    "wamp.registration.lookup": MetaApi._registration_lookup,
    "wamp.registration.match": MetaApi._registration_match,
    "wamp.registration.get": MetaApi._registration_get,
    "wamp.registration.list_callees": MetaApi._registration_list_callees,
    "wamp.registration.count_callees": MetaApi._registration_count_callees,
}
