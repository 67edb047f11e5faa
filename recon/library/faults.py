"""Fault injection for crash tests: ``RECON_CRASH_AT=STEP[:N]`` kills the process (``os._exit``,
no clean-up, like SIGKILL) the N-th time (default first) execution reaches ``point(STEP)``.

Steps of ``Library.add``: blob_written, blob_fsynced, blob_renamed (per blob), blobs_stored,
rows_flushed (inside the transaction, before commit), committed. Of ``remove``: removed_rows,
blob_deleted. ``hook``, when set (tests, in a child process), is called with every step
reached, e.g. to report progress to a parent that kills the child at a chosen step.
Unset, ``point`` costs two comparisons.
"""
from __future__ import annotations

import os
from typing import Callable

_TARGET: tuple[str, int] | None = None
_SEEN: dict[str, int] = {}
_spec = os.environ.get("RECON_CRASH_AT")
if _spec:
    step, _, count = _spec.partition(":")
    _TARGET = (step, int(count or 1))

CRASH_EXIT_CODE = 86
hook: Callable[[str], None] | None = None


def point(step: str) -> None:
    if hook is not None:
        hook(step)
    if _TARGET is None or step != _TARGET[0]:
        return
    _SEEN[step] = _SEEN.get(step, 0) + 1
    if _SEEN[step] == _TARGET[1]:
        os._exit(CRASH_EXIT_CODE)
