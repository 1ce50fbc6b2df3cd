"""`$SYS/broker/...`: the broker's own counters, published retained, in Mosquitto's naming."""

from __future__ import annotations

from broker import __version__
from broker.core.broker import Broker
from broker.core.message import TEXT_PLAIN, Message


def sys_values(broker: Broker) -> dict[str, str]:
    """Topic (below `$SYS/broker/`) to value, as Mosquitto publishes them."""
    stats = broker.stats
    subscriptions = sum(realm.subscription_count for realm in broker.realms.values())
    retained = sum(realm.retained_count for realm in broker.realms.values())
    return {
        "version": f"wsbroker version {__version__}",
        "uptime": f"{int(broker.clock() - broker.started)} seconds",
        "clients/connected": str(stats.clients_connected),
        "clients/active": str(stats.clients_connected),
        "messages/received": str(stats.messages_received),
        "messages/sent": str(stats.messages_sent),
        "publish/messages/received": str(stats.publish_received),
        "publish/messages/sent": str(stats.publish_sent),
        "publish/messages/dropped": str(stats.publish_dropped),
        "subscriptions/count": str(subscriptions),
        "retained messages/count": str(retained),
    }


def publish_sys(broker: Broker) -> None:
    """Publish every `$SYS/broker/...` value, retained, in every realm."""
    values = sys_values(broker)
    for realm in broker.realms.values():
        for name, value in values.items():
            realm.publish(
                Message(
                    f"$SYS/broker/{name}",
                    value.encode(),
                    content_type=TEXT_PLAIN,
                    payload_format=1,
                    retain=True,
                )
            )
