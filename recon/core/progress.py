"""Rich progress bars for steps that take more than a second; silent when quiet.

    with progress_bar("decoding", total=n) as bar:
        for ...: bar.advance(1, loss=0.1)

``track(iterable, description)`` wraps an iterable. Bars render on stderr,
transient, and never when ``--quiet`` or when stderr is not a terminal unless
``RECON_PROGRESS=1``.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterable, Iterator, TypeVar

from .log import is_quiet

T = TypeVar("T")


class _NullBar:
    def advance(self, n: float = 1, **fields: Any) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass


class _RichBar:
    def __init__(self, progress, task):
        self._p, self._t = progress, task

    def advance(self, n: float = 1, **fields: Any) -> None:
        self._p.update(self._t, advance=n, info=_fields(fields))

    def update(self, **fields: Any) -> None:
        completed = fields.pop("completed", None)
        kw = {"info": _fields(fields)}
        if completed is not None:
            kw["completed"] = completed
        self._p.update(self._t, **kw)


def _fields(fields: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


def _enabled() -> bool:
    if is_quiet():
        return False
    if os.environ.get("RECON_PROGRESS") == "1":
        return True
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(description: str, total: float | None) -> Iterator[_RichBar | _NullBar]:
    if not _enabled():
        yield _NullBar()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  TextColumn("{task.fields[info]}"), console=Console(stderr=True),
                  transient=True) as p:
        yield _RichBar(p, p.add_task(description, total=total, info=""))


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar(description, total) as bar:
        for item in iterable:
            yield item
            bar.advance(1)
