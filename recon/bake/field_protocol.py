"""What the baker needs from a fitted field: a signed distance and a base colour.

The baker queries fields only through ``SurfaceField``; any object with these two
methods works (the analytic fields in ``analytic_field.py`` for tests, the neural
fields of ``recon.fields`` through ``as_surface_field``).

Points are in the field's *normalised* frame (the subject inside the unit
sphere). The capture's ``normalization`` (4x4, original -> normalised) is passed
to the baker separately, so assets come out in the capture's original units.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class SurfaceField(Protocol):
    """A closed surface with colour, queried in normalised coordinates."""

    def sdf(self, x: Tensor) -> Tensor:
        """x: (N, 3) float32 normalised points -> (N,) signed distance, negative inside.

        Only the zero level set and the sign must be right; a value that is not a
        true distance (a density level set) works, with a less regular gradient, when
        the field says so with an attribute ``is_distance = False`` (the extractor
        then samples every grid point instead of a narrow band around the surface).
        """
        ...

    def albedo(self, x: Tensor) -> Tensor:
        """x: (N, 3) -> (N, 3) base colour, sRGB-encoded in [0, 1].

        A field without an albedo head returns its diffuse (view-averaged) radiance.
        """
        ...


def field_device(field) -> torch.device:
    """The device a field computes on: its parameters' or buffers' device, else ``field.device``, else CPU."""
    if isinstance(field, torch.nn.Module):
        for t in list(field.parameters()) + list(field.buffers()):
            return t.device
    dev = getattr(field, "device", None)
    return torch.device(dev) if dev is not None else torch.device("cpu")


class DensityLevelSet:
    """A density field seen as a surface: ``sdf(x) = threshold - density(x)`` (negative inside).

    colour_fn: x -> (N, 3) colour, e.g. the field's view-averaged ``diffuse_color``.
    Its values are not distances (``is_distance`` False), so it is sampled densely.
    """

    is_distance = False

    def __init__(self, density_fn, color_fn, threshold: float, device: torch.device | None = None):
        self._density = density_fn
        self._color = color_fn
        self.threshold = float(threshold)
        self.device = device

    def sdf(self, x: Tensor) -> Tensor:
        return self.threshold - self._density(x).reshape(-1)

    def albedo(self, x: Tensor) -> Tensor:
        return self._color(x).clamp(0.0, 1.0)


class _FieldAdapter:
    """An SDF field whose colour comes from ``albedo`` or, failing that, ``diffuse_color``."""

    def __init__(self, field):
        self.field = field
        self.device = field_device(field)

    def sdf(self, x: Tensor) -> Tensor:
        return self.field.sdf(x).reshape(-1)

    def albedo(self, x: Tensor) -> Tensor:
        fn = getattr(self.field, "albedo", None) or self.field.diffuse_color
        return fn(x).clamp(0.0, 1.0)


def as_surface_field(field, density_threshold: float = 10.0) -> SurfaceField:
    """Wrap whatever a fit produced into a ``SurfaceField``.

    - an object with ``sdf`` and ``albedo``: used as is;
    - an object with ``sdf`` and ``diffuse_color`` (recon.fields SDF field): the diffuse
      colour stands in for the albedo;
    - an object with ``density`` (recon.fields density field): the level set
      ``density == density_threshold``.
    """
    if hasattr(field, "sdf") and hasattr(field, "albedo"):
        return field
    if hasattr(field, "sdf") and hasattr(field, "diffuse_color"):
        return _FieldAdapter(field)
    if hasattr(field, "density"):
        color = getattr(field, "albedo", None) or getattr(field, "diffuse_color", None)
        if color is None:
            raise TypeError(f"{type(field).__name__} has a density but no albedo/diffuse_color")
        return DensityLevelSet(field.density, color, density_threshold, field_device(field))
    raise TypeError(f"{type(field).__name__} is not a surface field: it needs sdf() or density(), "
                    "and albedo() or diffuse_color()")
