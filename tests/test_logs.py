from __future__ import annotations

import json
import logging

from broker.logs import JsonFormatter


def test_json_lines_carry_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "broker.connection",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "closed peer=%s",
            "args": ("1.2.3.4:5",),
            "peer": "1.2.3.4:5",
            "code": 1001,
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "closed peer=1.2.3.4:5"
    assert entry["level"] == "info"
    assert entry["logger"] == "broker.connection"
    assert entry["peer"] == "1.2.3.4:5"
    assert entry["code"] == 1001
    assert "args" not in entry
