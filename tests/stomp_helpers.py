"""Drive StompSession adapters without sockets: a fake Link and the codec on the client side."""

from __future__ import annotations

from typing import Any

from broker.config import Settings
from broker.core.auth import Authenticator
from broker.core.broker import Broker
from broker.core.queues import WorkQueues
from broker.subprotocols.base import AdapterContext
from broker.subprotocols.stomp.codec import FrameReader, encode
from broker.subprotocols.stomp.frames import Frame, FrameError, Version
from broker.subprotocols.stomp.session import StompSession
from tests.fakes import FakeClock, FakeLink


class StompHarness:
    """One broker core and the settings STOMP sessions are made with."""

    def __init__(self, authenticator: Authenticator | None = None, **settings: Any) -> None:
        self.clock = FakeClock()
        self.settings = Settings(**settings)
        self.broker = Broker(
            realms=self.settings.realms,
            default_realm=self.settings.default_realm,
            clock=self.clock,
            authenticator=authenticator,
            queues_factory=lambda: WorkQueues(
                max_queues=self.settings.queue_max_count,
                max_backlog=self.settings.queue_max_backlog,
            ),
        )
        self.context = AdapterContext(self.broker, self.settings)

    def client(self) -> StompClient:
        return StompClient(self)

    def connected(self, version: Version = "1.2", **headers: str) -> StompClient:
        client = self.client()
        client.connect(version, **headers)
        return client

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.broker.timers.run_due(self.clock.now)


class StompClient:
    """A client's end: sends frames into a StompSession, reads the frames it answered."""

    def __init__(self, harness: StompHarness) -> None:
        self.harness = harness
        self.version: Version = "1.2"
        self.link = FakeLink()
        self.link.path, self.link.subprotocol = "/stomp", "v12.stomp"
        self.session = StompSession(self.link, harness.context)
        self.session.on_open()
        self.reader = FrameReader()
        self.heart_beats = 0

    def send(self, command: str, *headers: tuple[str, str], body: bytes = b"") -> None:
        self.send_bytes(encode(Frame(command, headers, body), self.version))

    def send_bytes(self, data: bytes, *, text: bool = True) -> None:
        self.session.on_message(data, text)

    def received(self) -> list[Frame]:
        """Every frame sent since the last call (heart-beats counted, not returned)."""
        frames: list[Frame] = []
        for data in self.link.sent:
            if data == b"\n":
                self.heart_beats += 1
                continue
            for event in self.reader.receive_data(data):
                assert isinstance(event, Frame), event
                frames.append(event)
        self.link.sent.clear()
        self.link.texts.clear()
        return frames

    def one(self, command: str) -> Frame:
        """The single frame received since the last call, which must be a `command`."""
        frames = self.received()
        assert [f.command for f in frames] == [command], frames
        return frames[0]

    def connect(self, version: Version = "1.2", **headers: str) -> Frame:
        names = {"accept_version": "accept-version", "heart_beat": "heart-beat"}
        sent = [("accept-version", version), ("host", "localhost")]
        sent = [(k, v) for k, v in sent if k.replace("-", "_") not in headers]
        sent += [(names.get(k, k), v) for k, v in headers.items()]
        self.send("CONNECT", *sent)
        connected = self.one("CONNECTED")
        self.version = self.reader.version = version
        return connected

    def subscribe(self, destination: str, sub_id: str = "s1", ack: str = "auto") -> None:
        self.send("SUBSCRIBE", ("destination", destination), ("id", sub_id), ("ack", ack))

    def publish(self, destination: str, body: bytes = b"hello", *headers: tuple[str, str]) -> None:
        self.send("SEND", ("destination", destination), *headers, body=body)

    def error(self) -> Frame:
        """The ERROR that must have come, and the close after it."""
        frames = self.received()
        assert frames, "no frame came"
        assert frames[-1].command == "ERROR", frames
        assert self.link.closed is not None
        return frames[-1]


__all__ = ["Frame", "FrameError", "StompClient", "StompHarness"]
