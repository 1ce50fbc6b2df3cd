from __future__ import annotations

from typing import Any

import pytest

from broker.subprotocols.registry import AdapterSpec, Registry


def factory(*_: Any) -> Any:
    raise AssertionError("not called")


MQTT = AdapterSpec("mqtt", ("mqtt", "mqttv3.1"), factory, paths=("/mqtt",))
STOMP = AdapterSpec("stomp", ("v12.stomp", "v11.stomp"), factory, paths=("/stomp",))
RAW = AdapterSpec("raw", (), factory)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register(MQTT)
    registry.register(STOMP)
    registry.register(RAW, fallback=True)
    return registry


def test_first_offered_supported_token_wins_in_client_order(registry: Registry) -> None:
    selection = registry.select(["chat", "v11.stomp", "mqtt"], "/ws")
    assert selection is not None
    assert (selection.spec, selection.token, selection.protocol) == (
        STOMP,
        "v11.stomp",
        "v11.stomp",
    )


def test_token_beats_path(registry: Registry) -> None:
    selection = registry.select(["mqtt"], "/stomp")
    assert selection is not None
    assert selection.spec is MQTT


def test_path_picks_adapter_without_header_and_echoes_nothing(registry: Registry) -> None:
    for path in ("/mqtt", "/mqtt/"):
        selection = registry.select([], path)
        assert selection is not None
        assert (selection.spec, selection.token, selection.protocol) == (MQTT, None, "mqtt")


def test_unsupported_offer_falls_back_to_raw_without_echo(registry: Registry) -> None:
    selection = registry.select(["chat", "superchat"], "/topics/x")
    assert selection is not None
    assert (selection.spec, selection.token, selection.protocol) == (RAW, None, None)


def test_route_path_overrides_default_token(registry: Registry) -> None:
    registry.route_path("/mqtt", MQTT, "mqttv3.1")
    selection = registry.select([], "/mqtt")
    assert selection is not None
    assert selection.protocol == "mqttv3.1"


def test_duplicate_token_is_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(AdapterSpec("other", ("mqtt",), factory))


def test_no_fallback_no_selection() -> None:
    registry = Registry()
    registry.register(MQTT)
    assert registry.select(["x"], "/topics/a") is None
    assert registry.tokens == ("mqtt", "mqttv3.1")
