"""Log lines for people (default) or for log shippers (``--log-format json``)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        # One event, one line: a reason that spans lines (a server's error page, a YAML
        # snippet) must not look like several events to grep or to a line-based shipper.
        message = " ⏎ ".join(record.getMessage().splitlines())
        text = f"{stamp} {record.levelname:<7} {message}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party loggers speak per request or print payloads at DEBUG; ours say what matters.
    # apprise is left alone: delivery sets it to DEBUG for its per-call capture, which a
    # failed delivery is classified by (and quotes as its reason), and turns its propagation
    # off, so none of its records reach our handlers.
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
