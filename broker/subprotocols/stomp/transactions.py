"""A connection's open STOMP transactions: frames held until COMMIT, dropped on ABORT."""

from __future__ import annotations

from broker.subprotocols.stomp.errors import WS_POLICY, StompError
from broker.subprotocols.stomp.frames import Frame


class Transactions:
    """Open transactions by id, each with the SEND, ACK and NACK frames it holds, bounded."""

    __slots__ = ("_max_frames", "_max_open", "_open")

    def __init__(self, *, max_open: int, max_frames: int) -> None:
        self._max_open = max_open
        self._max_frames = max_frames
        self._open: dict[str, list[Frame]] = {}

    def begin(self, transaction: str) -> None:
        if transaction in self._open:
            raise StompError("transaction already begun", f"{transaction!r} is still open")
        if len(self._open) >= self._max_open:
            raise StompError(
                "too many transactions", f"at most {self._max_open} open at once", code=WS_POLICY
            )
        self._open[transaction] = []

    def hold(self, transaction: str, frame: Frame) -> None:
        held = self._open.get(transaction)
        if held is None:
            raise _unknown(transaction)
        if len(held) >= self._max_frames:
            raise StompError(
                "transaction too large",
                f"at most {self._max_frames} frames per transaction",
                code=WS_POLICY,
            )
        held.append(frame)

    def end(self, transaction: str) -> list[Frame]:
        """Close it (COMMIT or ABORT) and return what it held, in order."""
        held = self._open.pop(transaction, None)
        if held is None:
            raise _unknown(transaction)
        return held

    def clear(self) -> None:
        self._open.clear()


def _unknown(transaction: str) -> StompError:
    return StompError("unknown transaction", f"no transaction {transaction!r} has begun")
