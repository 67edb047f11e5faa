"""Errors that reach the user as one clear line (see DESIGN: Errors and inputs)."""
from __future__ import annotations

import errno
from pathlib import Path


class ReconError(Exception):
    """Base class for errors the CLI reports as a single line with exit code 2."""

    exit_code = 2


class InputError(ReconError):
    """A user input (file, folder, option) is missing or malformed.

    The message names the file and what is wrong with it.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ConfigError(ReconError):
    """A configuration file, preset or override is invalid."""


class SfMError(InputError):
    """Structure-from-motion could not recover enough cameras."""


class BackendError(ReconError):
    """A requested compute backend (cuda, cpp) is not available."""


class MissingDependencyError(ReconError):
    """An optional dependency is needed for this feature; the message says what to install."""

    def __init__(self, package: str, feature: str, extra: str | None = None, *, need: str | None = None,
                 hint: str | None = None):
        hint = hint or (f"pip install {package}" if extra is None else f"pip install 'recon[{extra}]'")
        super().__init__(f"{feature} needs {need or f'the optional package {package!r}'}: {hint}")


def optional_import(module: str, feature: str, package: str | None = None):
    """Import an optional dependency, or raise MissingDependencyError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(package or module, feature) from exc


START_AGAIN = "pass --overwrite to start the job again"


def corrupt_file(path: str | Path, why: str | BaseException, fix: str = START_AGAIN) -> InputError:
    """InputError for a file recon wrote earlier that no longer reads back (truncated, edited)."""
    if isinstance(why, BaseException):
        first = (str(why).splitlines() or [""])[0].split(". ")[0][:160]  # its first sentence
        why = why.__class__.__name__ + (f": {first}" if first else "")
    return InputError(path, f"corrupt file ({why}); {fix}")


def read_json_object(path: str | Path, fix: str = START_AGAIN) -> dict:
    """A JSON object recon wrote earlier (eval.json, capture.json, ...); ``corrupt_file`` if it is not one."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise corrupt_file(path, exc, fix) from None
    if not isinstance(data, dict):
        raise corrupt_file(path, f"a JSON {type(data).__name__}, not an object", fix)
    return data


# OSErrors the user fixes (permissions, a file where a folder goes, a full disk, a path that cannot exist).
USER_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR, errno.EISDIR,
                         errno.ENOENT, errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT})


def os_error_line(exc: OSError) -> str | None:
    """'PATH: reason' for an OSError in ``USER_ERRNOS``, else None (an internal error)."""
    if exc.errno not in USER_ERRNOS:
        return None
    reason = exc.strerror or str(exc)
    return reason if exc.filename is None else f"{exc.filename}: {reason}"


def save_traceback(exc: BaseException) -> Path | None:
    """Write ``exc``'s traceback to ~/.recon/logs/recon-<time>-<pid>.log (else the temp folder); None if neither."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(exc))
    name = f"recon-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (Path.home() / ".recon" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return folder / name
        except OSError:
            continue
    return None
