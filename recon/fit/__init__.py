"""Fitting neural fields to captures: the training loop, checkpoints, evaluation.

``recon.fit`` is both this package and the function ``recon.fit.api.fit``: the
package module is callable, so ``from recon import fit; fit("capture/", out="out/x")``
works whether or not ``recon.fit`` was imported as a package before (importing
the package makes it the attribute ``recon.fit``, which would otherwise shadow
the function that ``recon.__getattr__`` offers).
"""
from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .api import fit

        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
