"""Session lifecycle: HELLO / WELCOME / ABORT / GOODBYE, realms, session ids, protocol errors.

WAMP spec, Basic Profile "Sessions" and "Protocol errors"; "IDs" (global scope ids drawn at
random from [1, 2^53]); Advanced Profile "Feature Announcement".
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from conformance.aio import async_test
from conformance.wamp import wire
from conformance.wamp.clients import Refused
from conformance.wamp.support import Server, Uris, bystander_round_trip, peers

# What the issue asks the router to implement, announced in WELCOME.Details.roles.<role>.features.
BROKER_FEATURES = (
    "publisher_identification",
    "publisher_exclusion",
    "subscriber_blackwhite_listing",
    "pattern_based_subscription",
    "event_retention",
    "session_meta_api",
    "subscription_meta_api",
)
DEALER_FEATURES = (
    "caller_identification",
    "pattern_based_registration",
    "shared_registration",
    "progressive_call_results",
    "call_canceling",
    "call_timeout",
    "session_meta_api",
    "registration_meta_api",
)


@async_test
async def test_hello_gets_welcome_with_session_id_in_range(server: Server) -> None:
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        reply = await peer.hello(server.realm)
        assert reply[0] == wire.WELCOME, reply
        assert len(reply) == 3, reply
        assert isinstance(reply[2], dict), reply
        assert isinstance(reply[1], int), reply
        assert 1 <= reply[1] <= wire.MAX_ID, reply


@async_test
async def test_session_ids_are_random_over_the_whole_range(server: Server) -> None:
    """Global-scope ids are drawn uniformly from [1, 2^53]: 20 sessions get 20 distinct ids,
    not a counter, and at least one of them is above 2^40 (all below: about 2^-260)."""
    async with peers(server) as p:
        ids: list[int] = []
        for _ in range(20):
            peer = await p.raw()
            assert peer.session_id is not None
            ids.append(peer.session_id)
            await peer.aclose()
    assert all(isinstance(i, int) and 1 <= i <= wire.MAX_ID for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    diffs = {b - a for a, b in itertools.pairwise(ids)}
    assert len(diffs) > 1, f"session ids look sequential: {ids}"
    assert max(ids) > 2**40, f"session ids not drawn over [1, 2^53]: {ids}"


@async_test
async def test_welcome_announces_broker_and_dealer_roles_with_features(server: Server) -> None:
    """WELCOME.Details.roles has broker and dealer, each announcing the features it supports.
    Against other routers only the roles are required; a missing feature is reported."""
    async with peers(server) as p:
        peer = await p.raw()
        roles = peer.welcome.get("roles")
        assert isinstance(roles, dict), peer.welcome
        assert {"broker", "dealer"} <= set(roles), peer.welcome
        missing = []
        for role, wanted in (("broker", BROKER_FEATURES), ("dealer", DEALER_FEATURES)):
            features = roles[role].get("features", {})
            assert isinstance(features, dict), roles[role]
            missing += [f"{role}.{f}" for f in wanted if features.get(f) is not True]
        if server.strict:
            assert not missing, f"WELCOME does not announce {missing}: {roles}"
        elif server.crossbar:
            # Crossbar enforces CALL.Options.timeout but does not announce call_timeout.
            assert missing == ["dealer.call_timeout"], missing


@async_test
async def test_welcome_details_name_authid_authrole_authmethod(server: Server) -> None:
    """An anonymous session learns its authid, authrole and authmethod from WELCOME."""
    async with peers(server) as p:
        peer = await p.raw()
        d = peer.welcome
        assert isinstance(d.get("authid"), str), d
        assert d["authid"], d
        assert isinstance(d.get("authrole"), str), d
        assert d["authrole"], d
        assert d.get("authmethod") == "anonymous", d


@async_test
async def test_hello_for_unknown_realm_aborts_no_such_realm(server: Server, uid: str) -> None:
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        reply = await peer.hello(f"conf.unknown.{uid}")
        assert reply[0] == wire.ABORT, reply
        assert isinstance(reply[1], dict), reply
        assert reply[2] == "wamp.error.no_such_realm", reply


@async_test
async def test_autobahn_join_unknown_realm_is_refused(server: Server, uid: str) -> None:
    async with peers(server) as p:
        with pytest.raises(Refused) as info:
            await p.autobahn(realm=f"conf.unknown.{uid}")
        assert info.value.reason == "wamp.error.no_such_realm"


@async_test
async def test_realms_are_isolated(server: Server, uris: Uris) -> None:
    """An event published in one realm is not delivered in another, even on the same URI."""
    realm2 = server.need_realm2()
    async with peers(server) as p:
        in1 = await p.raw()
        in2 = await p.raw(realm=realm2)
        assert in2.welcome.get("realm", realm2) == realm2
        sub1 = await in1.subscribe(uris("iso"))
        sub2 = await in2.subscribe(uris("iso"))
        await in2.publish_acked(uris("iso"), ["realm2"], exclude_me=False)
        ev = await in2.expect(wire.EVENT)
        assert ev[1] == sub2, ev
        assert ev[4] == ["realm2"], ev
        # The realm-1 subscriber saw nothing: its next event is the marker published there.
        await in1.publish_acked(uris("iso"), ["realm1"], exclude_me=False)
        ev = await in1.expect(wire.EVENT)
        assert ev[1] == sub1, ev
        assert ev[4] == ["realm1"], ev


@async_test
async def test_client_goodbye_is_answered_with_goodbye_and_out(server: Server) -> None:
    async with peers(server) as p:
        peer = await p.raw()
        peer.send([wire.GOODBYE, {"message": "bye"}, "wamp.close.close_realm"])
        reply = await peer.recv()
        assert reply[0] == wire.GOODBYE, reply
        assert isinstance(reply[1], dict), reply
        assert isinstance(reply[2], str), reply
        if not server.crossbar:
            # Crossbar replies wamp.close.normal (see the notes).
            assert reply[2] == "wamp.close.goodbye_and_out", reply


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@async_test
async def test_autobahn_leave_gets_goodbye_and_out(server: Server, serializer: str) -> None:
    async with peers(server) as p:
        c = await p.autobahn(serializer)
        details = await c.leave()
        expected = "wamp.close.normal" if server.crossbar else "wamp.close.goodbye_and_out"
        assert details.reason == expected, details.reason


@async_test
async def test_router_goodbye_on_kill_and_client_reply(server: Server) -> None:
    """The router closes a session with GOODBYE (here through ``wamp.session.kill``); the
    client's GOODBYE reply is accepted and the router then ends the connection or allows a
    new HELLO on it."""
    async with peers(server) as p:
        victim = await p.raw()
        killer = await p.autobahn()
        await killer.call("wamp.session.kill", victim.session_id, reason="wamp.close.killed")
        bye = await victim.expect(wire.GOODBYE)
        assert isinstance(bye[1], dict), bye
        assert bye[2] == "wamp.close.killed", bye
        victim.send([wire.GOODBYE, {}, "wamp.close.goodbye_and_out"])
        # No reply to a reply: either the connection ends, or it stays open for a new session.
        await victim.quiet_or_closed(0.5)


@async_test
async def test_second_hello_is_a_protocol_violation(server: Server, uris: Uris) -> None:
    """A HELLO inside an established session: ABORT ``wamp.error.protocol_violation`` (or the
    connection closed); other sessions go on working."""
    server.crossbar_deviates("it ignores a second HELLO instead of closing the session")
    async with peers(server) as p:
        bystander = await p.raw()
        peer = await p.raw()
        peer.send([wire.HELLO, server.realm, {"roles": {"subscriber": {}}}])
        ended = await peer.ended()
        assert ended.abort_reason in (None, "wamp.error.protocol_violation"), ended
        assert ended.abort is not None or ended.closed, ended
        if server.strict:
            assert ended.abort_reason == "wamp.error.protocol_violation", ended
        await bystander_round_trip(server, bystander, uris)


@pytest.mark.parametrize(
    "msg",
    [
        [wire.SUBSCRIBE, 1, {}, "conf.before.hello"],
        [wire.GOODBYE, {}, "wamp.close.close_realm"],
        [wire.CALL, 1, {}, "conf.before.hello"],
    ],
    ids=["subscribe", "goodbye", "call"],
)
@async_test
async def test_message_before_hello_is_a_protocol_violation(
    server: Server, uris: Uris, msg: list[object]
) -> None:
    """HELLO must be the first message: anything else first ends the connection (ABORT
    ``wamp.error.protocol_violation``, or a close)."""
    server.crossbar_deviates("it ignores messages that come before HELLO")
    async with peers(server) as p:
        bystander = await p.raw()
        peer = await p.raw(realm=None)
        peer.send(msg)
        ended = await peer.ended()
        assert ended.abort_reason in (None, "wamp.error.protocol_violation"), ended
        assert ended.abort is not None or ended.closed, ended
        if server.strict:
            assert ended.abort_reason == "wamp.error.protocol_violation", ended
        await bystander_round_trip(server, bystander, uris)


@async_test
async def test_dropped_connection_releases_the_session(server: Server, uris: Uris) -> None:
    """A client that drops TCP without GOODBYE leaves: its subscription is gone (on_leave)."""
    async with peers(server) as p:
        watcher = await p.autobahn()
        _, left = await watcher.subscribe("wamp.session.on_leave")
        peer = await p.raw()
        await peer.subscribe(uris("gone"))
        gone_id = peer.session_id
        await peer.aclose()
        while True:
            ev = await left.get()
            sid = ev.args[0] if ev.args and isinstance(ev.args[0], int) else None
            if sid == gone_id:
                break
        count = await watcher.call("wamp.subscription.lookup", uris("gone"))
        assert count is None, f"the dropped session's subscription is still there: {count}"


@async_test
async def test_many_sessions_at_once(server: Server) -> None:
    """50 sessions open concurrently each get their own WELCOME."""
    async with peers(server) as p:
        opened = await asyncio.gather(*(p.raw() for _ in range(50)))
        ids = {peer.session_id for peer in opened}
        assert len(ids) == 50
