from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from broker.app import serve
from broker.config import Settings
from broker.subprotocols.registry import Registry
from broker.transport.server import Listener


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running_broker(
    registry: Registry | None = None, **settings: Any
) -> AsyncIterator[Listener]:
    """Serve in this event loop on a free port; stop (gracefully) on exit."""
    settings.setdefault("port", 0)
    settings.setdefault("host", "127.0.0.1")
    async with anyio.create_task_group() as tasks:
        listener: Listener = await tasks.start(serve, Settings(**settings), registry)
        try:
            yield listener
        finally:
            tasks.cancel_scope.cancel()


def url_of(listener: Listener, path: str = "/topics/echo", scheme: str = "ws") -> str:
    host, port = listener.addresses[0]
    return f"{scheme}://{host}:{port}{path}"
