"""Subject models: which fields, priors and losses fit a kind of subject (``recon.models.base``).

``model_class(kind)`` is the registry the trainer and ``recon.fit.api.load_model`` use.
"""
from __future__ import annotations

MODEL_KINDS = ("object", "articulated")


def model_class(kind: str):
    """The ``SubjectModel`` subclass that fits subjects of ``kind`` (one of ``MODEL_KINDS``)."""
    if kind == "object":
        from .object_model import ObjectModel

        return ObjectModel
    if kind == "articulated":
        from .articulated_model import ArticulatedModel

        return ArticulatedModel
    raise ValueError(f"no subject model '{kind}' (one of {', '.join(MODEL_KINDS)})")
