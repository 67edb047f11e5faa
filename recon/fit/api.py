"""The fit stage: ``fit(data, out)`` trains a field on a capture; ``load_field(out)`` reloads it.

    from recon.fit.api import fit
    result = fit("path/to/capture", out="out/lego", preset="object-fast",
                 overrides=["fit.minutes=5"])
    result.eval["psnr"]

``from recon import fit`` is the whole chain (capture -> fit -> bake, ``recon.pipeline``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config, load_config
from ..core.errors import InputError
from ..core.types import Capture


@dataclass(frozen=True)
class FitResult:
    out: Path  # the job folder; the fit lives in out/fit
    eval: dict  # eval.json's contents

    @property
    def fit_dir(self) -> Path:
        return self.out / "fit"


def default_out(data: str | Path) -> Path:
    """``out/<name of the data>`` (the folder name, or the file stem)."""
    p = Path(data).resolve()
    name = p.stem if p.is_file() else p.name
    return Path("out") / name


def fit(data: str | Path | Capture, out: str | Path | None = None, preset: str | None = "object-fast",
        overrides: list[str] | tuple[str, ...] = (), config: Config | None = None,
        config_file: str | Path | None = None, resume: bool = False, subject: str = "object") -> FitResult:
    """Fit the ``subject`` model (``recon.models.MODEL_KINDS``) to ``data`` (any source ``load_capture``
    reads, a capture folder, or a Capture).

    Writes ``out/fit/{checkpoints/, config.yaml, log.jsonl, eval.json, renders/}``.
    ``config`` (a resolved Config) takes precedence over preset/config_file/overrides.
    """
    from ..capture import load_capture
    from .trainer import Trainer

    cfg = config or load_config(preset, config_file, list(overrides))
    if isinstance(data, Capture):
        cap = data
        if out is None:
            raise InputError(None, "fit: 'out' is required when data is an in-memory Capture")
    else:
        cap = load_capture(data, cfg.capture)
        out = out if out is not None else default_out(data)
    if cap.cameras is None:
        raise InputError(None if isinstance(data, Capture) else data, "capture has no cameras")
    out = Path(out)
    result = Trainer(cfg, cap, out / "fit", resume=resume, subject=subject).run()
    return FitResult(out, result)


def _fit_dir(out: str | Path) -> Path:
    out = Path(out)
    return out if (out / "checkpoints").is_dir() else out / "fit"


def load_model(out: str | Path, device: str = "cpu"):
    """The subject model of the latest checkpoint in ``out`` (job or fit folder), e.g. an ObjectModel
    (field + occupancy grid)."""

    from ..core.config import Config
    from ..models import model_class
    from .checkpoint import latest_checkpoint, load_checkpoint

    fit_dir = _fit_dir(out)
    ckpt = latest_checkpoint(fit_dir / "checkpoints")
    if ckpt is None:
        raise InputError(fit_dir, "no checkpoint found (expected checkpoints/step_*.pt)")
    st = load_checkpoint(ckpt, device)
    cfg = Config.model_validate(st["config"])
    model = model_class(st.get("subject", "object")).from_info(cfg, st).to(device)
    model.load_state_dict(st["model"])
    model.eval()
    return model


def load_field(out: str | Path, device: str = "cpu"):
    """The trained field (``density(x)``, ``sdf(x)`` for SDF fields, ``color(x, d)``, ``diffuse_color(x)``).

    World coordinates are the capture's normalised frame; ``field.normalization``
    (4x4, original -> normalised) maps back to the capture's units.
    """
    return load_model(out, device).field
