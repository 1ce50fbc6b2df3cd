"""Run ``async def`` tests from plain pytest, one fresh event loop per test, with a deadline."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

__all__ = ["TEST_DEADLINE", "async_test"]

P = ParamSpec("P")

# Well under pytest-timeout's limit, so a hung test fails with a normal traceback.
TEST_DEADLINE = 20.0


def async_test(
    fn: Callable[P, Coroutine[Any, Any, None]],
) -> Callable[P, None]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        async def main() -> None:
            await asyncio.wait_for(fn(*args, **kwargs), TEST_DEADLINE)

        asyncio.run(main())

    return wrapper
