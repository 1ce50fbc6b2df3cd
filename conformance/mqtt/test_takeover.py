"""Session takeover (3.1.4): a new connection with a client id already connected closes the old
connection (5.0: DISCONNECT 0x8E Session taken over first).

Statement numbers are MQTT 5.0's unless a docstring says 3.1.1.
"""

from __future__ import annotations

import pytest

from conformance.mqtt.codec import DISCONNECT, MQTT_3_1_1, MQTT_5, P
from conformance.mqtt.conftest import PahoFactory, RawFactory

VERSIONS = pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])


def test_v311_same_client_id_closes_the_existing_connection(raw: RawFactory, uid: str) -> None:
    """3.1.1: if the ClientId is already connected, the server MUST disconnect the existing
    client [MQTT-3.1.4-2] (3.1.1); the new connection is accepted."""
    old, new = raw(version=MQTT_3_1_1), raw(version=MQTT_3_1_1)
    old.connect(f"tk-{uid}")
    assert new.connect(f"tk-{uid}").reason_code == 0
    assert old.until_closed() == [], "3.1.1 has no DISCONNECT from the server"
    new.ping()


def test_v5_takeover_sends_disconnect_0x8e_to_the_existing_connection(
    raw: RawFactory, uid: str, strict: bool
) -> None:
    """5.0: the server sends the existing client a DISCONNECT with reason 0x8E (Session taken
    over) "as described in section 4.13" (where it is a SHOULD) and MUST close its connection
    [MQTT-3.1.4-3]. wsbroker must send the DISCONNECT (the issue)."""
    old, new = raw(), raw()
    old.connect(f"tk-{uid}")
    assert new.connect(f"tk-{uid}").reason_code == 0
    final = old.expect_closed([0x8E], require_disconnect=strict)
    if final is not None:
        assert P.SESSION_EXPIRY_INTERVAL not in final.props, "[MQTT-3.14.2-2]"
    new.ping()


@VERSIONS
def test_takeover_resumes_the_session_on_the_new_connection(
    raw: RawFactory, uid: str, version: int
) -> None:
    """Takeover with Clean Start/Clean Session 0 keeps the session: Session Present 1, the
    subscriptions deliver to the new connection only [MQTT-3.1.2-5] [MQTT-3.2.2-3]
    (3.1.1: [MQTT-3.1.2-4] [MQTT-3.2.2-2])."""
    props = [(P.SESSION_EXPIRY_INTERVAL, 60)] if version == MQTT_5 else None
    old, new, pub = raw(version=version), raw(version=version), raw(version=version)
    t = f"conf/{uid}/tk"
    old.connect(f"tk-{uid}", clean=False, props=props)
    old.subscribe((t, 1))
    assert new.connect(f"tk-{uid}", clean=False, props=props).session_present
    old.until_closed()
    pub.connect(f"p-{uid}")
    pub.publish(t, b"to the new one", qos=1)
    assert new.receive_publish().payload == b"to the new one"
    new.disconnect(0, [(P.SESSION_EXPIRY_INTERVAL, 0)] if version == MQTT_5 else None)


def test_takeover_across_protocol_versions(raw: RawFactory, uid: str) -> None:
    """The client id identifies the session whatever the protocol version (3.1.3.1): a 5.0
    connection takes over a 3.1.1 one with the same id."""
    old, new = raw(version=MQTT_3_1_1), raw(version=MQTT_5)
    old.connect(f"tkv-{uid}")
    assert new.connect(f"tkv-{uid}").reason_code == 0
    assert all(p.type != DISCONNECT for p in old.until_closed()), "no DISCONNECT in 3.1.1"
    new.ping()


def test_paho_is_told_its_session_was_taken_over(paho: PahoFactory, uid: str, strict: bool) -> None:
    """paho 5.0: the displaced client is disconnected [MQTT-3.1.4-3]; its on_disconnect reports
    0x8E (Session taken over) when the server said so (required of wsbroker), else 0x80 (paho's
    code for a lost connection)."""
    first, second = paho(f"pt-{uid}"), paho(f"pt-{uid}")
    first.connect()
    second.connect()
    assert first.disconnected.wait(5), "the first connection was not closed"
    assert first.disconnect_reason in ((0x8E,) if strict else (0x8E, 0x80)), hex(
        first.disconnect_reason or 0
    )
    assert not second.disconnected.is_set()
