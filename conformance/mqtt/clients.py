"""Thin wrappers around paho-mqtt clients over WebSocket, with blocking waits on their callbacks.

paho runs its network loop in a thread (``loop_start``); its callbacks set ``threading.Event``s
and fill ``queue.Queue``s, and the test thread waits on those with a timeout. Nothing sleeps or
polls. Each wrapper is a context manager and ``close()`` is idempotent, so fixtures can close
whatever a test left open.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

__all__ = [
    "TIMEOUT",
    "ConnectResult",
    "PahoClient",
    "host_port",
    "paho_prop",
    "paho_props",
]

TIMEOUT = 5.0

VERSIONS = {
    3: mqtt.MQTTv31,
    4: mqtt.MQTTv311,
    5: mqtt.MQTTv5,
}


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)


def paho_props(packet_type: int, **values: Any) -> Properties:
    """paho Properties for ``packet_type`` (PacketTypes.PUBLISH…), e.g. ContentType="text/plain"."""
    props = Properties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


def paho_prop(props: Properties | None, name: str) -> Any:
    """The property ``name`` (``"ContentType"``…) of paho Properties; AttributeError if absent."""
    assert props is not None, "the message has no properties"
    return getattr(props, name)


@dataclass
class ConnectResult:
    reason_code: int
    session_present: bool
    properties: Properties | None


class PahoClient:
    """A paho-mqtt client on ``url`` + ``path`` over WebSocket, speaking MQTT ``version``."""

    def __init__(
        self,
        url: str,
        client_id: str = "",
        *,
        version: int = 5,
        clean_session: bool | None = None,
        path: str = "/mqtt",
        subprotocol: str | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.version = version
        self.host, self.port = host_port(url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session if version != 5 else None,
            protocol=VERSIONS[version],
            transport="websockets",
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        headers = {"Sec-Websocket-Protocol": subprotocol} if subprotocol else None
        self.client.ws_set_options(path=path, headers=headers)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connect_result: ConnectResult | None = None
        self.disconnect_reason: int | None = None
        self.disconnect_properties: Properties | None = None
        self._acks: dict[int, Any] = {}
        self._acks_cond = threading.Condition()
        self._started = False
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe
        c.on_publish = self._on_publish

    # ----------------------------------------------------------------- callbacks (paho's thread)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connect_result = ConnectResult(int(rc.value), bool(flags.session_present), props)
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnect_reason = int(rc.value) if rc is not None else None
        self.disconnect_properties = props
        self.disconnected.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _ack(self, mid: int, value: Any) -> None:
        with self._acks_cond:
            self._acks[mid] = value
            self._acks_cond.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._ack(mid, ([int(rc.value) for rc in rcs], props))

    def _on_unsubscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._ack(mid, ([int(rc.value) for rc in rcs], props))

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._ack(mid, (int(rc.value), props))

    def _wait_ack(self, mid: int | None, what: str, timeout: float = TIMEOUT) -> Any:
        assert mid is not None
        with self._acks_cond:
            ok = self._acks_cond.wait_for(lambda: mid in self._acks, timeout)
            assert ok, f"no {what} within {timeout} s"
            return self._acks.pop(mid)

    # ----------------------------------------------------------------- operations

    def __enter__(self) -> PahoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def will_set(
        self,
        topic: str,
        payload: bytes = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        self.client.will_set(topic, payload, qos, retain, properties)

    def connect(
        self,
        *,
        keepalive: int = 60,
        clean_start: bool = True,
        properties: Properties | None = None,
        username: str | None = None,
        password: str | None = None,
        expect_success: bool = True,
        timeout: float = TIMEOUT,
    ) -> ConnectResult:
        if username is not None or password is not None:
            self.client.username_pw_set(username, password)
        kwargs: dict[str, Any] = {"keepalive": keepalive}
        if self.version == 5:
            kwargs["clean_start"] = clean_start
            kwargs["properties"] = properties
        self.client.connect(self.host, self.port, **kwargs)
        self.client.loop_start()
        self._started = True
        assert self.connected.wait(timeout), f"no CONNACK within {timeout} s"
        assert self.connect_result is not None
        if expect_success:
            assert self.connect_result.reason_code == 0, f"refused: {self.connect_result}"
        return self.connect_result

    def subscribe(
        self,
        topic: str | list[tuple[str, int]] | list[tuple[str, SubscribeOptions]],
        qos: int = 0,
        *,
        options: SubscribeOptions | None = None,
        properties: Properties | None = None,
    ) -> list[int]:
        """SUBSCRIBE and wait for the SUBACK; its return/reason codes."""
        if options is not None:
            rc, mid = self.client.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.client.subscribe(topic, qos, properties=properties)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        codes, _ = self._wait_ack(mid, "SUBACK")
        return list(codes)

    def unsubscribe(
        self, topic: str | list[str], properties: Properties | None = None
    ) -> list[int]:
        rc, mid = self.client.unsubscribe(topic, properties)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        codes, _ = self._wait_ack(mid, "UNSUBACK")
        return list(codes)

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int | None:
        """PUBLISH; for QoS 1/2 wait for the PUBACK/PUBCOMP and return its reason code."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        if qos == 0:
            return None
        code, _ = self._wait_ack(info.mid, "PUBACK/PUBCOMP")
        return int(code)

    def expect(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None

    def expect_nothing(self, within: float) -> None:
        """A bounded wait that must end without a message (use a barrier where one exists)."""
        try:
            msg = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {msg.topic!r}: {msg.payload[:60]!r}")

    def messages_until(self, marker_topic: str, timeout: float = TIMEOUT) -> list[mqtt.MQTTMessage]:
        """Every message before the first one on ``marker_topic`` (a barrier), which is consumed."""
        deadline = time.monotonic() + timeout
        got: list[mqtt.MQTTMessage] = []
        while True:
            msg = self.expect(max(deadline - time.monotonic(), 0.0))
            if msg.topic == marker_topic:
                return got
            got.append(msg)

    def disconnect(
        self, reasoncode: int | None = None, properties: Properties | None = None
    ) -> None:
        """A normal DISCONNECT; waits until paho has closed the connection."""
        rc_obj = None
        if reasoncode is not None:
            rc_obj = ReasonCode(PacketTypes.DISCONNECT, identifier=reasoncode)
        if not self.disconnected.is_set():
            self.client.disconnect(rc_obj, properties)
            self.disconnected.wait(TIMEOUT)
        self.close()

    def close(self) -> None:
        if self._started:
            self._started = False
            if not self.disconnected.is_set():
                with contextlib.suppress(Exception):
                    self.client.disconnect()
                self.disconnected.wait(TIMEOUT)
            self.client.loop_stop()
        # A socket that never got as far as the loop (a refused handshake) is closed here.
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.close()
