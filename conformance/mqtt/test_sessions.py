"""Sessions (3.1.2.4, 3.1.2.11.2, 4.1, 4.4): Clean Session (3.1.1) / Clean Start and Session
Expiry Interval (5.0), Session Present, queued QoS 1/2 messages while the client is away,
redelivery of unacknowledged messages with DUP on reconnect.

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import time

import pytest

from conformance.mqtt import codec
from conformance.mqtt.codec import (
    MQTT_3_1_1,
    MQTT_5,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    P,
    Will,
)
from conformance.mqtt.conftest import PahoFactory, RawFactory
from conformance.mqtt.rawclient import RawMqtt
from conformance.mqtt.support import let_broker_time_pass, observer, sys_number, wait_for_sys

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
KEEP = [(P.SESSION_EXPIRY_INTERVAL, 60)]  # 5.0: keep the session 60 s after the connection


def persistent(c: RawMqtt, client_id: str, **kwargs: object) -> codec.Packet:
    """Connect with a session that outlives the connection (3.1.1 CleanSession 0; 5.0 Clean
    Start 0 and Session Expiry Interval 60)."""
    props = KEEP if c.version == MQTT_5 else None
    return c.connect(client_id, clean=False, props=props, **kwargs)  # type: ignore[arg-type]


def end_session(raw: RawFactory, client_id: str, version: int) -> None:
    """Leave no session behind: connect with a clean start and disconnect normally."""
    c = raw(version=version)
    c.connect(client_id, clean=True)
    c.disconnect()


@VERSIONS
def test_persistent_session_keeps_subscriptions_and_queues_qos1_qos2(
    raw: RawFactory, uid: str, version: int
) -> None:
    """A session that outlives its connection keeps its subscriptions and the QoS 1 and QoS 2
    messages published meanwhile [MQTT-3.1.2-5] [MQTT-4.5.0-1] (3.1.1: [MQTT-3.1.2-4]
    [MQTT-3.1.2-5]); Session Present is 0 for a new session and 1 for a resumed one
    [MQTT-3.2.2-3] (3.1.1: [MQTT-3.2.2-2] [MQTT-3.2.2-3]). QoS 0 messages may be queued too."""
    cid, t = f"ps-{uid}", f"conf/{uid}/q"
    c = raw(version=version)
    assert not persistent(c, cid).session_present
    c.subscribe((t, 2))
    c.disconnect()
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    for n, qos in enumerate([1, 0, 2, 1, 2]):
        pub.publish(t, b"%d q%d" % (n, qos), qos=qos)
    back = raw(version=version)
    assert persistent(back, cid).session_present
    pub.publish(t, b"live", qos=1)  # the subscription is still there
    got = [back.receive_publish()]
    while got[-1].payload != b"live":
        got.append(back.receive_publish())
    payloads = [p.payload for p in got]
    assert [p for p in payloads if p != b"1 q0"] == [b"0 q1", b"2 q2", b"3 q1", b"4 q2", b"live"]
    end_session(raw, cid, version)


def test_v311_clean_session_discards_the_previous_session(raw: RawFactory, uid: str) -> None:
    """3.1.1 CleanSession 1: the server discards any previous session [MQTT-3.1.2-6] (3.1.1),
    answers Session Present 0 [MQTT-3.2.2-1] (3.1.1), and that session ends with the
    connection: reconnecting with CleanSession 0 finds no session."""
    cid, t = f"cs-{uid}", f"conf/{uid}/q"
    c = raw(version=MQTT_3_1_1)
    persistent(c, cid)
    c.subscribe((t, 1))
    c.disconnect()
    clean = raw(version=MQTT_3_1_1)
    assert not clean.connect(cid, clean=True).session_present
    pub = raw(version=MQTT_3_1_1)
    pub.connect(f"p-{uid}")
    pub.publish(t, b"old subscription is gone", qos=1)
    clean.subscribe((f"conf/{uid}/marker", 0))
    clean.publish(f"conf/{uid}/marker", b"")
    assert clean.publishes_until(f"conf/{uid}/marker") == []
    clean.disconnect()
    again = raw(version=MQTT_3_1_1)
    assert not persistent(again, cid).session_present
    end_session(raw, cid, MQTT_3_1_1)


def test_v5_clean_start_discards_the_existing_session(raw: RawFactory, uid: str) -> None:
    """Clean Start 1: the server discards any existing session [MQTT-3.1.2-4] and answers
    Session Present 0 [MQTT-3.2.2-2]."""
    cid, t = f"cs5-{uid}", f"conf/{uid}/q"
    c = raw()
    persistent(c, cid)
    c.subscribe((t, 1))
    c.disconnect()
    clean = raw()
    assert not clean.connect(cid, clean=True, props=KEEP).session_present
    clean.subscribe((f"conf/{uid}/marker", 0))
    clean.publish(t, b"old subscription is gone", qos=1)
    clean.publish(f"conf/{uid}/marker", b"")
    assert clean.publishes_until(f"conf/{uid}/marker") == []
    clean.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 0)])


def test_v5_session_expiry_0_ends_the_session_with_the_connection(
    raw: RawFactory, uid: str
) -> None:
    """Session Expiry Interval absent or 0: the session ends when the connection closes
    (3.1.2.11.2); Clean Start 0 then finds no session [MQTT-3.1.2-6] [MQTT-3.2.2-3]."""
    cid = f"se0-{uid}"
    c = raw()
    c.connect(cid, clean=False)  # no Session Expiry Interval
    c.subscribe((f"conf/{uid}/q", 1))
    c.disconnect()
    again = raw()
    assert not again.connect(cid, clean=False).session_present


def test_v5_session_expires_after_the_session_expiry_interval(raw: RawFactory, uid: str) -> None:
    """The server discards the session once the connection is closed and the Session Expiry
    Interval has passed [MQTT-4.1.0-2]. The end of the session is observed through its will
    (Will Delay 60 s, so the will goes out when the session ends [MQTT-3.1.2-8])."""
    cid, t = f"sx-{uid}", f"conf/{uid}/end"
    obs = observer(raw, f"o-{uid}", t)
    c = raw()
    c.connect(
        cid,
        clean=False,
        props=[(P.SESSION_EXPIRY_INTERVAL, 1)],
        will=Will(t, b"session ended", props=[(P.WILL_DELAY_INTERVAL, 60)]),
    )
    c.subscribe((f"conf/{uid}/q", 1))
    started = time.monotonic()
    c.drop()
    assert obs.receive_publish(timeout=8).payload == b"session ended"
    assert time.monotonic() - started >= 0.8
    again = raw()
    assert not again.connect(cid, clean=False).session_present


def test_v5_disconnect_can_shorten_session_expiry_to_zero(raw: RawFactory, uid: str) -> None:
    """A DISCONNECT may set the Session Expiry Interval (3.14.2.2.2): 0 ends the session now."""
    cid = f"sd-{uid}"
    c = raw()
    persistent(c, cid)
    c.subscribe((f"conf/{uid}/q", 1))
    c.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 0)])
    again = raw()
    assert not again.connect(cid, clean=False).session_present


@VERSIONS
def test_unacknowledged_qos1_message_is_resent_with_dup_on_reconnect(
    raw: RawFactory, uid: str, version: int
) -> None:
    """On reconnect with a resumed session the server resends unacknowledged PUBLISH packets with
    their original Packet Identifiers [MQTT-4.4.0-1] and DUP 1 [MQTT-3.3.1-1]
    (3.1.1: [MQTT-4.4.0-1] [MQTT-3.3.1-1])."""
    cid, t = f"rd-{uid}", f"conf/{uid}/q"
    c = raw(version=version)
    persistent(c, cid)
    c.subscribe((t, 1))
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    pub.publish(t, b"ack me", qos=1)
    first = c.receive_publish(ack=False)
    assert (first.qos, first.dup) == (1, False)
    c.drop()
    back = raw(version=version)
    assert persistent(back, cid).session_present
    again = back.receive_publish()
    assert (again.payload, again.packet_id, again.qos) == (b"ack me", first.packet_id, 1)
    assert again.dup, "a redelivered PUBLISH has DUP 1"
    back.ping()
    assert back.packets_within(0.3) == [], "resent again after its PUBACK"
    end_session(raw, cid, version)


@VERSIONS
def test_unacknowledged_qos2_publish_is_resent_with_dup_on_reconnect(
    raw: RawFactory, uid: str, version: int
) -> None:
    """QoS 2 PUBLISH without PUBREC: resent on reconnect, same Packet Identifier, DUP 1
    [MQTT-4.4.0-1] [MQTT-3.3.1-1] (3.1.1: [MQTT-4.4.0-1])."""
    cid, t = f"r2-{uid}", f"conf/{uid}/q"
    c = raw(version=version)
    persistent(c, cid)
    c.subscribe((t, 2))
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    pub.publish(t, b"two", qos=2)
    first = c.receive_publish(ack=False)
    c.drop()
    back = raw(version=version)
    assert persistent(back, cid).session_present
    again = back.receive_publish()
    assert (again.payload, again.packet_id, again.qos, again.dup) == (
        b"two",
        first.packet_id,
        2,
        True,
    )
    back.complete_pubrels()
    end_session(raw, cid, version)


@VERSIONS
def test_unacknowledged_pubrel_is_resent_on_reconnect(
    raw: RawFactory, uid: str, version: int
) -> None:
    """After PUBREC the server resends the PUBREL, not the PUBLISH, on reconnect
    [MQTT-4.4.0-1] [MQTT-4.3.3-6] (3.1.1: [MQTT-4.4.0-1] [MQTT-4.3.3-1])."""
    cid, t = f"rr-{uid}", f"conf/{uid}/q"
    c = raw(version=version)
    persistent(c, cid)
    c.subscribe((t, 2))
    pub = raw(version=version)
    pub.connect(f"p-{uid}")
    pub.publish(t, b"two", qos=2)
    first = c.expect(PUBLISH)
    c.send(codec.ack(PUBREC, first.packet_id))  # type: ignore[arg-type]
    assert c.expect(PUBREL).packet_id == first.packet_id
    c.drop()  # no PUBCOMP
    back = raw(version=version)
    assert persistent(back, cid).session_present
    rel = back.expect(PUBREL)
    assert rel.packet_id == first.packet_id
    back.send(codec.ack(PUBCOMP, rel.packet_id))  # type: ignore[arg-type]
    back.ping()
    assert all(p.type != PUBLISH for p in back.packets_within(0.3)), "PUBLISH resent after PUBREC"
    end_session(raw, cid, version)


@VERSIONS
def test_incoming_qos2_state_survives_a_reconnect(raw: RawFactory, uid: str, version: int) -> None:
    """The server keeps an incoming QoS 2 message's state in the session: a PUBLISH resent with
    DUP after a reconnect gets a PUBREC, the PUBREL a PUBCOMP, and the message is delivered once
    (4.3.3, [MQTT-4.3.3-10]; 3.1.1: 4.3.3, [MQTT-4.4.0-1])."""
    cid, t, marker = f"in2-{uid}", f"conf/{uid}/q", f"conf/{uid}/marker"
    sub = observer(raw, f"o-{uid}", t, marker, version=version)
    c = raw(version=version)
    persistent(c, cid)
    c.send(codec.publish(t, b"once", qos=2, packet_id=42, version=version))
    assert c.expect(PUBREC).packet_id == 42
    c.drop()
    back = raw(version=version)
    assert persistent(back, cid).session_present
    back.send(codec.publish(t, b"once", qos=2, dup=True, packet_id=42, version=version))
    assert back.expect(PUBREC).packet_id == 42
    back.send(codec.ack(PUBREL, 42))
    assert back.expect(PUBCOMP).packet_id == 42
    back.publish(marker, b"")
    assert [p.payload for p in sub.publishes_until(marker)] == [b"once"]
    end_session(raw, cid, version)


def test_v311_queued_messages_keep_their_order(raw: RawFactory, uid: str) -> None:
    """Messages queued for an offline session are delivered in the order published
    [MQTT-4.6.0-5] (3.1.1)."""
    cid, t = f"ord-{uid}", f"conf/{uid}/q"
    c = raw(version=MQTT_3_1_1)
    persistent(c, cid)
    c.subscribe((t, 1))
    c.disconnect()
    pub = raw(version=MQTT_3_1_1)
    pub.connect(f"p-{uid}")
    for i in range(20):
        pub.publish(t, b"%d" % i, qos=1)
    back = raw(version=MQTT_3_1_1)
    assert persistent(back, cid).session_present
    assert [back.receive_publish().payload for _ in range(20)] == [b"%d" % i for i in range(20)]
    end_session(raw, cid, MQTT_3_1_1)


def test_offline_queue_is_bounded_and_drops_are_counted(
    raw: RawFactory, uid: str, max_queued: int | None, sys_interval: int
) -> None:
    """A session's queue of QoS 1 messages is bounded (the issue; 4.1 lets a server limit
    session state): with a limit of N, at most N of 2N messages are kept, in order, and the
    dropped ones are counted in ``$SYS/broker/publish/messages/dropped`` (Mosquitto's name).
    Needs WSBROKER_MQTT_MAX_QUEUED for an external server."""
    if max_queued is None:
        pytest.skip("the target's queue limit is unknown (set WSBROKER_MQTT_MAX_QUEUED)")
    dropped_topic = "$SYS/broker/publish/messages/dropped"
    counter = raw(version=MQTT_3_1_1)
    counter.connect(f"sys-{uid}")
    # The current count is the retained value, if there is one (Mosquitto publishes the counter
    # only when it changes, with a 60 s Message Expiry): it comes before our own marker.
    counter.subscribe((dropped_topic, 0), (f"conf/{uid}/sys-marker", 0))
    counter.publish(f"conf/{uid}/sys-marker", b"")
    retained = [p.payload for p in counter.publishes_until(f"conf/{uid}/sys-marker")]
    before = sys_number(retained[-1]) if retained else 0
    cid, t = f"bq-{uid}", f"conf/{uid}/q"
    c = raw(version=MQTT_3_1_1)
    persistent(c, cid)
    c.subscribe((t, 1))
    c.disconnect()
    pub = raw(version=MQTT_3_1_1)
    pub.connect(f"p-{uid}")
    total = 2 * max_queued
    for start in range(0, total, 50):
        pub.send(
            b"".join(
                codec.publish(t, b"%d" % i, qos=1, packet_id=i + 1, version=MQTT_3_1_1)
                for i in range(start, min(start + 50, total))
            )
        )
        for i in range(start, min(start + 50, total)):
            pub.wait_for(codec.PUBACK, packet_id=i + 1)
    back = raw(version=MQTT_3_1_1)
    assert persistent(back, cid).session_present
    # The marker goes to the same (ordered) topic and QoS, so it comes after every kept message.
    pub.publish(t, b"-1", qos=1)
    got: list[int] = []
    while not got or got[-1] != -1:
        got.append(int(back.receive_publish().payload))
    got.pop()
    assert 0 < len(got) <= max_queued + 20, f"{len(got)} of {total} kept, limit {max_queued}"
    assert got == sorted(got), "queued messages out of order"
    lost = total - len(got)
    wait_for_sys(
        counter,
        dropped_topic,
        lambda v: sys_number(v) >= before + lost,
        3 * sys_interval + 5,
    )
    end_session(raw, cid, MQTT_3_1_1)


def test_v5_message_expiry_applies_while_queued(raw: RawFactory, uid: str) -> None:
    """Queued for an offline session: a message whose Message Expiry Interval passed is not
    delivered [MQTT-3.3.2-5]; one still valid is delivered with the remaining interval
    [MQTT-3.3.2-6]."""
    cid, t = f"mx-{uid}", f"conf/{uid}/q"
    c = raw()
    persistent(c, cid)
    c.subscribe((t, 1))
    c.disconnect()
    pub = raw()
    pub.connect(f"p-{uid}")
    pub.publish(t, b"short", qos=1, props=[(P.MESSAGE_EXPIRY_INTERVAL, 1)])
    pub.publish(t, b"long", qos=1, props=[(P.MESSAGE_EXPIRY_INTERVAL, 60)])
    waited = let_broker_time_pass(raw, uid, 2)
    back = raw()
    assert persistent(back, cid).session_present
    back.subscribe((f"conf/{uid}/marker", 0))
    back.publish(f"conf/{uid}/marker", b"")
    got = back.publishes_until(f"conf/{uid}/marker")
    assert [p.payload for p in got] == [b"long"], "expired message delivered"
    remaining = got[0].props.get(P.MESSAGE_EXPIRY_INTERVAL)
    assert remaining is not None, "the Message Expiry Interval is forwarded"
    assert remaining <= 60 - int(waited), f"{remaining} s left after waiting {waited:.1f} s"
    back.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 0)])


def test_paho_v311_persistent_session(paho: PahoFactory, uid: str) -> None:
    """paho 3.1.1 with clean_session=False: Session Present on return, and the QoS 1 message
    published while it was away [MQTT-3.2.2-2] (3.1.1)."""
    cid, t = f"pp-{uid}", f"conf/{uid}/q"
    c = paho(cid, version=4, clean_session=False)
    assert not c.connect().session_present
    c.subscribe(t, 1)
    c.disconnect()
    pub = paho(f"p-{uid}", version=4)
    pub.connect()
    pub.publish(t, b"while away", qos=1)
    back = paho(cid, version=4, clean_session=False)
    assert back.connect().session_present
    msg = back.expect()
    assert (msg.payload, msg.qos) == (b"while away", 1)
    back.disconnect()
    paho(cid, version=4, clean_session=True).connect()  # leave no session behind
