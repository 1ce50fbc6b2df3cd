"""StompSession rule by rule, through a fake link: no sockets, a fake clock."""

from __future__ import annotations

import pytest

from broker.core.auth import Credentials, Identity
from broker.core.message import Delivery, Message
from broker.core.realm import Subscription
from tests.stomp_helpers import StompClient, StompHarness


@pytest.fixture
def harness() -> StompHarness:
    return StompHarness(stomp_heartbeat_min=100)


class Recorder:
    """A core subscriber standing in for another protocol."""

    session_id = "other"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, delivery: Delivery, subscription: Subscription) -> None:
        self.messages.append(delivery.message)


# --- CONNECT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ("1.0,1.1,1.2", "1.2"),
        ("1.1", "1.1"),
        ("1.0,1.1", "1.1"),
        ("1.0", "1.0"),
        ("2.0,1.2", "1.2"),
    ],
)
def test_connect_negotiates_the_highest_common_version(
    harness: StompHarness, offered: str, chosen: str
) -> None:
    client = harness.client()
    client.send("CONNECT", ("accept-version", offered), ("host", "h"))
    connected = client.one("CONNECTED")
    assert connected.header("version") == chosen
    assert (connected.header("server") or "").startswith("wsbroker/")
    assert connected.header("session") == client.link.session_id
    assert connected.header("heart-beat") == "0,0"


def test_connect_without_accept_version_is_1_0(harness: StompHarness) -> None:
    client = harness.client()
    client.send("CONNECT")
    assert client.one("CONNECTED").header("version") == "1.0"


def test_stomp_command_connects_too(harness: StompHarness) -> None:
    client = harness.client()
    client.send("STOMP", ("accept-version", "1.2"), ("host", "h"))
    assert client.one("CONNECTED").header("version") == "1.2"


def test_unsupported_version_gets_error_listing_ours(harness: StompHarness) -> None:
    client = harness.client()
    client.send("CONNECT", ("accept-version", "2.0,3.1"), ("host", "h"))
    error = client.error()
    assert error.header("message") == "unsupported version"
    assert error.header("version") == "1.0,1.1,1.2"


def test_frame_before_connect_gets_error(harness: StompHarness) -> None:
    client = harness.client()
    client.send("SEND", ("destination", "/topic/a"), ("receipt", "r1"))
    error = client.error()
    assert error.header("message") == "not connected"
    assert error.header("receipt-id") == "r1"


def test_second_connect_is_an_error(harness: StompHarness) -> None:
    client = harness.connected()
    client.send("CONNECT", ("accept-version", "1.2"), ("host", "h"))
    assert client.error().header("message") == "already connected"


def test_no_connect_in_time(harness: StompHarness) -> None:
    client = harness.client()
    assert client.link.receive_timeout == harness.settings.handshake_timeout
    client.session.on_receive_timeout()
    assert client.error().header("message") == "no CONNECT in time"


def test_host_header_naming_a_realm_selects_it() -> None:
    harness = StompHarness(realms=["realm1", "tenant"])
    tenant = harness.connected(host="tenant")
    default = harness.connected(host="broker.example.com")
    tenant.subscribe("/topic/t")
    default.subscribe("/topic/t")
    harness.client().session  # noqa: B018 - another session in the default realm changes nothing
    publisher = harness.connected(host="tenant")
    publisher.publish("/topic/t")
    assert [f.command for f in tenant.received()] == ["MESSAGE"]
    assert default.received() == []


def test_login_and_passcode_go_to_the_auth_hook() -> None:
    seen: list[Credentials] = []

    class OnlyAlice:
        def authenticate(self, credentials: Credentials) -> Identity | None:
            seen.append(credentials)
            return Identity(user="alice") if credentials.username == "alice" else None

    harness = StompHarness(authenticator=OnlyAlice())
    harness.connected(login="alice", passcode="secret")
    assert seen[0].protocol == "stomp"
    assert seen[0].password == b"secret"
    bob = harness.client()
    bob.send("CONNECT", ("accept-version", "1.2"), ("host", "h"), ("login", "bob"))
    assert bob.error().header("message") == "access refused"


# --- SEND, SUBSCRIBE, MESSAGE ------------------------------------------------------------------


def test_send_reaches_a_topic_subscriber_with_every_header(harness: StompHarness) -> None:
    subscriber = harness.connected()
    subscriber.subscribe("/topic/sensors/+/temp", "sub-0")
    publisher = harness.connected()
    publisher.publish(
        "/topic/sensors/room1/temp",
        b"21.5",
        ("content-type", "text/plain"),
        ("unit", "celsius"),
        ("unit", "kelvin"),
    )
    message = subscriber.one("MESSAGE")
    assert message.header("destination") == "/topic/sensors/room1/temp"
    assert message.header("subscription") == "sub-0"
    assert message.header("message-id")
    assert message.header("ack") is None  # auto
    assert message.header("content-type") == "text/plain"
    assert message.header("content-length") == "4"
    assert [v for n, v in message.headers if n == "unit"] == ["celsius", "kelvin"]
    assert message.body == b"21.5"


def test_each_subscription_gets_its_own_copy(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/topic/a/b", "exact")
    client.subscribe("/topic/a/#", "all")
    client.publish("/topic/a/b")
    frames = client.received()
    assert sorted(f.header("subscription") or "" for f in frames) == ["all", "exact"]


def test_message_text_flag_follows_the_body() -> None:
    harness = StompHarness()
    client = harness.connected()
    client.received()
    client.subscribe("/topic/bin")
    client.publish("/topic/bin", b"text")
    client.publish("/topic/bin", b"\xff\xfe")
    assert client.link.texts == [True, False]


def test_unsubscribe_stops_delivery_and_unknown_id_is_an_error(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/topic/x", "s")
    client.send("UNSUBSCRIBE", ("id", "s"))
    client.publish("/topic/x")
    assert client.received() == []
    client.send("UNSUBSCRIBE", ("id", "s"))
    assert client.error().header("message") == "unknown subscription"


def test_subscribe_without_id_is_an_error_in_1_2_but_not_1_0(harness: StompHarness) -> None:
    old = harness.connected("1.0")
    old.send("SUBSCRIBE", ("destination", "/topic/z"))
    old.publish("/topic/z")
    assert old.one("MESSAGE").header("subscription") == "/topic/z"
    new = harness.connected("1.2")
    new.send("SUBSCRIBE", ("destination", "/topic/z"))
    assert new.error().header("message") == "missing header 'id'"


def test_send_without_destination_names_the_header(harness: StompHarness) -> None:
    client = harness.connected()
    client.send("SEND", body=b"x")
    error = client.error()
    assert error.header("message") == "missing header 'destination'"


@pytest.mark.parametrize("destination", ["/exchange/x", "/amq/queue/y", "topic/a", "/topic/"])
def test_other_destinations_get_an_error_naming_ours(
    harness: StompHarness, destination: str
) -> None:
    client = harness.connected()
    client.publish(destination)
    error = client.error()
    assert error.header("message") == "invalid destination"
    assert b"/topic/" in error.body
    assert b"/queue/" in error.body


def test_publishing_with_a_wildcard_is_an_error(harness: StompHarness) -> None:
    client = harness.connected()
    client.publish("/topic/a/+")
    assert client.error().header("message") == "invalid destination"


def test_sys_topics_are_read_only(harness: StompHarness) -> None:
    client = harness.connected()
    client.publish("/topic/$SYS/broker/uptime")
    assert client.error().header("message") == "not authorized"


def test_unknown_command_and_nack_in_1_0(harness: StompHarness) -> None:
    client = harness.connected()
    client.send("PUBLISH")
    assert client.error().header("message") == "unknown command"
    old = harness.connected("1.0")
    old.send("NACK", ("message-id", "1"))
    assert old.error().header("message") == "unknown command"


def test_too_many_subscriptions() -> None:
    harness = StompHarness(stomp_max_subscriptions=2)
    client = harness.connected()
    client.subscribe("/topic/a", "1")
    client.subscribe("/topic/b", "2")
    client.subscribe("/topic/c", "3")
    assert client.error().header("message") == "too many subscriptions"


# --- acknowledgements -----------------------------------------------------------------------


def test_ack_header_only_in_1_2_and_only_for_client_modes(harness: StompHarness) -> None:
    for version, ack, expected in [
        ("1.2", "client", True),
        ("1.2", "client-individual", True),
        ("1.2", "auto", False),
        ("1.1", "client", False),
    ]:
        client = harness.connected(version)  # type: ignore[arg-type]
        client.subscribe("/topic/ack", "s", ack)
        client.publish("/topic/ack")
        message = client.one("MESSAGE")
        assert (message.header("ack") is not None) is expected, (version, ack)
        if expected:
            assert message.header("ack") == message.header("message-id")


def test_ack_of_unknown_id_names_the_header(harness: StompHarness) -> None:
    client = harness.connected("1.2")
    client.send("ACK", ("id", "nope"))
    error = client.error()
    assert error.header("message") == "unknown ack id"
    assert b"id 'nope'" in error.body
    old = harness.connected("1.1")
    old.send("ACK", ("message-id", "1"))
    assert old.error().header("message") == "missing header 'subscription'"


def test_1_1_ack_needs_the_right_subscription(harness: StompHarness) -> None:
    client = harness.connected("1.1")
    client.subscribe("/queue/q11", "s", "client")
    client.publish("/queue/q11")
    message_id = client.one("MESSAGE").header("message-id") or ""
    client.send("ACK", ("message-id", message_id), ("subscription", "other"))
    assert client.error().header("message") == "unknown ack id"


def queue_of(harness: StompHarness, name: str) -> tuple[int, int]:
    queue = harness.broker.default_realm.queues.find(name)
    assert queue is not None
    return queue.backlog, queue.unacked


def test_client_ack_is_cumulative(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/queue/work", "s", "client")
    for n in range(4):
        client.publish("/queue/work", str(n).encode())
    messages = client.received()
    assert [m.body for m in messages] == [b"0", b"1", b"2", b"3"]
    client.send("ACK", ("id", messages[2].header("ack") or ""))
    assert queue_of(harness, "work") == (0, 1)
    client.send("ACK", ("id", messages[0].header("ack") or ""))  # covered already
    assert client.error().header("message") == "unknown ack id"


def test_client_individual_ack_is_one_message(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/queue/ind", "s", "client-individual")
    for n in range(3):
        client.publish("/queue/ind", str(n).encode())
    messages = client.received()
    client.send("ACK", ("id", messages[1].header("ack") or ""))
    assert queue_of(harness, "ind") == (0, 2)


# --- work queues -------------------------------------------------------------------------------


def test_queue_round_robin_and_held_until_acked(harness: StompHarness) -> None:
    a, b = harness.connected(), harness.connected()
    a.subscribe("/queue/jobs", "a", "client-individual")
    b.subscribe("/queue/jobs", "b", "client-individual")
    publisher = harness.connected()
    for n in range(4):
        publisher.publish("/queue/jobs", str(n).encode())
    got_a, got_b = a.received(), b.received()
    assert [m.body for m in got_a] == [b"0", b"2"]
    assert [m.body for m in got_b] == [b"1", b"3"]
    assert all(m.header("destination") == "/queue/jobs" for m in got_a + got_b)
    assert queue_of(harness, "jobs") == (0, 4)
    for m in got_a:
        a.send("ACK", ("id", m.header("ack") or ""))
    assert queue_of(harness, "jobs") == (0, 2)


def test_nack_redelivers_with_redelivered_true(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/queue/retry", "s", "client-individual")
    client.publish("/queue/retry", b"job")
    first = client.one("MESSAGE")
    assert first.header("redelivered") is None
    client.send("NACK", ("id", first.header("ack") or ""))
    again = client.one("MESSAGE")
    assert again.body == b"job"
    assert again.header("redelivered") == "true"


def test_unacked_messages_go_to_another_consumer_when_theirs_leaves(
    harness: StompHarness,
) -> None:
    leaver = harness.connected()
    leaver.subscribe("/queue/handover", "s", "client")
    leaver.publish("/queue/handover", b"one")
    leaver.publish("/queue/handover", b"two")
    assert len(leaver.received()) == 2
    stayer = harness.connected()
    stayer.subscribe("/queue/handover", "s", "client")
    leaver.session.on_close()
    again = stayer.received()
    assert [(m.body, m.header("redelivered")) for m in again] == [
        (b"one", "true"),
        (b"two", "true"),
    ]


def test_auto_ack_consumers_hold_nothing(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/queue/auto", "s")
    client.publish("/queue/auto")
    assert client.one("MESSAGE").header("ack") is None
    assert queue_of(harness, "auto") == (0, 0)


def test_queue_waits_for_a_consumer_bounded() -> None:
    harness = StompHarness(queue_max_backlog=2)
    publisher = harness.connected()
    publisher.publish("/queue/later", b"1")
    publisher.publish("/queue/later", b"2")
    assert queue_of(harness, "later") == (2, 0)
    consumer = harness.connected()
    consumer.subscribe("/queue/later")
    assert [m.body for m in consumer.received()] == [b"1", b"2"]
    consumer.send("UNSUBSCRIBE", ("id", "s1"))
    publisher.publish("/queue/later", b"3")
    publisher.publish("/queue/later", b"4")
    publisher.publish("/queue/later", b"5")
    assert publisher.error().header("message") == "queue full"


def test_prefetch_count_limits_what_a_consumer_holds(harness: StompHarness) -> None:
    client = harness.connected()
    client.send(
        "SUBSCRIBE",
        ("destination", "/queue/pf"),
        ("id", "s"),
        ("ack", "client-individual"),
        ("prefetch-count", "1"),
    )
    client.publish("/queue/pf", b"1")
    client.publish("/queue/pf", b"2")
    first = client.one("MESSAGE")
    assert queue_of(harness, "pf") == (1, 1)
    client.send("ACK", ("id", first.header("ack") or ""))
    assert client.one("MESSAGE").body == b"2"


def test_topic_client_ack_subscription_drops_past_its_capacity() -> None:
    harness = StompHarness(queue_max_unacked=2)
    client = harness.connected()
    client.subscribe("/topic/slow", "s", "client")
    for _ in range(3):
        client.publish("/topic/slow")
    assert len(client.received()) == 2
    assert harness.broker.stats.publish_dropped == 1


# --- transactions ----------------------------------------------------------------------------


def test_sends_in_a_transaction_wait_for_commit(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/topic/tx")
    client.send("BEGIN", ("transaction", "t1"))
    client.publish("/topic/tx", b"a", ("transaction", "t1"))
    client.publish("/topic/tx", b"b", ("transaction", "t1"))
    assert client.received() == []
    client.send("COMMIT", ("transaction", "t1"))
    assert [m.body for m in client.received()] == [b"a", b"b"]


def test_abort_discards_and_the_id_is_free_again(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/topic/tx")
    client.send("BEGIN", ("transaction", "t1"))
    client.publish("/topic/tx", b"a", ("transaction", "t1"))
    client.send("ABORT", ("transaction", "t1"))
    client.send("BEGIN", ("transaction", "t1"))
    client.send("COMMIT", ("transaction", "t1"))
    assert client.received() == []


def test_acks_in_a_transaction_take_effect_on_commit(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/queue/txq", "s", "client-individual")
    client.publish("/queue/txq")
    message = client.one("MESSAGE")
    client.send("BEGIN", ("transaction", "t"))
    client.send("ACK", ("id", message.header("ack") or ""), ("transaction", "t"))
    assert queue_of(harness, "txq") == (0, 1)
    client.send("COMMIT", ("transaction", "t"))
    assert queue_of(harness, "txq") == (0, 0)


def test_disconnect_discards_open_transactions(harness: StompHarness) -> None:
    listener = harness.connected()
    listener.subscribe("/topic/gone")
    client = harness.connected()
    client.send("BEGIN", ("transaction", "t"))
    client.publish("/topic/gone", b"never", ("transaction", "t"))
    client.send("DISCONNECT")
    assert listener.received() == []


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([("COMMIT", "t9")], "unknown transaction"),
        ([("ABORT", "t9")], "unknown transaction"),
        ([("BEGIN", "t"), ("BEGIN", "t")], "transaction already begun"),
    ],
)
def test_unknown_or_reused_transactions_are_errors(
    harness: StompHarness, frames: list[tuple[str, str]], message: str
) -> None:
    client = harness.connected()
    for command, transaction in frames:
        client.send(command, ("transaction", transaction))
    assert client.error().header("message") == message


def test_send_in_an_unknown_transaction_is_an_error(harness: StompHarness) -> None:
    client = harness.connected()
    client.publish("/topic/a", b"x", ("transaction", "never-begun"))
    assert client.error().header("message") == "unknown transaction"


def test_transaction_size_is_bounded() -> None:
    harness = StompHarness(stomp_max_transaction_frames=2)
    client = harness.connected()
    client.send("BEGIN", ("transaction", "t"))
    for _ in range(3):
        client.publish("/topic/a", b"x", ("transaction", "t"))
    assert client.error().header("message") == "transaction too large"


# --- receipts and errors -----------------------------------------------------------------------


def test_receipts_for_every_frame_that_asks(harness: StompHarness) -> None:
    client = harness.connected()
    client.send("SUBSCRIBE", ("destination", "/topic/r"), ("id", "s"), ("receipt", "1"))
    client.send("SEND", ("destination", "/topic/nobody"), ("receipt", "2"))
    client.send("BEGIN", ("transaction", "t"), ("receipt", "3"))
    assert [f.header("receipt-id") for f in client.received()] == ["1", "2", "3"]


def test_disconnect_receipt_comes_before_the_close(harness: StompHarness) -> None:
    client = harness.connected()
    client.send("DISCONNECT", ("receipt", "bye"))
    assert client.one("RECEIPT").header("receipt-id") == "bye"
    assert client.link.closed == (1000, "DISCONNECT")


def test_malformed_frame_gets_error_and_close(harness: StompHarness) -> None:
    client = harness.connected()
    client.send_bytes(b"SEND\nno-colon-here\n\nbody\x00")
    error = client.error()
    assert error.header("message") == "malformed frame"
    assert error.header("content-type") == "text/plain"


def test_frame_flood_gets_error() -> None:
    harness = StompHarness(stomp_max_frame_rate=10)
    client = harness.connected()
    client.send_bytes(b"SEND\ndestination:/topic/f\n\n\x00" * 10)
    assert client.error().header("message") == "frame flood"


def test_frame_rate_window_restarts_each_second() -> None:
    harness = StompHarness(stomp_max_frame_rate=10)
    client = harness.connected()
    for _ in range(3):
        client.send_bytes(b"SEND\ndestination:/topic/f\n\n\x00" * 8)
        harness.advance(1.0)
    assert client.link.closed is None


# --- heart-beats -----------------------------------------------------------------------------


def test_heart_beats_are_negotiated_with_a_floor(harness: StompHarness) -> None:
    client = harness.client()
    client.send("CONNECT", ("accept-version", "1.2"), ("host", "h"), ("heart-beat", "50,2000"))
    # We send every max(2000, floor) ms; the client must send every max(50, 100) ms.
    assert client.one("CONNECTED").header("heart-beat") == "2000,100"
    assert client.link.receive_timeout == pytest.approx(0.2)
    harness.advance(2.0)
    harness.advance(2.0)
    client.received()
    assert client.heart_beats == 2


def test_no_heart_beats_when_either_side_says_zero(harness: StompHarness) -> None:
    client = harness.client()
    client.send("CONNECT", ("accept-version", "1.2"), ("host", "h"), ("heart-beat", "0,0"))
    assert client.one("CONNECTED").header("heart-beat") == "0,0"
    assert client.link.receive_timeout is None


def test_silent_client_gets_error(harness: StompHarness) -> None:
    client = harness.connected(heart_beat="1000,0")
    client.session.on_receive_timeout()
    assert client.error().header("message") == "heart-beat timeout"


def test_invalid_heart_beat_header(harness: StompHarness) -> None:
    client = harness.client()
    client.send("CONNECT", ("accept-version", "1.2"), ("host", "h"), ("heart-beat", "soon"))
    assert client.error().header("message") == "invalid heart-beat header"


# --- across protocols ------------------------------------------------------------------------


def test_stomp_send_reaches_other_protocols_with_content_type_and_headers(
    harness: StompHarness,
) -> None:
    other = Recorder()
    harness.broker.default_realm.subscribe(Subscription(other, "sensors/#"))
    client = harness.connected()
    client.publish(
        "/topic/sensors/a", b"{}", ("content-type", "application/json"), ("x-trace", "7")
    )
    [message] = other.messages
    assert message.topic == "sensors/a"
    assert message.payload == b"{}"
    assert message.content_type == "application/json"
    assert message.user_properties == (("x-trace", "7"),)


def test_other_protocols_reach_stomp_with_content_type(harness: StompHarness) -> None:
    client = harness.connected()
    client.subscribe("/topic/sensors/#")
    harness.broker.default_realm.publish(
        Message(
            "sensors/b",
            b"22",
            content_type="text/plain; charset=utf-8",
            user_properties=(("unit", "C"), ("message-id", "spoofed")),
        )
    )
    message = client.one("MESSAGE")
    assert message.header("content-type") == "text/plain; charset=utf-8"
    assert message.header("unit") == "C"
    assert message.header("message-id") != "spoofed"


def test_retained_messages_reach_a_new_subscriber(harness: StompHarness) -> None:
    harness.broker.default_realm.publish(Message("sensors/c", b"9", retain=True))
    client = harness.connected()
    client.subscribe("/topic/sensors/+")
    assert client.one("MESSAGE").body == b"9"


def test_close_releases_everything(harness: StompHarness) -> None:
    client: StompClient = harness.connected()
    client.subscribe("/topic/a", "t")
    client.subscribe("/queue/q", "q", "client")
    client.session.on_close()
    assert harness.broker.default_realm.subscription_count == 0
    assert harness.broker.stats.clients_connected == 0
    assert harness.broker.default_realm.queues.find("q") is None


def test_frames_sent_with_the_connect_are_read_with_the_negotiated_version(
    harness: StompHarness,
) -> None:
    listener = harness.connected()
    listener.subscribe("/topic/pipelined")
    client = harness.client()
    client.send_bytes(
        b"CONNECT\naccept-version:1.0\n\n\x00"
        b"SEND\ndestination:/topic/pipelined\nnote:C:\\temp\n\nhi\x00"
    )
    assert client.one("CONNECTED").header("version") == "1.0"
    assert listener.one("MESSAGE").header("note") == "C:\\temp"
