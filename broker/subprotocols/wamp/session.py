"""One WAMP connection's state machine: the session, and its Broker and Dealer roles."""

from __future__ import annotations

import enum
import logging
from typing import Any

from broker.core.message import Audience, Delivery, Message, Publisher
from broker.core.realm import Realm, random_id
from broker.core.retained import RetainedStoreFull
from broker.core.rpc import Call, CancelMode, RpcError
from broker.core.topics import InvalidTopic
from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.wamp.auth import (
    AuthFailure,
    AuthFlow,
    ChallengeToSend,
    Decision,
    WampIdentity,
)
from broker.subprotocols.wamp.codec import SUBPROTOCOLS, WampCodec
from broker.subprotocols.wamp.messages import (
    Abort,
    Authenticate,
    Cancel,
    Challenge,
    Error,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    ProtocolError,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)
from broker.subprotocols.wamp.messages import (
    Call as CallMessage,
)
from broker.subprotocols.wamp.messages import (
    Message as WampMessage,
)
from broker.subprotocols.wamp.meta import MetaError
from broker.subprotocols.wamp.payload import payload_of
from broker.subprotocols.wamp.router import WampRealm
from broker.subprotocols.wamp.uris import MATCHES, InvalidUri, check_uri, topic_of

log = logging.getLogger(__name__)

PUBLISH, SUBSCRIBE, UNSUBSCRIBE, CALL, REGISTER, UNREGISTER, INVOCATION = 16, 32, 34, 48, 64, 66, 68
MAX_SUBSCRIPTIONS = 1000  # per session
MAX_REGISTRATIONS = 1000  # per session
_CANCEL_MODES: tuple[CancelMode, ...] = ("skip", "kill", "killnowait")
_INVOKE = ("single", "roundrobin", "random", "first", "last")
_WS_NORMAL = 1000
_AUDIENCE_KEYS = (
    "exclude",
    "eligible",
    "exclude_authid",
    "eligible_authid",
    "exclude_authrole",
    "eligible_authrole",
)

ROLES = {
    "broker": {
        "features": {
            "publisher_identification": True,
            "publisher_exclusion": True,
            "subscriber_blackwhite_listing": True,
            "pattern_based_subscription": True,
            "event_retention": True,
            "session_meta_api": True,
            "subscription_meta_api": True,
        }
    },
    "dealer": {
        "features": {
            "caller_identification": True,
            "call_canceling": True,
            "call_timeout": True,
            "progressive_call_results": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "session_meta_api": True,
            "registration_meta_api": True,
        }
    },
}


class Phase(enum.Enum):
    AWAITING_HELLO = enum.auto()
    AUTHENTICATING = enum.auto()  # CHALLENGE sent, AUTHENTICATE awaited
    ESTABLISHED = enum.auto()
    CLOSING = enum.auto()  # our GOODBYE went out, the client's reply is awaited
    CLOSED = enum.auto()


def _wamp_realm(realm: Realm, context: AdapterContext) -> WampRealm:
    found = realm.adapters.get("wamp")
    if found is None:
        found = realm.adapters["wamp"] = WampRealm(realm, context.broker.clock)
    assert isinstance(found, WampRealm)
    return found


def _ids(value: Any) -> frozenset[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise ValueError("must be a list of session ids")
    return frozenset(value)


def _names(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return frozenset(value)


def audience_of(options: dict[str, Any]) -> Audience | None:
    """The black- and white-lists of a PUBLISH; ValueError for a malformed one."""
    if not any(options.get(key) is not None for key in _AUDIENCE_KEYS):
        return None
    return Audience(
        exclude=_ids(options.get("exclude")) or frozenset(),
        eligible=_ids(options.get("eligible")),
        exclude_authid=_names(options.get("exclude_authid")) or frozenset(),
        eligible_authid=_names(options.get("eligible_authid")),
        exclude_authrole=_names(options.get("exclude_authrole")) or frozenset(),
        eligible_authrole=_names(options.get("eligible_authrole")),
    )


class WampSession:
    """The adapter for one WAMP-over-WebSocket connection."""

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self._link = link
        self._context = context
        self._broker = context.broker
        serializer, batched = SUBPROTOCOLS.get(link.subprotocol or "", ("json", False))
        self._codec = WampCodec(serializer, batched=batched)
        self.codec_key = (serializer, batched)
        self._phase = Phase.AWAITING_HELLO
        self._realm: Realm = context.broker.default_realm
        self._router: WampRealm | None = None
        self._subscriptions: set[int] = set()
        self._registrations: set[int] = set()
        self.id = 0
        self.session_id = 0  # the core's callers and callees go by the WAMP session id
        self.origin_key = ""
        self.authid: str | None = None
        self.authrole: str | None = "anonymous"
        self.authmethod = "anonymous"
        self.authprovider = "static"
        self._auth: AuthFlow | None = None
        self.cancels = False  # the callee role announced call_canceling: INTERRUPT is understood

    # Adapter

    def on_open(self) -> None:
        self._link.set_receive_timeout(self._context.settings.handshake_timeout)

    def on_message(self, data: bytes, text: bool) -> None:
        for message in self._codec.decode(data, text):
            if self._phase is Phase.CLOSED:
                return
            if isinstance(message, ProtocolError):
                self._abort("wamp.error.protocol_violation", message.message)
                return
            self._dispatch(message)

    def on_close(self) -> None:
        self._phase = Phase.CLOSED
        self._leave()

    def on_receive_timeout(self) -> None:
        if self._phase is Phase.AWAITING_HELLO:
            self._abort("wamp.error.protocol_violation", "no HELLO in time")
        elif self._phase is Phase.AUTHENTICATING:
            self._abort("wamp.error.authentication_failed", "no AUTHENTICATE in time")

    def on_shutdown(self) -> None:
        if self._phase is Phase.ESTABLISHED:
            self._send(Goodbye({"message": "server shutting down"}, "wamp.close.system_shutdown"))
            self._phase = Phase.CLOSING

    # messages from the client

    def _dispatch(self, message: WampMessage) -> None:
        kind = type(message)
        if self._phase is Phase.AWAITING_HELLO:
            if kind is Hello:
                self._hello(message)  # type: ignore[arg-type]
            else:
                self._abort("wamp.error.protocol_violation", f"expected HELLO, not {kind.__name__}")
            return
        if self._phase is Phase.AUTHENTICATING:
            if kind is Authenticate:
                self._authenticate(message)  # type: ignore[arg-type]
            else:
                self._abort(
                    "wamp.error.protocol_violation", f"expected AUTHENTICATE, not {kind.__name__}"
                )
            return
        if self._phase is Phase.CLOSING:
            if kind is Goodbye:
                self._phase = Phase.CLOSED
                self._link.close(_WS_NORMAL, "goodbye")
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._abort(
                "wamp.error.protocol_violation",
                f"{kind.__name__.upper()} is not a message a client may send here",
            )
            return
        handler(self, message)

    def _hello(self, hello: Hello) -> None:
        realm = self._broker.realm(hello.realm) if hello.realm in self._broker.realms else None
        if realm is None:
            self._abort("wamp.error.no_such_realm", f"no realm {hello.realm[:100]!r} here")
            return
        self._realm = realm
        roles = hello.details.get("roles")
        callee = roles.get("callee") if isinstance(roles, dict) else None
        features = callee.get("features") if isinstance(callee, dict) else None
        self.cancels = isinstance(features, dict) and features.get("call_canceling") is True
        self._auth = AuthFlow(self._broker, realm.name, hello.details, self._link.peer)
        self._decide(self._auth.start())

    def _authenticate(self, authenticate: Authenticate) -> None:
        if self._auth is None:
            self._abort("wamp.error.protocol_violation", "AUTHENTICATE without a CHALLENGE")
            return
        self._decide(self._auth.authenticate(authenticate.signature, authenticate.extra))

    def _decide(self, decision: Decision) -> None:
        if isinstance(decision, AuthFailure):
            self._abort(decision.reason, decision.message)
        elif isinstance(decision, ChallengeToSend):
            self._phase = Phase.AUTHENTICATING
            self._send(Challenge(decision.authmethod, decision.extra))
        else:
            self._welcome(decision)

    def _welcome(self, identity: WampIdentity) -> None:
        self._auth = None
        realm = self._realm
        self._router = router = _wamp_realm(realm, self._context)
        # The id a WAMP-CRA challenge promised, unless another session took it meanwhile.
        self.id = self.session_id = identity.session or random_id()
        while self.id in router.sessions:
            self.id = self.session_id = random_id()
        self.origin_key = f"wamp:{self.id}"
        self.authid = identity.authid if identity.authid is not None else str(self.id)
        self.authrole = identity.authrole
        self.authmethod = identity.authmethod
        self.authprovider = identity.authprovider
        router.sessions[self.id] = self
        self._phase = Phase.ESTABLISHED
        self._link.set_receive_timeout(None)
        self._send(
            Welcome(
                self.id,
                {
                    "realm": realm.name,
                    "authid": self.authid,
                    "authrole": self.authrole,
                    "authmethod": self.authmethod,
                    "authprovider": self.authprovider,
                    "roles": ROLES,
                },
            )
        )
        router.meta.session_joined(self)

    def kill(self, reason: str, message: str) -> None:
        """Another session ended this one (wamp.session.kill): GOODBYE, then close."""
        if self._phase is not Phase.ESTABLISHED:
            return
        self._end(Goodbye({"message": message} if message else {}, reason), "killed")

    def _goodbye(self, goodbye: Goodbye) -> None:
        self._end(Goodbye({}, "wamp.close.goodbye_and_out"), "goodbye")

    # Broker role

    def _publish(self, publish: Publish) -> None:
        options = publish.options
        acknowledge = options.get("acknowledge") is True
        if "acknowledge" in options and type(options["acknowledge"]) is not bool:
            self._error(
                PUBLISH, publish.request, "wamp.error.invalid_argument", True, "acknowledge"
            )
            return
        try:
            check_uri(publish.topic)
            if publish.topic.startswith("wamp."):
                self._error(PUBLISH, publish.request, "wamp.error.not_authorized", acknowledge)
                return
            audience = audience_of(options)
        except InvalidUri as exc:
            self._error(PUBLISH, publish.request, "wamp.error.invalid_uri", acknowledge, str(exc))
            return
        except ValueError as exc:
            self._error(
                PUBLISH, publish.request, "wamp.error.invalid_argument", acknowledge, str(exc)
            )
            return
        try:
            payload, content_type = payload_of(publish.args, publish.kwargs)
        except ValueError as exc:  # a NaN or an infinity: no JSON for them
            self._error(
                PUBLISH, publish.request, "wamp.error.invalid_argument", acknowledge, str(exc)
            )
            return
        disclose = options.get("disclose_me") is True
        message = Message(
            topic_of(publish.topic),
            payload,
            content_type=content_type,
            retain=options.get("retain") is True,
            origin=self.origin_key if options.get("exclude_me", True) is not False else None,
            audience=audience,
            publisher=Publisher(self.id, self.authid, self.authrole) if disclose else None,
        )
        publication = random_id()
        memo: dict[Any, object] = {
            "wamp-publication": publication,
            "wamp-args": (publish.args, publish.kwargs or None),
        }
        self._broker.stats.publish_received += 1
        try:
            self._realm.publish(message, memo=memo)
        except (InvalidTopic, RetainedStoreFull) as exc:
            self._error(PUBLISH, publish.request, "wamp.error.invalid_uri", acknowledge, str(exc))
            return
        if acknowledge:
            self._send(Published(publish.request, publication))

    def _subscribe(self, subscribe: Subscribe) -> None:
        options = subscribe.options
        match = options.get("match", "exact")
        if match not in MATCHES:
            self._error(SUBSCRIBE, subscribe.request, "wamp.error.invalid_argument", True)
            return
        try:
            check_uri(subscribe.topic, match)
        except InvalidUri as exc:
            self._error(SUBSCRIBE, subscribe.request, "wamp.error.invalid_uri", True, str(exc))
            return
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            self._error(
                SUBSCRIBE,
                subscribe.request,
                "wamp.error.not_authorized",
                True,
                f"at most {MAX_SUBSCRIPTIONS} subscriptions per session",
            )
            return
        assert self._router is not None
        group, created = self._router.join(self, subscribe.topic, match)
        self._subscriptions.add(group.id)
        self._send(Subscribed(subscribe.request, group.id))
        self._router.meta.subscribed(group, self, created)
        if options.get("get_retained") is True:
            for retained, uri in self._router.retained(group):
                group.send(Delivery(retained), uri, (self,), retained=True)

    def _unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        assert self._router is not None
        left = self._router.leave(self, unsubscribe.subscription)
        if left is None:
            self._error(UNSUBSCRIBE, unsubscribe.request, "wamp.error.no_such_subscription", True)
            return
        self._subscriptions.discard(unsubscribe.subscription)
        self._send(Unsubscribed(unsubscribe.request))
        self._router.meta.unsubscribed(left[0], self, left[1])

    def send_event(
        self, delivery: Delivery, subscription: int, items: list[Any], retained: bool
    ) -> None:
        """One EVENT of a subscription: encoded once per serializer for all its members."""
        if self._phase is not Phase.ESTABLISHED:
            return
        codec = self._codec
        stats = self._broker.stats
        stats.messages_sent += 1
        stats.publish_sent += 1
        if retained:
            self._link.send_message(codec.encode_raw(items), text=codec.text)
            return
        self._link.send_delivery(
            delivery,
            ("wamp", subscription, self.codec_key),
            lambda _: codec.encode_raw(items),
            text=codec.text,
            droppable=True,
        )

    # Dealer role

    def _register(self, register: Register) -> None:
        options = register.options
        match = options.get("match", "exact")
        invoke = options.get("invoke", "single")
        if match not in MATCHES or invoke not in _INVOKE:
            self._error(REGISTER, register.request, "wamp.error.invalid_argument", True)
            return
        try:
            check_uri(register.procedure, match)
        except InvalidUri as exc:
            self._error(REGISTER, register.request, "wamp.error.invalid_uri", True, str(exc))
            return
        if register.procedure.startswith("wamp."):
            self._error(REGISTER, register.request, "wamp.error.not_authorized", True)
            return
        if len(self._registrations) >= MAX_REGISTRATIONS:
            self._error(REGISTER, register.request, "wamp.error.not_authorized", True)
            return
        try:
            registration = self._realm.procedures.register(self, register.procedure, match, invoke)
        except RpcError as exc:
            self._error(REGISTER, register.request, exc.error, True, str(exc))
            return
        self._registrations.add(registration.id)
        self._send(Registered(register.request, registration.id))
        if self._router is not None:
            self._router.meta.registered(registration, self, len(registration.callees) == 1)

    def _unregister(self, unregister: Unregister) -> None:
        try:
            registration = self._realm.procedures.unregister(self, unregister.registration)
        except RpcError as exc:
            self._error(UNREGISTER, unregister.request, exc.error, True, str(exc))
            return
        self._registrations.discard(unregister.registration)
        self._send(Unregistered(unregister.request))
        if self._router is not None:
            self._router.meta.unregistered(registration, self, not registration.callees)

    def _call(self, call: CallMessage) -> None:
        options = call.options
        try:
            check_uri(call.procedure)
        except InvalidUri as exc:
            self._error(CALL, call.request, "wamp.error.invalid_uri", True, str(exc))
            return
        meta = self._router.meta if self._router is not None else None
        if meta is not None and meta.handles(call.procedure):
            try:
                args, kwargs = meta.call(self, call.procedure, call.args, call.kwargs)
            except MetaError as exc:
                self._error(CALL, call.request, exc.error, True, str(exc))
                return
            self._send(Result(call.request, {}, args, kwargs))
            return
        timeout = options.get("timeout", 0)
        if type(timeout) is not int or timeout < 0:
            self._error(CALL, call.request, "wamp.error.invalid_argument", True, "timeout")
            return
        try:
            started = self._realm.procedures.call(
                self,
                call.request,
                call.procedure,
                call.args,
                call.kwargs,
                timeout=timeout / 1000 or None,
                receive_progress=options.get("receive_progress") is True,
                disclose_caller=options.get("disclose_me") is True,
            )
        except RpcError as exc:
            self._error(CALL, call.request, exc.error, True, str(exc))
            return
        if started is None:
            self._error(CALL, call.request, "wamp.error.no_such_procedure", True)

    def _cancel(self, cancel: Cancel) -> None:
        mode = cancel.options.get("mode", "killnowait")
        if mode not in _CANCEL_MODES:
            self._error(CALL, cancel.request, "wamp.error.invalid_argument", True, "mode")
            return
        self._realm.procedures.cancel(self, cancel.request, mode)

    def _yield(self, message: Yield) -> None:
        progress = message.options.get("progress") is True
        self._realm.procedures.yield_result(
            self, message.request, message.args, message.kwargs, progress=progress
        )

    def _error_from_client(self, error: Error) -> None:
        if error.request_type != INVOCATION:
            self._abort("wamp.error.protocol_violation", "ERROR may only answer an INVOCATION")
            return
        self._realm.procedures.yield_error(
            self, error.request, error.error, error.args, error.kwargs
        )

    # core Callee and Caller

    def invoke(self, call: Call) -> None:
        details: dict[str, Any] = {}
        if call.receive_progress:
            details["receive_progress"] = True
        if call.registration.match != "exact":
            details["procedure"] = call.procedure
        if call.disclose_caller and isinstance(call.caller, WampSession):
            details["caller"] = call.caller.id
            if call.caller.authid is not None:
                details["caller_authid"] = call.caller.authid
            if call.caller.authrole is not None:
                details["caller_authrole"] = call.caller.authrole
        self._send(
            Invocation(call.invocation_id, call.registration.id, details, call.args, call.kwargs)
        )

    def interrupt(self, call: Call, mode: CancelMode) -> None:
        self._send(Interrupt(call.invocation_id, {"mode": mode}))

    def call_result(
        self, call: Call, args: list[Any] | None, kwargs: dict[str, Any] | None, progress: bool
    ) -> None:
        self._send(Result(call.request, {"progress": True} if progress else {}, args, kwargs))

    def call_error(
        self, call: Call, error: str, args: list[Any] | None, kwargs: dict[str, Any] | None
    ) -> None:
        self._send(Error(CALL, call.request, {}, error, args, kwargs))

    # internals

    def _leave(self) -> None:
        router = self._router
        if router is None:
            return
        self._router = None
        for subscription in self._subscriptions:
            left = router.leave(self, subscription)
            if left is not None:
                router.meta.unsubscribed(left[0], self, left[1])
        self._subscriptions.clear()
        procedures = self._realm.procedures
        procedures.remove_caller(self)
        for registration, deleted in procedures.remove_callee(self):
            router.meta.unregistered(registration, self, deleted)
        self._registrations.clear()
        router.sessions.pop(self.id, None)
        router.meta.session_left(self)

    def _error(
        self, request_type: int, request: int, uri: str, send: bool, message: str = ""
    ) -> None:
        if send and self._phase is Phase.ESTABLISHED:
            self._send(Error(request_type, request, {}, uri, [message] if message else None))

    def _send(self, message: WampMessage) -> None:
        self._broker.stats.messages_sent += 1
        self._link.send_message(self._codec.encode(message), text=self._codec.text)

    def _abort(self, reason: str, message: str) -> None:
        """ABORT (or, once established, ABORT all the same: the spec's answer to violations)."""
        if self._phase is Phase.CLOSED:
            return
        log.info("WAMP session %s: %s: %s", self.id or "-", reason, message)
        self._end(Abort({"message": message}, reason), reason[:100])

    def _end(self, last: WampMessage, close_reason: str) -> None:
        """Send the session's last message, release what it holds, close the connection."""
        self._send(last)
        self._phase = Phase.CLOSED
        self._leave()
        self._link.close(_WS_NORMAL, close_reason)


_HANDLERS: dict[type, Any] = {
    Publish: WampSession._publish,
    Subscribe: WampSession._subscribe,
    Unsubscribe: WampSession._unsubscribe,
    Goodbye: WampSession._goodbye,
    Register: WampSession._register,
    Unregister: WampSession._unregister,
    CallMessage: WampSession._call,
    Cancel: WampSession._cancel,
    Yield: WampSession._yield,
    Error: WampSession._error_from_client,
}
