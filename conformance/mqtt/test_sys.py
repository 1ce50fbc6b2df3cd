"""``$SYS/broker/...`` topics in Mosquitto's naming (not part of the MQTT spec; 4.7.2 reserves
``$`` topics for server use): clients connected, messages received / sent, uptime, version,
updated every ``sys_interval`` seconds (WSBROKER_SYS_INTERVAL for an external server).

Values are read from the PUBLISHes on the topic: the retained one on subscribing (Mosquitto
retains its ``$SYS`` values, some with a 60 s Message Expiry) and the updates after it.
"""

from __future__ import annotations

import re
import time

import pytest

from conformance.mqtt.codec import MQTT_3_1_1
from conformance.mqtt.conftest import RawFactory
from conformance.mqtt.support import sys_number, wait_for_sys

CONNECTED = "$SYS/broker/clients/connected"
RECEIVED = "$SYS/broker/messages/received"
SENT = "$SYS/broker/messages/sent"
UPTIME = "$SYS/broker/uptime"
VERSION = "$SYS/broker/version"


def deadline(sys_interval: int, updates: int = 1) -> float:
    return updates * sys_interval + 3


@pytest.mark.parametrize(
    ("topic", "pattern"),
    [
        (CONNECTED, rb"\d+"),
        (RECEIVED, rb"\d+"),
        (SENT, rb"\d+"),
        (UPTIME, rb"\d+ seconds"),
        (VERSION, rb".*\S.*"),
    ],
    ids=["clients/connected", "messages/received", "messages/sent", "uptime", "version"],
)
def test_sys_topic_exists_with_mosquitto_format(
    raw: RawFactory, uid: str, sys_interval: int, topic: str, pattern: bytes
) -> None:
    """The topic is published (at the latest one ``sys_interval`` after subscribing, for the
    changing ones) with Mosquitto's payload format."""
    c = raw(version=MQTT_3_1_1)
    c.connect(f"sys-{uid}")
    c.subscribe((topic, 0))
    value = wait_for_sys(c, topic, lambda _: True, deadline(sys_interval, 2))
    assert re.fullmatch(pattern, value), f"{topic}: {value!r}"


def test_sys_uptime_updates_every_sys_interval(
    raw: RawFactory, uid: str, sys_interval: int
) -> None:
    """``$SYS/broker/uptime`` is republished every ``sys_interval`` seconds with a growing value."""
    c = raw(version=MQTT_3_1_1)
    c.connect(f"up-{uid}")
    c.subscribe((UPTIME, 0))
    first = c.receive_publish(timeout=deadline(sys_interval))
    if first.retain:  # the retained value may be old; time the live updates
        first = c.receive_publish(timeout=deadline(sys_interval))
    started = time.monotonic()
    second = c.receive_publish(timeout=deadline(sys_interval))
    gap = time.monotonic() - started
    assert second.topic == UPTIME
    assert not second.retain
    assert sys_number(second.payload) > sys_number(first.payload)
    assert gap <= sys_interval + 1.5, f"{gap:.1f} s between updates, sys_interval {sys_interval}"


def test_sys_clients_connected_follows_connections(
    raw: RawFactory, uid: str, sys_interval: int
) -> None:
    """``$SYS/broker/clients/connected`` goes up when clients connect and down when they leave."""
    watcher = raw(version=MQTT_3_1_1)
    watcher.connect(f"cw-{uid}")
    watcher.subscribe((CONNECTED, 0))
    extra = [raw(version=MQTT_3_1_1) for _ in range(3)]
    for i, c in enumerate(extra):
        c.connect(f"cx{i}-{uid}")
    # At least the watcher and the three extra clients are connected now.
    peak = sys_number(
        wait_for_sys(watcher, CONNECTED, lambda v: sys_number(v) >= 4, deadline(sys_interval, 3))
    )
    for c in extra:
        c.disconnect()
    wait_for_sys(watcher, CONNECTED, lambda v: sys_number(v) <= peak - 3, deadline(sys_interval, 3))


def test_sys_messages_received_and_sent_count_traffic(
    raw: RawFactory, uid: str, sys_interval: int
) -> None:
    """``$SYS/broker/messages/received`` and ``/sent`` grow by at least the packets we exchange."""
    watcher = raw(version=MQTT_3_1_1)
    watcher.connect(f"mw-{uid}")
    watcher.subscribe((RECEIVED, 0), (SENT, 0))
    received = sys_number(
        wait_for_sys(watcher, RECEIVED, lambda _: True, deadline(sys_interval, 2))
    )
    sent = sys_number(wait_for_sys(watcher, SENT, lambda _: True, deadline(sys_interval, 2)))
    pub = raw(version=MQTT_3_1_1)
    pub.connect(f"mp-{uid}")
    pub.subscribe((f"conf/{uid}/count", 0))
    for i in range(20):
        pub.publish(f"conf/{uid}/count", b"%d" % i, qos=1)
    for _ in range(20):
        pub.receive_publish()
    wait_for_sys(
        watcher, RECEIVED, lambda v: sys_number(v) >= received + 20, deadline(sys_interval, 3)
    )
    wait_for_sys(watcher, SENT, lambda v: sys_number(v) >= sent + 20, deadline(sys_interval, 3))
