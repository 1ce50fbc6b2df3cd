"""Between MQTT PUBLISH packets and core Messages, both ways."""

from __future__ import annotations

import math

from broker.core.message import Message
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
