"""Topic names and filters (4.7): ``$``-topics, overlapping subscriptions (3.3.4 / 3.1.1 3.3.5),
Subscription Identifiers (3.3.4, 3.8.2.1.2).

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import pytest

from conformance.mqtt.codec import MQTT_3_1_1, MQTT_5, P
from conformance.mqtt.conftest import RawFactory

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


@VERSIONS
def test_leading_wildcards_do_not_match_dollar_topics(
    raw: RawFactory, uid: str, version: int, sys_interval: int
) -> None:
    """Filters starting with ``#`` or ``+`` MUST NOT match topic names beginning with ``$``
    [MQTT-4.7.2-1] (3.1.1: [MQTT-4.7.2-1]); ``$SYS/#`` does match them (4.7.2)."""
    wild, plus, dollar = raw(version=version), raw(version=version), raw(version=version)
    wild.connect(f"w-{uid}")
    plus.connect(f"p-{uid}")
    dollar.connect(f"d-{uid}")
    marker = f"conf/{uid}/marker"
    wild.subscribe(("#", 0))
    plus.subscribe(("+/broker/uptime", 0), ("+/+/+", 0), (marker, 0))
    dollar.subscribe(("$SYS/#", 0))
    # $SYS/broker/uptime changes every sys_interval: once the explicit subscriber has had an
    # update, the wildcard subscribers had their chance to see it too.
    deadline = 2 * sys_interval + 5
    seen = [dollar.receive_publish(timeout=deadline)]
    while not (seen[-1].topic == "$SYS/broker/uptime" and not seen[-1].retain):
        seen.append(dollar.receive_publish(timeout=deadline))
    assert all(p.topic.startswith("$SYS/") for p in seen)
    plus.publish(marker, b"")
    plus_got = plus.publishes_until(marker)
    assert [p.topic for p in plus_got if p.topic.startswith("$")] == []
    wild.publish(marker, b"")
    wild_got = wild.publishes_until(marker)
    assert [p.topic for p in wild_got if p.topic.startswith("$")] == []


def test_v311_overlapping_subscriptions_deliver_at_the_highest_qos(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """3.1.1: a message matching several of a client's subscriptions is delivered respecting the
    maximum QoS of all of them; further copies (one per extra subscription) are allowed
    [MQTT-3.3.5-1] (3.1.1). wsbroker sends exactly one copy."""
    sub, pub = raw(version=MQTT_3_1_1), raw(version=MQTT_3_1_1)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    base, marker = f"conf/{uid}", f"conf/{uid}/marker"
    sub.subscribe((f"{base}/+/c", 0), (f"{base}/#", 2), (f"{base}/b/c", 1), (marker, 0))
    pub.publish(f"{base}/b/c", b"overlap", qos=2)
    pub.publish(marker, b"")
    got = [p for p in sub.publishes_until(marker) if p.topic != marker]
    assert got, "not delivered at all"
    assert max(p.qos for p in got) == 2, f"no copy at the highest QoS (2): {got}"
    assert len(got) <= 3, got
    if strict:
        assert len(got) == 1, f"wsbroker delivers one copy: {got}"


def test_v5_overlapping_subscriptions_carry_every_subscription_identifier(
    raw: RawFactory, uid: str
) -> None:
    """5.0 overlapping subscriptions: maximum QoS respected [MQTT-3.3.4-2]; the Subscription
    Identifiers of the matching subscriptions are sent [MQTT-3.3.4-3]: all of them in a single
    copy [MQTT-3.3.4-4], or each copy carrying its own [MQTT-3.3.4-5]."""
    sub, pub = raw(), raw()
    props = sub.connect(f"s-{uid}").props
    if props.get(P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, 1) == 0:
        pytest.skip("server does not support Subscription Identifiers")
    pub.connect(f"p-{uid}")
    base, marker = f"conf/{uid}", f"conf/{uid}/marker"
    sub.subscribe((f"{base}/+/c", 0), props=[(P.SUBSCRIPTION_IDENTIFIER, 11)])
    sub.subscribe((f"{base}/#", 1), props=[(P.SUBSCRIPTION_IDENTIFIER, 22)])
    sub.subscribe((f"{base}/b/c", 2))  # no identifier
    sub.subscribe((marker, 0))
    pub.publish(f"{base}/b/c", b"overlap", qos=2)
    pub.publish(marker, b"")
    got = [p for p in sub.publishes_until(marker) if p.topic != marker]
    assert got, "not delivered"
    assert max(p.qos for p in got) == 2, f"no copy at the highest QoS: {got}"
    ids = [sorted(p.props.get_all(P.SUBSCRIPTION_IDENTIFIER)) for p in got]
    if len(got) == 1:
        assert ids == [[11, 22]], f"a single copy carries every identifier: {ids}"
    else:
        assert len(got) == 3, got
        assert sorted(map(tuple, ids)) == [(), (11,), (22,)], ids


def test_v5_subscription_identifier_on_matching_publish(raw: RawFactory, uid: str) -> None:
    """A PUBLISH sent because of a subscription with an identifier carries it [MQTT-3.3.4-3];
    one without an identifier carries none; an update to the subscription replaces it."""
    sub, pub = raw(), raw()
    props = sub.connect(f"s-{uid}").props
    if props.get(P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, 1) == 0:
        pytest.skip("server does not support Subscription Identifiers")
    pub.connect(f"p-{uid}")
    t = f"conf/{uid}/sid"
    sub.subscribe((t, 0), props=[(P.SUBSCRIPTION_IDENTIFIER, 268_435_455)])
    pub.publish(t, b"1")
    assert sub.receive_publish().props.get_all(P.SUBSCRIPTION_IDENTIFIER) == [268_435_455]
    sub.subscribe((t, 0), props=[(P.SUBSCRIPTION_IDENTIFIER, 7)])
    pub.publish(t, b"2")
    assert sub.receive_publish().props.get_all(P.SUBSCRIPTION_IDENTIFIER) == [7]
    sub.subscribe((t, 0))
    pub.publish(t, b"3")
    assert sub.receive_publish().props.get_all(P.SUBSCRIPTION_IDENTIFIER) == []


@VERSIONS
def test_topic_names_are_not_normalized(raw: RawFactory, uid: str, version: int) -> None:
    """No normalization of topic names or filters [MQTT-4.7.3-4] (3.1.1: [MQTT-4.7.3-4]):
    composed and decomposed ``é`` are different topics, and the name comes back byte for byte."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    composed, decomposed = f"conf/{uid}/caf\u00e9", f"conf/{uid}/cafe\u0301"
    sub.subscribe((composed, 0))
    pub.publish(decomposed, b"decomposed")
    pub.publish(composed, b"composed")
    got = sub.receive_publish()
    assert (got.topic, got.payload) == (composed, b"composed")


@VERSIONS
def test_published_topic_name_matches_the_subscription(
    raw: RawFactory, uid: str, version: int
) -> None:
    """The Topic Name the server sends is the published one, matching the filter
    [MQTT-3.3.2-3] (3.1.1: [MQTT-3.3.2-3])."""
    sub, pub = raw(version=version), raw(version=version)
    sub.connect(f"s-{uid}")
    pub.connect(f"p-{uid}")
    sub.subscribe((f"conf/{uid}/+/temp", 0))
    pub.publish(f"conf/{uid}/room 1/temp", b"21.5")
    assert sub.receive_publish().topic == f"conf/{uid}/room 1/temp"
