"""Work queues: round robin, capacity, acks, requeue to the front, re-entrancy, bounds."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from broker.core.message import Message
from broker.core.queues import QueuedMessage, QueueFull, WorkQueue, WorkQueues

OfferHook = Callable[["Recorder", QueuedMessage, WorkQueue], None]


class Recorder:
    """Records what it is offered; `hook` runs inside the offer (to call back into the queue)."""

    def __init__(self, name: str, hook: OfferHook | None = None) -> None:
        self.name = name
        self.received: list[QueuedMessage] = []
        self.hook = hook

    def __repr__(self) -> str:
        return f"<Recorder {self.name}>"

    def offer(self, item: QueuedMessage, queue: WorkQueue) -> None:
        self.received.append(item)
        if self.hook is not None:
            self.hook(self, item, queue)

    def payloads(self) -> list[bytes]:
        return [item.message.payload for item in self.received]

    def tags(self) -> list[int]:
        return [item.tag for item in self.received]


class Broken(Recorder):
    def offer(self, item: QueuedMessage, queue: WorkQueue) -> None:
        raise RuntimeError("connection lost")


def message(payload: str) -> Message:
    return Message("jobs", payload.encode())


def put_all(queue: WorkQueue, *payloads: str) -> list[QueuedMessage]:
    return [queue.put(message(payload)) for payload in payloads]


def test_round_robin_in_put_order() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, b, c = Recorder("a"), Recorder("b"), Recorder("c")
    for consumer in (a, b, c):
        queue.attach(consumer, capacity=10)
    items = put_all(queue, "1", "2", "3", "4", "5", "6")
    assert [item.tag for item in items] == sorted({item.tag for item in items})
    assert a.payloads() == [b"1", b"4"]
    assert b.payloads() == [b"2", b"5"]
    assert c.payloads() == [b"3", b"6"]
    assert not any(item.redelivered for item in items)
    assert (queue.backlog, queue.unacked, queue.consumer_count) == (0, 6, 3)


def test_full_consumer_is_skipped_and_rejoins_the_rotation() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, b, c = Recorder("a"), Recorder("b"), Recorder("c")
    queue.attach(a, capacity=1)
    queue.attach(b, capacity=10)
    queue.attach(c, capacity=10)
    put_all(queue, "1", "2", "3", "4", "5")
    assert a.payloads() == [b"1"]
    assert b.payloads() == [b"2", b"4"]
    assert c.payloads() == [b"3", b"5"]
    # Room again: `a` rejoins the rotation behind those that kept their turn.
    assert queue.ack(a, a.received[0].tag)
    put_all(queue, "6", "7", "8")
    assert a.payloads() == [b"1", b"8"]
    assert b.payloads() == [b"2", b"4", b"6"]
    assert c.payloads() == [b"3", b"5", b"7"]


def test_backlog_waits_for_a_consumer_and_leaves_in_order() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    put_all(queue, "1", "2", "3")
    assert (queue.backlog, queue.unacked) == (3, 0)
    a = Recorder("a")
    queue.attach(a, capacity=2)
    assert a.payloads() == [b"1", b"2"]
    assert (queue.backlog, queue.unacked) == (1, 2)
    put_all(queue, "4")  # behind the one already waiting
    assert queue.ack(a, a.received[0].tag)
    assert a.payloads() == [b"1", b"2", b"3"]
    assert queue.backlog == 1


def test_ack_frees_room_and_dispatches_the_backlog() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, b = Recorder("a"), Recorder("b")
    queue.attach(a, capacity=1)
    queue.attach(b, capacity=1)
    first, second, _, _ = put_all(queue, "1", "2", "3", "4")
    assert queue.backlog == 2
    assert not queue.ack(a, second.tag)  # held by b, not a
    assert not queue.ack(a, 999)
    assert queue.ack(b, second.tag)
    assert b.payloads() == [b"2", b"3"]
    assert queue.ack(a, first.tag)
    assert not queue.ack(a, first.tag)  # once only
    assert a.payloads() == [b"1", b"4"]
    assert (queue.backlog, queue.unacked) == (0, 2)


def test_auto_ack_consumers_never_fill_but_keep_their_turn() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    auto, manual = Recorder("auto"), Recorder("manual")
    queue.attach(auto, capacity=1, auto_ack=True)
    queue.attach(manual, capacity=1)
    put_all(queue, "1", "2", "3", "4", "5")
    assert auto.payloads() == [b"1", b"3", b"4", b"5"]
    assert manual.payloads() == [b"2"]
    assert (queue.backlog, queue.unacked) == (0, 1)
    assert not queue.ack(auto, auto.received[0].tag)  # acked on hand-over already
    assert queue.detach(auto) == 0


def test_nack_goes_to_the_front_redelivered_with_its_tag() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, b = Recorder("a"), Recorder("b")
    queue.attach(a, capacity=1)
    queue.attach(b, capacity=1)
    one, two, _, _ = put_all(queue, "1", "2", "3", "4")
    assert queue.nack(a, one.tag)
    # Ahead of 3 and 4, and back to `a`, the only one with room (RabbitMQ does the same).
    again = a.received[-1]
    assert (again.tag, again.message, again.redelivered) == (one.tag, one.message, True)
    assert not one.redelivered  # what the consumer was first given does not change
    assert queue.backlog == 2
    assert not queue.nack(a, one.tag + 100)
    assert not queue.nack(b, one.tag)
    assert queue.nack(b, two.tag)
    assert b.received[-1].tag == two.tag
    assert b.received[-1].redelivered
    assert queue.unacked == 2


def test_detach_returns_held_messages_to_the_others_in_order() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, b = Recorder("a"), Recorder("b")
    queue.attach(a, capacity=3)
    put_all(queue, "1", "2", "3", "4", "5")
    queue.attach(b, capacity=1)
    assert b.payloads() == [b"4"]
    # `a` received 2 again after a nack: it goes back in tag order all the same.
    assert queue.nack(a, a.received[1].tag)
    assert a.payloads() == [b"1", b"2", b"3", b"2"]
    assert queue.detach(a) == 3
    assert queue.detach(a) == 0
    assert queue.backlog == 4  # 1, 2, 3 (redelivered) in front of 5
    assert queue.ack(b, b.received[0].tag)
    queue.set_capacity(b, 10)
    got = b.received[1:]
    assert [(item.message.payload, item.redelivered) for item in got] == [
        (b"1", True),
        (b"2", True),
        (b"3", True),
        (b"5", False),
    ]
    assert [item.tag for item in got] == [item.tag for item in a.received[:3]] + [5]
    assert (queue.backlog, queue.unacked, queue.consumer_count) == (0, 4, 1)


def test_detach_of_unknown_consumer() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    assert queue.detach(Recorder("nobody")) == 0
    assert not queue.ack(Recorder("nobody"), 1)
    assert queue.ack_through(Recorder("nobody"), 1) == 0
    assert queue.nack_through(Recorder("nobody"), 1) == 0


def test_ack_through_follows_receive_order() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a = Recorder("a")
    queue.attach(a, capacity=10)
    one, two, three = put_all(queue, "1", "2", "3")
    assert queue.nack(a, one.tag)  # received again, after 3
    assert a.tags() == [one.tag, two.tag, three.tag, one.tag]
    assert queue.ack_through(a, 999) == 0
    assert queue.ack_through(a, three.tag) == 2  # 2 and 3, not the later copy of 1
    assert queue.unacked == 1
    assert not queue.ack(a, two.tag)
    assert queue.ack_through(a, one.tag) == 1
    assert queue.unacked == 0


def test_ack_through_frees_room() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a = Recorder("a")
    queue.attach(a, capacity=2)
    put_all(queue, "1", "2", "3", "4", "5")
    assert queue.ack_through(a, a.received[1].tag) == 2
    assert a.payloads() == [b"1", b"2", b"3", b"4"]
    assert queue.backlog == 1


def test_nack_through_requeues_in_tag_order() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a = Recorder("a")
    queue.attach(a, capacity=10)
    one, two, three, four = put_all(queue, "1", "2", "3", "4")
    assert queue.nack(a, one.tag)
    assert a.tags() == [1, 2, 3, 4, 1]
    assert queue.nack_through(a, 999) == 0
    assert a.tags() == [1, 2, 3, 4, 1]
    assert queue.nack_through(a, three.tag) == 2
    assert a.tags()[5:] == [two.tag, three.tag]
    assert all(item.redelivered for item in a.received[4:])
    # Now received in the order 4, 1, 2, 3: nacking through 2 returns 4, 1, 2 in tag order.
    assert queue.nack_through(a, two.tag) == 3
    assert a.tags()[7:] == [one.tag, two.tag, four.tag]
    assert (queue.backlog, queue.unacked) == (0, 4)


def test_queue_full_keeps_nothing() -> None:
    queue = WorkQueue("jobs", max_backlog=2)
    a = Recorder("a")
    queue.attach(a, capacity=1)
    put_all(queue, "1", "2", "3")
    assert (queue.backlog, queue.unacked) == (2, 1)
    with pytest.raises(QueueFull):
        queue.put(message("4"))
    assert (queue.backlog, queue.unacked) == (2, 1)
    assert queue.ack(a, a.received[0].tag)
    assert queue.put(message("5")).tag == 4  # the refused one used no tag
    queue.set_capacity(a, 10)
    assert a.payloads() == [b"1", b"2", b"3", b"5"]


def test_max_backlog_zero_only_hands_over() -> None:
    queue = WorkQueue("jobs", max_backlog=0)
    with pytest.raises(QueueFull):
        queue.put(message("nobody"))
    a = Recorder("a")
    queue.attach(a, capacity=1)
    queue.put(message("1"))
    with pytest.raises(QueueFull):
        queue.put(message("2"))
    assert queue.ack(a, a.received[0].tag)
    queue.put(message("3"))
    assert a.payloads() == [b"1", b"3"]
    # Already accepted: a requeue may pass the bound, and is kept.
    assert queue.detach(a) == 1
    assert queue.backlog == 1
    with pytest.raises(QueueFull):
        queue.put(message("4"))


def test_capacity_validation_and_double_attach() -> None:
    queue = WorkQueue("jobs", max_backlog=1)
    a = Recorder("a")
    with pytest.raises(ValueError, match="capacity"):
        queue.attach(a, capacity=0)
    queue.attach(a, capacity=1)
    with pytest.raises(ValueError, match="already attached"):
        queue.attach(a, capacity=1)
    with pytest.raises(ValueError, match="capacity"):
        queue.set_capacity(a, 0)
    with pytest.raises(KeyError):
        queue.set_capacity(Recorder("b"), 1)
    with pytest.raises(ValueError, match="negative"):
        WorkQueue("jobs", max_backlog=-1)


def test_lowering_capacity_takes_nothing_back() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a = Recorder("a")
    queue.attach(a, capacity=3)
    put_all(queue, "1", "2", "3", "4")
    queue.set_capacity(a, 1)
    assert queue.ack(a, a.received[0].tag)
    assert a.payloads() == [b"1", b"2", b"3"]  # still holds 2: no room at capacity 1
    assert queue.ack(a, a.received[1].tag)
    assert queue.ack(a, a.received[2].tag)
    assert a.payloads() == [b"1", b"2", b"3", b"4"]


def test_is_idle() -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    assert queue.is_idle()
    queue.put(message("1"))
    assert not queue.is_idle()
    a = Recorder("a")
    queue.attach(a, capacity=1)
    assert not queue.is_idle()
    assert queue.ack(a, a.received[0].tag)
    assert not queue.is_idle()  # still attached
    queue.detach(a)
    assert queue.is_idle()


def test_work_queues_bound_and_forget_if_idle() -> None:
    queues = WorkQueues(max_queues=2, max_backlog=5)
    jobs = queues.get("jobs")
    assert queues.get("jobs") is jobs
    mail = queues.get("mail")
    assert len(queues) == 2
    with pytest.raises(QueueFull):
        queues.get("other")
    assert queues.find("other") is None
    assert queues.find("mail") is mail
    a = Recorder("a")
    jobs.attach(a, capacity=1)
    mail.put(message("1"))
    queues.forget_if_idle("jobs")  # a consumer is attached
    queues.forget_if_idle("mail")  # a message waits
    queues.forget_if_idle("unknown")
    assert len(queues) == 2
    jobs.detach(a)
    queues.forget_if_idle("jobs")
    assert queues.find("jobs") is None
    assert queues.get("other").name == "other"
    assert len(queues) == 2
    with pytest.raises(QueueFull):
        queues.get("jobs")
    for _ in range(5):
        queues.get("other").put(message("x"))
    with pytest.raises(QueueFull):  # the bound on each queue comes from WorkQueues
        queues.get("other").put(message("x"))


def test_ack_inside_offer_drains_a_long_backlog_without_recursion() -> None:
    queue = WorkQueue("jobs", max_backlog=5000)
    for n in range(5000):
        queue.put(message(str(n)))

    def ack_at_once(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        assert queue.ack(consumer, item.tag)

    a = Recorder("a", ack_at_once)
    queue.attach(a, capacity=1)
    assert a.tags() == list(range(1, 5001))
    assert (queue.backlog, queue.unacked) == (0, 0)


def test_ack_inside_offer_keeps_the_rotation() -> None:
    queue = WorkQueue("jobs", max_backlog=10)

    def ack_at_once(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        assert queue.ack(consumer, item.tag)

    a, b = Recorder("a", ack_at_once), Recorder("b")
    queue.attach(a, capacity=1)
    queue.attach(b, capacity=1)
    put_all(queue, "1", "2", "3", "4")
    assert a.payloads() == [b"1", b"3", b"4"]
    assert b.payloads() == [b"2"]
    assert queue.unacked == 1


def test_nack_inside_offer_goes_to_the_next_consumer() -> None:
    queue = WorkQueue("jobs", max_backlog=10)

    def refuse_first(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        if len(consumer.received) == 1:
            assert queue.nack(consumer, item.tag)

    a, b = Recorder("a", refuse_first), Recorder("b")
    queue.attach(a, capacity=5)
    queue.attach(b, capacity=5)
    queue.put(message("1"))
    assert a.payloads() == [b"1"]
    assert [(item.message.payload, item.redelivered) for item in b.received] == [(b"1", True)]
    assert (queue.backlog, queue.unacked) == (0, 1)


def test_detach_inside_offer_returns_the_message() -> None:
    queue = WorkQueue("jobs", max_backlog=10)

    def leave_on_bye(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        if item.message.payload == b"bye":
            assert queue.detach(consumer) == 2

    a, b = Recorder("a", leave_on_bye), Recorder("b")
    queue.attach(a, capacity=5)
    queue.attach(b, capacity=1)
    put_all(queue, "1", "2", "bye", "4")
    assert a.payloads() == [b"1", b"bye"]
    # b was full with 2: 1 and bye wait in front of 4, redelivered.
    assert b.payloads() == [b"2"]
    assert queue.consumer_count == 1
    assert queue.ack(b, b.received[0].tag)
    assert [(item.message.payload, item.redelivered) for item in b.received[1:]] == [(b"1", True)]
    queue.set_capacity(b, 5)
    assert b.payloads() == [b"2", b"1", b"bye", b"4"]
    assert (queue.backlog, queue.unacked) == (0, 3)


def test_put_inside_offer() -> None:
    queue = WorkQueue("jobs", max_backlog=0)

    def reply(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        if item.message.payload == b"ping":
            queue.put(message("pong"))

    a, b = Recorder("a", reply), Recorder("b")
    queue.attach(a, capacity=5)
    queue.attach(b, capacity=5)
    ping = queue.put(message("ping"))
    assert a.payloads() == [b"ping"]
    assert b.payloads() == [b"pong"]  # the next in turn, after the offer of ping returned
    assert b.received[0].tag == ping.tag + 1


def test_chain_of_puts_inside_offers_does_not_recurse() -> None:
    queue = WorkQueue("jobs", max_backlog=0)

    def next_one(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        if item.tag < 5000:
            queue.put(message(str(item.tag + 1)))

    a = Recorder("a", next_one)
    queue.attach(a, capacity=1, auto_ack=True)
    queue.put(message("1"))
    assert a.tags() == list(range(1, 5001))
    assert not queue.is_idle()  # still attached
    assert (queue.backlog, queue.unacked) == (0, 0)


def test_failing_consumer_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    queue = WorkQueue("jobs", max_backlog=10)
    a, broken, c = Recorder("a"), Broken("broken"), Recorder("c")
    queue.attach(a, capacity=10)
    queue.attach(broken, capacity=10)
    queue.attach(c, capacity=10)
    with caplog.at_level(logging.ERROR, logger="broker.core.queues"):
        put_all(queue, "1", "2", "3", "4", "5", "6")
    # Each failed message goes, redelivered, to the next in turn; broken rejoins the rotation.
    assert a.payloads() == [b"1", b"3", b"5"]
    assert c.payloads() == [b"2", b"4", b"6"]
    assert [item.redelivered for item in a.received] == [False, False, True]
    assert [item.redelivered for item in c.received] == [True, False, False]
    assert (queue.backlog, queue.unacked) == (0, 6)
    assert [record.getMessage() for record in caplog.records] == [
        "work queue 'jobs': offer of message 2 to <Recorder broken> failed",
        "work queue 'jobs': offer of message 5 to <Recorder broken> failed",
    ]
    assert all(record.exc_info is not None for record in caplog.records)


def test_lone_failing_consumer_is_not_retried_forever(caplog: pytest.LogCaptureFixture) -> None:
    queue = WorkQueue("jobs", max_backlog=2)
    broken = Broken("broken")
    queue.attach(broken, capacity=10, auto_ack=True)
    with caplog.at_level(logging.ERROR, logger="broker.core.queues"):
        put_all(queue, "1", "2")
        with pytest.raises(QueueFull):
            queue.put(message("3"))
    assert len(caplog.records) == 2
    assert queue.backlog == 2
    assert queue.detach(broken) == 0
    a = Recorder("a")
    queue.attach(a, capacity=10)
    assert [(item.message.payload, item.redelivered) for item in a.received] == [
        (b"1", True),
        (b"2", False),
    ]


def test_ack_before_raising_stands(caplog: pytest.LogCaptureFixture) -> None:
    queue = WorkQueue("jobs", max_backlog=10)

    def ack_then_fail(consumer: Recorder, item: QueuedMessage, queue: WorkQueue) -> None:
        assert queue.ack(consumer, item.tag)
        raise RuntimeError("late failure")

    a = Recorder("a", ack_then_fail)
    queue.attach(a, capacity=1)
    with caplog.at_level(logging.ERROR, logger="broker.core.queues"):
        queue.put(message("1"))
    assert (queue.backlog, queue.unacked) == (0, 0)
    assert len(caplog.records) == 1


class ModelConsumer:
    """A consumer whose offers update the state machine's model, and check it."""

    def __init__(
        self, machine: QueueMachine, capacity: int, auto_ack: bool, ack_in_offer: bool
    ) -> None:
        self.machine = machine
        self.capacity = capacity
        self.auto_ack = auto_ack
        self.ack_in_offer = ack_in_offer
        self.leave_in_offer = False
        self.fail = False
        self.tainted = False  # its offer has raised at least once
        self.held: list[int] = []  # in receive order

    def has_room(self) -> bool:
        return self.auto_ack or len(self.held) < self.capacity

    def offer(self, item: QueuedMessage, queue: WorkQueue) -> None:
        try:
            self._check(item)
            if self.fail and self.auto_ack:
                self.tainted = True
                raise RuntimeError("offer failed")
            self._take(item, queue)
        except AssertionError as error:
            # The queue logs and survives what an offer raises: keep it for the invariant.
            self.machine.errors.append(error)
            raise
        if self.fail:
            # After its own ack or detach, which stand; what it still holds goes back.
            self.tainted = True
            if item.tag in self.held:
                self.held.remove(item.tag)
            raise RuntimeError("offer failed")

    def _check(self, item: QueuedMessage) -> None:
        machine = self.machine
        tag = item.tag
        assert self in machine.attached
        assert tag in machine.accepted
        assert tag not in machine.acked
        assert all(tag not in consumer.held for consumer in machine.attached)
        assert self.has_room()

    def _take(self, item: QueuedMessage, queue: WorkQueue) -> None:
        machine = self.machine
        tag = item.tag
        if self.auto_ack:
            machine.acked.add(tag)
            return
        self.held.append(tag)
        if self.leave_in_offer:
            machine.attached.remove(self)
            held = len(self.held)
            self.held.clear()
            assert queue.detach(self) == held
        elif self.ack_in_offer:
            self.held.remove(tag)
            machine.acked.add(tag)
            assert queue.ack(self, tag)


class QueueMachine(RuleBasedStateMachine):
    """Random attach/detach/put/ack/nack sequences against a model of who holds what."""

    MAX_BACKLOG = 3

    def __init__(self) -> None:
        super().__init__()
        self.queue = WorkQueue("jobs", max_backlog=self.MAX_BACKLOG)
        self.accepted: set[int] = set()
        self.acked: set[int] = set()
        self.attached: list[ModelConsumer] = []
        self.errors: list[AssertionError] = []
        self.last_tag = 0

    @precondition(lambda self: len(self.attached) < 5)
    @rule(capacity=st.integers(1, 3), auto_ack=st.booleans(), ack_in_offer=st.booleans())
    def attach(self, capacity: int, auto_ack: bool, ack_in_offer: bool) -> None:
        consumer = ModelConsumer(self, capacity, auto_ack, ack_in_offer)
        self.attached.append(consumer)
        self.queue.attach(consumer, capacity=capacity, auto_ack=auto_ack)

    @precondition(lambda self: self.attached)
    @rule(data=st.data())
    def detach(self, data: st.DataObject) -> None:
        consumer = data.draw(st.sampled_from(self.attached))
        self.attached.remove(consumer)
        held = len(consumer.held)
        consumer.held.clear()
        assert self.queue.detach(consumer) == held

    @rule()
    def put(self) -> None:
        waiting = self.queue.backlog
        tag = self.last_tag + 1  # a refused put uses no tag
        self.accepted.add(tag)  # before the put, which may offer it
        try:
            item = self.queue.put(Message("jobs", b"x"))
        except QueueFull:
            self.accepted.remove(tag)
            assert waiting >= self.MAX_BACKLOG
            assert self.queue.backlog == waiting
        else:
            assert item.tag == tag
            self.last_tag = tag

    def _pick(self, data: st.DataObject) -> tuple[ModelConsumer, int]:
        consumer = data.draw(st.sampled_from(self.attached))
        if len(consumer.held) > 0 and data.draw(st.booleans()):
            return consumer, data.draw(st.sampled_from(consumer.held))
        return consumer, data.draw(st.integers(0, self.last_tag + 1))

    @precondition(lambda self: self.attached)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        consumer, tag = self._pick(data)
        held = tag in consumer.held
        if held:
            consumer.held.remove(tag)
            self.acked.add(tag)
        assert self.queue.ack(consumer, tag) == held

    @precondition(lambda self: self.attached)
    @rule(data=st.data())
    def nack(self, data: st.DataObject) -> None:
        consumer, tag = self._pick(data)
        held = tag in consumer.held
        if held:
            consumer.held.remove(tag)
        assert self.queue.nack(consumer, tag) == held

    @precondition(lambda self: self.attached)
    @rule(data=st.data(), ack=st.booleans())
    def ack_or_nack_through(self, data: st.DataObject, ack: bool) -> None:
        consumer, tag = self._pick(data)
        count = consumer.held.index(tag) + 1 if tag in consumer.held else 0
        done = consumer.held[:count]
        del consumer.held[:count]
        if ack:
            self.acked.update(done)
            assert self.queue.ack_through(consumer, tag) == count
        else:
            assert self.queue.nack_through(consumer, tag) == count

    @precondition(lambda self: self.attached)
    @rule(data=st.data(), capacity=st.integers(1, 3))
    def set_capacity(self, data: st.DataObject, capacity: int) -> None:
        consumer = data.draw(st.sampled_from(self.attached))
        consumer.capacity = capacity
        self.queue.set_capacity(consumer, capacity)

    @precondition(lambda self: self.attached)
    @rule(data=st.data())
    def toggle_failure(self, data: st.DataObject) -> None:
        consumer = data.draw(st.sampled_from(self.attached))
        consumer.fail = not consumer.fail

    @precondition(lambda self: self.attached)
    @rule(data=st.data())
    def leave_on_next_offer(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.attached)).leave_in_offer = True

    @invariant()
    def every_message_is_in_exactly_one_place(self) -> None:
        assert not self.errors
        held = [tag for consumer in self.attached for tag in consumer.held]
        assert len(held) == len(set(held))
        assert not self.acked & set(held)
        assert self.acked | set(held) <= self.accepted
        assert self.queue.unacked == len(held)
        assert self.queue.backlog == len(self.accepted) - len(self.acked) - len(held)
        assert self.queue.consumer_count == len(self.attached)

    @invariant()
    def no_healthy_consumer_with_room_while_messages_wait(self) -> None:
        if self.queue.backlog:
            assert not [c for c in self.attached if c.has_room() and not c.tainted]

    def teardown(self) -> None:
        # Hand everything to one fresh auto-ack consumer: each message must come out once.
        drain = ModelConsumer(self, capacity=1, auto_ack=True, ack_in_offer=False)
        for consumer in self.attached:
            consumer.fail = consumer.leave_in_offer = False
        self.attached.append(drain)
        self.queue.attach(drain, capacity=1, auto_ack=True)
        for consumer in self.attached[:-1]:
            self.attached.remove(consumer)
            held = len(consumer.held)
            consumer.held.clear()
            assert self.queue.detach(consumer) == held
        assert not self.errors
        assert self.acked == self.accepted
        assert (self.queue.backlog, self.queue.unacked) == (0, 0)
        assert self.queue.detach(drain) == 0
        assert self.queue.is_idle()


QueueMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_queue_machine = QueueMachine.TestCase
