"""Procedures: registration rules, invoke policies, matching, progress, cancel, timeout, leaves."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from broker.core.rpc import (
    CANCELED,
    NO_SUCH_REGISTRATION,
    NOT_AUTHORIZED,
    PROCEDURE_ALREADY_EXISTS,
    PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
    PROTOCOL_VIOLATION,
    TIMEOUT,
    Call,
    CancelMode,
    Invoke,
    Match,
    Procedures,
    Registration,
    RpcError,
)
from broker.core.timers import Timers
from tests.fakes import FakeClock

Hook = Callable[["Peer", Call], None]
_session_ids = itertools.count(1)


class Peer:
    """A session that is caller and callee; records what it hears, `journal` in global order."""

    def __init__(self, name: str, journal: list[tuple[Any, ...]] | None = None) -> None:
        self.name = name
        self.session_id = next(_session_ids)
        self.journal = journal if journal is not None else []
        self.invocations: list[Call] = []
        self.interrupts: list[tuple[int, CancelMode]] = []
        self.results: list[tuple[int, list[Any] | None, dict[str, Any] | None, bool]] = []
        self.errors: list[tuple[int, str, list[Any] | None, dict[str, Any] | None]] = []
        self.on_invoke: Hook | None = None
        self.on_interrupt: Hook | None = None
        self.on_outcome: Hook | None = None

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def invoke(self, call: Call) -> None:
        self.invocations.append(call)
        self.journal.append(("invoke", self.name, call.invocation_id))
        if self.on_invoke is not None:
            self.on_invoke(self, call)

    def interrupt(self, call: Call, mode: CancelMode) -> None:
        self.interrupts.append((call.invocation_id, mode))
        self.journal.append(("interrupt", self.name, call.invocation_id, mode))
        if self.on_interrupt is not None:
            self.on_interrupt(self, call)

    def call_result(
        self, call: Call, args: list[Any] | None, kwargs: dict[str, Any] | None, progress: bool
    ) -> None:
        self.results.append((call.request, args, kwargs, progress))
        self.journal.append(("result", self.name, call.request, progress))
        if self.on_outcome is not None:
            self.on_outcome(self, call)

    def call_error(
        self, call: Call, error: str, args: list[Any] | None, kwargs: dict[str, Any] | None
    ) -> None:
        self.errors.append((call.request, error, args, kwargs))
        self.journal.append(("error", self.name, call.request, error))
        if self.on_outcome is not None:
            self.on_outcome(self, call)


class Broken(Peer):
    """Every callback raises (after recording)."""

    def invoke(self, call: Call) -> None:
        super().invoke(call)
        raise RuntimeError("connection lost")

    def interrupt(self, call: Call, mode: CancelMode) -> None:
        super().interrupt(call, mode)
        raise RuntimeError("connection lost")

    def call_result(
        self, call: Call, args: list[Any] | None, kwargs: dict[str, Any] | None, progress: bool
    ) -> None:
        super().call_result(call, args, kwargs, progress)
        raise RuntimeError("connection lost")

    def call_error(
        self, call: Call, error: str, args: list[Any] | None, kwargs: dict[str, Any] | None
    ) -> None:
        super().call_error(call, error, args, kwargs)
        raise RuntimeError("connection lost")


class Dealer:
    """Procedures with a fake clock and its timers."""

    def __init__(self, **options: Any) -> None:
        self.clock = FakeClock()
        self.timers = Timers()
        ids = itertools.count(1000)
        self.procedures = Procedures(self.timers, self.clock, new_id=lambda: next(ids), **options)

    def advance(self, seconds: float) -> int:
        self.clock.now += seconds
        return self.timers.run_due(self.clock.now)


@pytest.fixture
def dealer() -> Dealer:
    return Dealer()


def start(
    procedures: Procedures, caller: Peer, request: int, uri: str = "com.app.proc", **options: Any
) -> Call:
    call = procedures.call(caller, request, uri, [request], None, **options)
    assert call is not None
    return call


def error_of(exc: pytest.ExceptionInfo[RpcError]) -> str:
    return exc.value.error


# Registrations


def test_register_creates_and_finds(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a = Peer("a")
    registration = procedures.register(a, "com.app.proc")
    assert (registration.procedure, registration.match, registration.invoke) == (
        "com.app.proc",
        "exact",
        "single",
    )
    assert registration.callees == [a]
    assert registration.created == dealer.clock.now
    assert procedures.registration(registration.id) is registration
    assert procedures.registrations() == [registration]
    assert procedures.find("com.app.proc") is registration
    assert procedures.find("com.app.proc", "prefix") is None
    assert procedures.lookup("com.app.proc") is registration
    assert procedures.lookup("com.app") is None
    # Another match policy is another registration, even for the same string.
    other = procedures.register(a, "com.app.proc", "prefix")
    assert other.id != registration.id
    assert procedures.registrations() == [registration, other]


def test_register_conflicts(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b = Peer("a"), Peer("b")
    procedures.register(a, "single")
    with pytest.raises(RpcError) as exc:
        procedures.register(b, "single")
    assert error_of(exc) == PROCEDURE_ALREADY_EXISTS
    assert "'single'" in str(exc.value)
    # An existing "single" registration refuses any policy: it said no one else.
    with pytest.raises(RpcError) as exc:
        procedures.register(b, "single", invoke="roundrobin")
    assert error_of(exc) == PROCEDURE_ALREADY_EXISTS

    procedures.register(a, "shared", invoke="roundrobin")
    for invoke in ("single", "random", "first", "last"):
        with pytest.raises(RpcError) as exc:
            procedures.register(b, "shared", invoke=invoke)
        assert error_of(exc) == PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY
    with pytest.raises(RpcError) as exc:
        procedures.register(a, "shared", invoke="roundrobin")  # the same callee again
    assert error_of(exc) == PROCEDURE_ALREADY_EXISTS
    shared = procedures.find("shared")
    assert shared is not None
    assert shared.callees == [a]


def test_join_a_shared_registration(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b, c = Peer("a"), Peer("b"), Peer("c")
    first = procedures.register(a, "com.app.", "wildcard", "random")
    dealer.clock.now += 5
    assert procedures.register(b, "com.app.", "wildcard", "random") is first
    assert procedures.register(c, "com.app.", "wildcard", "random") is first
    assert first.callees == [a, b, c]
    assert first.created == dealer.clock.now - 5
    assert len(procedures.registrations()) == 1


def test_unregister(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b, stranger = Peer("a"), Peer("b"), Peer("stranger")
    registration = procedures.register(a, "com.app.proc", invoke="first")
    procedures.register(b, "com.app.proc", invoke="first")
    with pytest.raises(RpcError) as exc:
        procedures.unregister(stranger, registration.id)
    assert error_of(exc) == NO_SUCH_REGISTRATION
    with pytest.raises(RpcError) as exc:
        procedures.unregister(a, 424242)
    assert error_of(exc) == NO_SUCH_REGISTRATION

    assert procedures.unregister(a, registration.id) is registration
    assert registration.callees == [b]
    assert procedures.registration(registration.id) is registration
    with pytest.raises(RpcError):
        procedures.unregister(a, registration.id)  # once only

    assert procedures.unregister(b, registration.id) is registration
    assert registration.callees == []  # deleted
    assert procedures.registration(registration.id) is None
    assert procedures.lookup("com.app.proc") is None
    assert procedures.registrations() == []
    # Gone: the procedure is free again, under a new registration.
    again = procedures.register(stranger, "com.app.proc")
    assert again is not registration


def test_remove_callee_reports_what_it_left(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b = Peer("a"), Peer("b")
    alone = procedures.register(a, "alone")
    shared = procedures.register(a, "shared", invoke="last")
    procedures.register(b, "shared", invoke="last")
    assert procedures.remove_callee(a) == [(alone, True), (shared, False)]
    assert procedures.registrations() == [shared]
    assert shared.callees == [b]
    assert procedures.remove_callee(a) == []
    with pytest.raises(RpcError):
        procedures.unregister(a, shared.id)


# Invoke policies


def callees_picked(procedures: Procedures, count: int, uri: str = "com.app.proc") -> list[str]:
    caller = Peer("caller")
    picked = []
    for request in range(count):
        call = start(procedures, caller, request, uri)
        assert isinstance(call.callee, Peer)
        picked.append(call.callee.name)
    return picked


def register_all(procedures: Procedures, invoke: Invoke, *callees: Peer) -> Registration:
    registrations = {procedures.register(c, "com.app.proc", invoke=invoke) for c in callees}
    assert len(registrations) == 1
    return registrations.pop()


def test_single_invokes_its_callee(dealer: Dealer) -> None:
    a = Peer("a")
    register_all(dealer.procedures, "single", a)
    assert callees_picked(dealer.procedures, 3) == ["a", "a", "a"]


@pytest.mark.parametrize(("invoke", "expected"), [("first", "abb"), ("last", "cbd")])
def test_first_and_last_follow_registration_order(invoke: Invoke, expected: str) -> None:
    procedures = Dealer().procedures
    a, b, c, d = Peer("a"), Peer("b"), Peer("c"), Peer("d")
    registration = register_all(procedures, invoke, a, b, c)
    picked = callees_picked(procedures, 1)
    procedures.unregister(a, registration.id)
    procedures.unregister(c, registration.id)
    picked += callees_picked(procedures, 1)
    procedures.register(d, "com.app.proc", invoke=invoke)
    picked += callees_picked(procedures, 1)
    assert "".join(picked) == expected


def test_roundrobin_rotates_and_survives_leaves(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b, c, d = Peer("a"), Peer("b"), Peer("c"), Peer("d")
    registration = register_all(procedures, "roundrobin", a, b, c)
    assert callees_picked(procedures, 4) == ["a", "b", "c", "a"]
    # b is next; a (before it) leaves: b is still next, nobody is skipped.
    procedures.unregister(a, registration.id)
    assert callees_picked(procedures, 3) == ["b", "c", "b"]
    # c is next and leaves: the one after it (b, wrapping around) comes next.
    procedures.unregister(c, registration.id)
    procedures.register(d, "com.app.proc", invoke="roundrobin")
    assert callees_picked(procedures, 3) == ["d", "b", "d"]


def test_random_uses_the_injected_rng() -> None:
    dealer = Dealer(rng=random.Random(7))
    callees = [Peer(name) for name in "abcd"]
    register_all(dealer.procedures, "random", *callees)
    reference = random.Random(7)
    expected = [reference.choice(callees).name for _ in range(40)]
    picked = callees_picked(dealer.procedures, 40)
    assert picked == expected
    assert set(picked) == set("abcd")


# Matching


def test_lookup_follows_the_specs_examples(dealer: Dealer) -> None:
    procedures = dealer.procedures
    x = Peer("x")
    patterns: list[tuple[str, Match]] = [
        ("a1.b2.c3.d4.e55", "exact"),
        ("a1.b2.c3", "prefix"),
        ("a1.b2.c3.d4", "prefix"),
        ("a1.b2..d4.e5", "wildcard"),
        ("a1.b2.c3..e5", "wildcard"),
        ("a1.b2..d4.e5..g7", "wildcard"),
        ("a1.b2..d4..f6.g7", "wildcard"),
    ]
    rpc = {number: procedures.register(x, p, m) for number, (p, m) in enumerate(patterns, 1)}
    cases = {
        "a1.b2.c3.d4.e55": 1,
        "a1.b2.c3.d98.e74": 2,
        "a1.b2.c3.d4.e325": 3,
        "a1.b2.c55.d4.e5": 4,
        "a1.b2.c3.d4.e5": 3,  # the spec means "no prefix match" there; 3 is one (string prefix)
        "a1.b2.c88.d4.e5.f6.g7": 6,
    }
    for uri, number in cases.items():
        assert procedures.lookup(uri) is rpc[number], uri
    assert procedures.lookup("a2.b2.c2.d2.e2") is None
    assert procedures.call(Peer("caller"), 1, "a2.b2.c2.d2.e2", None, None) is None
    # Without the prefixes, the spec's wildcard tie-breaks show.
    procedures.remove_callee(x)
    for number in (4, 5, 6, 7):
        rpc[number] = procedures.register(x, *patterns[number - 1])
    assert procedures.lookup("a1.b2.c3.d4.e5") is rpc[5]
    assert procedures.matching("a1.b2.c3.d4.e5") == [rpc[5], rpc[4]]


def test_prefix_is_a_string_prefix_and_the_longest_wins(dealer: Dealer) -> None:
    procedures = dealer.procedures
    x = Peer("x")
    obj = procedures.register(x, "com.myapp.myobject1", "prefix")
    app = procedures.register(x, "com.myapp", "prefix")
    everything = procedures.register(x, "", "prefix")
    for uri in (
        "com.myapp.myobject1.myprocedure1",
        "com.myapp.myobject1-mysubobject1",
        "com.myapp.myobject1.mysubobject1.myprocedure1",
        "com.myapp.myobject1",
    ):
        assert procedures.lookup(uri) is obj, uri
    for uri in ("com.myapp.myobject2", "com.myapp.myobject", "com.myappx", "com.myapp"):
        assert procedures.lookup(uri) is app, uri
    assert procedures.lookup("com.other") is everything
    assert procedures.matching("com.myapp.myobject1.x") == [obj, app, everything]
    # An exact registration beats every prefix; a prefix beats every wildcard.
    exact = procedures.register(x, "com.myapp.myobject1.x")
    procedures.register(x, "com.myapp.myobject1.", "wildcard")
    assert procedures.lookup("com.myapp.myobject1.x") is exact
    assert procedures.lookup("com.myapp.myobject1.y") is obj
    # Removing a prefix forgets its length only when no other prefix has it.
    same_length = procedures.register(x, "org.myapp", "prefix")
    procedures.unregister(x, app.id)
    assert procedures.lookup("org.myapp.z") is same_length
    assert procedures.lookup("com.myapp.z") is everything


def test_wildcards_match_whole_components_of_the_same_count(dealer: Dealer) -> None:
    procedures = dealer.procedures
    x = Peer("x")
    create = procedures.register(x, "com..create", "wildcard")
    anything = procedures.register(x, "..", "wildcard")
    assert procedures.lookup("com.a.create") is create
    assert procedures.lookup("com..create") is create  # an empty component is a component
    assert procedures.lookup("com.a.b.create") is None
    assert procedures.lookup("com.create") is None
    assert procedures.lookup("com.a.created") is anything
    assert procedures.lookup("org.a.create") is anything
    assert procedures.matching("com.a.create") == [create, anything]
    assert procedures.matching("com.a") == []
    # Without wildcards, a wildcard registration is a (weakest) exact match.
    plain = procedures.register(x, "com.a.b", "wildcard")
    assert procedures.lookup("com.a.b") is plain
    procedures.unregister(x, plain.id)
    procedures.unregister(x, create.id)
    assert procedures.lookup("com.a.create") is anything
    procedures.unregister(x, anything.id)
    assert procedures.lookup("com.a.create") is None
    assert procedures.registrations() == []


def test_pattern_call_carries_the_uri_called(dealer: Dealer) -> None:
    procedures = dealer.procedures
    x = Peer("x")
    registration = procedures.register(x, "com.app", "prefix")
    call = start(procedures, Peer("caller"), 1, "com.app.thing", disclose_caller=True)
    assert (call.procedure, call.registration, call.callee) == ("com.app.thing", registration, x)
    assert (call.args, call.kwargs, call.disclose_caller, call.receive_progress) == (
        [1],
        None,
        True,
        False,
    )
    assert x.invocations == [call]


# Results and errors


def test_result_ends_the_call(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    procedures.register(callee, "com.app.proc")
    first = start(procedures, caller, 1)
    second = start(procedures, caller, 2)
    assert second.invocation_id > first.invocation_id
    assert procedures.calls_in_flight == 2
    assert procedures.yield_result(callee, second.invocation_id, ["two"], {"k": 2})
    assert procedures.yield_error(callee, first.invocation_id, "com.app.oops", ["one"], None)
    assert caller.results == [(2, ["two"], {"k": 2}, False)]
    assert caller.errors == [(1, "com.app.oops", ["one"], None)]
    assert procedures.calls_in_flight == 0
    # Once only, and only from the callee it went to.
    assert not procedures.yield_result(callee, second.invocation_id, None, None)
    assert not procedures.yield_error(callee, first.invocation_id, "x", None, None)
    third = start(procedures, caller, 3)
    assert not procedures.yield_result(caller, third.invocation_id, None, None)
    assert not procedures.yield_error(caller, third.invocation_id, "x", None, None)
    assert procedures.calls_in_flight == 1


def test_progressive_results_go_to_a_caller_that_asked(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, eager, plain = Peer("callee"), Peer("eager"), Peer("plain")
    procedures.register(callee, "com.app.proc")
    wants = start(procedures, eager, 1, receive_progress=True)
    does_not = start(procedures, plain, 1)
    assert wants.receive_progress
    assert not does_not.receive_progress
    for call in (wants, does_not):
        for part in ("p1", "p2"):
            assert procedures.yield_result(callee, call.invocation_id, [part], None, progress=True)
    assert procedures.calls_in_flight == 2
    for call in (wants, does_not):
        assert procedures.yield_result(callee, call.invocation_id, ["end"], None)
    assert eager.results == [
        (1, ["p1"], None, True),
        (1, ["p2"], None, True),
        (1, ["end"], None, False),
    ]
    assert plain.results == [(1, ["end"], None, False)]
    assert not procedures.yield_result(callee, wants.invocation_id, ["late"], None, progress=True)
    assert procedures.calls_in_flight == 0


def test_progress_then_error(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 1, receive_progress=True)
    procedures.yield_result(callee, call.invocation_id, ["p"], None, progress=True)
    procedures.yield_error(callee, call.invocation_id, "com.app.failed", None, {"why": 1})
    assert caller.results == [(1, ["p"], None, True)]
    assert caller.errors == [(1, "com.app.failed", None, {"why": 1})]


# Cancel


def cancel_setup(
    mode: CancelMode,
) -> tuple[Procedures, Peer, Peer, Call, list[tuple[Any, ...]]]:
    journal: list[tuple[Any, ...]] = []
    procedures = Dealer().procedures
    callee, caller = Peer("callee", journal), Peer("caller", journal)
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 7, receive_progress=True)
    journal.clear()
    assert procedures.cancel(caller, 7, mode)
    return procedures, callee, caller, call, journal


def test_cancel_skip_answers_at_once_and_tells_the_callee_nothing() -> None:
    procedures, callee, caller, call, journal = cancel_setup("skip")
    assert journal == [("error", "caller", 7, CANCELED)]
    assert caller.errors == [(7, CANCELED, None, None)]
    assert call.canceling == "skip"
    assert procedures.calls_in_flight == 0
    # The callee's answer comes too late: dropped.
    assert not procedures.yield_result(callee, call.invocation_id, ["x"], None, progress=True)
    assert not procedures.yield_result(callee, call.invocation_id, ["x"], None)
    assert not procedures.yield_error(callee, call.invocation_id, "e", None, None)
    assert caller.results == []
    assert not procedures.cancel(caller, 7, "kill")  # over: nothing to cancel


def test_cancel_killnowait_answers_at_once_and_interrupts() -> None:
    procedures, callee, caller, call, journal = cancel_setup("killnowait")
    assert journal == [
        ("error", "caller", 7, CANCELED),
        ("interrupt", "callee", call.invocation_id, "killnowait"),
    ]
    assert procedures.calls_in_flight == 0
    assert not procedures.yield_error(callee, call.invocation_id, CANCELED, None, None)
    assert not procedures.yield_result(callee, call.invocation_id, ["x"], None)
    assert len(caller.errors) == 1
    assert caller.results == []


@pytest.mark.parametrize("answer", ["result", "error"])
def test_cancel_kill_waits_for_the_callee(answer: str) -> None:
    procedures, callee, caller, call, journal = cancel_setup("kill")
    assert journal == [("interrupt", "callee", call.invocation_id, "kill")]
    assert call.canceling == "kill"
    assert procedures.calls_in_flight == 1
    # A second cancel, of any mode, changes nothing.
    assert procedures.cancel(caller, 7, "killnowait")
    assert procedures.cancel(caller, 7, "skip")
    assert len(journal) == 1
    # Progress no longer goes on: the caller awaits the end.
    assert procedures.yield_result(callee, call.invocation_id, ["p"], None, progress=True)
    assert caller.results == []
    if answer == "result":
        assert procedures.yield_result(callee, call.invocation_id, ["done"], None)
        assert caller.results == [(7, ["done"], None, False)]
        assert caller.errors == []
    else:
        # The callee's error goes through as it is (usually wamp.error.canceled).
        assert procedures.yield_error(callee, call.invocation_id, "com.app.stopped", ["x"], None)
        assert caller.errors == [(7, "com.app.stopped", ["x"], None)]
        assert caller.results == []
    assert procedures.calls_in_flight == 0


def test_cancel_needs_the_callers_own_request(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller, other = Peer("callee"), Peer("caller"), Peer("other")
    procedures.register(callee, "com.app.proc")
    start(procedures, caller, 1)
    assert not procedures.cancel(other, 1)
    assert not procedures.cancel(caller, 2)
    assert procedures.calls_in_flight == 1
    with pytest.raises(ValueError, match="cancel mode"):
        procedures.cancel(caller, 1, "later")  # type: ignore[arg-type]
    assert procedures.calls_in_flight == 1


# Timeouts


def test_timeout_answers_canceled_and_interrupts(dealer: Dealer) -> None:
    procedures = dealer.procedures
    journal: list[tuple[Any, ...]] = []
    callee, caller = Peer("callee", journal), Peer("caller", journal)
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 1, timeout=2.5)
    assert call.timer is not None
    assert call.timer.deadline == dealer.clock.now + 2.5
    assert dealer.advance(2.4) == 0
    assert procedures.calls_in_flight == 1
    assert dealer.advance(0.1) == 1
    assert journal[1:] == [
        ("error", "caller", 1, CANCELED),
        ("interrupt", "callee", call.invocation_id, "killnowait"),
    ]
    assert caller.errors == [(1, CANCELED, None, None)]
    assert procedures.calls_in_flight == 0
    assert not procedures.yield_result(callee, call.invocation_id, ["late"], None)
    assert caller.results == []


def test_every_end_of_a_call_stops_its_timer(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    registration = procedures.register(callee, "com.app.proc")
    answered = start(procedures, caller, 1, timeout=1)
    failed = start(procedures, caller, 2, timeout=1)
    skipped = start(procedures, caller, 3, timeout=1)
    killed = start(procedures, caller, 4, timeout=1)
    abandoned = start(procedures, caller, 5, timeout=1)
    assert len(dealer.timers) == 5
    procedures.yield_result(callee, answered.invocation_id, None, None)
    procedures.yield_error(callee, failed.invocation_id, "e", None, None)
    procedures.cancel(caller, 3, "skip")
    procedures.cancel(caller, 4, "killnowait")
    procedures.unregister(callee, registration.id)
    assert len(dealer.timers) == 0
    assert all(c.timer is None for c in (answered, failed, skipped, killed, abandoned))
    assert dealer.advance(10) == 0
    assert len(caller.errors) == 4
    assert TIMEOUT not in {error for _, error, _, _ in caller.errors}


def test_no_timeout_by_default_or_zero(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    procedures.register(callee, "com.app.proc")
    assert start(procedures, caller, 1).timer is None
    assert start(procedures, caller, 2, timeout=0).timer is None
    assert len(dealer.timers) == 0
    with pytest.raises(ValueError, match="negative"):
        procedures.call(caller, 3, "com.app.proc", None, None, timeout=-1)
    assert procedures.calls_in_flight == 2


def test_timeout_of_a_kill_cancel_answers_without_a_second_interrupt(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 1, timeout=5)
    procedures.cancel(caller, 1, "kill")
    dealer.advance(5)
    assert callee.interrupts == [(call.invocation_id, "kill")]
    assert caller.errors == [(1, CANCELED, None, None)]
    assert not procedures.yield_error(callee, call.invocation_id, CANCELED, None, None)
    assert len(caller.errors) == 1


# Sessions leaving


def test_callee_unregistering_cancels_its_calls_on_that_registration(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b, caller = Peer("a"), Peer("b"), Peer("caller")
    shared = procedures.register(a, "com.app.proc", invoke="roundrobin")
    procedures.register(b, "com.app.proc", invoke="roundrobin")
    procedures.register(a, "com.app.other")
    to_a = start(procedures, caller, 1)
    to_b = start(procedures, caller, 2)
    other = start(procedures, caller, 3, "com.app.other")
    assert (to_a.callee, to_b.callee, other.callee) == (a, b, a)
    procedures.unregister(a, shared.id)
    assert caller.errors == [(1, CANCELED, None, None)]
    assert a.interrupts == []
    assert procedures.calls_in_flight == 2
    assert not procedures.yield_result(a, to_a.invocation_id, None, None)
    assert procedures.yield_result(a, other.invocation_id, ["other"], None)
    assert procedures.yield_result(b, to_b.invocation_id, ["b"], None)
    assert caller.results == [(3, ["other"], None, False), (2, ["b"], None, False)]


def test_callee_leaving_cancels_all_its_calls(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, one, two = Peer("callee"), Peer("one"), Peer("two")
    procedures.register(callee, "com.app.proc")
    procedures.register(callee, "com.app", "prefix")
    start(procedures, one, 1)
    start(procedures, two, 1, "com.app.x", timeout=3)
    start(procedures, one, 2)
    procedures.cancel(one, 2, "kill")  # waiting for the callee, which leaves instead
    procedures.remove_callee(callee)
    assert one.errors == [(1, CANCELED, None, None), (2, CANCELED, None, None)]
    assert two.errors == [(1, CANCELED, None, None)]
    assert procedures.calls_in_flight == 0
    assert len(dealer.timers) == 0
    assert procedures.registrations() == []


def test_caller_leaving_interrupts_and_forgets_its_calls(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller, other = Peer("callee"), Peer("caller"), Peer("other")
    procedures.register(callee, "com.app.proc")
    first = start(procedures, caller, 1, timeout=9)
    killed = start(procedures, caller, 2)
    skipped = start(procedures, caller, 3)
    kept = start(procedures, other, 1)
    procedures.cancel(caller, 2, "kill")
    procedures.cancel(caller, 3, "skip")
    caller.errors.clear()
    procedures.remove_caller(caller)
    # The kill cancel interrupted its call already; the skipped one was over.
    assert callee.interrupts == [
        (killed.invocation_id, "kill"),
        (first.invocation_id, "killnowait"),
    ]
    assert caller.errors == []
    assert caller.results == []
    assert procedures.calls_in_flight == 1
    assert len(dealer.timers) == 0
    for call in (first, killed, skipped):
        assert not procedures.yield_result(callee, call.invocation_id, None, None)
    assert caller.results == []
    assert caller.errors == []
    assert procedures.yield_result(callee, kept.invocation_id, None, None)
    procedures.remove_caller(caller)  # twice: nothing more
    assert len(callee.interrupts) == 2


def test_a_session_calling_itself(dealer: Dealer) -> None:
    procedures = dealer.procedures
    both = Peer("both")
    procedures.register(both, "com.app.proc")
    start(procedures, both, 1)
    start(procedures, both, 2)
    procedures.remove_caller(both)
    assert procedures.calls_in_flight == 0
    assert len(both.interrupts) == 2
    start(procedures, both, 3)
    procedures.remove_callee(both)
    assert both.errors == [(3, CANCELED, None, None)]


# Re-entrant callbacks


def test_callee_answering_inside_invoke(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")

    def echo(peer: Peer, call: Call) -> None:
        assert procedures.calls_in_flight == 1
        procedures.yield_result(peer, call.invocation_id, call.args, None, progress=True)
        procedures.yield_result(peer, call.invocation_id, call.args, None)

    callee.on_invoke = echo
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 1, timeout=1, receive_progress=True)
    assert caller.results == [(1, [1], None, True), (1, [1], None, False)]
    assert procedures.calls_in_flight == 0
    assert call.timer is None
    assert len(dealer.timers) == 0
    # The request id is free again.
    start(procedures, caller, 1)


def test_canceling_inside_invoke(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")

    def cancel_at_once(peer: Peer, call: Call) -> None:
        procedures.cancel(caller, call.request, "killnowait")

    callee.on_invoke = cancel_at_once
    procedures.register(callee, "com.app.proc")
    call = start(procedures, caller, 1)
    assert caller.errors == [(1, CANCELED, None, None)]
    assert callee.interrupts == [(call.invocation_id, "killnowait")]
    assert procedures.calls_in_flight == 0


def test_caller_unregistering_the_callee_from_its_error_handler(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    registration = procedures.register(callee, "com.app.proc")

    def give_up(peer: Peer, call: Call) -> None:
        # Its first call failed: it takes the callee off; that cancels its second call.
        if call.request == 1:
            procedures.unregister(callee, registration.id)

    caller.on_outcome = give_up
    first = start(procedures, caller, 1)
    start(procedures, caller, 2)
    procedures.yield_error(callee, first.invocation_id, "com.app.broken", None, None)
    assert caller.errors == [(1, "com.app.broken", None, None), (2, CANCELED, None, None)]
    assert procedures.calls_in_flight == 0
    assert procedures.registrations() == []


def answer_at_once(procedures: Procedures, args: list[Any] | None = None) -> Hook:
    """An on_invoke hook: the callee yields its result from inside invoke()."""

    def hook(peer: Peer, call: Call) -> None:
        procedures.yield_result(peer, call.invocation_id, args, None)

    return hook


def test_calling_again_from_the_outcome_handlers(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    callee.on_invoke = answer_at_once(procedures)

    # Each call nests inside the last one's result: the depth is the in-process chain's own.
    def again(peer: Peer, call: Call) -> None:
        if call.request < 50:
            start(procedures, peer, call.request + 1)

    caller.on_outcome = again
    procedures.register(callee, "com.app.proc")
    start(procedures, caller, 1)
    assert [request for request, *_ in caller.results] == list(range(1, 51))
    assert procedures.calls_in_flight == 0


def test_callee_leaving_while_callers_are_told(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a, b, caller = Peer("a"), Peer("b"), Peer("caller")
    ra = procedures.register(a, "com.app.a")
    procedures.register(b, "com.app.b")
    start(procedures, caller, 1, "com.app.a")
    start(procedures, caller, 2, "com.app.b")
    start(procedures, caller, 3, "com.app.a")

    def b_leaves(peer: Peer, call: Call) -> None:
        if call.request == 1:
            procedures.remove_callee(b)

    # Told of its first canceled call, the caller's handler makes b leave too.
    caller.on_outcome = b_leaves
    procedures.unregister(a, ra.id)
    assert [(request, error) for request, error, _, _ in caller.errors] == [
        (1, CANCELED),
        (2, CANCELED),
        (3, CANCELED),
    ]
    assert procedures.calls_in_flight == 0
    assert procedures.registrations() == []


# Failing callbacks


def test_invoke_raising_fails_the_call(dealer: Dealer, caplog: pytest.LogCaptureFixture) -> None:
    procedures = dealer.procedures
    broken, caller = Broken("broken"), Peer("caller")
    procedures.register(broken, "com.app.proc")
    with caplog.at_level(logging.ERROR, logger="broker.core.rpc"):
        call = start(procedures, caller, 1, timeout=1)
    assert caller.errors == [(1, CANCELED, None, None)]
    assert procedures.calls_in_flight == 0
    assert call.timer is None
    assert [r.getMessage() for r in caplog.records] == [
        f"invocation {call.invocation_id} of 'com.app.proc' on session {broken.session_id} failed"
    ]
    assert broken.interrupts == []


def test_invoke_raising_after_answering(dealer: Dealer, caplog: pytest.LogCaptureFixture) -> None:
    procedures = dealer.procedures
    broken, caller = Broken("broken"), Peer("caller")
    broken.on_invoke = answer_at_once(procedures, ["ok"])
    procedures.register(broken, "com.app.proc")
    with caplog.at_level(logging.ERROR, logger="broker.core.rpc"):
        start(procedures, caller, 1)
    assert caller.results == [(1, ["ok"], None, False)]
    assert caller.errors == []
    assert len(caplog.records) == 1


def test_raising_callers_and_interrupts_do_not_break_the_others(
    dealer: Dealer, caplog: pytest.LogCaptureFixture
) -> None:
    procedures = dealer.procedures
    callee, good, deaf = Peer("callee"), Peer("good"), Peer("deaf")
    bad_callee, bad_caller = Broken("bad callee"), Broken("bad caller")

    def boom(peer: Peer, call: Call) -> None:
        raise RuntimeError("connection lost")

    deaf.on_interrupt = boom
    procedures.register(callee, "com.app.proc")
    procedures.register(bad_callee, "com.app.bad")
    procedures.register(deaf, "com.app.deaf")
    with caplog.at_level(logging.ERROR, logger="broker.core.rpc"):
        done = start(procedures, bad_caller, 1)
        assert procedures.yield_result(callee, done.invocation_id, None, None)  # result raises
        start(procedures, bad_caller, 2)
        start(procedures, good, 3)
        procedures.remove_callee(callee)  # both callers told; the first one raises
        start(procedures, good, 4, "com.app.bad")  # invoke raises
        kept = start(procedures, good, 5, "com.app.deaf")
        procedures.cancel(good, 5, "killnowait")  # interrupt raises
    assert bad_caller.results == [(1, None, None, False)]
    assert bad_caller.errors == [(2, CANCELED, None, None)]
    assert good.errors == [(request, CANCELED, None, None) for request in (3, 4, 5)]
    assert deaf.interrupts == [(kept.invocation_id, "killnowait")]
    assert procedures.calls_in_flight == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"result of call 1 to session {bad_caller.session_id} failed",
        f"error {CANCELED} of call 2 to session {bad_caller.session_id} failed",
        f"invocation {kept.invocation_id - 1} of 'com.app.bad' on session "
        f"{bad_callee.session_id} failed",
        f"interrupt of invocation {kept.invocation_id} to session {deaf.session_id} failed",
    ]


# Bounds


def test_max_registrations_counts_registrations_not_callees() -> None:
    procedures = Dealer(max_registrations=2).procedures
    a, b, c = Peer("a"), Peer("b"), Peer("c")
    procedures.register(a, "one", invoke="roundrobin")
    second = procedures.register(a, "two")
    with pytest.raises(RpcError) as exc:
        procedures.register(a, "three")
    assert error_of(exc) == NOT_AUTHORIZED
    assert "2 registrations" in str(exc.value)
    procedures.register(b, "one", invoke="roundrobin")  # joining is fine
    procedures.register(c, "one", invoke="roundrobin")
    procedures.unregister(a, second.id)
    procedures.register(a, "three")
    assert len(procedures.registrations()) == 2


def test_max_calls() -> None:
    dealer = Dealer(max_calls=2)
    procedures = dealer.procedures
    callee, caller = Peer("callee"), Peer("caller")
    procedures.register(callee, "com.app.proc")
    first = start(procedures, caller, 1)
    start(procedures, caller, 2)
    with pytest.raises(RpcError) as exc:
        procedures.call(caller, 3, "com.app.proc", None, None)
    assert error_of(exc) == NOT_AUTHORIZED
    assert len(callee.invocations) == 2
    # No registration: that answer comes first.
    assert procedures.call(caller, 3, "com.app.nothing", None, None) is None
    procedures.yield_result(callee, first.invocation_id, None, None)
    start(procedures, caller, 3)


def test_a_request_id_in_flight_is_refused(dealer: Dealer) -> None:
    procedures = dealer.procedures
    callee, caller, other = Peer("callee"), Peer("caller"), Peer("other")
    procedures.register(callee, "com.app.proc")
    start(procedures, caller, 1)
    with pytest.raises(RpcError) as exc:
        procedures.call(caller, 1, "com.app.proc", None, None)
    assert error_of(exc) == PROTOCOL_VIOLATION
    start(procedures, other, 1)  # request ids are the caller's own
    assert procedures.calls_in_flight == 2


def test_bad_arguments(dealer: Dealer) -> None:
    procedures = dealer.procedures
    a = Peer("a")
    with pytest.raises(ValueError, match="match"):
        procedures.register(a, "x", "regex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invocation policy"):
        procedures.register(a, "x", invoke="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        Procedures(dealer.timers, dealer.clock, new_id=lambda: 1, max_calls=-1)
    assert procedures.registrations() == []


def test_registration_ids_in_use_are_not_reused() -> None:
    ids = iter([5, 5, 5, 6])
    procedures = Procedures(Timers(), FakeClock(), new_id=lambda: next(ids))
    assert procedures.register(Peer("a"), "one").id == 5
    assert procedures.register(Peer("a"), "two").id == 6
    stuck = Procedures(Timers(), FakeClock(), new_id=lambda: 1)
    stuck.register(Peer("a"), "one")
    with pytest.raises(RuntimeError, match="in use"):
        stuck.register(Peer("a"), "two")
    assert len(stuck.registrations()) == 1


# Random sequences


class ModelPeer(Peer):
    """A peer of the state machine: checks each outcome is the first final one of its call."""

    def __init__(self, machine: RpcMachine, name: str) -> None:
        super().__init__(name)
        self.machine = machine
        self.answer_in_invoke = False
        self.fail_invoke = False

    def invoke(self, call: Call) -> None:
        super().invoke(call)
        self.machine.invoked.add(call.invocation_id)
        if self.fail_invoke:
            raise RuntimeError("connection lost")
        if self.answer_in_invoke:
            self.machine.procedures.yield_result(self, call.invocation_id, ["now"], None)

    def interrupt(self, call: Call, mode: CancelMode) -> None:
        super().interrupt(call, mode)
        self.machine.check(call.invocation_id in self.machine.invoked, "interrupt before invoke")
        self.machine.check(call.invocation_id not in self.machine.interrupted, "interrupted twice")
        self.machine.interrupted.append(call.invocation_id)

    def call_result(
        self, call: Call, args: list[Any] | None, kwargs: dict[str, Any] | None, progress: bool
    ) -> None:
        super().call_result(call, args, kwargs, progress)
        self.machine.outcome(self, call, final=not progress)
        if progress:
            self.machine.check(call.receive_progress, "progress it did not ask for")

    def call_error(
        self, call: Call, error: str, args: list[Any] | None, kwargs: dict[str, Any] | None
    ) -> None:
        super().call_error(call, error, args, kwargs)
        self.machine.outcome(self, call, final=True)


class RpcMachine(RuleBasedStateMachine):
    """Random sessions registering, calling, answering, canceling and leaving."""

    URIS = ("a.b", "a.c", "a.b.c", "x")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.timers = Timers()
        ids = itertools.count(1)
        self.procedures = Procedures(
            self.timers, self.clock, new_id=lambda: next(ids), max_calls=8, rng=random.Random(1)
        )
        self.peers: list[ModelPeer] = []
        self.gone: set[ModelPeer] = set()
        self.calls: list[Call] = []
        self.finals: dict[int, int] = {}  # invocation id -> final outcomes delivered
        self.invoked: set[int] = set()
        self.interrupted: list[int] = []
        self.errors: list[str] = []
        self.requests = itertools.count(1)

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            self.errors.append(what)

    def outcome(self, caller: ModelPeer, call: Call, *, final: bool) -> None:
        self.check(call.caller is caller, "outcome to the wrong caller")
        self.check(caller not in self.gone, "outcome to a caller that left")
        self.check(not self.finals.get(call.invocation_id), "outcome after the final one")
        if final:
            self.finals[call.invocation_id] = self.finals.get(call.invocation_id, 0) + 1

    def live(self) -> list[Call]:
        return [
            call
            for call in self.calls
            if not self.finals.get(call.invocation_id) and call.caller not in self.gone
        ]

    @initialize()
    def two_sessions_sharing_a_prefix(self) -> None:
        self.join("patient")
        self.join("patient")
        for peer in self.peers:
            self.procedures.register(peer, "a", "prefix", "roundrobin")

    @precondition(lambda self: len(self.peers) - len(self.gone) < 5)
    @rule(behaviour=st.sampled_from(("patient", "patient", "answers at once", "fails")))
    def join(self, behaviour: str) -> None:
        peer = ModelPeer(self, f"p{len(self.peers)}")
        peer.answer_in_invoke = behaviour == "answers at once"
        peer.fail_invoke = behaviour == "fails"
        self.peers.append(peer)

    def _present(self, data: st.DataObject) -> ModelPeer:
        return data.draw(st.sampled_from([p for p in self.peers if p not in self.gone]))

    def _anyone(self) -> bool:
        return len(self.peers) > len(self.gone)

    @precondition(_anyone)
    @rule(
        data=st.data(),
        uri=st.sampled_from(("a.b", "a", "a.", "x", "a..c")),
        match=st.sampled_from(("exact", "prefix", "wildcard")),
        invoke=st.sampled_from(("single", "roundrobin", "random", "first", "last")),
    )
    def register(self, data: st.DataObject, uri: str, match: Match, invoke: Invoke) -> None:
        peer = self._present(data)
        try:
            registration = self.procedures.register(peer, uri, match, invoke)
        except RpcError:
            return
        assert registration.callees[-1] is peer

    @precondition(_anyone)
    @rule(data=st.data())
    def unregister(self, data: st.DataObject) -> None:
        peer = self._present(data)
        registrations = self.procedures.registrations()
        ids = [r.id for r in registrations] + [999_999]
        registration_id = data.draw(st.sampled_from(ids))
        owned = any(r.id == registration_id and peer in r.callees for r in registrations)
        try:
            self.procedures.unregister(peer, registration_id)
        except RpcError:
            assert not owned
        else:
            assert owned
            assert not [
                c for c in self.live() if c.callee is peer and c.registration.id == registration_id
            ]

    @precondition(_anyone)
    @rule(
        data=st.data(),
        uri=st.sampled_from(URIS),
        timeout=st.sampled_from((None, 1.0, 2.0)),
        progress=st.booleans(),
    )
    def call(self, data: st.DataObject, uri: str, timeout: float | None, progress: bool) -> None:
        caller = self._present(data)
        expected = self.procedures.lookup(uri)
        try:
            call = self.procedures.call(
                caller,
                next(self.requests),
                uri,
                None,
                None,
                timeout=timeout,
                receive_progress=progress,
            )
        except RpcError:
            assert self.procedures.calls_in_flight >= 8
            return
        if expected is None:
            assert call is None
            return
        assert call is not None
        assert call.registration is expected
        assert call.callee in expected.callees
        assert isinstance(call.callee, ModelPeer)
        if call.callee.fail_invoke:
            assert caller.errors[-1] == (call.request, CANCELED, None, None)
        if call.callee.answer_in_invoke or call.callee.fail_invoke:
            assert self.finals.get(call.invocation_id) == 1
        self.calls.append(call)

    def _pick_invocation(self, data: st.DataObject) -> tuple[ModelPeer, int, bool]:
        live = self.live()
        pick_live = bool(live) and data.draw(st.booleans())
        if pick_live:
            call = data.draw(st.sampled_from(live))
            assert isinstance(call.callee, ModelPeer)
            return call.callee, call.invocation_id, True
        peer = self._present(data)
        invocation_id = data.draw(st.integers(0, len(self.calls) + 1))
        known = any(c.invocation_id == invocation_id and c.callee is peer for c in live)
        return peer, invocation_id, known

    @precondition(_anyone)
    @rule(data=st.data(), progress=st.booleans(), error=st.booleans())
    def answer(self, data: st.DataObject, progress: bool, error: bool) -> None:
        callee, invocation_id, known = self._pick_invocation(data)
        if error:
            answered = self.procedures.yield_error(callee, invocation_id, "e", None, None)
        else:
            answered = self.procedures.yield_result(
                callee, invocation_id, None, None, progress=progress
            )
        assert answered == known

    @precondition(lambda self: self.live())
    @rule(data=st.data(), mode=st.sampled_from(("skip", "kill", "killnowait")))
    def cancel(self, data: st.DataObject, mode: CancelMode) -> None:
        call = data.draw(st.sampled_from(self.live()))
        already = call.canceling
        assert isinstance(call.caller, ModelPeer)
        assert self.procedures.cancel(call.caller, call.request, mode)
        finals = self.finals.get(call.invocation_id, 0)
        if already is None and mode != "kill":
            assert finals == 1
        else:
            assert finals == 0

    @precondition(_anyone)
    @rule(data=st.data(), session_ends=st.booleans())
    def leave(self, data: st.DataObject, session_ends: bool) -> None:
        """Unregister everything, or end the session (as the WAMP adapter: caller, then callee)."""
        peer = self._present(data)
        if session_ends:
            self.gone.add(peer)
            self.procedures.remove_caller(peer)
        self.procedures.remove_callee(peer)
        assert not any(peer in r.callees for r in self.procedures.registrations())

    @rule(seconds=st.sampled_from((0.5, 1.0, 2.0)))
    def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.timers.run_due(self.clock.now)

    @invariant()
    def every_live_call_is_in_flight(self) -> None:
        assert not self.errors, self.errors
        assert self.procedures.calls_in_flight == len(self.live())
        assert len(self.timers) == sum(1 for c in self.live() if c.timer is not None)

    def teardown(self) -> None:
        for peer in self.peers:
            self.procedures.remove_callee(peer)
        assert not self.errors, self.errors
        assert self.procedures.calls_in_flight == 0
        assert self.procedures.registrations() == []
        for call in self.calls:
            finals = self.finals.get(call.invocation_id, 0)
            if call.caller in self.gone:
                assert finals <= 1
            else:
                assert finals == 1, call


RpcMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_rpc_machine = RpcMachine.TestCase
