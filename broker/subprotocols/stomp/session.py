"""One STOMP connection's state machine: CONNECT, SEND, subscriptions, acks, transactions."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from broker import __version__
from broker.core.auth import Credentials
from broker.core.message import Delivery
from broker.core.queues import QueuedMessage, QueueFull
from broker.core.realm import Realm, Subscription
from broker.core.timers import Timer
from broker.core.topics import InvalidTopic, validate_topic_filter
from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.stomp.codec import FrameReader, encode, encode_headers
from broker.subprotocols.stomp.errors import (
    WS_NORMAL,
    WS_POLICY,
    StompError,
    required,
)
from broker.subprotocols.stomp.frames import VERSIONS, Event, Frame, FrameError, Version
from broker.subprotocols.stomp.subscription import ACK_MODES, StompSubscription
from broker.subprotocols.stomp.transactions import Transactions
from broker.subprotocols.stomp.wire import (
    QUEUE_PREFIX,
    TEXT_FORM,
    TOPIC_TAIL_FORMS,
    BadDestination,
    is_utf8,
    message_from_send,
    message_tail,
    negotiate,
    parse_destination,
    parse_heart_beat,
)

log = logging.getLogger(__name__)

SERVER = f"wsbroker/{__version__}"
MAX_TRANSACTIONS = 64  # open at once, per connection


class Phase(enum.Enum):
    AWAITING_CONNECT = enum.auto()
    CONNECTED = enum.auto()
    CLOSED = enum.auto()


class StompSession:
    """The adapter for one STOMP-over-WebSocket connection."""

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self._link = link
        self._broker = context.broker
        self._settings = settings = context.settings
        self._reader = FrameReader(
            max_frame_size=settings.stomp_max_frame_size,
            max_headers=settings.stomp_max_headers,
            max_header_length=settings.stomp_max_header_length,
        )
        self._phase = Phase.AWAITING_CONNECT
        self._realm: Realm = context.broker.default_realm
        self._subscriptions: dict[str, StompSubscription] = {}
        self._acks: dict[str, StompSubscription] = {}  # ack id -> the subscription holding it
        self._transactions = Transactions(
            max_open=MAX_TRANSACTIONS, max_frames=settings.stomp_max_transaction_frames
        )
        self._next_message_id = 0
        self._heart_beat: Timer | None = None
        self._beat_seconds = 0.0
        self._window_start = 0.0
        self._window_frames = 0
        self._connected = False
        self.session_id = link.session_id
        self.version: Version = "1.2"

    # Adapter

    def on_open(self) -> None:
        # The CONNECT must come within the handshake timeout, like the upgrade before it.
        self._link.set_receive_timeout(self._settings.handshake_timeout)

    def on_message(self, data: bytes, text: bool) -> None:
        if self._phase is Phase.CLOSED:
            return
        connecting = self._phase is Phase.AWAITING_CONNECT
        self._on_events(self._reader.receive_data(data))
        if connecting and self._phase is Phase.CONNECTED:
            # The reader stopped after the CONNECT: the rest is read with the version it chose.
            self._on_events(self._reader.receive_data(b""))

    def _on_events(self, events: list[Event]) -> None:
        if not events:
            return
        stats = self._broker.stats
        rate = self._settings.stomp_max_frame_rate
        if rate:
            now = self._broker.clock()
            if now - self._window_start >= 1.0:
                self._window_start, self._window_frames = now, 0
            self._window_frames += len(events)
            if self._window_frames > rate:
                self._fail(
                    StompError(
                        "frame flood",
                        f"more than {rate} frames in one second",
                        code=WS_POLICY,
                    )
                )
                return
        for event in events:
            if type(event) is FrameError:
                self._fail(StompError("malformed frame", event.message))
                return
            frame: Frame = event  # type: ignore[assignment]
            stats.messages_received += 1
            try:
                self._handle(frame)
            except StompError as exc:
                self._fail(exc, frame.header("receipt"))
                return
            if self.closed:
                return

    @property
    def closed(self) -> bool:
        """The session ended (an ERROR, a DISCONNECT or the connection's end)."""
        return self._phase is Phase.CLOSED

    def on_close(self) -> None:
        self._phase = Phase.CLOSED
        self._release()
        if self._connected:
            self._connected = False
            self._broker.stats.clients_connected -= 1

    def on_receive_timeout(self) -> None:
        if self._phase is Phase.CONNECTED:
            self._fail(
                StompError(
                    "heart-beat timeout",
                    f"nothing received for {2 * self._beat_seconds:g} s",
                    code=WS_NORMAL,
                )
            )
        elif self._phase is Phase.AWAITING_CONNECT:
            self._fail(StompError("no CONNECT in time"))

    def on_shutdown(self) -> None:
        if self._phase is Phase.CONNECTED:
            self._send(Frame("ERROR", (("message", "server shutting down"),)))
            self._phase = Phase.CLOSED

    # frames from the client

    def _handle(self, frame: Frame) -> None:
        command = frame.command
        if self._phase is Phase.AWAITING_CONNECT:
            if command not in ("CONNECT", "STOMP"):
                raise StompError("not connected", f"the first frame must be CONNECT, not {command}")
            self._connect(frame)
            return
        handler = _HANDLERS.get(command)
        if handler is None or (command == "NACK" and self.version == "1.0"):
            if command in ("CONNECT", "STOMP"):
                raise StompError("already connected", f"a second {command} frame")
            raise StompError("unknown command", f"{command} is not a STOMP {self.version} command")
        handler(self, frame)
        receipt = frame.header("receipt")
        if receipt is not None and self._phase is Phase.CONNECTED:
            self._send(Frame("RECEIPT", (("receipt-id", receipt),)))

    def _connect(self, frame: Frame) -> None:
        version = negotiate(frame.header("accept-version"))
        if version is None:
            supported = ",".join(VERSIONS)
            raise StompError(
                "unsupported version",
                f"supported protocol versions are {' '.join(VERSIONS)}",
                headers=(("version", supported),),
            )
        self.version = self._reader.version = version
        try:
            cx, cy = parse_heart_beat(frame.header("heart-beat"))
        except ValueError as exc:
            raise StompError("invalid heart-beat header", str(exc)) from None
        passcode = frame.header("passcode")
        identity = self._broker.authenticator.authenticate(
            Credentials(
                protocol="stomp",
                peer=self._link.peer,
                username=frame.header("login"),
                password=None if passcode is None else passcode.encode(),
            )
        )
        if identity is None:
            raise StompError("access refused", "login or passcode not accepted", code=WS_POLICY)
        realm = self._broker.realm(identity.realm)
        host = frame.header("host")
        if identity.realm is None and host is not None and host in self._broker.realms:
            realm = self._broker.realm(host)
        if realm is None:
            raise StompError("no such realm", f"realm {identity.realm!r} is not configured")
        self._realm = realm
        floor = self._settings.stomp_heartbeat_min
        send_every = max(cy, floor) if cy else 0  # what we promise to send
        expect_every = max(cx, floor) if cx else 0  # what the client must send
        self._phase = Phase.CONNECTED
        self._connected = True
        self._broker.stats.clients_connected += 1
        self._send(
            Frame(
                "CONNECTED",
                (
                    ("version", version),
                    ("server", SERVER),
                    ("session", self.session_id),
                    ("heart-beat", f"{send_every},{expect_every}"),
                ),
            )
        )
        self._beat_seconds = expect_every / 1000
        # A silent client is given twice the agreed interval (network and timer slack).
        self._link.set_receive_timeout(2 * self._beat_seconds if expect_every else None)
        if send_every:
            self._schedule_beat(send_every / 1000)

    def _schedule_beat(self, every: float) -> None:
        def beat() -> None:
            if self._phase is Phase.CONNECTED:
                self._link.send_message(b"\n", text=True)
                self._schedule_beat(every)

        self._heart_beat = self._broker.timers.call_at(self._broker.clock() + every, beat)

    def _on_send(self, frame: Frame) -> None:
        destination = required(frame, "destination")
        transaction = frame.header("transaction")
        if transaction is not None:
            self._transactions.hold(transaction, frame)
            return
        self._publish(frame, destination)

    def _publish(self, frame: Frame, destination: str) -> None:
        try:
            is_queue, name = parse_destination(destination)
        except BadDestination as exc:
            raise StompError("invalid destination", str(exc)) from None
        stats = self._broker.stats
        stats.publish_received += 1
        message = message_from_send(frame, name, self.session_id)
        if is_queue:
            try:
                self._realm.queues.get(name).put(message)
            except QueueFull as exc:
                raise StompError("queue full", str(exc), code=WS_POLICY) from None
            return
        if name.startswith("$SYS"):
            raise StompError("not authorized", "the $SYS topics are the broker's own")
        try:
            self._realm.publish(message)
        except InvalidTopic as exc:
            raise StompError("invalid destination", str(exc)) from None

    def _on_subscribe(self, frame: Frame) -> None:
        destination = required(frame, "destination")
        subscription_id = frame.header("id")
        if subscription_id is None:
            if self.version != "1.0":
                required(frame, "id")
            subscription_id = destination  # 1.0: the destination names the subscription
        if subscription_id in self._subscriptions:
            raise StompError("duplicate subscription", f"id {subscription_id!r} is in use")
        if len(self._subscriptions) >= self._settings.stomp_max_subscriptions:
            raise StompError(
                "too many subscriptions",
                f"at most {self._settings.stomp_max_subscriptions} per connection",
                code=WS_POLICY,
            )
        ack = frame.header("ack") or "auto"
        ack_mode = ACK_MODES.get(ack)
        if ack_mode is None or (self.version == "1.0" and ack_mode == "client-individual"):
            raise StompError(
                "invalid ack header", f"ack:{ack[:40]} is not a STOMP {self.version} mode"
            )
        try:
            is_queue, name = parse_destination(destination)
            if not is_queue:
                validate_topic_filter(name)
        except (BadDestination, InvalidTopic) as exc:
            raise StompError("invalid destination", str(exc)) from None
        capacity = self._capacity(frame.header("prefetch-count"))
        prefix = b"MESSAGE\n" + encode_headers((("subscription", subscription_id),), self.version)
        subscription = StompSubscription(
            self, subscription_id, destination, name, ack_mode, capacity, prefix + b"message-id:"
        )
        self._subscriptions[subscription_id] = subscription
        if not is_queue:
            for retained in self._realm.subscribe(Subscription(subscription, name)):
                self.send_delivery(subscription, Delivery(retained))
            return
        try:
            queue = self._realm.queues.get(name)
        except QueueFull as exc:
            del self._subscriptions[subscription_id]
            raise StompError("too many queues", str(exc), code=WS_POLICY) from None
        subscription.queue = queue
        queue.attach(subscription, capacity=capacity, auto_ack=ack_mode == "auto")

    def _capacity(self, prefetch: str | None) -> int:
        cap = self._settings.queue_max_unacked
        if prefetch is None:
            return cap
        if not prefetch.isdigit():
            raise StompError("invalid prefetch-count header", "it must be a whole number")
        count = int(prefetch)
        return cap if count == 0 else min(count, cap)  # 0: "unlimited", as RabbitMQ has it

    def _on_unsubscribe(self, frame: Frame) -> None:
        subscription_id = frame.header("id")
        if subscription_id is None:
            subscription_id = frame.header("destination") if self.version == "1.0" else None
            if subscription_id is None:
                required(frame, "id")
        subscription = self._subscriptions.pop(subscription_id or "", None)
        if subscription is None:
            raise StompError("unknown subscription", f"no subscription with id {subscription_id!r}")
        self._drop_subscription(subscription)

    def _release(self) -> None:
        """Leave every subscription (queues get back what was unacked), drop transactions."""
        if self._heart_beat is not None:
            self._heart_beat.cancel()
            self._heart_beat = None
        self._transactions.clear()  # discarded with the connection
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        for subscription in subscriptions:
            self._drop_subscription(subscription)
        self._acks.clear()

    def _drop_subscription(self, subscription: StompSubscription) -> None:
        for ack_id in subscription.pending:
            self._acks.pop(ack_id, None)
        subscription.pending.clear()
        queue = subscription.queue
        if queue is None:
            self._realm.unsubscribe_all(subscription)
            return
        queue.detach(subscription)  # what it held goes back, marked redelivered
        self._realm.queues.forget_if_idle(queue.name)

    def _on_ack(self, frame: Frame) -> None:
        found = self._holder(frame)
        if found is None:
            header = "id" if self.version == "1.2" else "message-id"
            raise StompError(
                "unknown ack id",
                f"no unacknowledged message with {header} {self._ack_id(frame)!r} "
                "on this connection",
            )
        transaction = frame.header("transaction")
        if transaction is not None:
            self._transactions.hold(transaction, frame)
            return
        self._settle(*found, positive=frame.command == "ACK")

    def _ack_id(self, frame: Frame) -> str:
        return required(frame, "id") if self.version == "1.2" else required(frame, "message-id")

    def _holder(self, frame: Frame) -> tuple[StompSubscription, str] | None:
        """The subscription holding the message an ACK or NACK names, and its ack id."""
        ack_id = self._ack_id(frame)
        subscription = self._acks.get(ack_id)
        if self.version == "1.1":
            named = required(frame, "subscription")
            if subscription is not None and subscription.id != named:
                return None
        return None if subscription is None else (subscription, ack_id)

    def _settle(self, subscription: StompSubscription, ack_id: str, *, positive: bool) -> None:
        """Take what the ACK or NACK of `ack_id` covers off the subscription and its queue."""
        cumulative = subscription.ack_mode == "client"
        taken = subscription.take(ack_id, cumulative=cumulative)
        for held, _ in taken:
            del self._acks[held]
        queue = subscription.queue
        if queue is None:
            return  # a topic message: nothing to give back
        tag = taken[-1][1]
        # The queue's order of what this consumer holds is ours, so one call covers them all.
        if cumulative:
            (queue.ack_through if positive else queue.nack_through)(subscription, tag)
        else:
            (queue.ack if positive else queue.nack)(subscription, tag)
        self._realm.queues.forget_if_idle(queue.name)

    def _on_begin(self, frame: Frame) -> None:
        self._transactions.begin(required(frame, "transaction"))

    def _on_commit(self, frame: Frame) -> None:
        for held in self._transactions.end(required(frame, "transaction")):
            if held.command == "SEND":
                self._publish(held, required(held, "destination"))
            else:
                found = self._holder(held)
                if found is not None:  # else a cumulative ack in this transaction took it
                    self._settle(*found, positive=held.command == "ACK")

    def _on_abort(self, frame: Frame) -> None:
        self._transactions.end(required(frame, "transaction"))

    def _on_disconnect(self, frame: Frame) -> None:
        receipt = frame.header("receipt")
        if receipt is not None:
            self._send(Frame("RECEIPT", (("receipt-id", receipt),)))
        self._phase = Phase.CLOSED
        self._release()
        self._link.close(WS_NORMAL, "DISCONNECT")

    # to the client

    def send_delivery(self, subscription: StompSubscription, delivery: Delivery) -> None:
        """A topic message to one subscription: the frame's tail is shared with the others."""
        if self._phase is not Phase.CONNECTED:
            return
        if subscription.ack_mode != "auto" and len(subscription.pending) >= subscription.capacity:
            # Nothing can wait on a topic: dropped and counted, as QoS 0 past a full buffer.
            self._broker.stats.publish_dropped += 1
            return
        form, build = TOPIC_TAIL_FORMS[self.version]
        tail = delivery.wire(form, build)
        text = delivery.wire(TEXT_FORM, is_utf8) == b"t"
        self._send_message(subscription, tail, text, redelivered=False, tag=0)

    def send_queued(self, subscription: StompSubscription, item: QueuedMessage) -> None:
        """A work-queue message, to this subscription alone."""
        if self._phase is not Phase.CONNECTED:
            raise RuntimeError("consumer gone")  # the queue takes it back for the others
        message = item.message
        tail = message_tail(message, QUEUE_PREFIX + message.topic, self.version)
        text = is_utf8(message) == b"t"
        self._send_message(subscription, tail, text, redelivered=item.redelivered, tag=item.tag)

    def _send_message(
        self,
        subscription: StompSubscription,
        tail: bytes,
        text: bool,
        *,
        redelivered: bool,
        tag: int,
    ) -> None:
        self._next_message_id += 1
        message_id = str(self._next_message_id)
        parts = [subscription.prefix, message_id.encode(), b"\n"]
        if subscription.ack_mode != "auto":
            if self.version == "1.2":
                parts.append(b"ack:" + parts[1] + b"\n")
            subscription.pending[message_id] = tag
            self._acks[message_id] = subscription
        if redelivered:
            parts.append(b"redelivered:true\n")
        parts.append(tail)
        self._link.send_message(b"".join(parts), text=text)
        stats = self._broker.stats
        stats.messages_sent += 1
        stats.publish_sent += 1

    def _send(self, frame: Frame) -> None:
        self._broker.stats.messages_sent += 1
        self._link.send_message(encode(frame, self.version), text=True)

    def _fail(self, error: StompError, receipt: str | None = None) -> None:
        """ERROR (with the receipt id the failing frame asked for), then close."""
        if self._phase is Phase.CLOSED:
            return
        headers = [("message", error.message)]
        if receipt is not None:
            headers.append(("receipt-id", receipt))
        headers.extend(error.headers)
        body = error.detail.encode()
        headers += [("content-type", "text/plain"), ("content-length", str(len(body)))]
        log.info("STOMP session %s: %s: %s", self.session_id, error.message, error.detail)
        self._send(Frame("ERROR", headers, body))
        self._phase = Phase.CLOSED
        self._release()
        self._link.close(error.code, error.message[:100])


_HANDLERS: dict[str, Callable[[StompSession, Frame], None]] = {
    "SEND": StompSession._on_send,
    "SUBSCRIBE": StompSession._on_subscribe,
    "UNSUBSCRIBE": StompSession._on_unsubscribe,
    "ACK": StompSession._on_ack,
    "NACK": StompSession._on_ack,
    "BEGIN": StompSession._on_begin,
    "COMMIT": StompSession._on_commit,
    "ABORT": StompSession._on_abort,
    "DISCONNECT": StompSession._on_disconnect,
}
