"""Run a suite's JavaScript client driver under node: scenario in, JSON lines out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest


def run_driver(
    js_dir: Path, package: str, url: str, scenario: str, timeout: float, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run `js_dir/driver.mjs url scenario params`; its JSON lines, the last being "done".

    Skips, saying why, without node or without `package` installed (`npm ci --prefix js_dir`).
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: the {package} tests need it")
    if not (js_dir / "node_modules" / package).is_dir():
        pytest.skip(f"{js_dir.name}/node_modules has no {package}: run `npm ci --prefix {js_dir}`")
    params.setdefault("timeout_ms", int(timeout * 1000) - 2000)
    proc = subprocess.run(
        [node, str(js_dir / "driver.mjs"), url, scenario, json.dumps(params)],
        cwd=js_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = events[-1] if events else {"event": "no output"}
    assert last["event"] == "done", (
        f"{package} scenario {scenario!r} ended with {last} (exit {proc.returncode}); "
        f"events {events}; stderr {proc.stderr[-2000:]!r}"
    )
    return events
