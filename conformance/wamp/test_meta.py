"""The Meta API: ``wamp.session.*``, ``wamp.subscription.*`` and ``wamp.registration.*``
procedures and events.

WAMP spec, Advanced Profile "Session Meta API", "Subscription Meta API", "Registration Meta
API". Other tests' sessions come and go on the same realm, so counts and lists are checked
for what this test's own sessions add, never for exact totals.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.aio import async_test
from conformance.wamp.clients import ApplicationError, Client, Event, Inbox, RegisterOptions
from conformance.wamp.support import Server, Uris, peers


async def events_until(inbox: Inbox, match: Any) -> Event:
    """Skip other tests' meta events until one for which ``match(event)`` is true."""
    while True:
        ev: Event = await inbox.get()
        if match(ev):
            return ev


async def call_error(c: Client, procedure: str, *args: Any) -> str:
    with pytest.raises(ApplicationError) as info:
        await c.call(procedure, *args)
    return str(info.value.error)


# --------------------------------------------------------------------------- sessions


@async_test
async def test_session_count_and_list(server: Server, ser: str) -> None:
    async with peers(server) as p:
        a = await p.autobahn(ser)
        b = await p.autobahn()
        count = await a.call("wamp.session.count")
        listed = await a.call("wamp.session.list")
        assert isinstance(count, int), count
        assert count >= 2, count
        assert isinstance(listed, list), listed
        assert {a.id, b.id} <= set(listed), listed


@async_test
async def test_session_count_and_list_filter_by_authrole(server: Server) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        role = str(a.details.authrole)
        assert await a.call("wamp.session.count", ["conf-no-such-role"]) == 0
        assert await a.call("wamp.session.list", ["conf-no-such-role"]) == []
        assert a.id in await a.call("wamp.session.list", [role])
        assert await a.call("wamp.session.count", [role]) >= 1


@async_test
async def test_session_get(server: Server, ser: str) -> None:
    async with peers(server) as p:
        a = await p.autobahn(ser)
        b = await p.autobahn()
        info = await a.call("wamp.session.get", b.id)
        assert info["session"] == b.id, info
        assert info["authid"] == b.details.authid
        assert info["authrole"] == b.details.authrole
        assert info.get("authmethod") == "anonymous", info


@async_test
async def test_session_get_unknown_is_no_such_session(server: Server) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        assert await call_error(a, "wamp.session.get", 1) == "wamp.error.no_such_session"


@async_test
async def test_session_kill(server: Server) -> None:
    """wamp.session.kill closes another session with GOODBYE carrying the reason and message;
    the session leaves (on_leave) and is no longer listed."""
    async with peers(server) as p:
        killer = await p.autobahn()
        _, leaves = await killer.subscribe("wamp.session.on_leave")
        victim = await p.autobahn("msgpack")
        await killer.call("wamp.session.kill", victim.id, reason="com.conf.kicked", message="out")
        details = await victim.left
        assert details.reason == "com.conf.kicked", details
        assert details.message == "out", details
        await events_until(leaves, lambda e: bool(e.args) and e.args[0] == victim.id)
        listed = await killer.call("wamp.session.list")
        assert victim.id not in listed


@async_test
async def test_session_kill_self_is_no_such_session(server: Server) -> None:
    """The spec: the caller may only name other sessions; its own id is no_such_session."""
    server.crossbar_deviates("it closes the caller's own session (GOODBYE) for its own id")
    async with peers(server) as p:
        a = await p.autobahn()
        assert await call_error(a, "wamp.session.kill", a.id) == "wamp.error.no_such_session"


@async_test
async def test_session_on_join(server: Server, ser: str) -> None:
    async with peers(server) as p:
        watcher = await p.autobahn(ser)
        _, joins = await watcher.subscribe("wamp.session.on_join")
        newcomer = await p.autobahn()
        ev = await events_until(
            joins, lambda e: isinstance(e.args[0], dict) and e.args[0].get("session") == newcomer.id
        )
        info = ev.args[0]
        assert info["authid"] == newcomer.details.authid, info
        assert info["authrole"] == newcomer.details.authrole, info


@async_test
async def test_session_on_leave(server: Server, ser: str) -> None:
    """on_leave's payload: the session id first (the spec adds authid and authrole)."""
    async with peers(server) as p:
        watcher = await p.autobahn(ser)
        _, leaves = await watcher.subscribe("wamp.session.on_leave")
        leaver = await p.autobahn()
        await leaver.leave()
        ev = await events_until(leaves, lambda e: e.args and e.args[0] == leaver.id)
        if server.strict:
            assert list(ev.args[:3]) == [leaver.id, leaver.details.authid, leaver.details.authrole]


# --------------------------------------------------------------------------- subscriptions


@async_test
async def test_subscription_list_lookup_get(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        a = await p.autobahn(ser)
        exact, _ = await a.subscribe(uris("t"))
        prefix, _ = await a.subscribe(uris("t"), match="prefix")
        wild, _ = await a.subscribe(uris() + "..x", match="wildcard")
        lists = await a.call("wamp.subscription.list")
        assert exact.id in lists["exact"], lists
        assert prefix.id in lists["prefix"], lists
        if not server.crossbar:
            # Crossbar's list leaves "wildcard" empty (a FIXME in its code; see the notes).
            assert wild.id in lists["wildcard"], lists
        assert await a.call("wamp.subscription.lookup", uris("t")) == exact.id
        assert await a.call("wamp.subscription.lookup", uris("t"), {"match": "prefix"}) == prefix.id
        assert await a.call("wamp.subscription.lookup", uris("none")) is None
        got = await a.call("wamp.subscription.get", prefix.id)
        assert got["id"] == prefix.id
        assert got["uri"] == uris("t")
        assert got["match"] == "prefix"
        assert isinstance(got.get("created"), str), got


@async_test
async def test_subscription_match(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        exact, _ = await a.subscribe(uris("m", "x"))
        prefix, _ = await a.subscribe(uris("m"), match="prefix")
        await a.subscribe(uris("other"))
        matched = await a.call("wamp.subscription.match", uris("m", "x"))
        assert set(matched) == {exact.id, prefix.id}, matched
        assert await a.call("wamp.subscription.match", uris("nothing")) in (None, [])


@async_test
async def test_subscription_subscribers(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        b = await p.autobahn()
        sub, _ = await a.subscribe(uris("t"))
        await b.subscribe(uris("t"))
        assert set(await a.call("wamp.subscription.list_subscribers", sub.id)) == {a.id, b.id}
        assert await a.call("wamp.subscription.count_subscribers", sub.id) == 2


@async_test
async def test_subscription_get_unknown_is_no_such_subscription(server: Server) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        for proc in (
            "wamp.subscription.get",
            "wamp.subscription.list_subscribers",
            "wamp.subscription.count_subscribers",
        ):
            assert await call_error(a, proc, 1) == "wamp.error.no_such_subscription", proc


@async_test
async def test_subscription_meta_events(server: Server, uris: Uris, ser: str) -> None:
    """on_create then on_subscribe for the first subscriber; on_subscribe for the second;
    on_unsubscribe for each leaving one, then on_delete after the last."""
    async with peers(server) as p:
        w = await p.autobahn(ser)
        inboxes = {}
        for name in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete"):
            _, inboxes[name] = await w.subscribe(f"wamp.subscription.{name}")
        a = await p.autobahn()
        b = await p.autobahn()
        sub_a, _ = await a.subscribe(uris("t"))
        sid = sub_a.id

        def about(session: int) -> Any:
            return lambda e: len(e.args) >= 2 and e.args[0] == session and _sub_id(e.args[1]) == sid

        created = await events_until(inboxes["on_create"], about(a.id))
        details = created.args[1]
        assert details["uri"] == uris("t"), details
        assert details["match"] == "exact", details
        await events_until(inboxes["on_subscribe"], about(a.id))
        sub_b, _ = await b.subscribe(uris("t"))
        assert sub_b.id == sid
        await events_until(inboxes["on_subscribe"], about(b.id))
        await sub_a.unsubscribe()
        await events_until(inboxes["on_unsubscribe"], about(a.id))
        await sub_b.unsubscribe()
        await events_until(inboxes["on_unsubscribe"], about(b.id))
        await events_until(inboxes["on_delete"], about(b.id))


def _sub_id(value: Any) -> Any:
    """on_create carries the details dict, the other events the bare id."""
    return value["id"] if isinstance(value, dict) else value


# --------------------------------------------------------------------------- registrations


async def register(c: Client, procedure: str, **options: Any) -> Any:
    return await c.session.register(
        lambda *a, **k: None, procedure, options=RegisterOptions(**options)
    )


@async_test
async def test_registration_list_lookup_get(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        a = await p.autobahn(ser)
        exact = await register(a, uris("r"))
        prefix = await register(a, uris("r"), match="prefix")
        wild = await register(a, uris() + "..x", match="wildcard")
        lists = await a.call("wamp.registration.list")
        assert exact.id in lists["exact"], lists
        assert prefix.id in lists["prefix"], lists
        assert wild.id in lists["wildcard"], lists
        assert await a.call("wamp.registration.lookup", uris("r")) == exact.id
        assert await a.call("wamp.registration.lookup", uris("r"), {"match": "prefix"}) == prefix.id
        assert await a.call("wamp.registration.lookup", uris("none")) is None
        got = await a.call("wamp.registration.get", wild.id)
        assert got["id"] == wild.id
        assert got["uri"] == uris() + "..x"
        assert got["match"] == "wildcard"
        assert got.get("invoke") == "single", got
        assert isinstance(got.get("created"), str), got


@async_test
async def test_registration_match(server: Server, uris: Uris) -> None:
    """wamp.registration.match: the registration a call to the URI would go to."""
    async with peers(server) as p:
        a = await p.autobahn()
        await register(a, uris("m"), match="prefix")
        exact = await register(a, uris("m", "x"))
        assert await a.call("wamp.registration.match", uris("m", "x")) == exact.id
        assert await a.call("wamp.registration.match", uris("nothing")) is None


@async_test
async def test_registration_callees(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        b = await p.autobahn()
        reg = await register(a, uris("r"), invoke="roundrobin")
        await register(b, uris("r"), invoke="roundrobin")
        assert set(await a.call("wamp.registration.list_callees", reg.id)) == {a.id, b.id}
        assert await a.call("wamp.registration.count_callees", reg.id) == 2


@async_test
async def test_registration_get_unknown_is_no_such_registration(server: Server) -> None:
    async with peers(server) as p:
        a = await p.autobahn()
        for proc in (
            "wamp.registration.get",
            "wamp.registration.list_callees",
            "wamp.registration.count_callees",
        ):
            assert await call_error(a, proc, 1) == "wamp.error.no_such_registration", proc


@async_test
async def test_registration_meta_events(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        w = await p.autobahn(ser)
        inboxes = {}
        for name in ("on_create", "on_register", "on_unregister", "on_delete"):
            _, inboxes[name] = await w.subscribe(f"wamp.registration.{name}")
        a = await p.autobahn()
        b = await p.autobahn()
        reg_a = await register(a, uris("r"), invoke="roundrobin")
        rid = reg_a.id

        def about(session: int) -> Any:
            return lambda e: len(e.args) >= 2 and e.args[0] == session and _sub_id(e.args[1]) == rid

        created = await events_until(inboxes["on_create"], about(a.id))
        assert created.args[1]["uri"] == uris("r"), created.args
        await events_until(inboxes["on_register"], about(a.id))
        reg_b = await register(b, uris("r"), invoke="roundrobin")
        assert reg_b.id == rid
        await events_until(inboxes["on_register"], about(b.id))
        await reg_a.unregister()
        await events_until(inboxes["on_unregister"], about(a.id))
        await reg_b.unregister()
        await events_until(inboxes["on_unregister"], about(b.id))
        await events_until(inboxes["on_delete"], about(b.id))


@async_test
async def test_meta_procedures_cannot_be_registered(server: Server) -> None:
    """The router owns ``wamp.session.count``: an application cannot register it."""
    async with peers(server) as p:
        a = await p.autobahn()
        with pytest.raises(ApplicationError) as info:
            await register(a, "wamp.session.count")
        allowed = ("wamp.error.procedure_already_exists", "wamp.error.not_authorized",
                   "wamp.error.invalid_uri")  # fmt: skip
        assert info.value.error in allowed, info.value
