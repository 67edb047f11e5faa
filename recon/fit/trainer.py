"""The one training loop, for every subject model (``recon.models.base.SubjectModel``): Adam with
per-group learning rates, warm-up + exponential decay, mixed precision on CUDA, checkpoints and
resume, periodic eval, progress and a JSON-lines log. What a batch is, how it renders and what
it is scored on are the model's business.

Writes into ``fit_dir``: checkpoints/, config.yaml, log.jsonl, eval.json, renders/.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..core.config import Config, write_config
from ..core.errors import ConfigError
from ..core.fsutil import atomic_write_bytes
from ..core.log import get_logger, log_event
from ..core.progress import progress_bar
from ..core.types import Capture
from ..models import model_class
from ..models.base import SubjectModel
from ..ops.backend import active_backend, use_backend
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

log = get_logger(__name__)


def lr_factor(iteration: int, progress: float, warmup: int, final: float) -> float:
    """Linear warm-up over ``warmup`` iterations, then exponential decay to ``final`` at progress 1."""
    w = min(1.0, (iteration + 1) / warmup) if warmup > 0 else 1.0
    return w * final ** min(max(progress, 0.0), 1.0)


def _device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _make_optimizer(model: SubjectModel) -> torch.optim.Optimizer:
    groups = model.param_groups()
    for g in groups:
        g["initial_lr"] = g["lr"]
    try:
        return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15, fused=True)
    except (RuntimeError, TypeError):  # fused Adam unavailable for this device / dtype
        return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)


def split_indices(cap: Capture) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and eval frame indices; without a test split, eval on a few training views (named so)."""
    train = cap.split_indices("train")
    test = cap.split_indices("test")
    if len(train) == 0:
        train = np.arange(len(cap))
    if len(test) == 0:
        return train, train[np.linspace(0, len(train) - 1, min(3, len(train))).astype(int)], "train"
    return train, test, "test"


class Trainer:
    """Fits a subject model (``subject``: a ``recon.models.MODEL_KINDS`` entry) to a Capture; ``run()``
    trains within the budget and returns eval.json's dict.

    ``run()`` works under the config's backend (``use_backend``); ``step()`` alone uses the caller's.
    """

    def __init__(self, cfg: Config, cap: Capture, fit_dir: str | Path, resume: bool = False,
                 subject: str = "object"):
        self.cfg = cfg
        self.cap = cap
        self.dir = Path(fit_dir)
        self.ckpt_dir = self.dir / "checkpoints"
        self.device = _device()
        if cfg.fit.num_threads > 0:
            torch.set_num_threads(cfg.fit.num_threads)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)

        self.train_idx, self.eval_idx, self.eval_split = split_indices(cap)
        self.subject = subject
        self.model = model_class(subject).for_capture(cfg, cap, self.train_idx).to(self.device)
        self.opt = _make_optimizer(self.model)
        self.amp = cfg.fit.mixed_precision and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.train_seconds = 0.0
        self.resumed_from: str | None = None

        ckpt = latest_checkpoint(self.ckpt_dir) if resume else None
        if not resume:
            # a fresh fit replaces an earlier one in the same folder: no stale checkpoints or log lines
            for old in list(self.ckpt_dir.glob("step_*.pt")) + [self.dir / "log.jsonl", self.dir / "eval.json"]:
                old.unlink(missing_ok=True)
        if resume and ckpt is None:
            log.warning(f"{self.ckpt_dir}: no checkpoint to resume from; starting fresh")
        if ckpt is not None:
            self._load(ckpt)
        self.model.attach(cap, self.train_idx, fresh=ckpt is None)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_config(cfg, self.dir / "config.yaml")

    # -- state ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        from ..core.config import config_to_dict

        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "iteration": self.iteration,
                "train_seconds": self.train_seconds, "generator": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(), "config": config_to_dict(self.cfg),
                "subject": self.subject, **self.model.checkpoint_info()}

    def _load(self, path: Path) -> None:
        st = load_checkpoint(path, self.device)
        if st.get("subject", "object") != self.subject:
            raise ConfigError(f"{path}: checkpoint of a {st.get('subject', 'object')} model, not {self.subject}; "
                              "resume with the subject it was trained as, or --overwrite")
        try:
            self.model.load_state_dict(st["model"])
        except RuntimeError as exc:
            raise ConfigError(f"{path}: checkpoint does not match the configured field "
                              f"({str(exc).splitlines()[0]}); resume with the config it was trained with") from None
        self.opt.load_state_dict(st["optimizer"])
        self.scaler.load_state_dict(st["scaler"])
        self.iteration = int(st["iteration"])
        self.train_seconds = float(st["train_seconds"])
        self.gen.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        self.resumed_from = str(path)
        log_event("resume", checkpoint=str(path), iteration=self.iteration)

    def save(self) -> Path:
        return save_checkpoint(self.ckpt_dir, self._state(), self.iteration)

    # -- loop ----------------------------------------------------------------------------------
    def _progress(self) -> float:
        fc = self.cfg.fit
        p = self.iteration / fc.iterations
        if fc.minutes:
            p = max(p, self.train_seconds / (60.0 * fc.minutes))
        return p

    def _done(self) -> bool:
        fc = self.cfg.fit
        return self.iteration >= fc.iterations or (fc.minutes is not None and self.train_seconds >= 60 * fc.minutes)

    def step(self) -> dict:
        """One training iteration; returns its scalar statistics."""
        cfg = self.cfg
        p = self._progress()
        for g in self.opt.param_groups:
            g["lr"] = g["initial_lr"] * lr_factor(self.iteration, p, cfg.fit.warmup, cfg.fit.lr_final_factor)
        terms, stats = self.model.train_losses(self.iteration, p, self.gen)
        loss = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.iteration += 1
        stats = {"loss": float(loss.detach()), **stats}
        stats.update({k: float(v.detach()) for k, v in terms.items()})
        return stats

    def run(self) -> dict:
        with use_backend(self.cfg.backend):
            return self._run()

    def _run(self) -> dict:
        cfg = self.cfg
        fc = cfg.fit
        log_path = self.dir / "log.jsonl"
        start_it, start_secs = self.iteration, self.train_seconds
        log_event("fit_start", subject=self.subject, frames=len(self.train_idx), **self.model.describe(),
                  backend=active_backend(self.device), device=str(self.device), iteration=self.iteration)
        with open(log_path, "a") as logf, progress_bar("fit", total=fc.iterations) as bar:
            if start_it:
                bar.update(completed=start_it)
            while not self._done():
                t0 = time.perf_counter()
                stats = self.step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                self.train_seconds += time.perf_counter() - t0
                done_its = self.iteration - start_it
                rps = self.model.batch_size * done_its / max(self.train_seconds - start_secs, 1e-9)
                eta = self._eta(done_its, start_secs)
                bar.advance(1, loss=stats["loss"], psnr=stats["psnr"], rays_s=int(rps), eta_s=int(eta))
                if self.iteration % fc.log_every == 0 or self._done():
                    rec = {"iteration": self.iteration, "time": round(self.train_seconds, 3),
                           "rays_per_second": round(rps, 1), "lr_grid": self.opt.param_groups[0]["lr"],
                           **self.model.log_record(), **{k: round(v, 6) for k, v in stats.items()}}
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                if fc.eval_every and self.iteration % fc.eval_every == 0 and not self._done():
                    idx = self.eval_idx if not fc.eval_views else self.eval_idx[:fc.eval_views]
                    ev = self.model.evaluate(self.cap, idx)
                    ev.pop("views")
                    logf.write(json.dumps({"event": "eval", "iteration": self.iteration, **ev}) + "\n")
                    log_event("eval", iteration=self.iteration, psnr=round(ev["psnr"], 3))
                if fc.checkpoint_every and self.iteration % fc.checkpoint_every == 0:
                    self.save()
        self.save()
        rays_per_second = self.model.batch_size * (self.iteration - start_it) / max(self.train_seconds - start_secs, 1e-9)
        ev = self.model.evaluate(self.cap, self.eval_idx, save_dir=self.dir / "renders")
        result = {"subject": self.subject, "split": self.eval_split, **{k: v for k, v in ev.items() if k != "views"},
                  "train_seconds": round(self.train_seconds, 2), "iterations": self.iteration,
                  "rays_per_second": round(rays_per_second, 1), "backend": active_backend(self.device),
                  "device": str(self.device), **self.model.describe(), "resumed_from": self.resumed_from,
                  "views": ev["views"]}
        atomic_write_bytes(self.dir / "eval.json", json.dumps(result, indent=2).encode())
        log_event("fit_done", iterations=self.iteration, psnr=round(result["psnr"], 3),
                  rays_per_second=round(rays_per_second), train_seconds=round(self.train_seconds, 1))
        return result

    def _eta(self, done_its: int, start_secs: float) -> float:
        fc = self.cfg.fit
        per_it = (self.train_seconds - start_secs) / max(done_its, 1)
        eta = (fc.iterations - self.iteration) * per_it
        if fc.minutes:
            eta = min(eta, 60 * fc.minutes - self.train_seconds)
        return max(eta, 0.0)
