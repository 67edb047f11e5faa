"""Fitting neural fields to captures: the training loop, checkpoints, evaluation.

``recon.fit`` is both this package and the public entry point ``recon.pipeline.fit``
(capture -> fit -> bake): the package module is callable, so ``from recon import fit;
fit("cat.mp4", out="out/cat")`` works whether or not ``recon.fit`` was imported as a
package before (importing the package makes it the attribute ``recon.fit``, which would
otherwise shadow the function that ``recon.__getattr__`` offers). That call is the one
reference from this layer upwards, resolved at call time; the training itself is
``recon.fit.api.fit`` (field only).
"""
from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..pipeline import fit

        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
