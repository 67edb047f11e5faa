"""Errors that reach the user as one clear line (see DESIGN: Errors and inputs)."""
from __future__ import annotations

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

    def __init__(self, package: str, feature: str, extra: str | None = None):
        hint = f"pip install {package}" if extra is None else f"pip install 'recon[{extra}]'"
        super().__init__(f"{feature} needs the optional package '{package}': {hint}")


def optional_import(module: str, feature: str, package: str | None = None):
    """Import an optional dependency, or raise MissingDependencyError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(package or module, feature) from exc
