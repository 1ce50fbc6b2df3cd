"""Helpers shared by the MQTT test modules."""

from __future__ import annotations

import time
from collections.abc import Callable

from conformance.mqtt.codec import MQTT_5, P, Packet, Will
from conformance.mqtt.rawclient import RawMqtt

__all__ = ["let_broker_time_pass", "observer", "sys_number", "wait_for_sys"]


def observer(
    raw: Callable[..., RawMqtt], client_id: str, *filters: str, version: int = MQTT_5
) -> RawMqtt:
    """A connected client subscribed (QoS 2) to ``filters``."""
    c = raw(version=version)
    c.connect(client_id)
    c.subscribe(*((f, 2) for f in filters))
    return c


def let_broker_time_pass(raw: Callable[..., RawMqtt], uid: str, seconds: int) -> float:
    """Wait until ``seconds`` have passed on the broker, by an event the broker itself produces.

    A helper connection with a Will Delay Interval of ``seconds`` (and a longer Session Expiry)
    is dropped; its will is published ``seconds`` later (3.1.3.2.2) and an observer waits for
    it with a deadline. Returns the seconds that passed on our side, and refuses a will that
    comes early (a server that ignores Will Delay Interval would make this no timer at all).
    """
    topic = f"conf/{uid}/clock/{seconds}/{time.monotonic_ns()}"
    obs = observer(raw, f"clk-o-{uid}-{seconds}", topic)
    timer = raw()
    timer.connect(
        f"clk-t-{uid}-{seconds}",
        props=[(P.SESSION_EXPIRY_INTERVAL, seconds + 60)],
        will=Will(topic, b"tick", props=[(P.WILL_DELAY_INTERVAL, seconds)]),
    )
    started = time.monotonic()
    timer.drop()
    tick: Packet = obs.receive_publish(timeout=seconds + 5)
    elapsed = time.monotonic() - started
    assert tick.payload == b"tick"
    assert elapsed >= seconds - 0.2, f"Will Delay Interval {seconds} s, will came after {elapsed}"
    obs.disconnect()
    return elapsed


def sys_number(payload: bytes) -> float:
    """The number at the start of a ``$SYS`` payload (``b"42"``, ``b"17 seconds"``)."""
    return float(payload.split()[0])


def wait_for_sys(
    c: RawMqtt, topic: str, predicate: Callable[[bytes], bool], timeout: float
) -> bytes:
    """Read PUBLISHes on ``c`` (already subscribed to ``topic``) until one on ``topic`` satisfies
    ``predicate``; its payload. AssertionError with the last value seen if none does in time."""
    deadline = time.monotonic() + timeout
    last: bytes | None = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            pkt = c.receive_publish(timeout=max(remaining, 0.0))
        except TimeoutError:
            raise AssertionError(f"{topic}: last value {last!r} after {timeout} s") from None
        if pkt.topic == topic:
            last = pkt.payload
            if predicate(pkt.payload):
                return pkt.payload
