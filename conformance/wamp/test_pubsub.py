"""Publish & subscribe: SUBSCRIBE/UNSUBSCRIBE, PUBLISH options, pattern-based subscriptions,
shared subscription ids and retained events.

WAMP spec, Basic Profile "Publish and Subscribe"; Advanced Profile "Subscriber Black- and
Whitelisting", "Publisher Exclusion", "Publisher Identification", "Pattern-based Subscription",
"Event Retention". "Nothing arrived" is always shown with a marker event that the same
publisher sends afterwards (events from one publisher arrive in order), never with a sleep.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.aio import async_test
from conformance.wamp import wire
from conformance.wamp.clients import Client, Event, Inbox, PublishOptions
from conformance.wamp.support import Server, Uris, peers

MARKER = "marker"


async def publish(
    c: Client, topic: str, *args: Any, kwargs: dict[str, Any] | None = None, **options: Any
) -> int:
    """An acknowledged publish from an autobahn session; the publication id."""
    opts = PublishOptions(acknowledge=True, **options)
    pub = await c.session.publish(topic, *args, options=opts, **(kwargs or {}))
    return int(pub.id)


async def next_payload(inbox: Inbox) -> tuple[object, ...]:
    ev: Event = await inbox.get()
    return ev.args


async def got_only_marker(inbox: Inbox) -> None:
    """The next event is the marker: whatever was published before it did not arrive."""
    args = await next_payload(inbox)
    assert args == (MARKER,), f"expected only the marker, got {args}"


# --------------------------------------------------------------------------- basic


@async_test
async def test_subscribe_publish_delivers_args_and_kwargs(
    server: Server, uris: Uris, ser: str
) -> None:
    async with peers(server) as p:
        sub = await p.autobahn(ser)
        _, inbox = await sub.subscribe(uris("t"))
        pub = await p.autobahn(ser)
        pid = await publish(
            pub, uris("t"), 1, "two", [3, {"four": 4.5}], kwargs={"k": True, "n": None}
        )
        ev: Event = await inbox.get()
        assert ev.args == (1, "two", [3, {"four": 4.5}])
        assert ev.kwargs == {"k": True, "n": None}
        assert ev.details.publication == pid


@async_test
async def test_subscribed_and_event_message_shapes(server: Server, uris: Uris) -> None:
    """SUBSCRIBED is [33, request, subscription]; EVENT is [36, subscription, publication,
    details, args, kwargs] with ids in [1, 2^53]."""
    async with peers(server) as p:
        s = await p.raw()
        req = s.next_id()
        s.send([wire.SUBSCRIBE, req, {}, uris("shape")])
        msg = await s.recv()
        assert len(msg) == 3, msg
        assert msg[:2] == [wire.SUBSCRIBED, req], msg
        sub_id = msg[2]
        assert isinstance(sub_id, int), msg
        assert 1 <= sub_id <= wire.MAX_ID, msg
        pub = await p.raw("wamp.2.msgpack")
        pid = await pub.publish_acked(uris("shape"), ["a"], {"b": 1})
        ev = await s.expect(wire.EVENT)
        assert ev[:3] == [wire.EVENT, sub_id, pid], ev
        assert isinstance(ev[3], dict), ev
        assert ev[4:] == [["a"], {"b": 1}], ev


@async_test
async def test_unsubscribe_stops_events(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        s = await p.autobahn(ser)
        sub, inbox = await s.subscribe(uris("t"))
        _, still = await s.subscribe(uris("marker"))
        await sub.unsubscribe()
        pub = await p.autobahn(ser)
        await publish(pub, uris("t"), "after unsubscribe")
        await publish(pub, uris("marker"), MARKER)
        await got_only_marker(still)
        assert inbox.empty(), inbox.drain()


@async_test
async def test_unsubscribe_shape_and_unknown_subscription(server: Server, uris: Uris) -> None:
    """UNSUBSCRIBED is [35, request]; unsubscribing again gets ERROR
    ``wamp.error.no_such_subscription``."""
    async with peers(server) as p:
        s = await p.raw()
        sub_id = await s.subscribe(uris("t"))
        req = s.next_id()
        s.send([wire.UNSUBSCRIBE, req, sub_id])
        assert await s.recv() == [wire.UNSUBSCRIBED, req]
        req = s.next_id()
        s.send([wire.UNSUBSCRIBE, req, sub_id])
        await s.expect_error(wire.UNSUBSCRIBE, req, "wamp.error.no_such_subscription")


@async_test
async def test_publish_acknowledge_gets_published_with_random_ids(
    server: Server, uris: Uris
) -> None:
    """PUBLISHED is [17, request, publication]; publication ids are global-scope ids (random
    over [1, 2^53]), distinct for each publication."""
    async with peers(server) as p:
        s = await p.raw()
        ids = []
        for _ in range(10):
            req = s.next_id()
            s.send([wire.PUBLISH, req, {"acknowledge": True}, uris("ack"), ["x"]])
            msg = await s.recv()
            assert len(msg) == 3, msg
            assert msg[:2] == [wire.PUBLISHED, req], msg
            ids.append(msg[2])
        assert all(isinstance(i, int) and 1 <= i <= wire.MAX_ID for i in ids), ids
        assert len(set(ids)) == 10, ids
        assert max(ids) > 2**40, f"publication ids not drawn over [1, 2^53]: {ids}"


@async_test
async def test_publish_without_acknowledge_gets_no_reply(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        s = await p.raw()
        s.send([wire.PUBLISH, s.next_id(), {}, uris("quiet"), ["x"]])
        # The next reply is the one to the SUBSCRIBE sent afterwards: nothing came for PUBLISH.
        await s.subscribe(uris("barrier"))


@async_test
async def test_publish_to_invalid_uri_is_an_error(server: Server, uris: Uris) -> None:
    """A topic with an empty component: ERROR ``wamp.error.invalid_uri`` (with acknowledge)."""
    server.crossbar_deviates("it closes the connection with 1011 instead of ERROR invalid_uri")
    async with peers(server) as p:
        s = await p.raw()
        req = s.next_id()
        s.send([wire.PUBLISH, req, {"acknowledge": True}, uris("a") + "..b", ["x"]])
        await s.expect_error(wire.PUBLISH, req, "wamp.error.invalid_uri")


@async_test
async def test_subscribe_to_invalid_uri_is_an_error(server: Server, uris: Uris) -> None:
    """A topic with whitespace in a component: ERROR ``wamp.error.invalid_uri``."""
    server.crossbar_deviates("it closes the connection with 1011 instead of ERROR invalid_uri")
    async with peers(server) as p:
        s = await p.raw()
        req = s.next_id()
        s.send([wire.SUBSCRIBE, req, {}, uris("a") + " b"])
        await s.expect_error(wire.SUBSCRIBE, req, "wamp.error.invalid_uri")


# --------------------------------------------------------------------------- exclusion


@async_test
async def test_exclude_me_is_true_by_default(server: Server, uris: Uris, ser: str) -> None:
    """A publisher subscribed to its own topic does not get its own event unless it asks."""
    async with peers(server) as p:
        me = await p.autobahn(ser)
        _, inbox = await me.subscribe(uris("t"))
        await publish(me, uris("t"), "mine")
        other = await p.autobahn(ser)
        await publish(other, uris("t"), MARKER)
        await got_only_marker(inbox)


@async_test
async def test_exclude_me_false_delivers_to_publisher(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        me = await p.autobahn(ser)
        _, inbox = await me.subscribe(uris("t"))
        await publish(me, uris("t"), "mine", exclude_me=False)
        assert await next_payload(inbox) == ("mine",)


async def three_subscribers(p: object, ser: str, topic: str) -> tuple[list[Client], list[Inbox]]:
    clients: list[Client] = []
    inboxes: list[Inbox] = []
    for _ in range(3):
        c = await p.autobahn(ser)  # type: ignore[attr-defined]
        _, inbox = await c.subscribe(topic)
        clients.append(c)
        inboxes.append(inbox)
    return clients, inboxes


async def check_receivers(
    pub: Client, topic: str, inboxes: list[Inbox], receives: list[bool], **options: Any
) -> None:
    """Publish with ``options``, then a marker to everyone; each inbox got the event iff
    ``receives`` says so."""
    await publish(pub, topic, "filtered", **options)
    await publish(pub, topic, MARKER)
    for i, (inbox, wanted) in enumerate(zip(inboxes, receives, strict=True)):
        first = await next_payload(inbox)
        if wanted:
            assert first == ("filtered",), f"subscriber {i}: expected the event, got {first}"
            assert await next_payload(inbox) == (MARKER,)
        else:
            assert first == (MARKER,), f"subscriber {i}: should have been filtered out: {first}"


@async_test
async def test_exclude_by_session_id(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        pub = await p.autobahn(ser)
        await check_receivers(
            pub, uris("t"), inboxes, [False, True, False], exclude=[subs[0].id, subs[2].id]
        )


@async_test
async def test_eligible_by_session_id(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        pub = await p.autobahn(ser)
        await check_receivers(pub, uris("t"), inboxes, [False, True, False], eligible=[subs[1].id])


@async_test
async def test_exclude_wins_over_eligible(server: Server, uris: Uris, ser: str) -> None:
    """A session both eligible and excluded is excluded (the spec: exclusion first)."""
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        pub = await p.autobahn(ser)
        await check_receivers(
            pub,
            uris("t"),
            inboxes,
            [True, False, False],
            eligible=[subs[0].id, subs[1].id],
            exclude=[subs[1].id],
        )


def authids(subs: list[Client]) -> list[str]:
    return [str(s.details.authid) for s in subs]


@async_test
async def test_exclude_authid(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        ids = authids(subs)
        pub = await p.autobahn(ser)
        # Anonymous sessions may share an authid: whoever has the excluded one is excluded.
        receives = [a != ids[0] for a in ids]
        await check_receivers(pub, uris("t"), inboxes, receives, exclude_authid=[ids[0]])


@async_test
async def test_eligible_authid(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        ids = authids(subs)
        pub = await p.autobahn(ser)
        receives = [a == ids[2] for a in ids]
        await check_receivers(pub, uris("t"), inboxes, receives, eligible_authid=[ids[2]])


@async_test
async def test_exclude_authrole(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        role = str(subs[0].details.authrole)
        pub = await p.autobahn(ser)
        roles = [str(s.details.authrole) for s in subs]
        receives = [r != role for r in roles]
        await check_receivers(pub, uris("t"), inboxes, receives, exclude_authrole=[role])
        await check_receivers(
            pub, uris("t"), inboxes, [True] * 3, exclude_authrole=["conf-no-such-role"]
        )


@async_test
async def test_eligible_authrole(server: Server, uris: Uris, ser: str) -> None:
    async with peers(server) as p:
        subs, inboxes = await three_subscribers(p, ser, uris("t"))
        role = str(subs[0].details.authrole)
        roles = [str(s.details.authrole) for s in subs]
        pub = await p.autobahn(ser)
        await check_receivers(
            pub, uris("t"), inboxes, [r == role for r in roles], eligible_authrole=[role]
        )
        await check_receivers(
            pub, uris("t"), inboxes, [False] * 3, eligible_authrole=["conf-no-such-role"]
        )


@async_test
async def test_eligible_authrole_picks_the_authenticated_role(server: Server, uris: Uris) -> None:
    """With a ticket principal: eligible_authrole=[its role] reaches it and not anonymous
    subscribers."""
    creds = server.auth.need_ticket()
    realm = server.auth.need_realm()
    async with peers(server) as p:
        anon = await p.autobahn(realm=realm)
        _, anon_inbox = await anon.subscribe(uris("t"))
        ticket = await p.autobahn(realm=realm, credentials=creds)
        _, ticket_inbox = await ticket.subscribe(uris("t"))
        role = str(ticket.details.authrole)
        assert role != str(anon.details.authrole)
        pub = await p.autobahn(realm=realm)
        await check_receivers(
            pub, uris("t"), [anon_inbox, ticket_inbox], [False, True], eligible_authrole=[role]
        )


# --------------------------------------------------------------------------- identification


@async_test
async def test_disclose_me_puts_publisher_in_event_details(server: Server, uris: Uris) -> None:
    """PUBLISH.Options.disclose_me: EVENT.Details.publisher is the publisher's session id.

    Crossbar discloses by its role configuration, not by disclose_me: its run configures
    disclosure for ``conf.disclosed.``, the prefix this test publishes under.
    """
    async with peers(server) as p:
        s = await p.raw()
        sub = await s.subscribe(uris.disclosed("t"))
        pub = await p.raw("wamp.2.msgpack")
        await pub.publish_acked(uris.disclosed("t"), ["who"], disclose_me=True)
        ev = await s.expect(wire.EVENT)
        assert ev[1] == sub, ev
        assert ev[3].get("publisher") == pub.session_id, ev


@async_test
async def test_publisher_not_disclosed_without_disclose_me(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        s = await p.raw()
        await s.subscribe(uris("t"))
        pub = await p.raw()
        await pub.publish_acked(uris("t"), ["anon"])
        ev = await s.expect(wire.EVENT)
        assert "publisher" not in ev[3], ev


# --------------------------------------------------------------------------- patterns


@async_test
async def test_prefix_subscription_gets_topic_in_details(
    server: Server, uris: Uris, ser: str
) -> None:
    """match=prefix is a string prefix of the URI: ``a.b`` matches ``a.b.c`` and ``a.bc``,
    and EVENT.Details.topic names the topic published to."""
    async with peers(server) as p:
        s = await p.autobahn(ser)
        _, inbox = await s.subscribe(uris("p"), match="prefix")
        pub = await p.autobahn(ser)
        for topic in (uris("p", "a"), uris("p", "a", "b"), uris("pq"), uris("p")):
            await publish(pub, topic, topic)
            ev: Event = await inbox.get()
            assert ev.args == (topic,), (ev.args, ev.details.topic)
            assert ev.details.topic == topic, (ev.args, ev.details.topic)
        await publish(pub, uris("q", "p"), "not under the prefix")
        await publish(pub, uris("p", "end"), MARKER)
        assert await next_payload(inbox) == (MARKER,)


@async_test
async def test_wildcard_subscription_matches_one_component(
    server: Server, uris: Uris, ser: str
) -> None:
    """match=wildcard: an empty component matches exactly one component."""
    async with peers(server) as p:
        s = await p.autobahn(ser)
        pattern = uris() + "..temp"
        _, inbox = await s.subscribe(pattern, match="wildcard")
        pub = await p.autobahn(ser)
        await publish(pub, uris("room1", "temp"), "room1")
        ev: Event = await inbox.get()
        assert ev.args == ("room1",)
        assert ev.details.topic == uris("room1", "temp")
        for miss in (uris("room1", "x", "temp"), uris("room1", "hum"), uris("temp")):
            await publish(pub, miss, "miss")
        await publish(pub, uris("room2", "temp"), MARKER)
        assert await next_payload(inbox) == (MARKER,)


@async_test
async def test_overlapping_subscriptions_each_get_the_event(server: Server, uris: Uris) -> None:
    """A session with an exact and a prefix subscription matching one topic gets one EVENT per
    subscription, each with its own subscription id."""
    async with peers(server) as p:
        s = await p.raw()
        exact = await s.subscribe(uris("o", "x"))
        prefix = await s.subscribe(uris("o"), match="prefix")
        assert exact != prefix
        pub = await p.raw()
        await pub.publish_acked(uris("o", "x"), ["both"])
        got = {(await s.expect(wire.EVENT))[1] for _ in range(2)}
        assert got == {exact, prefix}


@async_test
async def test_one_subscription_id_per_topic_and_match(server: Server, uris: Uris) -> None:
    """Sessions subscribing to the same (topic, match) share one subscription id; another
    match policy on the same URI is another subscription."""
    async with peers(server) as p:
        a = await p.raw()
        b = await p.raw("wamp.2.msgpack")
        exact_a = await a.subscribe(uris("shared"))
        exact_b = await b.subscribe(uris("shared"))
        prefix_a = await a.subscribe(uris("shared"), match="prefix")
        prefix_b = await b.subscribe(uris("shared"), match="prefix")
        assert exact_a == exact_b, (exact_a, exact_b)
        assert prefix_a == prefix_b, (prefix_a, prefix_b)
        assert exact_a != prefix_a


@async_test
async def test_subscribing_twice_returns_the_same_subscription(server: Server, uris: Uris) -> None:
    """A session subscribing again to what it is subscribed to gets the same id, and still one
    EVENT per publication."""
    async with peers(server) as p:
        s = await p.raw()
        first = await s.subscribe(uris("twice"))
        second = await s.subscribe(uris("twice"))
        assert first == second
        pub = await p.raw()
        await pub.publish_acked(uris("twice"), ["once"])
        await pub.publish_acked(uris("twice"), [MARKER])
        assert (await s.expect(wire.EVENT))[4] == ["once"]
        assert (await s.expect(wire.EVENT))[4] == [MARKER]


# --------------------------------------------------------------------------- retained


@async_test
async def test_retained_event_delivered_on_get_retained(
    server: Server, uris: Uris, ser: str
) -> None:
    """PUBLISH retain=true keeps the event; SUBSCRIBE get_retained=true delivers it at once,
    with EVENT.Details.retained true."""
    async with peers(server) as p:
        pub = await p.autobahn(ser)
        await publish(pub, uris("r"), 21.5, kwargs={"unit": "C"}, retain=True)
        s = await p.autobahn(ser)
        _, inbox = await s.subscribe(uris("r"), get_retained=True)
        ev: Event = await inbox.get()
        assert ev.args == (21.5,)
        assert ev.kwargs == {"unit": "C"}
        assert ev.details.retained is True


@async_test
async def test_retained_event_not_delivered_without_get_retained(
    server: Server, uris: Uris
) -> None:
    async with peers(server) as p:
        pub = await p.autobahn()
        await publish(pub, uris("r"), "kept", retain=True)
        s = await p.autobahn()
        _, inbox = await s.subscribe(uris("r"))
        await publish(pub, uris("r"), MARKER)
        await got_only_marker(inbox)


@async_test
async def test_later_retained_event_replaces_the_earlier(server: Server, uris: Uris) -> None:
    async with peers(server) as p:
        pub = await p.autobahn()
        await publish(pub, uris("r"), "old", retain=True)
        await publish(pub, uris("r"), "new", retain=True)
        s = await p.autobahn()
        _, inbox = await s.subscribe(uris("r"), get_retained=True)
        assert await next_payload(inbox) == ("new",)
        await publish(pub, uris("r"), MARKER)
        assert await next_payload(inbox) == (MARKER,)


@async_test
async def test_retained_event_delivered_to_prefix_subscription(server: Server, uris: Uris) -> None:
    """get_retained on a pattern subscription delivers the retained events of matching topics
    (the spec: the event "they would have received if they were subscribing when it was
    published")."""
    server.crossbar_deviates("it keeps retained events for exact subscriptions only")
    async with peers(server) as p:
        pub = await p.autobahn()
        await publish(pub, uris("rp", "a"), "a", retain=True)
        s = await p.autobahn()
        _, inbox = await s.subscribe(uris("rp"), match="prefix", get_retained=True)
        ev: Event = await inbox.get()
        assert ev.args == ("a",)
        assert ev.details.topic == uris("rp", "a")


@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
@async_test
async def test_retained_event_shape(server: Server, uris: Uris, subprotocol: str) -> None:
    async with peers(server) as p:
        pub = await p.raw(subprotocol)
        await pub.publish_acked(uris("rs"), ["v"], retain=True)
        s = await p.raw(subprotocol)
        sub = await s.subscribe(uris("rs"), get_retained=True)
        ev = await s.expect(wire.EVENT)
        assert ev[1] == sub, ev
        assert ev[3].get("retained") is True, ev
        assert isinstance(ev[2], int), ev
        assert 1 <= ev[2] <= wire.MAX_ID, ev
        assert ev[4] == ["v"], ev
