"""Remote procedures of a realm: registrations, calls in flight, cancel, timeout (no wire format).

Outcomes carry WAMP's error URIs: they are the domain's words; the rules are its Advanced Profile's.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from broker.core.timers import Timer, Timers

logger = logging.getLogger(__name__)

NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY = (
    "wamp.error.procedure_exists_with_different_invocation_policy"
)
CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
# The spec has no URI for "a limit of the router": Crossbar answers not_authorized for those.
NOT_AUTHORIZED = "wamp.error.not_authorized"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"

Match = Literal["exact", "prefix", "wildcard"]
Invoke = Literal["single", "roundrobin", "random", "first", "last"]
CancelMode = Literal["skip", "kill", "killnowait"]

_INVOKES = ("single", "roundrobin", "random", "first", "last")
_CANCEL_MODES = ("skip", "kill", "killnowait")
_ID_ATTEMPTS = 100


class RpcError(Exception):
    """A refused request: `error` is a WAMP error URI, str(exc) says why in words."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class Callee(Protocol):
    """A session that provides procedures. Hashed by identity."""

    session_id: int

    def __hash__(self) -> int: ...

    def invoke(self, call: Call) -> None:
        """Hand the invocation over (must not block: queue it and return)."""
        ...

    def interrupt(self, call: Call, mode: CancelMode) -> None:
        """Tell the callee to stop working on `call` (it may ignore this).

        A callee with a false `cancels` attribute said it cannot be interrupted: a cancel
        then runs as "skip".
        """
        ...


class Caller(Protocol):
    """A session that calls procedures. Hashed by identity."""

    session_id: int

    def __hash__(self) -> int: ...

    def call_result(
        self,
        call: Call,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        progress: bool,
    ) -> None:
        """A result: progressive (more follow) or final (the call is over)."""
        ...

    def call_error(
        self, call: Call, error: str, args: list[Any] | None, kwargs: dict[str, Any] | None
    ) -> None:
        """The call failed, was canceled or timed out; it is over."""
        ...


@dataclass(slots=True, eq=False)
class Registration:
    """One procedure URI or pattern with its callees (several when shared)."""

    id: int
    procedure: str  # the URI or pattern as registered
    match: Match
    invoke: Invoke
    callees: list[Callee]  # in registration order
    created: float  # clock() when created
    turn: int = field(default=0, repr=False)  # roundrobin: index of the next callee


@dataclass(slots=True, eq=False)
class Call:
    """One call in flight: who called what, and which callee works on it."""

    invocation_id: int  # unique within its Procedures
    caller: Caller
    request: int  # the caller's request id
    procedure: str  # the URI called (differs from registration.procedure for patterns)
    registration: Registration
    callee: Callee
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    receive_progress: bool
    disclose_caller: bool
    timer: Timer | None
    canceling: CancelMode | None = None  # set once a cancel started


def _wildcard_rank(components: list[str]) -> tuple[bool, ...]:
    """Sort key among wildcard patterns of one length: the best match sorts first."""
    # Comparing the literal/wildcard flags position by position is the spec's rule: the longer
    # run of literal components before the first wildcard wins, then before the second...
    return tuple(not component for component in components)


class Procedures:
    """The registrations of one realm and the calls in flight, bounded."""

    __slots__ = (
        "_by_callee",
        "_by_id",
        "_callee_calls",
        "_caller_calls",
        "_calls",
        "_clock",
        "_exact",
        "_invocation_ids",
        "_max_calls",
        "_max_registrations",
        "_new_id",
        "_prefix",
        "_prefix_counts",
        "_prefix_lengths",
        "_rng",
        "_timers",
        "_wildcard",
        "_wildcard_groups",
    )

    def __init__(
        self,
        timers: Timers,
        clock: Callable[[], float],
        *,
        new_id: Callable[[], int],
        max_registrations: int = 10_000,
        max_calls: int = 100_000,
        rng: random.Random | None = None,
    ) -> None:
        if max_registrations < 0 or max_calls < 0:
            raise ValueError("max_registrations and max_calls must not be negative")
        self._timers = timers
        self._clock = clock
        self._new_id = new_id
        self._max_registrations = max_registrations
        self._max_calls = max_calls
        self._rng = rng if rng is not None else random.Random()
        self._by_id: dict[int, Registration] = {}
        self._exact: dict[str, Registration] = {}
        self._prefix: dict[str, Registration] = {}
        # Distinct lengths of the registered prefixes, longest first: a lookup slices the URI at
        # each and tries the dict, so it costs one dict hit per distinct length, not per prefix.
        self._prefix_lengths: list[int] = []
        self._prefix_counts: dict[int, int] = {}  # length -> how many prefixes have it
        self._wildcard: dict[str, Registration] = {}
        # Component count -> (rank, components, registration), best first. A wildcard lookup scans
        # the patterns of its URI's length: O(those patterns), stopping at the first that matches.
        self._wildcard_groups: dict[
            int, list[tuple[tuple[bool, ...], list[str], Registration]]
        ] = {}
        # Callee -> its registrations by id, so a leave needs no scan of every registration.
        self._by_callee: dict[Callee, dict[int, Registration]] = {}
        self._calls: dict[int, Call] = {}
        self._caller_calls: dict[Caller, dict[int, Call]] = {}
        self._callee_calls: dict[Callee, dict[int, Call]] = {}
        self._invocation_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Procedures: {len(self._by_id)} registrations, {len(self._calls)} calls>"

    @property
    def calls_in_flight(self) -> int:
        """Calls not over yet (including those canceled with "kill", awaiting the callee)."""
        return len(self._calls)

    # Registrations

    def registrations(self) -> list[Registration]:
        """Every registration, oldest first."""
        return list(self._by_id.values())

    def registration(self, id: int) -> Registration | None:
        """The registration with this id, if it exists."""
        return self._by_id.get(id)

    def find(self, procedure: str, match: Match = "exact") -> Registration | None:
        """The registration of exactly this (procedure, match), if any."""
        return self._table(match).get(procedure)

    def _table(self, match: Match) -> dict[str, Registration]:
        if match == "exact":
            return self._exact
        if match == "prefix":
            return self._prefix
        if match == "wildcard":
            return self._wildcard
        raise ValueError(f"unknown match policy {match!r}")

    def register(
        self, callee: Callee, procedure: str, match: Match = "exact", invoke: Invoke = "single"
    ) -> Registration:
        """Register `procedure` for `callee` or join its shared registration (same policy).

        New when it has one callee. RpcError: a conflict (below), or max_registrations exist.
        """
        # Conflicts as Crossbar answers them: the same callee again, or an existing "single"
        # registration: ALREADY_EXISTS; a shared one with another policy (even "single"):
        # DIFFERENT_INVOCATION_POLICY. URIs are the adapter's to validate.
        if invoke not in _INVOKES:
            raise ValueError(f"unknown invocation policy {invoke!r}")
        table = self._table(match)
        registration = table.get(procedure)
        if registration is not None:
            if registration.id in self._by_callee.get(callee, {}):
                raise RpcError(
                    PROCEDURE_ALREADY_EXISTS,
                    f"this session already registered {procedure!r} ({match})",
                )
            if registration.invoke == "single":
                raise RpcError(
                    PROCEDURE_ALREADY_EXISTS, f"procedure {procedure!r} ({match}) is registered"
                )
            if registration.invoke != invoke:
                raise RpcError(
                    PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
                    f"procedure {procedure!r} ({match}) is registered with invocation policy "
                    f"{registration.invoke!r}, not {invoke!r}",
                )
            registration.callees.append(callee)
        else:
            if len(self._by_id) >= self._max_registrations:
                raise RpcError(
                    NOT_AUTHORIZED,
                    f"{len(self._by_id)} registrations exist, the most this realm allows",
                )
            registration = Registration(
                self._unused_id(), procedure, match, invoke, [callee], self._clock()
            )
            self._by_id[registration.id] = registration
            table[procedure] = registration
            if match == "prefix":
                self._add_prefix_length(len(procedure))
            elif match == "wildcard":
                components = procedure.split(".")
                bisect.insort(
                    self._wildcard_groups.setdefault(len(components), []),
                    (_wildcard_rank(components), components, registration),
                    key=lambda entry: (entry[0], entry[1]),
                )
        self._by_callee.setdefault(callee, {})[registration.id] = registration
        return registration

    def _unused_id(self) -> int:
        for _ in range(_ID_ATTEMPTS):
            new = self._new_id()
            if new not in self._by_id:
                return new
        raise RuntimeError(f"new_id gave {_ID_ATTEMPTS} registration ids in use")

    def _add_prefix_length(self, length: int) -> None:
        counts = self._prefix_counts
        if length in counts:
            counts[length] += 1
        else:
            counts[length] = 1
            self._prefix_lengths.append(length)
            self._prefix_lengths.sort(reverse=True)

    def _remove_prefix_length(self, length: int) -> None:
        counts = self._prefix_counts
        counts[length] -= 1
        if not counts[length]:
            del counts[length]
            self._prefix_lengths.remove(length)

    def unregister(self, callee: Callee, registration_id: int) -> Registration:
        """Take `callee` off it; callers of its calls on it get CANCELED.

        RpcError NO_SUCH_REGISTRATION if it is not on it. Empty `callees` after: deleted.
        """
        registration = self._by_callee.get(callee, {}).get(registration_id)
        if registration is None:
            raise RpcError(
                NO_SUCH_REGISTRATION, f"this session has no registration {registration_id}"
            )
        self._detach(callee, registration)
        calls = self._callee_calls.get(callee, {})
        ended = [call for call in calls.values() if call.registration is registration]
        self._cancel_all(ended)
        return registration

    def remove_callee(self, callee: Callee) -> list[tuple[Registration, bool]]:
        """The callee's session is gone: (registration, deleted) for each it was on.

        Callers of its calls in flight get CANCELED.
        """
        registrations = self._by_callee.get(callee)
        left: list[tuple[Registration, bool]] = []
        if registrations is not None:
            for registration in list(registrations.values()):
                self._detach(callee, registration)
                left.append((registration, not registration.callees))
        self._cancel_all(list(self._callee_calls.get(callee, {}).values()))
        return left

    def _detach(self, callee: Callee, registration: Registration) -> None:
        """Take `callee` off `registration`, deleting it when it was the last."""
        registrations = self._by_callee[callee]
        del registrations[registration.id]
        if not registrations:
            del self._by_callee[callee]
        callees = registration.callees
        index = next(i for i, other in enumerate(callees) if other is callee)
        del callees[index]
        if index < registration.turn:
            registration.turn -= 1  # the next in turn moved down one place
        if callees:
            return
        del self._by_id[registration.id]
        procedure = registration.procedure
        del self._table(registration.match)[procedure]
        if registration.match == "prefix":
            self._remove_prefix_length(len(procedure))
        elif registration.match == "wildcard":
            count = procedure.count(".") + 1
            group = self._wildcard_groups[count]
            group[:] = [entry for entry in group if entry[2] is not registration]
            if not group:
                del self._wildcard_groups[count]

    # Matching

    def lookup(self, uri: str) -> Registration | None:
        """The registration a call of `uri` goes to: exact, else longest prefix, else wildcard."""
        # WAMP's prefix is a string prefix: `com.app` matches `com.app.x` and `com.appx` alike.
        registration = self._exact.get(uri)
        if registration is not None:
            return registration
        if self._prefix:
            size = len(uri)
            for length in self._prefix_lengths:
                if length <= size:
                    registration = self._prefix.get(uri[:length])
                    if registration is not None:
                        return registration
        if self._wildcard_groups:
            components = uri.split(".")
            for _, pattern, registration in self._wildcard_groups.get(len(components), ()):
                if wildcard_matches(pattern, components):
                    return registration
        return None

    def matching(self, uri: str) -> list[Registration]:
        """Every registration that matches `uri`, best first (lookup() gives the first)."""
        found: list[Registration] = []
        exact = self._exact.get(uri)
        if exact is not None:
            found.append(exact)
        size = len(uri)
        for length in self._prefix_lengths:
            if length <= size:
                prefix = self._prefix.get(uri[:length])
                if prefix is not None:
                    found.append(prefix)
        components = uri.split(".")
        found.extend(
            registration
            for _, pattern, registration in self._wildcard_groups.get(len(components), ())
            if wildcard_matches(pattern, components)
        )
        return found

    # Calls

    def call(
        self,
        caller: Caller,
        request: int,
        procedure: str,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        *,
        timeout: float | None = None,
        receive_progress: bool = False,
        disclose_caller: bool = False,
    ) -> Call | None:
        """Pick a callee, arm the timeout (seconds; None or 0: none), invoke it.

        None: no such procedure. RpcError: max_calls, or `request`, in flight. May end at once.
        """
        if timeout is not None and timeout < 0:
            raise ValueError(f"a call timeout must not be negative, not {timeout}")
        registration = self.lookup(procedure)
        if registration is None:
            return None
        if len(self._calls) >= self._max_calls:
            raise RpcError(NOT_AUTHORIZED, f"{len(self._calls)} calls are in flight already")
        pending = self._caller_calls.get(caller)
        if pending is not None and request in pending:
            raise RpcError(PROTOCOL_VIOLATION, f"call request {request} is in flight already")
        callee = self._pick(registration)
        call = Call(
            next(self._invocation_ids),
            caller,
            request,
            procedure,
            registration,
            callee,
            args,
            kwargs,
            receive_progress,
            disclose_caller,
            None,
        )
        self._calls[call.invocation_id] = call
        self._caller_calls.setdefault(caller, {})[request] = call
        self._callee_calls.setdefault(callee, {})[call.invocation_id] = call
        if timeout:
            call.timer = self._timers.call_at(self._clock() + timeout, lambda: self._expire(call))
        try:
            callee.invoke(call)
        except Exception:
            logger.exception(
                "invocation %d of %r on session %r failed",
                call.invocation_id,
                procedure,
                callee.session_id,
            )
            # The callee never got it: CANCELED, unless it answered (or the caller canceled)
            # before raising.
            if self._end(call):
                self._send_error(call, CANCELED)
        return call

    def _pick(self, registration: Registration) -> Callee:
        callees = registration.callees
        policy = registration.invoke
        if policy == "roundrobin":
            index = registration.turn % len(callees)
            registration.turn = index + 1
            return callees[index]
        if policy == "random":
            return self._rng.choice(callees)
        if policy == "last":
            return callees[-1]
        return callees[0]  # single, first

    def _live(self, callee: Callee, invocation_id: int) -> Call | None:
        call = self._calls.get(invocation_id)
        if call is None or call.callee is not callee:
            return None
        return call

    def yield_result(
        self,
        callee: Callee,
        invocation_id: int,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        *,
        progress: bool = False,
    ) -> bool:
        """The callee's result, final or progressive; False if it has no such invocation.

        Progress reaches only a caller that asked for it and has not canceled with "kill".
        """
        call = self._live(callee, invocation_id)
        if call is None:
            return False
        if progress:
            if call.receive_progress and call.canceling is None:
                self._send_result(call, args, kwargs, progress=True)
            return True
        self._end(call)
        self._send_result(call, args, kwargs, progress=False)
        return True

    def yield_error(
        self,
        callee: Callee,
        invocation_id: int,
        error: str,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
    ) -> bool:
        """The callee's error, passed on as is; ends the call. False as yield_result."""
        call = self._live(callee, invocation_id)
        if call is None:
            return False
        self._end(call)
        self._send_error(call, error, args, kwargs)
        return True

    def cancel(self, caller: Caller, request: int, mode: CancelMode = "killnowait") -> bool:
        """Cancel the caller's call `request` as the spec's mode says; False if none is in flight.

        Once a cancel started, another one changes nothing.
        """
        if mode not in _CANCEL_MODES:
            raise ValueError(f"unknown cancel mode {mode!r}")
        call = self._caller_calls.get(caller, {}).get(request)
        if call is None:
            return False
        if call.canceling is not None:
            return True
        if mode != "skip" and not getattr(call.callee, "cancels", True):
            mode = "skip"  # a callee that cannot be interrupted: the spec falls back to skip
        call.canceling = mode
        if mode == "kill":
            # The callee's answer, whatever it is, ends the call.
            self._interrupt(call, mode)
            return True
        self._end(call)
        # As the spec's flow: the caller hears first, then the callee.
        self._send_error(call, CANCELED)
        if mode == "killnowait":
            self._interrupt(call, mode)
        return True

    def remove_caller(self, caller: Caller) -> None:
        """The caller's session is gone: interrupt its calls ("killnowait") and forget them."""
        calls = list(self._caller_calls.get(caller, {}).values())
        for call in calls:
            self._end(call)
        for call in calls:
            if call.canceling is None:  # a "kill" cancel interrupted it already
                call.canceling = "killnowait"
                self._interrupt(call, "killnowait")

    def _expire(self, call: Call) -> None:
        """The call's timeout: CANCELED to the caller, interrupt the callee."""
        # The issue asks for wamp.error.canceled (as Crossbar answers); the newest spec text
        # says wamp.error.timeout. Then INTERRUPT "killnowait", as the spec has it.
        call.timer = None
        if not self._end(call):
            return
        self._send_error(call, CANCELED)
        if call.canceling is None:
            call.canceling = "killnowait"
            self._interrupt(call, "killnowait")

    def _end(self, call: Call) -> bool:
        """Forget `call` (before anyone hears of its end); False if it was over already."""
        invocation_id = call.invocation_id
        if self._calls.get(invocation_id) is not call:
            return False
        del self._calls[invocation_id]
        by_caller = self._caller_calls[call.caller]
        del by_caller[call.request]
        if not by_caller:
            del self._caller_calls[call.caller]
        by_callee = self._callee_calls[call.callee]
        del by_callee[invocation_id]
        if not by_callee:
            del self._callee_calls[call.callee]
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        return True

    def _cancel_all(self, calls: list[Call]) -> None:
        """End `calls` (their callee left), then tell each caller CANCELED."""
        ended = [call for call in calls if self._end(call)]
        for call in ended:
            self._send_error(call, CANCELED)

    # Callbacks: one failing session must not break the others nor this state.

    def _send_result(
        self,
        call: Call,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        *,
        progress: bool,
    ) -> None:
        try:
            call.caller.call_result(call, args, kwargs, progress)
        except Exception:
            logger.exception(
                "result of call %d to session %r failed", call.request, call.caller.session_id
            )

    def _send_error(
        self,
        call: Call,
        error: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            call.caller.call_error(call, error, args, kwargs)
        except Exception:
            logger.exception(
                "error %s of call %d to session %r failed",
                error,
                call.request,
                call.caller.session_id,
            )

    def _interrupt(self, call: Call, mode: CancelMode) -> None:
        if not getattr(call.callee, "cancels", True):
            return  # it said it cannot be interrupted: it would not understand
        try:
            call.callee.interrupt(call, mode)
        except Exception:
            logger.exception(
                "interrupt of invocation %d to session %r failed",
                call.invocation_id,
                call.callee.session_id,
            )


def wildcard_matches(pattern: list[str], components: list[str]) -> bool:
    """Whether a wildcard pattern (empty components match any) matches a URI of as many
    components; WAMP's rule for registrations and subscriptions alike."""
    return all(not want or want == have for want, have in zip(pattern, components, strict=True))
