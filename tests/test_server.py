"""The transport end to end, in this process: real sockets, real clients."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import anyio
import msgpack
import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from broker.core.message import Delivery, Message
from broker.subprotocols.base import AdapterContext, Link
from broker.subprotocols.registry import AdapterSpec, Registry
from conformance.rfc6455.rawclient import (
    PING,
    PONG,
    RawClient,
    build_request,
    http_exchange,
    upgrade_headers,
)
from tests.conftest import running_broker, url_of

pytestmark = pytest.mark.anyio
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class Shouter:
    """A test adapter: answers each message upper-cased, or `size` bytes for 'flood:size:n'."""

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self.link = link

    def on_open(self) -> None:
        self.link.send_message(f"hello {self.link.subprotocol}".encode(), text=True)

    def on_message(self, data: bytes, text: bool) -> None:
        if data.startswith(b"flood:"):
            _, size, count = data.split(b":")
            for _ in range(int(count)):
                self.link.send_message(b"x" * int(size), text=False)
            return
        self.link.send_message(data.upper(), text=text)

    def on_close(self) -> None:
        pass

    def on_receive_timeout(self) -> None:
        pass

    def on_shutdown(self) -> None:
        pass


class Patcher:
    """A test adapter: on any message, sends one shared delivery twice, patched differently."""

    def __init__(self, link: Link, context: AdapterContext) -> None:
        self.link = link

    def on_open(self) -> None:
        pass

    def on_message(self, data: bytes, text: bool) -> None:
        delivery = Delivery(Message("t", data))
        for patch in (b"AB", b"CD"):
            self.link.send_patched(delivery, "form", lambda m: m.payload, 2, patch)

    def on_close(self) -> None:
        pass

    def on_receive_timeout(self) -> None:
        pass

    def on_shutdown(self) -> None:
        pass


def shouter_registry() -> Registry:
    from broker.app import default_registry

    registry = default_registry()
    registry.register(AdapterSpec("shout", ("shout.v2", "shout.v1"), Shouter, paths=("/shout",)))
    registry.register(AdapterSpec("patch", ("patch",), Patcher))
    return registry


async def test_echo_text_and_binary() -> None:
    async with running_broker() as listener, connect(url_of(listener)) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"


async def test_raw_pubsub_with_filters_and_dollar_rule() -> None:
    async with running_broker() as listener:
        dashboard_url = url_of(listener, "/topics/dash?subscribe=sensors/%2B/temp&subscribe=%23")
        async with connect(dashboard_url) as dashboard:
            async with connect(url_of(listener, "/topics/sensors/room1/temp")) as device:
                await device.send("21.5")
                # Two matching filters: one delivery each (as MQTT brokers do).
                assert await dashboard.recv() == "21.5"
                assert await dashboard.recv() == "21.5"
                assert await device.recv() == "21.5"  # it hears its own topic
            async with connect(url_of(listener, "/topics/%24SYS/x")) as system:
                await system.send(b"hidden")
                assert await system.recv() == b"hidden"
            async with connect(url_of(listener, "/topics/other")) as other:
                await other.send("last")
                assert await dashboard.recv() == "last"  # not the $SYS message first


async def test_unsupported_offer_falls_back_to_raw_without_a_protocol_header() -> None:
    async with running_broker() as listener:
        async with await RawClient.connect(
            url_of(listener, ""), protocols="chat, superchat"
        ) as client:
            assert client.response is not None
            assert client.response.header("Sec-WebSocket-Protocol") is None


async def test_server_echoes_exactly_the_first_supported_offered_token() -> None:
    async with running_broker(shouter_registry()) as listener:
        url = url_of(listener, "/anything")
        async with connect(url, subprotocols=["chat", "shout.v1", "shout.v2"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "shout.v1"
            assert await ws.recv() == "hello shout.v1"
            await ws.send("abc")
            assert await ws.recv() == "ABC"


async def test_path_selects_adapter_when_no_header_is_sent() -> None:
    async with running_broker(shouter_registry()) as listener:
        async with await RawClient.connect(url_of(listener, ""), path="/shout") as client:
            assert client.response is not None
            assert client.response.header("Sec-WebSocket-Protocol") is None
            assert (await client.recv_message()).payload == b"hello shout.v2"


async def test_unknown_path_without_subprotocol_is_400_naming_what_to_offer() -> None:
    async with running_broker(shouter_registry()) as listener:
        host, port = listener.addresses[0]
        request = build_request("GET", "/nope", upgrade_headers(f"{host}:{port}", KEY))
        reply = await http_exchange(url_of(listener, ""), request)
        assert reply.status == 400
        assert b"/topics/<topic>" in reply.body
        assert b"shout.v2" in reply.body


async def test_invalid_topic_path_is_400() -> None:
    async with running_broker() as listener:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url_of(listener, "/topics/a/%2B")):
                pass
        assert info.value.response.status_code == 400


async def test_healthz_and_404() -> None:
    async with running_broker() as listener:
        host, port = listener.addresses[0]
        request = build_request("GET", "/healthz", [("Host", f"{host}:{port}")])
        reply = await http_exchange(url_of(listener, ""), request)
        assert reply.status == 200
        assert reply.header("Content-Type") == "application/json"
        assert json.loads(reply.body) == {"status": "ok", "version": "0.1.0", "connections": 0}
        async with connect(url_of(listener)):
            reply = await http_exchange(url_of(listener, ""), request)
            assert json.loads(reply.body)["connections"] == 1
        request = build_request("GET", "/missing", [("Host", f"{host}:{port}")])
        assert (await http_exchange(url_of(listener, ""), request)).status == 404


async def test_connections_past_the_limit_get_503() -> None:
    async with running_broker(max_connections=2) as listener:
        async with connect(url_of(listener)), connect(url_of(listener)):
            with pytest.raises(InvalidStatus) as info:
                async with connect(url_of(listener)):
                    pass
            assert info.value.response.status_code == 503
        async with connect(url_of(listener)) as ws:  # room again once they left
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    async with running_broker(tls_cert=cert_file, tls_key=key_file) as listener:
        async with connect(url_of(listener, scheme="wss"), ssl=client_tls) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"


async def test_slow_consumer_loses_qos0_messages_past_the_soft_limit() -> None:
    async with running_broker(outgoing_soft_limit=0, outgoing_hard_limit=1 << 20) as listener:
        async with await RawClient.connect(url_of(listener, ""), path="/topics/slow") as reader:
            async with connect(url_of(listener, "/topics/slow"), compression=None) as writer:
                for _ in range(50):
                    await writer.send(b"y" * 60_000)
                # The sender also subscribes to its topic: its own stream goes on; the
                # reader, who reads nothing, loses messages once the kernel buffer is full.
                with anyio.fail_after(10):
                    while listener.dropped_messages == 0:
                        await writer.recv()
            assert listener.dropped_messages > 0
            assert not reader.closed


async def test_slow_consumer_is_disconnected_past_the_hard_limit() -> None:
    registry = shouter_registry()
    async with (
        running_broker(registry, outgoing_soft_limit=1000, outgoing_hard_limit=100_000) as listener,
        await RawClient.connect(url_of(listener, ""), path="/shout") as client,
    ):
        client.send_text(b"flood:65536:200")
        await client.wait_tcp_closed(within=10)
        assert listener.slow_disconnects == 1


async def test_unanswered_ping_closes_with_1011() -> None:
    async with running_broker(ping_interval=0.3, ping_timeout=0.3, close_timeout=0.5) as listener:
        async with await RawClient.connect(url_of(listener, "")) as client:
            frame = await client.recv_frame()
            assert frame.opcode == PING
            close = await client.expect_close()
            assert close.code == 1011
            await client.wait_tcp_closed()


async def test_answered_pings_keep_the_connection() -> None:
    async with running_broker(ping_interval=0.2, ping_timeout=0.3) as listener:
        async with await RawClient.connect(url_of(listener, "")) as client:
            for _ in range(3):  # three pings, each answered: well past one ping_timeout
                frame = await client.recv_frame()
                assert frame.opcode == PING
                client.send_frame(PONG, frame.payload)
            client.send_text("still here")
            assert (await client.recv_message()).payload == b"still here"


async def test_idle_connection_is_closed() -> None:
    async with running_broker(idle_timeout=0.3, ping_interval=0) as listener:
        async with connect(url_of(listener)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                with anyio.fail_after(5):
                    await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1000
            assert info.value.rcvd.reason == "idle timeout"


async def test_shutdown_closes_clients_with_1001() -> None:
    async with running_broker() as listener:
        ws = await connect(url_of(listener))
    # Leaving running_broker shut the broker down gracefully.
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001
    assert info.value.rcvd.reason == "server shutting down"


async def test_compression_is_negotiated_unless_switched_off() -> None:
    offer = "permessage-deflate; client_max_window_bits"
    async with running_broker() as listener:
        async with await RawClient.connect(url_of(listener, ""), extensions=offer) as client:
            assert client.deflate_params is not None
    async with running_broker(compression=False) as listener:
        async with await RawClient.connect(url_of(listener, ""), extensions=offer) as client:
            assert client.response is not None
            assert client.response.header("Sec-WebSocket-Extensions") is None


@pytest.mark.parametrize("compression", [True, False])
async def test_patched_deliveries_share_the_frame_but_not_the_patch(compression: bool) -> None:
    async with running_broker(shouter_registry(), compression=compression) as listener:
        async with connect(
            url_of(listener, "/p"),
            subprotocols=["patch"],  # type: ignore[list-item]
            compression="deflate" if compression else None,
        ) as ws:
            await ws.send(b"0123456789")
            with anyio.fail_after(5):
                assert [await ws.recv(), await ws.recv()] == [b"01AB456789", b"01CD456789"]
            assert ws.response is not None
            assert (ws.response.headers.get("Sec-WebSocket-Extensions") is not None) is compression


@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
async def test_wamp_path_without_a_header_speaks_the_configured_serializer(
    subprotocol: str,
) -> None:
    hello = [1, "realm1", {"roles": {"subscriber": {}}}]
    async with running_broker(wamp_path_subprotocol=subprotocol) as listener:
        async with connect(url_of(listener, "/wamp")) as ws:
            assert ws.subprotocol is None
            if subprotocol == "wamp.2.json":
                await ws.send(json.dumps(hello))
                with anyio.fail_after(5):
                    welcome = json.loads(await ws.recv())
            else:
                await ws.send(msgpack.packb(hello))
                with anyio.fail_after(5):
                    welcome = msgpack.unpackb(await ws.recv())
            assert welcome[0] == 2
