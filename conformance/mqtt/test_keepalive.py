"""Keep Alive (3.1.2.10): the server closes a silent connection after 1.5 x Keep Alive; any
packet keeps it open; PINGREQ/PINGRESP (3.12, 3.13); 5.0 Server Keep Alive (3.2.2.3.14).

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import time

import pytest

from conformance.mqtt import codec
from conformance.mqtt.codec import MQTT_3_1_1, MQTT_5, PINGRESP, P, Will
from conformance.mqtt.conftest import PahoFactory, RawFactory
from conformance.mqtt.support import observer

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
# Server-side timers tick at their own pace (Mosquitto checks keep-alives about once a second).
GRACE = 1.5


@VERSIONS
def test_pingreq_gets_pingresp(raw: RawFactory, uid: str, version: int) -> None:
    """The server MUST send a PINGRESP in response to a PINGREQ [MQTT-3.12.4-1]
    (3.1.1: [MQTT-3.12.4-1])."""
    c = raw(version=version)
    c.connect(f"ping-{uid}")
    for _ in range(3):
        c.send(codec.pingreq())
        resp = c.expect(PINGRESP)
        assert resp.raw == b"\xd0\x00"


@VERSIONS
def test_silent_client_is_disconnected_after_one_and_a_half_keep_alive(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Keep Alive 1 s and silence: the server closes the connection within 1.5 s
    [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]); 5.0 may say why first: DISCONNECT 0x8D."""
    c = raw(version=version)
    c.connect(f"ka-{uid}", keepalive=1)
    started = time.monotonic()
    try:
        final = c.expect_closed([0x8D], timeout=1.5 + GRACE)
    except AssertionError:
        raise AssertionError(f"still open {1.5 + GRACE} s after CONNACK, Keep Alive 1 s") from None
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9, f"closed after {elapsed:.2f} s, before even one Keep Alive period"
    assert final is None or version == MQTT_5


def test_any_packet_within_keep_alive_keeps_the_connection(raw: RawFactory, uid: str) -> None:
    """A client that sends a packet (PINGREQ or any other) within each Keep Alive period stays
    connected (3.1.2.10): 4 x 0.7 s with Keep Alive 1 s."""
    c = raw()
    c.connect(f"alive-{uid}", keepalive=1)
    for i in range(4):
        c.stays_open(0.7)
        if i % 2:
            c.ping()
        else:
            c.publish(f"conf/{uid}/alive", b"x", qos=1)


def test_will_is_published_on_keep_alive_timeout(raw: RawFactory, uid: str) -> None:
    """A keep-alive timeout is an abnormal end: the will is published (3.1.2.5, 3.1.1 and 5.0:
    "the Server fails to communicate with the Client within the Keep Alive time"). The deadline
    is generous: the timing itself is the previous test's business."""
    t = f"conf/{uid}/will"
    obs = observer(raw, f"o-{uid}", t, version=MQTT_3_1_1)
    c = raw(version=MQTT_3_1_1)
    c.connect(f"w-{uid}", keepalive=1, will=Will(t, b"timed out"))
    assert obs.receive_publish(timeout=10).payload == b"timed out"


def test_v5_server_keep_alive_caps_a_longer_client_keep_alive(
    raw: RawFactory, uid: str, max_keepalive: int | None
) -> None:
    """A server with a keep-alive ceiling answers a longer Keep Alive with a Server Keep Alive
    the client must use instead [MQTT-3.2.2-21]; without one the server uses the client's value
    [MQTT-3.2.2-22]. Needs WSBROKER_MQTT_MAX_KEEPALIVE for an external server."""
    if max_keepalive is None:
        pytest.skip("the target's keep-alive ceiling is unknown (WSBROKER_MQTT_MAX_KEEPALIVE)")
    c = raw()
    connack = c.connect(f"ska-{uid}", keepalive=max_keepalive * 2)
    server_keep_alive = connack.props.get(P.SERVER_KEEP_ALIVE)
    assert server_keep_alive is not None, "no Server Keep Alive for a Keep Alive over the ceiling"
    assert 0 < server_keep_alive <= max_keepalive


def test_v5_keep_alive_within_the_ceiling_is_kept(
    raw: RawFactory, uid: str, max_keepalive: int | None
) -> None:
    """A Keep Alive within the server's ceiling needs no Server Keep Alive; if the server sends
    one anyway it is what the client must use [MQTT-3.2.2-21], so it must be non-zero."""
    c = raw(version=MQTT_5)
    connack = c.connect(f"ska2-{uid}", keepalive=min(30, max_keepalive or 30))
    assert connack.props.get(P.SERVER_KEEP_ALIVE, 30) > 0


def test_paho_keepalive_pings_keep_the_connection(paho: PahoFactory, uid: str) -> None:
    """paho with Keep Alive 1 s sends PINGREQs itself and stays connected past 1.5 s."""
    c = paho(f"pk-{uid}", version=4)
    c.connect(keepalive=1)
    assert not c.disconnected.wait(2.5), "a pinging client was disconnected"
    c.subscribe(f"conf/{uid}/pk", 0)
    c.publish(f"conf/{uid}/pk", b"still here")
    assert c.expect().payload == b"still here"
