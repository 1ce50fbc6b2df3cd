"""WAMP v2 messages as typed values: what the codec decodes to and encodes from.

One slotted class per message type, its fields named as in the WAMP specification. Constructors
do not validate: the decoder checks what a peer sent before building one, and the session builds
valid ones. Optional trailing fields (args, kwargs, the details of UNSUBSCRIBED/UNREGISTERED) are
None when absent; the decoder also turns an empty one into None, so None is the only "nothing".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

# Message type codes (plain ints, so that lists built from them serialize at C speed).
HELLO: Final = 1
WELCOME: Final = 2
ABORT: Final = 3
CHALLENGE: Final = 4
AUTHENTICATE: Final = 5
GOODBYE: Final = 6
ERROR: Final = 8
PUBLISH: Final = 16
PUBLISHED: Final = 17
SUBSCRIBE: Final = 32
SUBSCRIBED: Final = 33
UNSUBSCRIBE: Final = 34
UNSUBSCRIBED: Final = 35
EVENT: Final = 36
CALL: Final = 48
CANCEL: Final = 49
RESULT: Final = 50
REGISTER: Final = 64
REGISTERED: Final = 65
UNREGISTER: Final = 66
UNREGISTERED: Final = 67
INVOCATION: Final = 68
INTERRUPT: Final = 69
YIELD: Final = 70

MESSAGE_NAMES: Final[dict[int, str]] = {
    HELLO: "HELLO",
    WELCOME: "WELCOME",
    ABORT: "ABORT",
    CHALLENGE: "CHALLENGE",
    AUTHENTICATE: "AUTHENTICATE",
    GOODBYE: "GOODBYE",
    ERROR: "ERROR",
    PUBLISH: "PUBLISH",
    PUBLISHED: "PUBLISHED",
    SUBSCRIBE: "SUBSCRIBE",
    SUBSCRIBED: "SUBSCRIBED",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBSCRIBED: "UNSUBSCRIBED",
    EVENT: "EVENT",
    CALL: "CALL",
    CANCEL: "CANCEL",
    RESULT: "RESULT",
    REGISTER: "REGISTER",
    REGISTERED: "REGISTERED",
    UNREGISTER: "UNREGISTER",
    UNREGISTERED: "UNREGISTERED",
    INVOCATION: "INVOCATION",
    INTERRUPT: "INTERRUPT",
    YIELD: "YIELD",
}

MAX_ID: Final = 1 << 53
"""The largest WAMP id; ids are integers in [1, 2^53] (0 only where the codec says so)."""


def _with_payload(
    head: list[Any], args: list[Any] | None, kwargs: dict[str, Any] | None
) -> list[Any]:
    """`head` and the trailing fields the spec shows: none, [args], or [args or [], kwargs]."""
    if kwargs:
        head.append(args or [])
        head.append(kwargs)
    elif args:
        head.append(args)
    return head


@dataclass(slots=True)
class Hello:
    """[HELLO, Realm|uri, Details|dict]: a client asks to join a realm."""

    TYPE: ClassVar[int] = HELLO
    realm: str
    details: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [HELLO, self.realm, self.details]


@dataclass(slots=True)
class Welcome:
    """[WELCOME, Session|id, Details|dict]: the router accepts the client."""

    TYPE: ClassVar[int] = WELCOME
    session: int
    details: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [WELCOME, self.session, self.details]


@dataclass(slots=True)
class Abort:
    """[ABORT, Details|dict, Reason|uri]: the opening of a session is given up."""

    TYPE: ClassVar[int] = ABORT
    details: dict[str, Any]
    reason: str

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [ABORT, self.details, self.reason]


@dataclass(slots=True)
class Challenge:
    """[CHALLENGE, AuthMethod|string, Extra|dict]: the router asks the client to authenticate."""

    TYPE: ClassVar[int] = CHALLENGE
    authmethod: str
    extra: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [CHALLENGE, self.authmethod, self.extra]


@dataclass(slots=True)
class Authenticate:
    """[AUTHENTICATE, Signature|string, Extra|dict]: the client's answer to a CHALLENGE."""

    TYPE: ClassVar[int] = AUTHENTICATE
    signature: str
    extra: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [AUTHENTICATE, self.signature, self.extra]


@dataclass(slots=True)
class Goodbye:
    """[GOODBYE, Details|dict, Reason|uri]: a peer closes the session; the other echoes it."""

    TYPE: ClassVar[int] = GOODBYE
    details: dict[str, Any]
    reason: str

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [GOODBYE, self.details, self.reason]


@dataclass(slots=True)
class Error:
    """[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Args, KwArgs]."""

    TYPE: ClassVar[int] = ERROR
    request_type: int
    request: int
    details: dict[str, Any]
    error: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        head = [ERROR, self.request_type, self.request, self.details, self.error]
        return _with_payload(head, self.args, self.kwargs)


@dataclass(slots=True)
class Publish:
    """[PUBLISH, Request|id, Options|dict, Topic|uri, Args, KwArgs]."""

    TYPE: ClassVar[int] = PUBLISH
    request: int
    options: dict[str, Any]
    topic: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return _with_payload(
            [PUBLISH, self.request, self.options, self.topic], self.args, self.kwargs
        )


@dataclass(slots=True)
class Published:
    """[PUBLISHED, PUBLISH.Request|id, Publication|id]."""

    TYPE: ClassVar[int] = PUBLISHED
    request: int
    publication: int

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [PUBLISHED, self.request, self.publication]


@dataclass(slots=True)
class Subscribe:
    """[SUBSCRIBE, Request|id, Options|dict, Topic|uri]."""

    TYPE: ClassVar[int] = SUBSCRIBE
    request: int
    options: dict[str, Any]
    topic: str

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [SUBSCRIBE, self.request, self.options, self.topic]


@dataclass(slots=True)
class Subscribed:
    """[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]."""

    TYPE: ClassVar[int] = SUBSCRIBED
    request: int
    subscription: int

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [SUBSCRIBED, self.request, self.subscription]


@dataclass(slots=True)
class Unsubscribe:
    """[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]."""

    TYPE: ClassVar[int] = UNSUBSCRIBE
    request: int
    subscription: int

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [UNSUBSCRIBE, self.request, self.subscription]


@dataclass(slots=True)
class Unsubscribed:
    """[UNSUBSCRIBED, UNSUBSCRIBE.Request|id], or [UNSUBSCRIBED, 0, Details|dict] (revocation)."""

    TYPE: ClassVar[int] = UNSUBSCRIBED
    request: int
    details: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        if self.details:
            return [UNSUBSCRIBED, self.request, self.details]
        return [UNSUBSCRIBED, self.request]


@dataclass(slots=True)
class Event:
    """[EVENT, Subscription|id, Publication|id, Details|dict, Args, KwArgs]."""

    TYPE: ClassVar[int] = EVENT
    subscription: int
    publication: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        # Inlined: one EVENT is built per publication, on the hot path.
        if self.kwargs:
            return [
                EVENT,
                self.subscription,
                self.publication,
                self.details,
                self.args or [],
                self.kwargs,
            ]
        if self.args:
            return [EVENT, self.subscription, self.publication, self.details, self.args]
        return [EVENT, self.subscription, self.publication, self.details]


@dataclass(slots=True)
class Call:
    """[CALL, Request|id, Options|dict, Procedure|uri, Args, KwArgs]."""

    TYPE: ClassVar[int] = CALL
    request: int
    options: dict[str, Any]
    procedure: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        head = [CALL, self.request, self.options, self.procedure]
        return _with_payload(head, self.args, self.kwargs)


@dataclass(slots=True)
class Cancel:
    """[CANCEL, CALL.Request|id, Options|dict]."""

    TYPE: ClassVar[int] = CANCEL
    request: int
    options: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [CANCEL, self.request, self.options]


@dataclass(slots=True)
class Result:
    """[RESULT, CALL.Request|id, Details|dict, Args, KwArgs]."""

    TYPE: ClassVar[int] = RESULT
    request: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return _with_payload([RESULT, self.request, self.details], self.args, self.kwargs)


@dataclass(slots=True)
class Register:
    """[REGISTER, Request|id, Options|dict, Procedure|uri]."""

    TYPE: ClassVar[int] = REGISTER
    request: int
    options: dict[str, Any]
    procedure: str

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [REGISTER, self.request, self.options, self.procedure]


@dataclass(slots=True)
class Registered:
    """[REGISTERED, REGISTER.Request|id, Registration|id]."""

    TYPE: ClassVar[int] = REGISTERED
    request: int
    registration: int

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [REGISTERED, self.request, self.registration]


@dataclass(slots=True)
class Unregister:
    """[UNREGISTER, Request|id, REGISTERED.Registration|id]."""

    TYPE: ClassVar[int] = UNREGISTER
    request: int
    registration: int

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [UNREGISTER, self.request, self.registration]


@dataclass(slots=True)
class Unregistered:
    """[UNREGISTERED, UNREGISTER.Request|id], or [UNREGISTERED, 0, Details|dict] (revocation)."""

    TYPE: ClassVar[int] = UNREGISTERED
    request: int
    details: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        if self.details:
            return [UNREGISTERED, self.request, self.details]
        return [UNREGISTERED, self.request]


@dataclass(slots=True)
class Invocation:
    """[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, Args, KwArgs]."""

    TYPE: ClassVar[int] = INVOCATION
    request: int
    registration: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        head = [INVOCATION, self.request, self.registration, self.details]
        return _with_payload(head, self.args, self.kwargs)


@dataclass(slots=True)
class Interrupt:
    """[INTERRUPT, INVOCATION.Request|id, Options|dict]."""

    TYPE: ClassVar[int] = INTERRUPT
    request: int
    options: dict[str, Any]

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return [INTERRUPT, self.request, self.options]


@dataclass(slots=True)
class Yield:
    """[YIELD, INVOCATION.Request|id, Options|dict, Args, KwArgs]."""

    TYPE: ClassVar[int] = YIELD
    request: int
    options: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:
        """The message as the list that goes on the wire."""
        return _with_payload([YIELD, self.request, self.options], self.args, self.kwargs)


Message = (
    Hello
    | Welcome
    | Abort
    | Challenge
    | Authenticate
    | Goodbye
    | Error
    | Publish
    | Published
    | Subscribe
    | Subscribed
    | Unsubscribe
    | Unsubscribed
    | Event
    | Call
    | Cancel
    | Result
    | Register
    | Registered
    | Unregister
    | Unregistered
    | Invocation
    | Interrupt
    | Yield
)

MESSAGE_CLASSES: Final[dict[int, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Welcome,
        Abort,
        Challenge,
        Authenticate,
        Goodbye,
        Error,
        Publish,
        Published,
        Subscribe,
        Subscribed,
        Unsubscribe,
        Unsubscribed,
        Event,
        Call,
        Cancel,
        Result,
        Register,
        Registered,
        Unregister,
        Unregistered,
        Invocation,
        Interrupt,
        Yield,
    )
}


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """What was wrong with what the peer sent.

    The session ABORTs with wamp.error.protocol_violation.
    """

    message: str  # short, one line, names what was wrong (and the limit, for a limit)
