"""The "onnx" segmenter: tiny ONNX graphs built here (colour rules with known answers), run with onnxruntime."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from recon.capture.segment import segment_capture  # noqa: E402
from recon.core.errors import InputError  # noqa: E402
from recon.core.types import Capture, FrameInfo  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum()))


def save_model(path, nodes, inits, in_shape=("N", 3, "H", "W"), out_shape=("N", 1, "H", "W"), out_type=None):
    """A one-input graph "image" (float32 ``in_shape``) -> "out" written to ``path``."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("out", out_type or TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def red_minus_blue(path, kind="logits", in_shape=("N", 3, "H", "W")):
    """A 1x1 conv: logit 20 (red - blue) per pixel; "probabilities" adds a sigmoid; "classes" gives
    two class scores (background = blue - red, subject = red - blue); "flat" flattens the logits."""
    w = np.array([1.0, 0.0, -1.0], np.float32) * 20
    if kind == "classes":
        inits = {"w": np.stack([-w, w]).reshape(2, 3, 1, 1), "b": np.zeros(2)}
        return save_model(path, [helper.make_node("Conv", ["image", "w", "b"], ["out"])], inits, in_shape,
                          ("N", 2, "H", "W"))
    inits = {"w": w.reshape(1, 3, 1, 1), "b": np.zeros(1)}
    last = {"logits": [], "probabilities": [helper.make_node("Sigmoid", ["logit"], ["out"])],
            "flat": [helper.make_node("Flatten", ["logit"], ["out"], axis=1)]}[kind]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["logit" if last else "out"])] + last
    return save_model(path, nodes, inits, in_shape, ("N", "HW") if kind == "flat" else ("N", 1, "H", "W"))


@pytest.fixture(scope="module")
def disks():
    """3 frames (two sizes, neither a multiple of 32): a noisy red disk (the subject) on a noisy blue
    background; returns the capture and the true masks."""
    rng = np.random.default_rng(0)
    images, truth = [], []
    for i, (h, w) in enumerate([(60, 100), (60, 100), (70, 50)]):
        yy, xx = np.mgrid[0:h, 0:w]
        m = (yy - h * (0.4 + 0.1 * i)) ** 2 + (xx - w * 0.5) ** 2 < (0.3 * min(h, w)) ** 2
        img = np.where(m[..., None], [200, 60, 40], [40, 90, 190]) + rng.integers(-30, 30, (h, w, 3))
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        truth.append(np.where(m, 255, 0).astype(np.uint8))
    frames = [FrameInfo(name=f"f{i:05d}", source="v.mp4", index=i) for i in range(3)]
    return Capture(images=images, cameras=None, frames=frames), truth


@pytest.mark.parametrize("kind,in_shape,options,want_kind,want_size", [
    ("logits", ("N", 3, "H", "W"), {}, "logits (sigmoid applied)", [[96, 64], [64, 64]]),
    ("probabilities", (1, 3, "H", "W"), {"input_size": (40, 48)}, "probabilities", [40, 48]),
    ("classes", ("N", 3, 64, 64), {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
     "class scores (2 classes, argmax != 0)", [64, 64]),
])
def test_onnx_masks_iou(disks, tmp_path, kind, in_shape, options, want_kind, want_size):
    cap, truth = disks
    path = red_minus_blue(tmp_path / f"{kind}.onnx", kind, in_shape)
    out = segment_capture(cap, "onnx", model_path=path, **options)
    ious = [iou(a, b) for a, b in zip(out.masks, truth)]
    print(f"onnx masks ({kind}, {in_shape}): IoU {[round(x, 4) for x in ious]}")
    assert min(ious) >= 0.95
    assert [m.shape for m in out.masks] == [img.shape[:2] for img in cap.images]
    meta = out.meta["masks"]
    assert meta["method"] == "onnx" and meta["model"] == f"{kind}.onnx" and len(meta["model_sha256"]) == 16
    assert meta["output"] == want_kind and meta["input_size"] == want_size


def test_onnx_integer_labels(disks, tmp_path):
    """A model with the argmax inside: (N, 1, H, W) int64 labels, subject = label != 0."""
    cap, truth = disks
    w = np.array([1.0, 0.0, -1.0], np.float32) * 20
    inits = {"w": np.stack([-w, w]).reshape(2, 3, 1, 1), "b": np.zeros(2)}
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["scores"]),
             helper.make_node("ArgMax", ["scores"], ["out"], axis=1, keepdims=1)]
    path = save_model(tmp_path / "labels.onnx", nodes, inits, out_type=TensorProto.INT64)
    out = segment_capture(cap, "onnx", model_path=path)
    assert min(iou(a, b) for a, b in zip(out.masks, truth)) >= 0.95
    assert out.meta["masks"]["output"] == "class labels (!= 0)"


def test_onnx_errors(disks, tmp_path):
    cap, _ = disks
    missing = tmp_path / "missing.onnx"
    with pytest.raises(InputError) as e:
        segment_capture(cap, "onnx", model_path=missing)
    assert str(e.value) == f"{missing}: ONNX model file not found"

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\x01\x02" * 10)
    with pytest.raises(InputError) as e:
        segment_capture(cap, "onnx", model_path=garbage)
    assert str(e.value).startswith(f"{garbage}: not a valid ONNX model (") and "\n" not in str(e.value)

    flat = red_minus_blue(tmp_path / "flat.onnx", "flat")
    with pytest.raises(InputError) as e:
        segment_capture(cap, "onnx", model_path=flat)
    assert str(e.value).startswith(f"{flat}: cannot read model output 'out' of shape [1, 6144] (float32) as masks; "
                                   f"expected (N, 1, H, W)")

    rank3 = save_model(tmp_path / "rank3.onnx", [helper.make_node("Identity", ["image"], ["out"])], {},
                       in_shape=("N", 3, "H"), out_shape=("N", 3, "H"))
    with pytest.raises(InputError, match=r"rank3.onnx: model input 'image' has shape \['N', 3, 'H'\]; expected"):
        segment_capture(cap, "onnx", model_path=rank3)
    grey = save_model(tmp_path / "grey.onnx", [helper.make_node("Identity", ["image"], ["out"])], {},
                      in_shape=("N", 1, "H", "W"))
    with pytest.raises(InputError, match=r"grey.onnx: model input 'image' has shape \['N', 1, 'H', 'W'\]"):
        segment_capture(cap, "onnx", model_path=grey)

    good = red_minus_blue(tmp_path / "good.onnx")
    with pytest.raises(InputError, match=r"good.onnx: output_index 1 is out of range \(the model has 1 outputs: out\)"):
        segment_capture(cap, "onnx", model_path=good, output_index=1)
    with pytest.raises(InputError, match=r"onnx mean must be 1 or 3 numbers in \[0, 1\]"):
        segment_capture(cap, "onnx", model_path=good, mean=(123.7, 116.3, 103.5))
    with pytest.raises(InputError, match=r"onnx threshold must be a number in \(0, 1\)"):
        segment_capture(cap, "onnx", model_path=good, threshold=2)


def test_onnx_runtime_missing(disks, tmp_path, monkeypatch):
    import sys

    from recon.core.errors import MissingDependencyError

    good = red_minus_blue(tmp_path / "good.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingDependencyError, match=r"the onnx segmenter needs the optional package "
                                                     r"'onnxruntime': pip install 'recon\[onnx\]'"):
        segment_capture(disks[0], "onnx", model_path=good)
