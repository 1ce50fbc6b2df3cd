"""Between MQTT PUBLISH packets and core Messages, both ways, and the shared PUBLISH forms."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

from broker.core.message import Message
from broker.subprotocols.mqtt.encoder import encode_publish
from broker.subprotocols.mqtt.packets import MQTT_5, NO_PROPERTIES, Properties, Publish


def to_message(publish: Publish, topic: str, origin: str, version: int) -> Message:
    """The core Message for a client's PUBLISH (its topic alias already resolved to `topic`)."""
    if version < MQTT_5:
        return Message(
            topic, publish.payload, qos=publish.qos, retain=publish.retain, origin=origin
        )
    return message_with(
        topic, publish.payload, publish.properties, publish.qos, publish.retain, origin
    )


def message_with(
    topic: str, payload: bytes, props: Properties, qos: int, retain: bool, origin: str | None
) -> Message:
    """A core Message carrying MQTT 5 properties (of a PUBLISH, or of a will)."""
    expiry = props.message_expiry_interval
    return Message(
        topic,
        payload,
        content_type=props.content_type,
        user_properties=props.user_properties,
        response_topic=props.response_topic,
        correlation_data=props.correlation_data,
        expiry=None if expiry is None else float(expiry),
        payload_format=props.payload_format_indicator,
        qos=qos,
        retain=retain,
        origin=origin,
    )


def publish_properties(
    message: Message, subscription_ids: tuple[int, ...] = (), topic_alias: int | None = None
) -> Properties:
    """The MQTT 5 properties that carry a Message's metadata to a subscriber."""
    expiry = message.expiry
    if (
        expiry is None
        and not subscription_ids
        and topic_alias is None
        and message.content_type is None
        and message.payload_format is None
        and message.response_topic is None
        and message.correlation_data is None
        and not message.user_properties
    ):
        return NO_PROPERTIES
    return Properties(
        payload_format_indicator=message.payload_format,
        # The remaining lifetime, rounded up so a message is never cut short by rounding.
        message_expiry_interval=None if expiry is None else max(1, math.ceil(expiry)),
        content_type=message.content_type,
        response_topic=message.response_topic,
        correlation_data=message.correlation_data,
        subscription_identifiers=subscription_ids,
        topic_alias=topic_alias,
        user_properties=message.user_properties,
    )


Build = Callable[[Message], bytes]


def publish_form(five: bool, qos: int, retain: bool) -> tuple[Hashable, Build]:
    """A wire form of PUBLISH shared by every connection that speaks it, and its builder.

    QoS 1/2 forms are templates with packet identifier 1: each connection splices in its own.
    3.1 and 3.1.1 share their forms.
    """
    version = MQTT_5 if five else 4
    packet_id = 1 if qos else None
    key = form_key(five, qos, retain)

    def build(message: Message) -> bytes:
        properties = publish_properties(message) if five else None
        return encode_publish(
            version, message.topic, message.payload, qos, retain, False, packet_id, properties
        )

    return key, build


def form_key(five: bool, qos: int, retain: bool) -> Hashable:
    return ("mqtt5" if five else "mqtt3", qos, retain)


def packet_id_offset(template: bytes) -> int:
    """Where a PUBLISH template's packet identifier sits (right after the topic name)."""
    i = 1
    while template[i] & 0x80:  # the remaining length's continuation bytes
        i += 1
    return i + 3 + (template[i + 1] << 8 | template[i + 2])


def with_packet_id(template: bytes, packet_id: int) -> bytes:
    """A PUBLISH template with its packet identifier replaced."""
    at = packet_id_offset(template)
    return b"".join((template[:at], packet_id.to_bytes(2, "big"), template[at + 2 :]))


# The form a plain 3.1.1 QoS 0 PUBLISH is: what arrives is what goes out.
PLAIN_FORM = form_key(False, 0, False)
# By 5.0 or not, then by retain flag.
QOS0_FORMS = {
    five: (publish_form(five, 0, retain=False), publish_form(five, 0, retain=True))
    for five in (False, True)
}
# By 5.0 or not, then by QoS 2 or not, then by retain flag.
PID_FORMS = {
    five: tuple(
        (publish_form(five, qos, retain=False), publish_form(five, qos, retain=True))
        for qos in (1, 2)
    )
    for five in (False, True)
}
