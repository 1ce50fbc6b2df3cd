"""One MQTT connection's protocol state machine: CONNECT, the QoS flows, subscriptions, will."""

from __future__ import annotations

import enum
import logging
import uuid

from broker.core.auth import Credentials
from broker.core.message import Delivery, Message
from broker.core.realm import SHARE_PREFIX, Realm, Subscription
from broker.core.retained import RetainedStoreFull
from broker.core.topics import InvalidTopic, validate_topic_filter, validate_topic_name
from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.mqtt.codec import PacketReader, ProtocolViolation, encode, encode_publish
from broker.subprotocols.mqtt.packets import (
    MQTT_3_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    ConnectReturnCode,
    Disconnect,
    Packet,
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
    UnsubAck,
    Unsubscribe,
    Will,
)
from broker.subprotocols.mqtt.state import Outgoing, SessionState
from broker.subprotocols.mqtt.wire import (
    PID_FORMS,
    PLAIN_FORM,
    QOS0_FORMS,
    form_key,
    message_with,
    packet_id_offset,
    publish_properties,
    to_message,
)

log = logging.getLogger(__name__)


# WebSocket close codes after an MQTT-level goodbye.
_WS_NORMAL = 1000
_WS_PROTOCOL_ERROR = 1002
_WS_UNSUPPORTED_DATA = 1003
_MAX_CLIENT_ID_3_1 = 23  # MQTT 3.1 section 3.1: 1 to 23 characters


class Phase(enum.Enum):
    AWAITING_CONNECT = enum.auto()
    CONNECTED = enum.auto()
    CLOSED = enum.auto()


class MqttSession:
    """The adapter for one MQTT-over-WebSocket connection."""

    __slots__ = (
        "_aliases_in",
        "_aliases_out",
        "_broker",
        "_clean_exit",
        "_client_alias_max",
        "_client_max_packet",
        "_connected",
        "_link",
        "_phase",
        "_pid_forms",
        "_problem_info",
        "_qos0_forms",
        "_reader",
        "_realm",
        "_settings",
        "_state",
        "_will",
        "send_quota",
        "session_id",
        "version",
    )

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self._link = link
        self._broker = context.broker
        self._settings = context.settings
        self._reader = PacketReader(server=True, max_packet_size=context.settings.mqtt_packet_limit)
        self._phase = Phase.AWAITING_CONNECT
        self._state: SessionState | None = None
        self._realm: Realm = context.broker.default_realm
        self._will: Will | None = None
        self._clean_exit = False
        self._connected = False  # a CONNACK accepted it: counted, owns its session
        self._aliases_in: dict[int, str] = {}
        self._aliases_out: dict[str, int] = {}
        self._client_alias_max = 0
        self._client_max_packet: int | None = None
        self._problem_info = True
        self._qos0_forms = QOS0_FORMS[False]
        self._pid_forms = PID_FORMS[False]
        self.send_quota = 65535  # the client's Receive Maximum
        self.session_id = link.session_id
        self.version = 0

    # Adapter

    def on_open(self) -> None:
        # The CONNECT must come within the handshake timeout, like the upgrade before it.
        self._link.set_receive_timeout(self._settings.handshake_timeout)

    def on_message(self, data: bytes, text: bool) -> None:
        if text:
            # MQTT-6.0.0-1: control packets travel in binary frames only.
            self._abort(_WS_UNSUPPORTED_DATA, "MQTT packets must be sent in binary frames")
            return
        stats = self._broker.stats
        if self._phase is Phase.CONNECTED:
            plain = self._reader.plain_publish(data)
            if plain is not None:
                stats.messages_received += 1
                self._publish_plain(plain[0], plain[1], data)
                return
        for packet in self._reader.receive_data(data):
            if self._phase is not Phase.CONNECTED:
                if self._phase is Phase.CLOSED:
                    return
            elif type(packet) is Publish:  # the hot paths: straight there
                stats.messages_received += 1
                self._publish(packet)
                continue
            elif type(packet) is PubAck:
                stats.messages_received += 1
                self._state_or_fail().acknowledged(packet.packet_id)
                continue
            if isinstance(packet, ProtocolViolation):
                self._violation(packet.reason_code, packet.message)
                return
            stats.messages_received += 1
            self._dispatch(packet)

    def on_close(self) -> None:
        self._phase = Phase.CLOSED
        if not self._connected:
            return
        self._connected = False
        self._broker.stats.clients_connected -= 1
        state = self._state
        if state is None or state.connection is not self:
            return  # taken over: the new connection owns the session now
        state.connection = None
        will, self._will = self._will, None
        if will is not None and not self._clean_exit:
            self._schedule_will(state, will)
        if state.expiry_interval == 0:
            state.end()
        else:
            state.schedule_expiry(state.end)

    def on_receive_timeout(self) -> None:
        if self._phase is Phase.CONNECTED:
            # MQTT-3.1.2-24: one and a half keep alive periods without a packet.
            self._goodbye(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep alive timeout", _WS_NORMAL)
        else:
            self._abort(_WS_PROTOCOL_ERROR, "no CONNECT in time")

    def on_shutdown(self) -> None:
        if self._phase is Phase.CONNECTED and self.version == MQTT_5:
            self._send(Disconnect(ReasonCode.SERVER_SHUTTING_DOWN))
            self._phase = Phase.CLOSED

    # sending, used by SessionState too

    def send_qos0(self, delivery: Delivery, retain: bool, ids: tuple[int, ...]) -> None:
        """A QoS 0 delivery: one encoding shared by every connection of the same wire form."""
        if self.version == MQTT_5 and (ids or self._client_alias_max):
            self._send_publish(delivery.message, 0, retain, ids, None, False)
            return
        form, build = self._qos0_forms[retain]
        limit = self._client_max_packet
        if limit is not None and len(delivery.wire(form, build)) > limit:
            return  # MQTT-3.1.2-25: too big for the client: dropped as if delivered
        self._link.send_delivery(delivery, form, build, text=False, droppable=True)
        stats = self._broker.stats  # _count_publish, inline: once per delivery
        stats.messages_sent += 1
        stats.publish_sent += 1

    def send_publish(self, outgoing: Outgoing, packet_id: int, *, dup: bool) -> None:
        """A QoS 1/2 message: the encoding is shared, only the packet identifier is ours."""
        ids = outgoing.subscription_ids
        if dup or ids or self._client_alias_max:
            self._send_publish(outgoing.message, outgoing.qos, outgoing.retain, ids, packet_id, dup)
            return
        form, build = self._pid_forms[outgoing.qos == 2][outgoing.retain]
        template = outgoing.delivery.wire(form, build)
        limit = self._client_max_packet
        if limit is not None and len(template) > limit and self._state is not None:
            self._state.acknowledged(packet_id)  # discarded as if delivered (3.1.2.11.4)
            return
        offset = packet_id_offset(template)
        self._link.send_patched(
            outgoing.delivery, form, build, offset, packet_id.to_bytes(2, "big")
        )
        self._count_publish()

    def send_pubrel(self, packet_id: int) -> None:
        self._send(PubRel(packet_id))

    # packets from the client

    def _dispatch(self, packet: Packet) -> None:
        if self._phase is Phase.AWAITING_CONNECT:
            if isinstance(packet, Connect):
                self._connect(packet)
            else:  # the codec lets only a CONNECT through first; belt and braces
                self._abort(_WS_PROTOCOL_ERROR, "first packet must be CONNECT")
            return
        if isinstance(packet, Publish):
            self._publish(packet)
        elif isinstance(packet, (PubAck, PubComp)):  # a tuple: `A | B` would build a union per call
            self._state_or_fail().acknowledged(packet.packet_id)
        elif isinstance(packet, PubRec):
            self._pubrec(packet)
        elif isinstance(packet, PubRel):
            self._pubrel(packet)
        elif isinstance(packet, Subscribe):
            self._subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            self._unsubscribe(packet)
        elif isinstance(packet, PingReq):
            self._send(PingResp())
        elif isinstance(packet, Disconnect):
            self._disconnect(packet)
        elif isinstance(packet, Auth):
            # Enhanced authentication was not started (CONNECT named no method): MQTT-4.12.0-1.
            self._violation(ReasonCode.PROTOCOL_ERROR, "AUTH without an authentication method")
        else:
            self._violation(ReasonCode.PROTOCOL_ERROR, f"unexpected {type(packet).__name__}")

    def _connect(self, connect: Connect) -> None:
        version = self.version = connect.protocol_level
        self._qos0_forms = QOS0_FORMS[version == MQTT_5]
        self._pid_forms = PID_FORMS[version == MQTT_5]
        settings = self._settings
        props = connect.properties
        client_id = connect.client_id
        assigned: str | None = None
        if not client_id:
            if version < MQTT_5 and (version == MQTT_3_1 or not connect.clean_start):
                # MQTT-3.1.3-8: an empty id needs clean session; 3.1 refuses it outright.
                self._refuse(ConnectReturnCode.IDENTIFIER_REJECTED, 0, "empty client id")
                return
            client_id = assigned = f"auto-{uuid.uuid4().hex}"
        elif version == MQTT_3_1 and len(client_id) > _MAX_CLIENT_ID_3_1:
            self._refuse(ConnectReturnCode.IDENTIFIER_REJECTED, 0, "client id over 23 characters")
            return
        if version == MQTT_5 and props.authentication_method is not None:
            self._refuse(
                0,
                ReasonCode.BAD_AUTHENTICATION_METHOD,
                f"authentication method {props.authentication_method!r} is not supported",
            )
            return
        identity = self._broker.authenticator.authenticate(
            Credentials(
                protocol="mqtt",
                peer=self._link.peer,
                username=connect.username,
                password=connect.password,
                client_id=client_id,
            )
        )
        if identity is None:
            if connect.username is not None:
                self._refuse(
                    ConnectReturnCode.BAD_USER_NAME_OR_PASSWORD,
                    ReasonCode.BAD_USER_NAME_OR_PASSWORD,
                    "bad user name or password",
                )
            else:
                self._refuse(
                    ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED, "not authorized"
                )
            return
        realm = self._broker.realm(identity.realm)
        if realm is None:
            self._refuse(
                ConnectReturnCode.SERVER_UNAVAILABLE, ReasonCode.SERVER_UNAVAILABLE, "no realm"
            )
            return
        self._realm = realm
        if connect.will is not None:
            try:
                validate_topic_name(connect.will.topic)
            except InvalidTopic as exc:
                self._refuse(
                    ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.TOPIC_NAME_INVALID, str(exc)
                )
                return
            self._will = connect.will

        keep_alive = connect.keep_alive
        server_keep_alive: int | None = None
        longest = settings.mqtt_max_keepalive
        if version == MQTT_5 and longest < 65535 and (keep_alive == 0 or keep_alive > longest):
            keep_alive = server_keep_alive = longest  # Server Keep Alive (3.2.2.3.14)
        self._link.set_receive_timeout(keep_alive * 1.5 if keep_alive else None)

        expiry_max = settings.mqtt_max_session_expiry
        self.send_quota = settings.mqtt_max_inflight
        if version == MQTT_5:
            requested = props.session_expiry_interval or 0
            expiry = min(requested, expiry_max)
            self.send_quota = min(props.receive_maximum or 65535, self.send_quota)
            self._client_max_packet = props.maximum_packet_size
            self._client_alias_max = props.topic_alias_maximum or 0
            self._problem_info = props.request_problem_information != 0
        else:
            requested = expiry = 0 if connect.clean_start else expiry_max

        state, present = self._claim_session(client_id, connect.clean_start)
        state.expiry_interval = expiry
        self._state = state
        self._phase = Phase.CONNECTED
        self._connected = True
        self._broker.stats.clients_connected += 1
        if version == MQTT_5:
            self._send(
                ConnAck(
                    present,
                    ReasonCode.SUCCESS,
                    Properties(
                        session_expiry_interval=expiry if expiry != requested else None,
                        receive_maximum=settings.mqtt_receive_maximum,
                        maximum_packet_size=settings.mqtt_packet_limit,
                        topic_alias_maximum=settings.mqtt_topic_alias_maximum,
                        assigned_client_identifier=assigned,
                        server_keep_alive=server_keep_alive,
                    ),
                )
            )
        else:
            self._send(ConnAck(present, ConnectReturnCode.ACCEPTED))
        state.connection = self
        state.resend()

    def _claim_session(self, client_id: str, clean_start: bool) -> tuple[SessionState, bool]:
        """Take over, resume or start the client's session; True when one was resumed."""
        broker = self._broker
        key = ("mqtt", self._realm.name, client_id)
        existing = broker.sessions.get(key)
        if isinstance(existing, SessionState):
            previous = existing.connection
            if previous is not None:
                previous._taken_over()  # MQTT-3.1.4-3
            existing.cancel_timers()  # a reconnect in time cancels a delayed will (3.1.3.2.2)
            if not clean_start:
                return existing, True
            existing.end()
        state = SessionState(
            broker, self._realm, client_id, max_queued=self._settings.mqtt_max_queued_messages
        )
        broker.sessions.put(key, state)
        return state, False

    def _taken_over(self) -> None:
        state = self._state
        if state is not None and state.connection is self:
            state.connection = None
        will, self._will = self._will, None
        if will is not None and not (will.properties.will_delay_interval or 0):
            self._publish_will(will)
        self._goodbye(ReasonCode.SESSION_TAKEN_OVER, "session taken over", _WS_NORMAL)

    def _publish(self, publish: Publish) -> None:
        state = self._state
        assert state is not None  # _dispatch passes nothing else before CONNECT
        self._broker.stats.publish_received += 1
        topic = publish.topic
        version = self.version
        alias = publish.properties.topic_alias if version == MQTT_5 else None
        if alias is not None:
            if alias > self._settings.mqtt_topic_alias_maximum:
                self._violation(ReasonCode.TOPIC_ALIAS_INVALID, f"topic alias {alias} out of range")
                return
            if topic:
                self._aliases_in[alias] = topic
            else:
                known = self._aliases_in.get(alias)
                if known is None:
                    self._violation(ReasonCode.PROTOCOL_ERROR, f"topic alias {alias} not set up")
                    return
                topic = known
        qos = publish.qos
        packet_id = publish.packet_id
        if qos == 2 and packet_id in state.incoming_qos2:
            self._send(PubRec(packet_id))  # a resent PUBLISH: already delivered once (4.3.3)
            return
        if qos == 2 and len(state.incoming_qos2) >= self._settings.mqtt_receive_maximum:
            self._violation(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded")
            return
        try:
            reason = self._deliver_publish(publish, topic, state)
        except InvalidTopic as exc:  # the core checks the name, once
            self._violation(ReasonCode.TOPIC_NAME_INVALID, str(exc))
            return
        if packet_id is None:
            return
        if qos == 1:
            self._send(PubAck(packet_id, reason if version == MQTT_5 else 0))
        else:
            if reason < 0x80:
                state.incoming_qos2.add(packet_id)
            self._send(PubRec(packet_id, reason if version == MQTT_5 else 0))

    def _publish_plain(self, topic: str, payload: bytes, packet: bytes) -> None:
        """A 3.1.1 QoS 0 PUBLISH as plain as they come: the packet is its own shared form."""
        state = self._state
        assert state is not None
        self._broker.stats.publish_received += 1
        if topic.startswith("$SYS"):
            return  # the broker's own topics; QoS 0 has no acknowledgement to refuse it in
        message = Message(topic, payload, origin=state.session_id)
        try:
            self._realm.publish(message, (PLAIN_FORM, packet))
        except InvalidTopic as exc:
            self._violation(ReasonCode.TOPIC_NAME_INVALID, str(exc))

    def _deliver_publish(self, publish: Publish, topic: str, state: SessionState) -> int:
        """Hand a PUBLISH to the core; the reason code its acknowledgement carries."""
        if topic.startswith("$SYS"):
            return ReasonCode.NOT_AUTHORIZED  # the broker's own topics
        if self.version == MQTT_5 and publish.properties.payload_format_indicator == 1:
            try:
                publish.payload.decode("utf-8")
            except UnicodeDecodeError:
                return ReasonCode.PAYLOAD_FORMAT_INVALID
        message = to_message(publish, topic, state.session_id, self.version)
        raw = publish.raw
        # The packet as received is the shared form for its QoS and retain flag: no re-encoding.
        five = self.version == MQTT_5
        seed = None if raw is None else (form_key(five, publish.qos, publish.retain), raw)
        try:
            delivered = self._realm.publish(message, seed)
        except RetainedStoreFull:
            return ReasonCode.QUOTA_EXCEEDED
        return ReasonCode.SUCCESS if delivered else ReasonCode.NO_MATCHING_SUBSCRIBERS

    def _pubrec(self, packet: PubRec) -> None:
        state = self._state_or_fail()
        if packet.reason_code >= 0x80:
            state.acknowledged(packet.packet_id)  # the client refused it: the flow ends here
            return
        if state.received(packet.packet_id):
            self._send(PubRel(packet.packet_id))
        elif self.version == MQTT_5:
            self._send(PubRel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
        else:
            self._send(PubRel(packet.packet_id))

    def _pubrel(self, packet: PubRel) -> None:
        state = self._state_or_fail()
        if packet.packet_id in state.incoming_qos2:
            state.incoming_qos2.discard(packet.packet_id)
            self._send(PubComp(packet.packet_id))
        elif self.version == MQTT_5:
            self._send(PubComp(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
        else:
            self._send(PubComp(packet.packet_id))

    def _subscribe(self, packet: Subscribe) -> None:
        state = self._state_or_fail()
        five = self.version == MQTT_5
        identifiers = packet.properties.subscription_identifiers
        identifier = identifiers[0] if identifiers else None
        codes: list[int] = []
        retained: list[tuple[Message, int]] = []
        for request in packet.subscriptions:
            topic_filter = request.topic_filter
            shared = topic_filter.startswith(SHARE_PREFIX)
            if shared and request.no_local:
                self._violation(ReasonCode.PROTOCOL_ERROR, "No Local on a shared subscription")
                return
            try:
                if not shared:
                    validate_topic_filter(topic_filter)
                existed = self._realm.subscription(state, topic_filter) is not None
                subscription = Subscription(
                    state,
                    topic_filter,
                    qos=request.qos,
                    no_local=request.no_local,
                    retain_as_published=request.retain_as_published,
                    identifier=identifier,
                )
                matching = self._realm.subscribe(subscription)
            except InvalidTopic:
                codes.append(ReasonCode.TOPIC_FILTER_INVALID if five else 0x80)
                continue
            state.subscriptions[topic_filter] = subscription
            codes.append(request.qos)
            handling = request.retain_handling if five else 0
            if handling == 0 or (handling == 1 and not existed):
                retained.extend((message, request.qos) for message in matching)
        self._send(SubAck(packet.packet_id, tuple(codes)))
        for message, granted in retained:
            self._send_retained(message, granted, identifier)

    def _send_retained(self, message: Message, granted: int, identifier: int | None) -> None:
        """A retained message on subscribe: always with the retain flag (MQTT-3.3.1-8)."""
        state = self._state_or_fail()
        qos = min(message.qos, granted)
        ids = () if identifier is None else (identifier,)
        if qos == 0:
            self._send_publish(message, 0, True, ids, None, False)
        else:
            state.enqueue(Outgoing(Delivery(message), qos, True, ids, self._broker.clock()))

    def _unsubscribe(self, packet: Unsubscribe) -> None:
        state = self._state_or_fail()
        codes = []
        for topic_filter in packet.topic_filters:
            if self._realm.unsubscribe(state, topic_filter):
                state.subscriptions.pop(topic_filter, None)
                codes.append(ReasonCode.SUCCESS)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        self._send(UnsubAck(packet.packet_id, tuple(codes) if self.version == MQTT_5 else ()))

    def _disconnect(self, packet: Disconnect) -> None:
        state = self._state_or_fail()
        if self.version == MQTT_5:
            expiry = packet.properties.session_expiry_interval
            if expiry is not None:
                if state.expiry_interval == 0 and expiry != 0:
                    # MQTT-3.14.2-2: a session that was to end cannot be made to last here.
                    self._violation(ReasonCode.PROTOCOL_ERROR, "session expiry was 0 at CONNECT")
                    return
                state.expiry_interval = min(expiry, self._settings.mqtt_max_session_expiry)
        # MQTT 5: reason 0x04 asks for the will; anything else (and 3.1.1) discards it.
        self._clean_exit = packet.reason_code != ReasonCode.DISCONNECT_WITH_WILL
        self._link.close(_WS_NORMAL, "DISCONNECT")

    # will

    def _schedule_will(self, state: SessionState, will: Will) -> None:
        delay = will.properties.will_delay_interval or 0
        if delay <= 0 or state.expiry_interval == 0:
            self._publish_will(will)
            return
        # Sent at the delay or when the session ends, whichever is first (3.1.3.2.2).
        when = self._broker.clock() + min(delay, state.expiry_interval)
        state.will_timer = self._broker.timers.call_at(when, lambda: self._publish_will(will))

    def _publish_will(self, will: Will) -> None:
        origin = self._state.session_id if self._state is not None else None
        message = message_with(
            will.topic, will.payload, will.properties, will.qos, will.retain, origin
        )
        try:
            self._realm.publish(message)
        except (InvalidTopic, RetainedStoreFull) as exc:
            log.info("will of %s not published: %s", self.session_id, exc)

    # internals

    def _send_publish(
        self,
        message: Message,
        qos: int,
        retain: bool,
        ids: tuple[int, ...],
        packet_id: int | None,
        dup: bool,
    ) -> None:
        version = self.version
        topic = message.topic
        properties = None
        if version == MQTT_5:
            alias = None
            if self._client_alias_max:
                alias = self._aliases_out.get(topic)
                if alias is not None:
                    topic = ""  # the client knows it by its alias now
                elif len(self._aliases_out) < self._client_alias_max:
                    alias = self._aliases_out[topic] = len(self._aliases_out) + 1
            properties = publish_properties(message, ids, alias)
        data = encode_publish(
            version, topic, message.payload, qos, retain, dup, packet_id, properties
        )
        if self._client_max_packet is not None and len(data) > self._client_max_packet:
            if packet_id is not None and self._state is not None:
                self._state.acknowledged(packet_id)  # discarded as if delivered (3.1.2.11.4)
            return
        self._link.send_message(data, text=False)
        self._count_publish()

    def _count_publish(self) -> None:
        stats = self._broker.stats
        stats.messages_sent += 1
        stats.publish_sent += 1

    def _send(self, packet: Packet) -> None:
        self._broker.stats.messages_sent += 1
        self._link.send_message(encode(packet, self.version or 4), text=False)

    def _state_or_fail(self) -> SessionState:
        state = self._state
        if state is None:
            raise RuntimeError("no session before CONNECT")  # _dispatch makes this unreachable
        return state

    def _refuse(self, code_3: int, code_5: int, reason: str) -> None:
        """CONNACK with a failure code, then close (MQTT-3.2.2-5)."""
        if self.version == MQTT_5:
            props = Properties(reason_string=reason) if self._problem_info else NO_PROPERTIES
            self._send(ConnAck(False, code_5, props))
        else:
            self._send(ConnAck(False, code_3))
        self._abort(_WS_NORMAL, reason)

    def _violation(self, reason_code: int, message: str) -> None:
        """The client broke the protocol: 5.0 gets a DISCONNECT with the reason; then close."""
        if self._phase is Phase.AWAITING_CONNECT:
            if reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
                # MQTT-3.1.2-2: CONNACK 0x01 in the 3.1.1 form, which every version can read.
                self.version = 4
                self._refuse(ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION, 0, message)
                return
            if self._reader.version == MQTT_5:
                # A broken 5.0 CONNECT: say why in a CONNACK before closing (MQTT 5 3.1.4).
                self.version = MQTT_5
                self._refuse(0, reason_code, message)
                return
            self._abort(_WS_PROTOCOL_ERROR, message)
            return
        self._goodbye(reason_code, message, _WS_PROTOCOL_ERROR)

    def _goodbye(self, reason_code: int, message: str, ws_code: int) -> None:
        if self._connected and self._phase is not Phase.CLOSED and self.version == MQTT_5:
            self._send(Disconnect(reason_code, Properties(reason_string=message)))
        self._abort(ws_code, message)

    def _abort(self, ws_code: int, reason: str) -> None:
        log.debug("closing %s: %s", self.session_id, reason)
        self._phase = Phase.CLOSED
        self._link.close(ws_code, reason[:120])
