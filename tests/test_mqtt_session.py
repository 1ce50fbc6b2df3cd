"""MqttSession against the real core, through a fake link: the MQTT rules, one by one."""

from __future__ import annotations

import pytest

from broker.core.message import TEXT_PLAIN, Message
from broker.core.realm import Subscription
from broker.subprotocols.mqtt.codec import ProtocolViolation
from broker.subprotocols.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from tests.mqtt_helpers import Client, Harness

BOTH = pytest.mark.parametrize("version", [4, MQTT_5], ids=["3.1.1", "5.0"])


def subscribe(
    client: Client, *filters: str, qos: int = 0, packet_id: int = 1, **options: object
) -> SubAck:
    requests = tuple(SubscriptionRequest(f, qos, **options) for f in filters)  # type: ignore[arg-type]
    client.send(Subscribe(packet_id, requests))
    packets = client.received()
    suback = packets[0]
    assert isinstance(suback, SubAck), packets
    client.pending = packets[1:]
    return suback


def publishes(client: Client) -> list[Publish]:
    return [p for p in client.received() if isinstance(p, Publish)]


# --- CONNECT (3.1, 3.2) ------------------------------------------------------------------------


@BOTH
def test_connect_is_accepted_without_session(version: int) -> None:
    connack = Harness().client(version).connect()
    assert (connack.session_present, connack.reason_code) == (False, 0)


def test_mqtt_5_connack_announces_the_servers_limits() -> None:
    connack = Harness(mqtt_receive_maximum=7, mqtt_topic_alias_maximum=3).client(MQTT_5).connect()
    assert connack.properties.receive_maximum == 7
    assert connack.properties.topic_alias_maximum == 3
    assert connack.properties.maximum_packet_size == (1 << 20) - 1


def test_empty_client_id_is_assigned_in_5() -> None:
    connack = Harness().client(MQTT_5).connect("")
    assert connack.properties.assigned_client_identifier


def test_empty_client_id_needs_clean_session_in_3_1_1() -> None:
    client = Harness().client(4)
    assert client.connect("", clean=True).reason_code == 0
    client = Harness().client(4)
    assert client.connect("", clean=False).reason_code == 2  # identifier rejected
    assert client.link.closed is not None


def test_mqtt_3_1_refuses_long_client_ids() -> None:
    client = Harness().client(3)
    assert client.connect("x" * 24).reason_code == 2


def test_first_packet_must_be_connect() -> None:
    client = Harness().client(4)
    client.send_bytes(bytes([0xC0, 0x00]))  # PINGREQ
    assert client.link.closed is not None
    assert client.link.sent == []


def test_second_connect_is_a_protocol_error() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(Connect("MQTT", 5, True, 60, "c1"))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR
    assert client.link.closed is not None


def test_unsupported_protocol_level_gets_connack_0x01() -> None:
    client = Harness().client(4)
    # CONNECT with protocol name MQTT and level 6.
    body = b"\x00\x04MQTT\x06\x02\x00\x3c\x00\x01c"
    client.send_bytes(bytes([0x10, len(body)]) + body)
    assert client.link.sent == [b"\x20\x02\x00\x01"]
    assert client.link.closed is not None


def test_text_frames_are_refused() -> None:
    client = Harness().client(4)
    client.session.on_message(b"\x10\x00", True)
    assert client.link.closed is not None
    assert client.link.closed[0] == 1003


def test_enhanced_authentication_is_refused_with_0x8c() -> None:
    client = Harness().client(MQTT_5)
    connack = client.connect(properties=Properties(authentication_method="SCRAM-SHA-1"))
    assert connack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def test_refused_login_gets_the_right_code() -> None:
    class Nobody:
        def authenticate(self, credentials: object) -> None:
            return None

    harness = Harness()
    harness.broker.authenticator = Nobody()
    assert harness.client(4).connect(username="u").reason_code == 4
    assert harness.client(4).connect().reason_code == 5
    assert harness.client(MQTT_5).connect(username="u").reason_code == 0x86


# --- keep alive and takeover -------------------------------------------------------------------


@BOTH
def test_keep_alive_is_enforced_at_one_and_a_half_times(version: int) -> None:
    client = Harness().client(version)
    client.connect(keep_alive=10)
    assert client.link.receive_timeout == 15
    client.session.on_receive_timeout()
    assert client.link.closed is not None
    if version == MQTT_5:
        (disconnect,) = client.received()
        assert isinstance(disconnect, Disconnect)
        assert disconnect.reason_code == ReasonCode.KEEP_ALIVE_TIMEOUT


def test_server_keep_alive_caps_the_clients() -> None:
    client = Harness(mqtt_max_keepalive=30).client(MQTT_5)
    connack = client.connect(keep_alive=0)
    assert connack.properties.server_keep_alive == 30
    assert client.link.receive_timeout == 45


def test_ping() -> None:
    client = Harness().client(4)
    client.connect()
    client.send(PingReq())
    assert client.received() == [PingResp()]


def test_takeover_closes_the_old_connection_with_0x8e() -> None:
    harness = Harness()
    first = harness.client(MQTT_5)
    first.connect("same")
    second = harness.client(MQTT_5)
    assert second.connect("same").reason_code == 0
    (disconnect,) = first.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.SESSION_TAKEN_OVER
    assert first.link.closed is not None
    first.drop()  # the old connection's end must not end the new one's session
    second.send(PingReq())
    assert second.received() == [PingResp()]
    assert harness.broker.stats.clients_connected == 1


# --- sessions ----------------------------------------------------------------------------------


def test_persistent_session_keeps_subscriptions_and_queues_qos1() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub", clean=False)
    subscribe(subscriber, "t/#", qos=1)
    subscriber.drop()
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("t/a", b"kept", qos=1, packet_id=5))
    publisher.send(Publish("t/a", b"lost", qos=0))
    again = harness.client(4)
    assert again.connect("sub", clean=False).session_present
    (message,) = publishes(again)
    assert (message.payload, message.qos, message.dup) == (b"kept", 1, False)


def test_clean_session_discards_the_old_one() -> None:
    harness = Harness()
    client = harness.client(4)
    client.connect("c", clean=False)
    subscribe(client, "t")
    client.drop()
    assert not harness.client(4).connect("c", clean=True).session_present
    assert harness.broker.default_realm.subscription_count == 0


def test_unacknowledged_messages_are_resent_with_dup_on_reconnect() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub", clean=False)
    subscribe(subscriber, "t", qos=2)
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("t", b"one", qos=1, packet_id=1))
    publisher.send(Publish("t", b"two", qos=2, packet_id=2))
    first = publishes(subscriber)
    assert [p.payload for p in first] == [b"one", b"two"]
    subscriber.send(PubRec(first[1].packet_id or 0))
    assert subscriber.received() == [PubRel(first[1].packet_id or 0)]
    subscriber.drop()
    again = harness.client(4)
    again.connect("sub", clean=False)
    packets = again.received()
    assert packets[0] == Publish("t", b"one", qos=1, dup=True, packet_id=first[0].packet_id)
    assert packets[1] == PubRel(first[1].packet_id or 0)


def test_session_queue_is_bounded_and_counts_drops() -> None:
    harness = Harness(mqtt_max_queued_messages=2)
    subscriber = harness.client(4)
    subscriber.connect("sub", clean=False)
    subscribe(subscriber, "t", qos=1)
    subscriber.drop()
    publisher = harness.client(4)
    publisher.connect("pub")
    for n in range(5):
        publisher.send(Publish("t", b"%d" % n, qos=1, packet_id=n + 1))
    assert harness.broker.stats.publish_dropped == 3
    again = harness.client(4)
    again.connect("sub", clean=False)
    assert [p.payload for p in publishes(again)] == [b"0", b"1"]


def test_session_expiry_in_5() -> None:
    harness = Harness()
    client = harness.client(MQTT_5)
    client.connect("c", clean=False, properties=Properties(session_expiry_interval=10))
    subscribe(client, "t")
    client.drop()
    harness.advance(9)
    assert harness.broker.default_realm.subscription_count == 1
    harness.advance(2)
    assert harness.broker.default_realm.subscription_count == 0
    assert not harness.client(MQTT_5).connect("c", clean=False).session_present


def test_disconnect_cannot_raise_a_zero_session_expiry() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(Disconnect(0, Properties(session_expiry_interval=30)))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR


# --- QoS flows ---------------------------------------------------------------------------------


@BOTH
def test_qos1_publish_is_acknowledged(version: int) -> None:
    client = Harness().client(version)
    client.connect()
    client.send(Publish("t", b"x", qos=1, packet_id=7))
    (ack,) = client.received()
    assert isinstance(ack, PubAck)
    assert ack.packet_id == 7
    # 5.0 says there was nobody to deliver it to.
    assert ack.reason_code == (ReasonCode.NO_MATCHING_SUBSCRIBERS if version == MQTT_5 else 0)


def test_qos2_publish_is_delivered_once_despite_a_resend() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "t")
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("t", b"x", qos=2, packet_id=3))
    publisher.send(Publish("t", b"x", qos=2, packet_id=3, dup=True))
    assert publisher.received() == [PubRec(3), PubRec(3)]
    publisher.send(PubRel(3))
    assert publisher.received() == [PubComp(3)]
    assert len(publishes(subscriber)) == 1


def test_pubrel_for_unknown_id_in_5() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(PubRel(9))
    assert client.received() == [PubComp(9, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)]


def test_qos_is_downgraded_to_the_subscription_maximum() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "t", qos=1)
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("t", b"x", qos=2, packet_id=1))
    (message,) = publishes(subscriber)
    assert message.qos == 1


def test_client_receive_maximum_limits_messages_in_flight() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub", properties=Properties(receive_maximum=2))
    subscribe(subscriber, "t", qos=1)
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    for n in range(4):
        publisher.send(Publish("t", b"%d" % n, qos=1, packet_id=n + 1))
    sent = publishes(subscriber)
    assert [p.payload for p in sent] == [b"0", b"1"]
    subscriber.send(PubAck(sent[0].packet_id or 0))
    assert [p.payload for p in publishes(subscriber)] == [b"2"]


def test_server_receive_maximum_is_enforced() -> None:
    client = Harness(mqtt_receive_maximum=2).client(MQTT_5)
    client.connect()
    for n in range(3):
        client.send(Publish("t", b"x", qos=2, packet_id=n + 1))
    *_, disconnect = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.RECEIVE_MAXIMUM_EXCEEDED


def test_in_order_delivery() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "t", qos=2)
    publisher = harness.client(4)
    publisher.connect("pub")
    for n in range(20):
        publisher.send(Publish("t", b"%d" % n, qos=n % 3, packet_id=n + 1 if n % 3 else None))
    assert [p.payload for p in publishes(subscriber)] == [b"%d" % n for n in range(20)]


# --- subscriptions and retained messages -------------------------------------------------------


def test_retained_set_replace_clear_and_wildcard_delivery() -> None:
    harness = Harness()
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("sensors/a/temp", b"1", retain=True))
    publisher.send(Publish("sensors/b/temp", b"2", retain=True))
    publisher.send(Publish("sensors/a/temp", b"3", retain=True))
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "sensors/#")
    got = sorted((p.topic, p.payload, p.retain) for p in publishes(subscriber))
    assert got == [("sensors/a/temp", b"3", True), ("sensors/b/temp", b"2", True)]
    publisher.send(Publish("sensors/a/temp", b"", retain=True))
    other = harness.client(4)
    other.connect("other")
    subscribe(other, "sensors/#")
    assert [p.topic for p in publishes(other)] == ["sensors/b/temp"]


def test_live_messages_lose_the_retain_flag_unless_retain_as_published() -> None:
    harness = Harness()
    plain = harness.client(MQTT_5)
    plain.connect("plain")
    subscribe(plain, "t")
    kept = harness.client(MQTT_5)
    kept.connect("kept")
    subscribe(kept, "t", retain_as_published=True)
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(Publish("t", b"x", retain=True))
    assert [p.retain for p in publishes(plain)] == [False]
    assert [p.retain for p in publishes(kept)] == [True]


@pytest.mark.parametrize(("handling", "first", "again"), [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_retain_handling(handling: int, first: int, again: int) -> None:
    harness = Harness()
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(Publish("t", b"r", retain=True))
    client = harness.client(MQTT_5)
    client.connect("sub")
    subscribe(client, "t", retain_handling=handling)
    assert len(publishes(client)) == first
    subscribe(client, "t", retain_handling=handling, packet_id=2)
    assert len(publishes(client)) == again


def test_overlapping_subscriptions_give_one_copy_at_the_highest_qos() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "a/+", qos=0)
    subscribe(subscriber, "a/#", qos=1, packet_id=2)
    publisher = harness.client(4)
    publisher.connect("pub")
    publisher.send(Publish("a/b", b"x", qos=2, packet_id=1))
    (message,) = publishes(subscriber)
    assert message.qos == 1


def test_overlapping_subscriptions_carry_every_subscription_identifier() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub")
    for n, topic_filter in enumerate(["a/+", "a/#"], start=1):
        subscriber.send(
            Subscribe(
                n,
                (SubscriptionRequest(topic_filter, 1),),
                Properties(subscription_identifiers=(n * 10,)),
            )
        )
    subscriber.received()
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(Publish("a/b", b"x"))
    (message,) = publishes(subscriber)
    assert sorted(message.properties.subscription_identifiers) == [10, 20]


def test_no_local() -> None:
    harness = Harness()
    client = harness.client(MQTT_5)
    client.connect("c")
    subscribe(client, "t", no_local=True)
    client.send(Publish("t", b"mine"))
    assert publishes(client) == []


def test_dollar_topics_are_not_matched_by_leading_wildcards() -> None:
    harness = Harness()
    client = harness.client(4)
    client.connect("c")
    subscribe(client, "#")
    subscribe(client, "+/x", packet_id=2)
    harness.broker.default_realm.publish(Message("$internal/x", b"hidden"))
    assert publishes(client) == []


def test_invalid_filter_is_refused_in_the_suback() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    suback = subscribe(client, "a/#/b", "ok")
    assert suback.reason_codes == (ReasonCode.TOPIC_FILTER_INVALID, 0)


def test_unsubscribe_reports_what_existed() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    subscribe(client, "t")
    client.send(Unsubscribe(2, ("t", "never")))
    assert client.received() == [UnsubAck(2, (0, ReasonCode.NO_SUBSCRIPTION_EXISTED))]


def test_shared_subscription_round_robin() -> None:
    harness = Harness()
    members = []
    for name in ("m1", "m2"):
        member = harness.client(MQTT_5)
        member.connect(name)
        subscribe(member, "$share/g/jobs/+")
        members.append(member)
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    for n in range(4):
        publisher.send(Publish("jobs/x", b"%d" % n))
    assert [p.payload for p in publishes(members[0])] == [b"0", b"2"]
    assert [p.payload for p in publishes(members[1])] == [b"1", b"3"]


def test_no_local_on_a_shared_subscription_is_a_protocol_error() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(Subscribe(1, (SubscriptionRequest("$share/g/t", 0, no_local=True),)))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR


# --- will --------------------------------------------------------------------------------------


def watcher(harness: Harness, topic: str = "will/#") -> Client:
    client = harness.client(MQTT_5)
    client.connect(f"watch-{topic}")
    subscribe(client, topic)
    return client


@BOTH
def test_will_is_sent_on_an_abnormal_end_only(version: int) -> None:
    harness = Harness()
    watch = watcher(harness)
    client = harness.client(version)
    client.connect("dev", will=Will("will/dev", b"gone"))
    client.drop()
    assert [p.payload for p in publishes(watch)] == [b"gone"]
    polite = harness.client(version)
    polite.connect("dev2", will=Will("will/dev2", b"gone"))
    polite.send(Disconnect())
    polite.drop()
    assert publishes(watch) == []


def test_disconnect_with_will_sends_it() -> None:
    harness = Harness()
    watch = watcher(harness)
    client = harness.client(MQTT_5)
    client.connect("dev", will=Will("will/dev", b"bye"))
    client.send(Disconnect(ReasonCode.DISCONNECT_WITH_WILL))
    client.drop()
    assert [p.payload for p in publishes(watch)] == [b"bye"]


def test_will_delay_interval_and_a_reconnect_in_time() -> None:
    harness = Harness()
    watch = watcher(harness)
    delayed = Will("will/dev", b"late", properties=Properties(will_delay_interval=5))
    session = Properties(session_expiry_interval=100)
    client = harness.client(MQTT_5)
    client.connect("dev", clean=False, will=delayed, properties=session)
    client.drop()
    harness.advance(4)
    assert publishes(watch) == []
    harness.advance(2)
    assert [p.payload for p in publishes(watch)] == [b"late"]
    again = harness.client(MQTT_5)
    again.connect("dev", clean=False, will=delayed, properties=session)
    again.drop()
    back = harness.client(MQTT_5)
    back.connect("dev", clean=False, properties=session)  # back within the delay
    harness.advance(10)
    assert publishes(watch) == []


# --- MQTT 5 properties -------------------------------------------------------------------------


def test_properties_pass_through_in_order() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub")
    subscribe(subscriber, "t")
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    props = Properties(
        payload_format_indicator=1,
        content_type="application/json",
        response_topic="replies/1",
        correlation_data=b"\x01\x02",
        user_properties=(("b", "2"), ("a", "1"), ("b", "3")),
    )
    publisher.send(Publish("t", b"{}", properties=props))
    (message,) = publishes(subscriber)
    assert message.properties == props


def test_message_expiry_while_queued() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    session = Properties(session_expiry_interval=100)
    subscriber.connect("sub", clean=False, properties=session)
    subscribe(subscriber, "t", qos=1)
    subscriber.drop()
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(
        Publish("t", b"short", qos=1, packet_id=1, properties=Properties(message_expiry_interval=5))
    )
    publisher.send(
        Publish("t", b"long", qos=1, packet_id=2, properties=Properties(message_expiry_interval=60))
    )
    harness.advance(10)
    again = harness.client(MQTT_5)
    again.connect("sub", clean=False, properties=session)
    (message,) = publishes(again)
    assert message.payload == b"long"
    assert message.properties.message_expiry_interval == 50


def test_topic_alias_from_the_client() -> None:
    harness = Harness(mqtt_topic_alias_maximum=2)
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub")
    subscribe(subscriber, "long/topic")
    client = harness.client(MQTT_5)
    client.connect("pub")
    client.send(Publish("long/topic", b"1", properties=Properties(topic_alias=1)))
    client.send(Publish("", b"2", properties=Properties(topic_alias=1)))
    assert [(p.topic, p.payload) for p in publishes(subscriber)] == [
        ("long/topic", b"1"),
        ("long/topic", b"2"),
    ]
    client.send(Publish("x", b"3", properties=Properties(topic_alias=3)))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.TOPIC_ALIAS_INVALID


def test_unknown_topic_alias_is_a_protocol_error() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(Publish("", b"x", properties=Properties(topic_alias=1)))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR


def test_topic_alias_towards_the_client() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub", properties=Properties(topic_alias_maximum=4))
    subscribe(subscriber, "t/#")
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(Publish("t/a", b"1"))
    publisher.send(Publish("t/a", b"2"))
    first, second = publishes(subscriber)
    assert (first.topic, first.properties.topic_alias) == ("t/a", 1)
    assert (second.topic, second.properties.topic_alias) == ("", 1)


def test_client_maximum_packet_size_drops_what_does_not_fit() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub", properties=Properties(maximum_packet_size=100))
    subscribe(subscriber, "t", qos=1)
    publisher = harness.client(MQTT_5)
    publisher.connect("pub")
    publisher.send(Publish("t", b"x" * 200, qos=1, packet_id=1))
    publisher.send(Publish("t", b"small", qos=1, packet_id=2))
    assert [p.payload for p in publishes(subscriber)] == [b"small"]


def test_server_maximum_packet_size() -> None:
    client = Harness(mqtt_max_packet_size=100).client(MQTT_5)
    client.connect()
    client.send(Publish("t", b"x" * 200))
    (disconnect,) = client.received()
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_publishing_to_sys_is_not_authorized() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send(Publish("$SYS/broker/uptime", b"0", qos=1, packet_id=1))
    assert client.received() == [PubAck(1, ReasonCode.NOT_AUTHORIZED)]


def test_invalid_payload_format_is_refused() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    bad = Properties(payload_format_indicator=1)
    client.send(Publish("t", b"\xff", qos=1, packet_id=1, properties=bad))
    assert client.received() == [PubAck(1, ReasonCode.PAYLOAD_FORMAT_INVALID)]


def test_malformed_packet_gets_disconnect_0x81_in_5_and_a_close_in_3_1_1() -> None:
    for version in (4, MQTT_5):
        client = Harness().client(version)
        client.connect()
        client.send_bytes(b"\x30\x02\x00")  # PUBLISH whose topic length runs past its end
        client.send_bytes(b"\x00")
        packets = client.received()
        if version == MQTT_5:
            assert isinstance(packets[0], Disconnect)
            assert packets[0].reason_code == ReasonCode.MALFORMED_PACKET
        else:
            assert packets == []
        assert client.link.closed is not None


# --- across protocols --------------------------------------------------------------------------


def test_raw_text_reaches_mqtt_5_with_its_content_type() -> None:
    harness = Harness()
    subscriber = harness.client(MQTT_5)
    subscriber.connect("sub")
    subscribe(subscriber, "t")
    harness.broker.default_realm.publish(
        Message("t", b"hi", content_type=TEXT_PLAIN, payload_format=1)
    )
    (message,) = publishes(subscriber)
    assert message.properties.content_type == TEXT_PLAIN
    assert message.properties.payload_format_indicator == 1


def test_mqtt_publish_reaches_a_core_subscriber_with_metadata() -> None:
    harness = Harness()
    seen: list[Message] = []

    class Tap:
        session_id = "tap"

        def deliver(self, delivery: object, subscription: Subscription) -> None:
            seen.append(delivery.message)  # type: ignore[attr-defined]

    harness.broker.default_realm.subscribe(Subscription(Tap(), "t"))
    client = harness.client(MQTT_5)
    client.connect()
    client.send(
        Publish("t", b"{}", retain=True, properties=Properties(content_type="application/json"))
    )
    (message,) = seen
    assert (message.payload, message.content_type, message.retain) == (
        b"{}",
        "application/json",
        True,
    )


def test_violation_is_reported_once_and_input_after_it_is_ignored() -> None:
    client = Harness().client(MQTT_5)
    client.connect()
    client.send_bytes(b"\xf0\x00")  # AUTH without a method
    client.send(PingReq())
    packets = client.received()
    assert len(packets) == 1
    assert not isinstance(packets[0], ProtocolViolation)
    assert isinstance(packets[0], Disconnect)


def test_broken_5_connect_gets_a_connack_with_the_reason() -> None:
    client = Harness().client(MQTT_5)
    # A 5.0 CONNECT whose property length runs past the packet.
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x09\x00\x01c"
    client.send_bytes(bytes([0x10, len(body)]) + body)
    (connack,) = client.received()
    assert isinstance(connack, ConnAck)
    assert connack.reason_code == ReasonCode.MALFORMED_PACKET
    assert client.link.closed is not None


def test_messages_in_flight_are_capped_for_3_1_1_too() -> None:
    harness = Harness(mqtt_max_inflight=3)
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "t", qos=1)
    publisher = harness.client(4)
    publisher.connect("pub")
    for n in range(5):
        publisher.send(Publish("t", b"%d" % n, qos=1, packet_id=n + 1))
    assert len(publishes(subscriber)) == 3


@BOTH
def test_shared_qos1_encoding_carries_each_subscribers_packet_id(version: int) -> None:
    harness = Harness()
    subscribers = []
    for n in range(3):
        subscriber = harness.client(version)
        subscriber.connect(f"sub{n}")
        subscribe(subscriber, "t/#", qos=2)
        subscribe(subscriber, f"warm/{n}", qos=1, packet_id=2)
        # Different packet ids per subscriber: each has used a different number before.
        for _ in range(n):
            harness.broker.default_realm.publish(Message(f"warm/{n}", b"", qos=1))
            for p in publishes(subscriber):
                subscriber.send(PubAck(p.packet_id or 0))
        subscribers.append(subscriber)
    props = Properties(content_type="text/plain", user_properties=(("k", "v"),))
    publisher = harness.client(version)
    publisher.connect("pub")
    payload = b"p" * 300  # a two-byte remaining length
    if version == MQTT_5:
        publisher.send(Publish("t/long", payload, qos=2, packet_id=9, properties=props))
    else:
        publisher.send(Publish("t/long", payload, qos=2, packet_id=9))
    seen = set()
    for subscriber in subscribers:
        (message,) = publishes(subscriber)
        assert (message.topic, message.payload, message.qos) == ("t/long", payload, 2)
        if version == MQTT_5:
            assert message.properties == props
        seen.add(message.packet_id)
    assert len(seen) == 3


def test_session_records_are_kept_only_while_they_last() -> None:
    harness = Harness()
    clean = harness.client(4)
    clean.connect("clean")
    kept = harness.client(4)
    kept.connect("kept", clean=False)
    assert len(harness.broker.sessions) == 2
    clean.drop()
    kept.drop()
    assert len(harness.broker.sessions) == 1
    assert harness.broker.sessions.get(("mqtt", "realm1", "kept")) is not None
    harness.advance(harness.settings.mqtt_max_session_expiry + 1)
    assert len(harness.broker.sessions) == 0


def test_plain_qos0_publish_is_forwarded_byte_for_byte_but_not_to_sys() -> None:
    harness = Harness()
    subscriber = harness.client(4)
    subscriber.connect("sub")
    subscribe(subscriber, "#")
    subscribe(subscriber, "$SYS/#", packet_id=2)
    publisher = harness.client(4)
    publisher.connect("pub")
    packet = b"\x30\x07\x00\x03a/bhi"
    publisher.send_bytes(packet)
    assert subscriber.link.sent == [packet]
    subscriber.link.sent.clear()
    publisher.send_bytes(b"\x30\x0c\x00\x09$SYS/fakex")
    assert subscriber.link.sent == []
    publisher.send_bytes(b"\x30\x06\x00\x01+abc")  # a wildcard: the codec's verdict stands
    assert publisher.link.closed is not None
