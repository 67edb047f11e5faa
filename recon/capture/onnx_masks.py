"""Masks from any ONNX segmentation model in a local file, run with onnxruntime (extra ``onnx``).

The model takes one image tensor (N, 3, H, W) float32 (float16 also fed), RGB. H and W are the
model's when fixed, else ``input_size``, else the frame's size rounded to a multiple of 32.
Frames go in one at a time, resized to (H, W), scaled to [0, 1], then ``(x - mean) / std`` when
given (ImageNet: mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225).

The output ``output_index`` is read as one of:
- (N, 1, h, w) or (N, h, w) float: subject probabilities, or logits (a sigmoid is applied when
  any value in the capture falls outside [0, 1]); subject = value > ``threshold``;
- (N, C, h, w), C >= 2: class scores; subject = argmax != 0 (class 0 is the background);
- (N, 1, h, w) or (N, h, w) integer: class labels; subject = label != 0.
The map is resized (linearly) back to each frame's size before the decision. No network access:
the model is a file the user gives.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..core.errors import InputError, MissingDependencyError
from ..core.fsutil import sha256_file
from ..core.log import get_logger
from ..core.progress import track
from ..core.types import Capture
from .mask_ops import threshold_option

log = get_logger(__name__)

EXPECTED_OUTPUT = "(N, 1, H, W) subject logits/probabilities or (N, C, H, W) class scores"


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "the onnx segmenter", "onnx") from None
    return onnxruntime


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:200]


def _channel_values(name: str, values, low: float, high: float) -> np.ndarray | None:
    """``values`` (1 or 3 numbers in [low, high]) as a (3, 1, 1) float32 array; None stays None."""
    if values is None:
        return None
    try:
        v = np.asarray([float(x) for x in np.atleast_1d(np.asarray(values, dtype=object))], np.float32)
    except (TypeError, ValueError):
        raise InputError(None, f"onnx {name} must be 1 or 3 numbers, got {values!r}") from None
    if v.size not in (1, 3) or not np.all(np.isfinite(v)) or np.any(v < low) or np.any(v > high):
        raise InputError(None, f"onnx {name} must be 1 or 3 numbers in [{low:g}, {high:g}] (on the [0, 1] "
                               f"pixel scale, e.g. ImageNet mean 0.485,0.456,0.406 std 0.229,0.224,0.225), "
                               f"got {values!r}")
    return np.broadcast_to(v, (3,)).reshape(3, 1, 1).copy()


def _size_option(input_size) -> tuple[int, int] | None:
    """``input_size`` (an int for a square, or (width, height)) as (W, H), multiples of 32 not required."""
    if input_size is None:
        return None
    try:
        wh = [int(input_size)] * 2 if np.isscalar(input_size) else [int(v) for v in input_size]
    except (TypeError, ValueError):
        wh = []
    if len(wh) != 2 or min(wh) < 1:
        raise InputError(None, f"onnx input_size must be a positive int or (width, height), got {input_size!r}")
    return wh[0], wh[1]


def _round32(n: int) -> int:
    return max(32, int(n / 32.0 + 0.5) * 32)


class _Model:
    """An onnxruntime session for one image input (N, 3, H, W) and the chosen output."""

    def __init__(self, path: Path, output_index: int):
        ort = _ort()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            why = _first_line(exc).replace(f"Load model from {path} failed:", "").replace(str(path), path.name)
            raise InputError(path, f"not a valid ONNX model ({why.strip()})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(path, f"model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                                   f"the onnx segmenter feeds one image tensor (N, 3, H, W)")
        inp = inputs[0]
        shape = list(inp.shape)
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
        if len(shape) != 4 or fixed[1] not in (None, 3) or fixed[0] not in (None, 1):
            raise InputError(path, f"model input {inp.name!r} has shape {shape}; expected an RGB image tensor "
                                   f"(N, 3, H, W) with N 1 or dynamic")
        if inp.type not in ("tensor(float)", "tensor(float16)"):
            raise InputError(path, f"model input {inp.name!r} is {inp.type}; expected tensor(float) (float32)")
        outputs = self.session.get_outputs()
        if not (isinstance(output_index, (int, np.integer)) and 0 <= output_index < len(outputs)):
            raise InputError(path, f"output_index {output_index!r} is out of range (the model has "
                                   f"{len(outputs)} outputs: {', '.join(o.name for o in outputs)})")
        self.path, self.input_name = path, inp.name
        self.dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.fixed_hw = (fixed[2], fixed[3])
        self.output_name = outputs[int(output_index)].name

    def size_for(self, frame_hw: tuple[int, int], wanted: tuple[int, int] | None) -> tuple[int, int]:
        """(W, H) fed for a frame of size ``frame_hw`` (H, W): the model's fixed sides, else ``wanted``,
        else the frame's rounded to multiples of 32."""
        fh, fw = self.fixed_hw
        w, h = wanted if wanted is not None else (_round32(frame_hw[1]), _round32(frame_hw[0]))
        return (fw or w), (fh or h)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The chosen output for ``x`` (1, 3, H, W)."""
        try:
            out = self.session.run([self.output_name], {self.input_name: x.astype(self.dtype)})[0]
        except Exception as exc:  # shape mismatches inside the graph, unsupported ops at run time
            raise InputError(self.path, f"model failed on a {x.shape[3]}x{x.shape[2]} input "
                                        f"({_first_line(exc)})") from None
        return np.asarray(out)


def _subject_map(out: np.ndarray, path: Path, name: str) -> tuple[np.ndarray, str]:
    """One frame's output as (a (h, w) float32 map, its kind): "probabilities" (threshold it, after a
    sigmoid if they turn out to be logits), "class scores (C classes, argmax != 0)" (the map is the best
    non-background score minus the background's, subject where > 0) or "class labels (!= 0)" (0/1)."""
    shape = tuple(out.shape)
    ok = out.ndim in (3, 4) and shape[0] == 1 and out.size > 0
    if not ok or not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer)
                      or out.dtype == bool):
        raise InputError(path, f"cannot read model output {name!r} of shape {list(shape)} ({out.dtype}) as "
                               f"masks; expected {EXPECTED_OUTPUT} for one image")
    x = out[0] if out.ndim == 4 else out
    if x.ndim == 3 and x.shape[0] >= 2:
        scores = x.astype(np.float32)
        return scores[1:].max(axis=0) - scores[0], f"class scores ({x.shape[0]} classes, argmax != 0)"
    x = x.reshape(x.shape[-2:])
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        return (x != 0).astype(np.float32), "class labels (!= 0)"
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(path, f"model output {name!r} has NaN or infinite values")
    return x, "probabilities"


def onnx_masks(cap: Capture, model_path: str | Path, threshold: float = 0.5,
               input_size: int | Sequence[int] | None = None, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, output_index: int = 0) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks for every frame of ``cap`` from the ONNX model at ``model_path`` (see the module doc).

    threshold: subject probability cut for one-channel outputs (in (0, 1)); input_size: an int or
    (width, height) for models without fixed H/W; mean/std: 1 or 3 numbers on the [0, 1] scale;
    output_index: which model output holds the masks.
    Returns N (H, W) uint8 0/255 masks at the frames' sizes and stats {model, model_sha256 (16 hex),
    input_size ([W, H], or a list of them when frames differ in size), output (its kind), output_name}.
    """
    path = Path(model_path)
    if not path.is_file():
        raise InputError(path, "ONNX model file not found")
    threshold = threshold_option("onnx", threshold)
    mean_a, std_a = _channel_values("mean", mean, 0.0, 1.0), _channel_values("std", std, 1e-6, 1e3)
    wanted = _size_option(input_size)
    model = _Model(path, output_index)
    if wanted is not None and any(model.fixed_hw):
        log.warning(f"{path.name}: the model's input size is fixed ({model.fixed_hw[1]}x{model.fixed_hw[0]}); "
                    f"input_size {wanted[0]}x{wanted[1]} is not used")

    maps, kinds, sizes = [], set(), []
    for img in track(cap.images, "onnx masks", total=len(cap.images)):
        h, w = img.shape[:2]
        W, H = model.size_for((h, w), wanted)
        if (W, H) != (w, h):
            interp = cv2.INTER_AREA if W * H < w * h else cv2.INTER_LINEAR
            img = cv2.resize(img, (W, H), interpolation=interp)
        x = img[..., :3].astype(np.float32).transpose(2, 0, 1) / 255.0
        if mean_a is not None:
            x = x - mean_a
        if std_a is not None:
            x = x / std_a
        m, kind = _subject_map(model.run(x[None]), path, model.output_name)
        maps.append(m)
        kinds.add(kind)
        if [W, H] not in sizes:
            sizes.append([W, H])
    if len(kinds) > 1:  # cannot happen with one graph unless its output rank changes with the input
        raise InputError(path, f"model output {model.output_name!r} changes form between frames")
    kind = kinds.pop() if kinds else "probabilities"

    cut = 0.0 if kind.startswith("class scores") else 0.5 if kind.startswith("class labels") else threshold
    if kind == "probabilities" and any(float(m.min()) < -1e-3 or float(m.max()) > 1 + 1e-3 for m in maps):
        maps = [1.0 / (1.0 + np.exp(-np.clip(m, -60, 60))) for m in maps]
        kind = "logits (sigmoid applied)"

    masks = []
    for m, img in zip(maps, cap.images):
        h, w = img.shape[:2]
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        masks.append(np.where(m > cut, 255, 0).astype(np.uint8))
    stats = {"model": path.name, "model_sha256": sha256_file(path)[:16],
             "input_size": sizes[0] if len(sizes) == 1 else sizes, "output": kind,
             "output_name": model.output_name}
    return masks, stats
