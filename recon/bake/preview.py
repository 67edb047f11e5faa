"""Pictures of a baked asset: thumbnail, turntable video, renders at the capture's cameras, and for a
rigged asset the motion video (each input frame beside the asset posed at its instant).

All rendering goes through ``recon.render.mesh_render.render_views`` (the project's mesh renderer):
the baked mesh with its base-colour texture, unlit where that colour is the captured
radiance (lighting already in it: lit again it would be lit twice) and for comparisons
with photos; a ``pbr`` mesh's previews are lit (``lambert``).
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..core.types import Cameras
from .textured_mesh import TexturedMesh


def synth_mesh(mesh: TexturedMesh):
    """The asset as a ``recon.synth.Mesh`` (texture float sRGB, OpenGL-style uvs)."""
    from ..synth.mesh import Mesh

    pos = mesh.positions.astype(np.float64)
    lo, hi = pos.min(0), pos.max(0)
    center = (lo + hi) / 2
    return Mesh(vertices=pos, faces=mesh.faces.astype(np.int64),
                uv=np.stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]], -1).astype(np.float32),
                texture=mesh.base_color.astype(np.float32) / 255.0, vertex_colors=None, procedural=None,
                center=center, radius=float(np.linalg.norm(pos - center, axis=1).max()), source="baked")


def orbit_cameras(center: np.ndarray, radius: float, n: int, size: int, up=(0.0, 1.0, 0.0),
                  elevation_deg: float = 20.0, fov_deg: float = 35.0, fill: float = 0.8) -> Cameras:
    """``n`` square cameras on a circle around ``up`` through ``center``, looking at it."""
    from ..synth.cameras import distance_for_fill, look_at

    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    a = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 0, 1.0])
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    dist = distance_for_fill(radius, fov_deg, fill)
    el = math.radians(elevation_deg)
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    dirs = (np.cos(el) * (np.cos(t)[:, None] * a + np.sin(t)[:, None] * b) + math.sin(el) * up)
    eyes = np.asarray(center, np.float64) + dist * dirs
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    return Cameras.create(look_at(eyes, center, up), f, f, size / 2, size / 2, size, size)


def render(mesh: TexturedMesh, cameras: Cameras, lit: bool | None = None, supersample: int = 2,
           light: np.ndarray | None = None, to_light: np.ndarray | None = None) -> list[dict]:
    """``render_views`` of the asset: dicts with rgb (H, W, 3) float in [0, 1] over white and alpha.

    lit: shaded; None: lit unless the mesh's colour is radiance. A lit ``pbr`` mesh under an environment
    ``light`` ((h, 2h, 3) linear equirectangular map, +Y up; ``to_light`` rotates the mesh frame into it)
    is shaded with its materials (``recon.materials.PbrShader``); otherwise lit means Lambert under a
    fixed light.
    """
    from ..render.mesh_render import render_views

    if lit is None:
        lit = not mesh.unlit
    shader = None
    if lit and light is not None and not mesh.unlit:
        import torch

        from ..materials import PbrShader
        from ..render.environment import LightProbe

        shader = PbrShader(mesh, LightProbe.from_map(torch.as_tensor(light)), to_light)
    return render_views(synth_mesh(mesh), cameras, supersample=supersample,
                        shading="lambert" if lit else "unlit", shader=shader)


def turntable(mesh: TexturedMesh, frames: int, size: int, up=(0.0, 1.0, 0.0), light: np.ndarray | None = None
              ) -> list[np.ndarray]:
    """One revolution around ``up``: ``frames`` (size, size, 3) uint8 images (a pbr mesh under ``light``
    when given, see ``render``)."""
    sm = synth_mesh(mesh)
    cams = orbit_cameras(sm.center, sm.radius, frames, size, up)
    return [_u8(v["rgb"]) for v in render(mesh, cams, light=light)]


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def encode_video(frames: list[np.ndarray], fps: int = 24, what: str = "turntable.mp4") -> tuple[bytes, str]:
    """MP4 bytes of ``frames`` (H.264 when PyAV's FFmpeg has an encoder for it, else MPEG-4 part 2)
    and the codec used; ``what`` names the file in the error without an encoder."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        for codec in ("libx264", "h264", "mpeg4"):
            try:
                stream = out.add_stream(codec, rate=fps)
                break
            except (ValueError, av.error.FFmpegError):
                continue
        else:  # pragma: no cover - depends on the FFmpeg build
            from ..core.errors import MissingDependencyError

            raise MissingDependencyError(
                "av", what, need="an H.264 or MPEG-4 video encoder, which PyAV's FFmpeg lacks",
                hint="install PyAV's binary wheel, which bundles one (pip install --force-reinstall av)")
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        if stream.codec_context.name == "mpeg4":
            stream.bit_rate = 4_000_000
        else:
            stream.options = {"crf": "20"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        name = stream.codec_context.name
    return buf.getvalue(), name


def write_previews(mesh: TexturedMesh, out_dir: Path, frames: int, size: int, up=(0.0, 1.0, 0.0),
                   light: np.ndarray | None = None) -> dict:
    """thumb.png (the first turntable frame) and turntable.mp4 in ``out_dir`` (a pbr mesh under ``light``,
    the recovered capture light, when given).

    Returns {"thumb": the thumbnail (size, size, 3) uint8, "turntable_codec": codec name}.
    """
    from .writers._png import encode_png

    images = turntable(mesh, frames, size, up, light)
    (out_dir / "thumb.png").write_bytes(encode_png(images[0]))
    data, codec = encode_video(images)
    (out_dir / "turntable.mp4").write_bytes(data)
    return {"thumb": images[0], "turntable_codec": codec}


def relit_turntables(mesh: TexturedMesh, frames: int, size: int, lights: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Name -> mp4 bytes: a pbr mesh turning under each environment light (the report's relit turntables)."""
    return {name: encode_video(turntable(mesh, frames, size, light=env), what=f"relit turntable ({name})")[0]
            for name, env in lights.items()}


def _resized(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: ``img`` resized."""
    from PIL import Image

    if img.shape[:2] == (height, width):
        return img
    return np.asarray(Image.fromarray(img).resize((width, height), Image.LANCZOS))


def _instants(capture) -> np.ndarray:
    """(N,) int64 source frame index of each capture frame (``frames[i].index``, else its position)."""
    return np.array([i if f.index is None else f.index for i, f in enumerate(capture.frames)], np.int64)


def frames_in_order(capture, max_frames: int) -> np.ndarray:
    """Indices of the capture's frames in source order (``_instants``), at most ``max_frames`` spread
    evenly over them."""
    order = np.argsort(_instants(capture), kind="stable")
    return order[np.unique(np.linspace(0, len(order) - 1, min(max_frames, len(order))).round().astype(int))]


def _motion_fps(instants: np.ndarray, capture, default: int = 12) -> int:
    """Frames per second that replay ``instants`` at the source's speed (``rigging.key_times``), 1..30."""
    from .rigging import key_times

    span = key_times(instants, capture)[-1] if len(instants) > 1 else 0.0
    return int(np.clip(round((len(instants) - 1) / span), 1, 30)) if span > 0 else default


def write_motion_video(asset: TexturedMesh, capture, normalization: np.ndarray, path: Path, size: int = 256,
                       max_frames: int = 120) -> dict:
    """``path`` (mp4): each capture frame (source order, masks overlaid) beside ``asset`` posed at its
    instant (``rigging.posed_at``) rendered unlit from its camera, both ``size`` px high.

    asset: in the frame ``inv(normalization)`` maps the capture's (normalised) cameras to; every panel has
    the first picked frame's aspect ratio. Returns {"motion_codec": codec, "motion_frames": n}.
    """
    from .report import mask_overlay
    from .rigging import posed_at

    pick = frames_in_order(capture, max_frames)
    cams = capture.cameras[pick].transformed(np.linalg.inv(normalization))
    h0, w0 = int(cams.height[0]), int(cams.width[0])
    width = max(2, round(w0 * size / h0))
    instants = _instants(capture)[pick]
    images = []
    for k, i in enumerate(pick):
        photo = capture.images[i] if capture.masks is None else mask_overlay(capture.images[i], capture.masks[i])
        cam = cams[[k]].scaled(size / float(cams.height[k]))
        view = render(posed_at(asset, int(instants[k])), cam, lit=False)[0]
        images.append(np.concatenate([_resized(photo, width, size), _resized(_u8(view["rgb"]), width, size)], 1))
    data, codec = encode_video(images, fps=_motion_fps(instants, capture), what=Path(path).name)
    Path(path).write_bytes(data)
    return {"motion_codec": codec, "motion_frames": len(images)}
