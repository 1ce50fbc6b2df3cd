"""Remote procedure calls: REGISTER/UNREGISTER, CALL/INVOCATION/YIELD/RESULT, errors,
pattern-based and shared registrations, progressive results, cancelling, timeouts, caller
disclosure, and callees that leave mid-call.

WAMP spec, Basic Profile "Remote Procedure Calls"; Advanced Profile "Progressive Call Results",
"Call Timeouts", "Call Canceling", "Caller Identification", "Pattern-based Registration",
"Shared Registration". Cancel modes, timeouts and disclosure use the raw peer on both sides, so
each INTERRUPT (or its absence) is seen on the wire.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from conformance.aio import async_test
from conformance.wamp import wire
from conformance.wamp.clients import (
    ApplicationError,
    CallOptions,
    CallResult,
    Client,
    Inbox,
    PublishOptions,
    RegisterOptions,
)
from conformance.wamp.rawwamp import RawWamp
from conformance.wamp.support import Server, Uris, peers

ALREADY = "wamp.error.procedure_already_exists"
POLICY_CONFLICT = "wamp.error.procedure_exists_with_different_invocation_policy"


async def register(c: Client, procedure: str, fn: Any, **options: Any) -> Any:
    return await asyncio.wait_for(
        c.session.register(fn, procedure, options=RegisterOptions(**options)), 5.0
    )


async def call_error(c: Client, procedure: str, *args: Any, **kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await c.call(procedure, *args, **kwargs)
    return info.value


async def raw_call(caller: RawWamp, procedure: str, args: list[Any], **options: Any) -> int:
    req = caller.next_id()
    caller.send([wire.CALL, req, options, procedure, args])
    return req


async def raw_invocation(callee: RawWamp, registration: int) -> list[Any]:
    inv = await callee.expect(wire.INVOCATION)
    assert inv[2] == registration, inv
    assert isinstance(inv[1], int), inv
    assert isinstance(inv[3], dict), inv
    return inv


# --------------------------------------------------------------------------- basic


@async_test
async def test_register_call_result_with_args_and_kwargs(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        callee = await p.autobahn(ser)

        def echo(*args: Any, **kwargs: Any) -> Any:
            return CallResult(*args, **kwargs)

        await register(callee, uris("echo"), echo)
        caller = await p.autobahn(ser)
        res = await caller.call(uris("echo"), 1, "two", [3.5, None], k={"x": [True]})
        assert list(res.results) == [1, "two", [3.5, None]]
        assert res.kwresults == {"k": {"x": [True]}}
        assert await caller.call(uris("echo"), "single") == "single"


@async_test
async def test_call_message_flow_shapes(server: Server, uris: Uris) -> None:
    """REGISTERED [65, req, reg]; INVOCATION [68, req, reg, details, args, kwargs]; YIELD
    [70, req, options, args, kwargs] becomes RESULT [50, call req, details, args, kwargs]."""
    async with peers(server) as p:
        callee = await p.raw("wamp.2.msgpack")
        req = callee.next_id()
        callee.send([wire.REGISTER, req, {}, uris("shape")])
        msg = await callee.recv()
        assert len(msg) == 3, msg
        assert msg[:2] == [wire.REGISTERED, req], msg
        reg = msg[2]
        assert isinstance(reg, int)
        assert 1 <= reg <= wire.MAX_ID
        caller = await p.raw()
        call_req = caller.next_id()
        caller.send([wire.CALL, call_req, {}, uris("shape"), [1, 2], {"k": "v"}])
        inv = await raw_invocation(callee, reg)
        assert inv[4:] == [[1, 2], {"k": "v"}], inv
        callee.send([wire.YIELD, inv[1], {}, [3], {"r": True}])
        res = await caller.expect(wire.RESULT)
        assert res[1] == call_req
        assert isinstance(res[2], dict)
        assert res[3:] == [[3], {"r": True}]


@async_test
async def test_unregister_shape_then_call_gets_no_such_procedure(
    server: Server, uris: Uris
) -> None:
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("gone"))
        req = callee.next_id()
        callee.send([wire.UNREGISTER, req, reg])
        assert await callee.recv() == [wire.UNREGISTERED, req]
        req = callee.next_id()
        callee.send([wire.UNREGISTER, req, reg])
        await callee.expect_error(wire.UNREGISTER, req, "wamp.error.no_such_registration")
        caller = await p.raw()
        call_req = await raw_call(caller, uris("gone"), [])
        await caller.expect_error(wire.CALL, call_req, "wamp.error.no_such_procedure")


@async_test
async def test_call_unknown_procedure_gets_no_such_procedure(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        caller = await p.autobahn(ser)
        err = await call_error(caller, uris("nobody"))
        assert err.error == "wamp.error.no_such_procedure"


@async_test
async def test_second_register_gets_procedure_already_exists(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        a = await p.autobahn(ser)
        await register(a, uris("once"), lambda: "a")
        b = await p.autobahn(ser)
        with pytest.raises(ApplicationError) as info:
            await register(b, uris("once"), lambda: "b")
        assert info.value.error == ALREADY
        assert await b.call(uris("once")) == "a"


@async_test
async def test_register_invalid_uri(server: Server, uris: Uris) -> None:
    server.crossbar_deviates("it closes the connection with 1011 instead of ERROR invalid_uri")
    async with peers(server) as p:
        callee = await p.raw()
        req = callee.next_id()
        callee.send([wire.REGISTER, req, {}, uris("a") + "..b"])
        await callee.expect_error(wire.REGISTER, req, "wamp.error.invalid_uri")


@async_test
async def test_call_invalid_uri(server: Server, uris: Uris) -> None:
    server.crossbar_deviates("it closes the connection with 1011 instead of ERROR invalid_uri")
    async with peers(server) as p:
        caller = await p.raw()
        req = await raw_call(caller, uris("a") + " b", [])
        await caller.expect_error(wire.CALL, req, "wamp.error.invalid_uri")


@async_test
async def test_register_in_reserved_wamp_namespace_is_refused(server: Server, uid: str) -> None:
    """Application URIs must not start with ``wamp.``: the router refuses to register one
    (``wamp.error.not_authorized``; Crossbar answers ``wamp.error.invalid_uri``)."""
    async with peers(server) as p:
        callee = await p.raw()
        req = callee.next_id()
        callee.send([wire.REGISTER, req, {}, f"wamp.conf.{uid}"])
        err = await callee.expect_error(wire.REGISTER, req)
        allowed = {"wamp.error.not_authorized", "wamp.error.invalid_uri"}
        assert err[4] in allowed, err


@async_test
async def test_not_authorized_for_a_denied_role(server: Server, uid: str) -> None:
    """A role that may not use a URI gets ``wamp.error.not_authorized`` for REGISTER, CALL,
    SUBSCRIBE and acknowledged PUBLISH on it."""
    creds = server.auth.need_ticket()
    prefix = server.auth.denied_prefix
    if not prefix:
        pytest.skip("set WSBROKER_WAMP_DENIED_PREFIX: a prefix the ticket user's role may not use")
    realm = server.auth.need_realm()
    uri = f"{prefix}{uid}"
    async with peers(server) as p:
        c = await p.autobahn(realm=realm, credentials=creds)
        with pytest.raises(ApplicationError) as info:
            await register(c, uri, lambda: None)
        assert info.value.error == "wamp.error.not_authorized"
        err = await call_error(c, uri)
        assert err.error == "wamp.error.not_authorized"
        with pytest.raises(ApplicationError) as info:
            await c.subscribe(uri)
        assert info.value.error == "wamp.error.not_authorized"
        with pytest.raises(ApplicationError) as info:
            await c.session.publish(uri, 1, options=PublishOptions(acknowledge=True))
        assert info.value.error == "wamp.error.not_authorized"


@async_test
async def test_error_is_propagated_with_args_and_kwargs(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        callee = await p.autobahn(ser)

        def fail() -> None:
            raise ApplicationError("com.conf.error.bad", 1, "two", detail={"x": [3]})

        await register(callee, uris("fail"), fail)
        caller = await p.autobahn("msgpack" if ser == "json" else "json")
        err = await call_error(caller, uris("fail"))
        assert err.error == "com.conf.error.bad"
        assert list(err.args) == [1, "two"]
        assert err.kwargs == {"detail": {"x": [3]}}


@async_test
async def test_error_message_shape(server: Server, uris: Uris) -> None:
    """The callee's [8, 68, req, details, uri, args, kwargs] reaches the caller as
    [8, 48, call req, details, uri, args, kwargs]."""
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("err"))
        caller = await p.raw("wamp.2.msgpack")
        req = await raw_call(caller, uris("err"), [])
        inv = await raw_invocation(callee, reg)
        callee.send([wire.ERROR, wire.INVOCATION, inv[1], {}, "com.conf.oops", ["a"], {"b": 2}])
        err = await caller.expect_error(wire.CALL, req, "com.conf.oops")
        assert err[5:] == [["a"], {"b": 2}], err


# --------------------------------------------------------------------------- patterns


@async_test
async def test_prefix_registration_gets_procedure_in_details(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        callee = await p.autobahn(ser)

        def which(details: Any = None) -> Any:
            return details.procedure

        await register(callee, uris("pre"), which, match="prefix", details=True)
        caller = await p.autobahn(ser)
        for proc in (uris("pre", "a"), uris("pre", "a", "b"), uris("prefix")):
            assert await caller.call(proc) == proc
        err = await call_error(caller, uris("pr"))
        assert err.error == "wamp.error.no_such_procedure"


@async_test
async def test_wildcard_registration(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        callee = await p.autobahn(ser)

        def which(details: Any = None) -> Any:
            return details.procedure

        await register(callee, uris() + "..get", which, match="wildcard", details=True)
        caller = await p.autobahn(ser)
        assert await caller.call(uris("x", "get")) == uris("x", "get")
        for miss in (uris("x", "y", "get"), uris("x", "put")):
            err = await call_error(caller, miss)
            assert err.error == "wamp.error.no_such_procedure", miss


@async_test
async def test_exact_then_longest_prefix_then_wildcard(server: Server, uris: Uris) -> None:
    """When several registrations match, exact wins, then the longest prefix, then wildcard."""
    async with peers(server) as p:
        callee = await p.autobahn()
        await register(callee, uris("m", "a", "b"), lambda: "exact")
        await register(callee, uris("m"), lambda: "short prefix", match="prefix")
        await register(callee, uris("m", "a"), lambda: "long prefix", match="prefix")
        await register(callee, uris() + "..a.b", lambda: "wildcard", match="wildcard")
        await register(callee, uris() + "..x.b", lambda: "wildcard", match="wildcard")
        caller = await p.autobahn()
        assert await caller.call(uris("m", "a", "b")) == "exact"
        assert await caller.call(uris("m", "a", "c")) == "long prefix"
        assert await caller.call(uris("m", "z")) == "short prefix"
        assert await caller.call(uris("q", "x", "b")) == "wildcard"


# --------------------------------------------------------------------------- shared


async def shared_callees(p: Any, uris: Uris, invoke: str, n: int = 3) -> tuple[list[Client], Inbox]:
    """``n`` callees sharing ``uris("shared")`` with ``invoke``; each answers its index, and
    the inbox records which one was called."""
    calls = Inbox()
    callees = []
    for i in range(n):
        c = await p.autobahn()

        def handler(i: int = i) -> int:
            calls.put(i)
            return i

        await register(c, uris("shared"), handler, invoke=invoke)
        callees.append(c)
    return callees, calls


@async_test
async def test_shared_single_refuses_a_second_callee(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        await register(a, uris("s"), lambda: 1, invoke="single")
        b = await p.autobahn()
        with pytest.raises(ApplicationError) as info:
            await register(b, uris("s"), lambda: 2, invoke="single")
        assert info.value.error == ALREADY


@async_test
async def test_shared_roundrobin(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        _, _ = await shared_callees(p, uris, "roundrobin")
        caller = await p.autobahn()
        got = [await caller.call(uris("shared")) for _ in range(6)]
        assert sorted(got[:3]) == [0, 1, 2], got
        assert got[3:] == got[:3], got
        if server.strict:
            assert got == [0, 1, 2, 0, 1, 2], "roundrobin in the order of registration"


@async_test
async def test_shared_random(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        await shared_callees(p, uris, "random")
        caller = await p.autobahn()
        got = [await caller.call(uris("shared")) for _ in range(30)]
        assert set(got) <= {0, 1, 2}, got
        assert len(set(got)) > 1, got


@async_test
async def test_shared_first(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        callees, _ = await shared_callees(p, uris, "first")
        caller = await p.autobahn()
        assert [await caller.call(uris("shared")) for _ in range(3)] == [0, 0, 0]
        await callees[0].leave()
        assert await caller.call(uris("shared")) == 1


@async_test
async def test_shared_last(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        callees, _ = await shared_callees(p, uris, "last")
        caller = await p.autobahn()
        assert [await caller.call(uris("shared")) for _ in range(3)] == [2, 2, 2]
        await callees[2].leave()
        assert await caller.call(uris("shared")) == 1


@async_test
async def test_shared_registration_with_another_policy_is_refused(
    server: Server, uris: Uris
) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        await register(a, uris("s"), lambda: 1, invoke="roundrobin")
        b = await p.autobahn()
        with pytest.raises(ApplicationError) as info:
            await register(b, uris("s"), lambda: 2, invoke="random")
        assert info.value.error in (ALREADY, POLICY_CONFLICT), info.value


# --------------------------------------------------------------------------- progress


@async_test
async def test_progressive_call_results(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        callee = await p.autobahn(ser)

        async def count(n: int, details: Any = None) -> str:
            assert details.progress is not None, "the caller asked for progress"
            for i in range(n):
                details.progress(i, step=i)
            return "done"

        await register(callee, uris("count"), count, details=True)
        caller = await p.autobahn(ser)
        progress: list[Any] = []

        def on_progress(*args: Any, **kwargs: Any) -> None:
            progress.append((args, kwargs))

        res = await caller.call(uris("count"), 3, options=CallOptions(on_progress=on_progress))
        assert res == "done"
        assert progress == [((i,), {"step": i}) for i in range(3)], progress


@async_test
async def test_progressive_result_shapes(server: Server, uris: Uris) -> None:
    """CALL receive_progress: INVOCATION.Details.receive_progress is true; each YIELD with
    progress becomes RESULT with Details.progress true, the final one without."""
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("prog"))
        caller = await p.raw()
        req = await raw_call(caller, uris("prog"), [], receive_progress=True)
        inv = await raw_invocation(callee, reg)
        assert inv[3].get("receive_progress") is True, inv
        callee.send([wire.YIELD, inv[1], {"progress": True}, ["p1"]])
        callee.send([wire.YIELD, inv[1], {"progress": True}, ["p2"]])
        callee.send([wire.YIELD, inv[1], {}, ["final"]])
        results = [await caller.expect(wire.RESULT) for _ in range(3)]
        assert [r[1] for r in results] == [req] * 3
        assert [r[2].get("progress", False) for r in results] == [True, True, False], results
        assert [r[3] for r in results] == [["p1"], ["p2"], ["final"]]


# --------------------------------------------------------------------------- cancel


async def pending_call(
    p: Any, uris: Uris, *, callee_cancels: bool = True
) -> tuple[RawWamp, RawWamp, int, list[Any]]:
    """A raw callee (announcing call_canceling unless not ``callee_cancels``) holding an
    INVOCATION for a raw caller's CALL; (caller, callee, call request, invocation)."""
    details: dict[str, Any] | None = None
    if not callee_cancels:
        details = {"roles": {"callee": {"features": {}}}}
    callee = await p.raw(details=details)
    reg = await callee.register(uris("slow"))
    caller = await p.raw()
    req = await raw_call(caller, uris("slow"), ["x"])
    inv = await raw_invocation(callee, reg)
    return caller, callee, req, inv


@async_test
async def test_cancel_skip(server: Server, uris: Uris) -> None:
    """mode=skip: ERROR ``wamp.error.canceled`` to the caller at once, no INTERRUPT, and the
    callee's late YIELD is dropped."""
    server.crossbar_deviates("it sends the caller no ERROR at all for mode=skip")
    async with peers(server) as p:
        caller, callee, req, inv = await pending_call(p, uris)
        caller.send([wire.CANCEL, req, {"mode": "skip"}])
        await caller.expect_error(wire.CALL, req, "wamp.error.canceled")
        callee.send([wire.YIELD, inv[1], {}, ["late"]])
        # The callee got no INTERRUPT: its next message answers its next request.
        await callee.register(uris("barrier"))
        # The caller got no RESULT: its next message answers its next request.
        await caller.subscribe(uris("barrier"))


@async_test
async def test_cancel_kill(server: Server, uris: Uris) -> None:
    """mode=kill: INTERRUPT (mode kill) to the callee; the caller's ERROR comes only after the
    callee answered, and carries ``wamp.error.canceled``."""
    async with peers(server) as p:
        caller, callee, req, inv = await pending_call(p, uris)
        caller.send([wire.CANCEL, req, {"mode": "kill"}])
        interrupt = await callee.expect(wire.INTERRUPT)
        assert interrupt[1] == inv[1], interrupt
        assert interrupt[2].get("mode", "kill") == "kill", interrupt
        # Nothing for the caller until the callee answers the INTERRUPT.
        await caller.subscribe(uris("barrier"))
        callee.send([wire.ERROR, wire.INVOCATION, inv[1], {}, "wamp.error.canceled", []])
        await caller.expect_error(wire.CALL, req, "wamp.error.canceled")


@async_test
async def test_cancel_killnowait(server: Server, uris: Uris) -> None:
    """mode=killnowait: ERROR to the caller at once and INTERRUPT to the callee, whose answer
    is then dropped."""
    async with peers(server) as p:
        caller, callee, req, inv = await pending_call(p, uris)
        caller.send([wire.CANCEL, req, {"mode": "killnowait"}])
        await caller.expect_error(wire.CALL, req, "wamp.error.canceled")
        interrupt = await callee.expect(wire.INTERRUPT)
        assert interrupt[1] == inv[1], interrupt
        assert interrupt[2].get("mode", "killnowait") == "killnowait", interrupt
        callee.send([wire.ERROR, wire.INVOCATION, inv[1], {}, "wamp.error.canceled", []])
        await caller.subscribe(uris("barrier"))


@async_test
async def test_cancel_kill_without_callee_support_falls_back_to_skip(
    server: Server, uris: Uris
) -> None:
    """A callee that did not announce call_canceling gets no INTERRUPT: the call is skipped."""
    server.crossbar_deviates("it sends the caller no ERROR at all when it falls back to skip")
    async with peers(server) as p:
        caller, callee, req, _ = await pending_call(p, uris, callee_cancels=False)
        caller.send([wire.CANCEL, req, {"mode": "kill"}])
        await caller.expect_error(wire.CALL, req, "wamp.error.canceled")
        await callee.register(uris("barrier"))


@async_test
async def test_autobahn_cancel(server: Server, uris: Uris) -> None:
    """autobahn-python cancels a call by cancelling its future: the callee's handler is
    interrupted and the caller sees the call end."""
    async with peers(server) as p:
        callee = await p.autobahn()
        started = Inbox()
        interrupted = Inbox()

        async def slow() -> None:
            started.put(True)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                interrupted.put(True)
                raise

        await register(callee, uris("slow"), slow)
        caller = await p.autobahn()
        fut = caller.session.call(uris("slow"))
        await started.get()
        fut.cancel()
        with pytest.raises((asyncio.CancelledError, ApplicationError)):
            await asyncio.wait_for(fut, 5.0)
        assert await interrupted.get() is True


# --------------------------------------------------------------------------- timeout


@async_test
async def test_call_timeout_is_enforced_by_the_router(server: Server, uris: Uris) -> None:
    """CALL.Options.timeout (ms): when it expires the caller gets ERROR ``wamp.error.canceled``
    (the spec's newest text says ``wamp.error.timeout``; the issue asks for canceled) and the
    callee an INTERRUPT. Crossbar reads the option in seconds."""
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("never"))
        caller = await p.raw()
        started = time.monotonic()
        req = await raw_call(caller, uris("never"), [], timeout=server.timeout_option(400))
        inv = await raw_invocation(callee, reg)
        expected = server.timeout_seconds(400)
        err = await caller.expect_error(wire.CALL, req, within=expected + 5)
        elapsed = time.monotonic() - started
        if server.strict:
            assert err[4] == "wamp.error.canceled", err
        else:
            assert err[4] in ("wamp.error.canceled", "wamp.error.timeout"), err
        if not server.crossbar:
            # Crossbar's timer has 1 s buckets: 1 s may expire at once.
            assert elapsed >= 0.3, f"timed out after {elapsed:.2f} s with a 400 ms timeout"
        interrupt = await callee.expect(wire.INTERRUPT)
        assert interrupt[1] == inv[1], interrupt


@async_test
async def test_call_answered_before_timeout_is_not_canceled(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("quick"))
        caller = await p.raw()
        req = await raw_call(caller, uris("quick"), [], timeout=server.timeout_option(2000))
        inv = await raw_invocation(callee, reg)
        callee.send([wire.YIELD, inv[1], {}, ["in time"]])
        res = await caller.expect(wire.RESULT)
        assert res[1] == req, res
        assert res[3] == ["in time"], res
        # No late ERROR or INTERRUPT follows the timer.
        await caller.subscribe(uris("barrier"))
        await callee.register(uris("barrier"))


# --------------------------------------------------------------------------- disclosure


@async_test
async def test_caller_disclosure(server: Server, uris: Uris) -> None:
    """CALL.Options.disclose_me: INVOCATION.Details.caller is the caller's session id.

    Crossbar discloses by its role configuration, not by disclose_me: its run configures
    disclosure for ``conf.disclosed.``, the prefix this test calls under.
    """
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris.disclosed("who"))
        caller = await p.raw("wamp.2.msgpack")
        req = await raw_call(caller, uris.disclosed("who"), [], disclose_me=True)
        inv = await raw_invocation(callee, reg)
        assert inv[3].get("caller") == caller.session_id, inv
        callee.send([wire.YIELD, inv[1], {}, []])
        assert (await caller.expect(wire.RESULT))[1] == req


@async_test
async def test_caller_not_disclosed_by_default(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        callee = await p.raw()
        reg = await callee.register(uris("anon"))
        caller = await p.raw()
        await raw_call(caller, uris("anon"), [])
        inv = await raw_invocation(callee, reg)
        assert "caller" not in inv[3], inv


# --------------------------------------------------------------------------- callee leaves


@pytest.mark.parametrize("how", ["drop", "goodbye"])
@async_test
async def test_callee_leaving_mid_call_cancels_the_call(
    server: Server, uris: Uris, how: str
) -> None:
    """A callee that goes away (TCP dropped, or GOODBYE) with a call in flight: the caller
    gets ERROR ``wamp.error.canceled``."""
    async with peers(server) as p:
        caller, callee, req, _ = await pending_call(p, uris)
        if how == "drop":
            await callee.aclose()
        else:
            await callee.goodbye()
        await caller.expect_error(wire.CALL, req, "wamp.error.canceled")


@async_test
async def test_caller_leaving_mid_call_interrupts_the_callee(server: Server, uris: Uris) -> None:
    """The other way round: the callee (which announced call_canceling) gets an INTERRUPT."""
    async with peers(server) as p:
        caller, callee, _, inv = await pending_call(p, uris)
        await caller.aclose()
        interrupt = await callee.expect(wire.INTERRUPT)
        assert interrupt[1] == inv[1], interrupt
