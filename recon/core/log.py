"""Logging for people (rich, to stderr) and for machines (JSON lines).

``setup_logging(quiet, json_path)`` is called once by the CLI. Library code
uses ``get_logger(__name__)`` and ``log_event(name, **fields)`` for structured
records (progress of batch jobs, metrics) that land in the JSON log.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

_STATE: dict[str, Any] = {"quiet": False, "json": None}


class _JsonHandler(logging.Handler):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        rec = {"time": round(record.created, 3), "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage()}
        rec.update(getattr(record, "fields", {}))
        self.stream.write(json.dumps(rec, default=str) + "\n")
        self.stream.flush()


def setup_logging(quiet: bool = False, json_path: str | Path | None = None, verbose: bool = False) -> None:
    """Configure the ``recon`` logger: rich text on stderr unless quiet, JSON lines if asked.

    ``json_path`` "-" writes JSON lines to stdout.
    """
    root = logging.getLogger("recon")
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    _STATE["quiet"] = quiet
    if not quiet:
        from rich.logging import RichHandler

        h = RichHandler(show_path=False, show_time=False, markup=False,
                        console=_console())
        h.setLevel(logging.DEBUG if verbose else logging.INFO)
        root.addHandler(h)
    else:
        h = logging.StreamHandler(sys.stderr)
        h.setLevel(logging.WARNING)
        h.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(h)
    if json_path:
        stream = sys.stdout if str(json_path) == "-" else open(json_path, "a", buffering=1)
        _STATE["json"] = stream
        root.addHandler(_JsonHandler(stream))


def _console():
    from rich.console import Console

    return Console(stderr=True)


def is_quiet() -> bool:
    return bool(_STATE["quiet"])


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("recon") else f"recon.{name}")


def log_event(event: str, **fields: Any) -> None:
    """A structured record: shown as text to people, kept whole in the JSON log."""
    logger = logging.getLogger("recon.event")
    text = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
    logger.info(f"{event} {text}".strip(), extra={"fields": {"event": event, **fields}})


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
