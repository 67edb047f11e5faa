"""report.html: one self-contained page per asset that works offline.

It shows the inputs (a strip of capture frames), the baked asset rendered beside the
held-out photos, for a rigged asset its motion (the input frames beside the model replaying
them, and the rest-pose turntable; mp4s embedded as base64), the metrics, the textures, and
an interactive 3D view (playing a rigged asset's animation): Google's
``<model-viewer>`` (Apache-2.0, three.js inside, MIT) inlined from the package's
``static/`` folder (copied there from npm by scripts/setup.sh) with the .glb embedded
as base64. Without the bundle the page still renders, with the thumbnail instead.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.log import get_logger

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
VIEWER_JS = "model-viewer.min.js"
# the npm install the bundle is copied from (a source checkout without setup.sh's copy step)
_NPM_VIEWER = Path(__file__).resolve().parents[2] / "tools/node_modules/@google/model-viewer/dist/model-viewer-umd.min.js"


def viewer_script() -> str | None:
    """The <model-viewer> bundle's JavaScript, or None when it is not installed."""
    for p in (STATIC / VIEWER_JS, _NPM_VIEWER):
        if p.is_file():
            js = p.read_text(encoding="utf-8")
            js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)  # no map to fetch offline
            return js.replace("</script", "<\\/script")
    return None


def _img_uri(img: np.ndarray, max_side: int | None = None, fmt: str = "JPEG") -> str:
    im = Image.fromarray(img)
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.convert("RGB").save(buf, format="JPEG", quality=88)
    else:
        im.save(buf, format="PNG")
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


def _video_tag(mp4: bytes, caption: str) -> str:
    """A looping, muted, autoplaying <video> with ``mp4`` inlined as a data URI, captioned."""
    src = "data:video/mp4;base64," + base64.b64encode(mp4).decode()
    return (f"<figure><video autoplay loop muted playsinline src='{src}'></video>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return html.escape(json.dumps(v))
    return html.escape(str(v))


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin:28px 0 8px;font-size:18px}.sub{color:#666;margin-bottom:16px}
.strip{display:flex;gap:6px;overflow-x:auto}.strip img{height:96px;border-radius:3px}
.pairs{display:flex;flex-wrap:wrap;gap:14px}.pair{background:#fff;padding:6px;border-radius:4px}
.pair img{width:200px;height:auto;display:inline-block}.pair div{font-size:12px;color:#555}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left;font-size:14px}
.textures img{width:200px;margin-right:8px;border:1px solid #ddd}
.videos{display:flex;flex-wrap:wrap;gap:14px}
.videos figure{margin:0;background:#fff;padding:6px;border-radius:4px}
.videos video{height:256px;display:block}.videos figcaption{font-size:12px;color:#555;margin-top:4px}
model-viewer{width:640px;height:480px;background:#fff;border:1px solid #ddd}
"""


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` with the background outside ``mask`` (H, W) 0/255 dimmed and the
    mask's outline drawn, so a person can check the subject masks at a glance."""
    import cv2

    inside = mask > 127
    out = np.ascontiguousarray(np.where(inside[..., None], image, (image * 0.35 + 40).astype(np.uint8)),
                               dtype=np.uint8)  # OpenCV draws into C-ordered arrays only
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (0, 255, 120), max(1, round(max(image.shape[:2]) / 200)))
    return out


def viewer_camera(c2w: np.ndarray, fy: float, height: int, center: np.ndarray) -> dict[str, str]:
    """<model-viewer> attributes that open the 3D view at a photo's camera (roll aside: the viewer
    keeps +Y up). c2w: (4, 4) OpenCV camera-to-world in the asset's frame; center: the asset's
    bounding-box centre, projected on the optical axis to give the orbit's target."""
    p, z = c2w[:3, 3], c2w[:3, 2] / np.linalg.norm(c2w[:3, 2])
    target = p + z * max(float((np.asarray(center) - p) @ z), 1e-6)
    off = p - target
    r = float(np.linalg.norm(off))
    theta, phi = np.degrees(np.arctan2(off[0], off[2])), np.degrees(np.arccos(np.clip(off[1] / r, -1, 1)))
    fov = np.degrees(2 * np.arctan(height / 2 / fy))
    return {"camera-orbit": f"{theta:.3f}deg {phi:.3f}deg {r:.6g}m",
            "camera-target": " ".join(f"{v:.6g}m" for v in target), "field-of-view": f"{fov:.3f}deg",
            "min-camera-orbit": "auto auto 0m", "min-field-of-view": "1deg", "max-field-of-view": "120deg"}


def build_report(name: str, glb: bytes, metrics: dict, thumb: np.ndarray | None = None,
                 inputs: list[np.ndarray] = (), pairs: list[tuple[np.ndarray, np.ndarray, str]] = (),
                 textures: dict[str, np.ndarray] | None = None, camera: dict[str, str] | None = None,
                 masks_note: str | None = None, motion: bytes | None = None, turntable: bytes | None = None,
                 animation: str | None = None, relit: dict[str, bytes] | None = None,
                 procedural: tuple[list[dict], np.ndarray, np.ndarray] | None = None) -> str:
    """The report page as a string.

    inputs: capture frames (H, W, 3) uint8 for the strip (with their masks overlaid, ``mask_overlay``,
    when the capture has masks; ``masks_note`` says where they came from); pairs: (photo, render, caption)
    for held-out views; textures: name -> (H, W, 3) uint8 texture shown small; camera: where
    the 3D view opens (``viewer_camera``: the first held-out photo's camera), else model-viewer's default.
    motion / turntable: mp4 bytes (``preview.write_motion_video``, turntable.mp4) for the Motion section;
    animation: the glb's animation the 3D view plays (a rigged asset's ``writers.glb.ANIMATION``);
    relit: light name -> mp4 bytes, a PBR asset turning under other lights (the Relit section).
    procedural: (one row per region, the atlas coloured by region, the albedo regenerated from the procedural
    materials) for the Procedural materials section.
    """
    from .. import __version__

    js = viewer_script()
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(name)} - recon</title>",
             f"<style>{_CSS}</style>"]
    if js is not None:
        parts.append(f"<script>{js}</script>")
    parts.append("</head><body>")
    rig = f", {_fmt(metrics['joints'])} joints, {_fmt(metrics.get('animation_keys', '?'))} animation keys" \
        if "joints" in metrics else ""
    parts.append(f"<h1>{html.escape(name)}</h1><div class=sub>recon {html.escape(__version__)} asset report: "
                 f"{metrics.get('triangles', '?')} triangles, {metrics.get('texture_size', '?')} px textures"
                 f"{rig}</div>")

    parts.append("<h2>3D view</h2>")
    if js is not None:
        src = "data:model/gltf-binary;base64," + base64.b64encode(glb).decode()
        # a radiance asset is unlit: shown as captured, without tone mapping or a cast shadow
        look = 'tone-mapping="none" shadow-intensity="0"' if metrics.get("material") == "radiance" else \
            'shadow-intensity="0.6"'
        cam = "".join(f' {k}="{html.escape(v)}"' for k, v in (camera or {}).items())
        anim = f' autoplay animation-name="{html.escape(animation)}"' if animation else ""  # a rigged asset plays
        parts.append(f'<model-viewer id=viewer src="{src}" alt="{html.escape(name)}" camera-controls '
                     f'auto-rotate auto-rotate-delay="5000" interaction-prompt="none" {look}{cam}{anim} '
                     'exposure="1" loading="eager"></model-viewer>')
        if camera:
            parts.append("<div class=sub>The view opens at the first held-out photo's camera.</div>")
        # load/error flags let a test (or a person) tell that the model displayed
        parts.append("<script>const mv=document.getElementById('viewer');"
                     "mv.addEventListener('load',()=>document.body.dataset.modelLoaded='1');"
                     "mv.addEventListener('error',()=>document.body.dataset.modelError='1');</script>")
    elif thumb is not None:
        log.warning("report: <model-viewer> bundle not installed (run scripts/setup.sh); no interactive view")
        parts.append(f"<p>Interactive view unavailable (viewer not installed).</p><img src='{_img_uri(thumb, fmt='PNG')}'>")

    if len(inputs):
        note = f", subject masks overlaid: {html.escape(masks_note)}" if masks_note else ""
        parts.append(f"<h2>Inputs ({len(inputs)} frames shown{note})</h2><div class=strip>")
        parts += [f"<img src='{_img_uri(im, 192)}'>" for im in inputs]
        parts.append("</div>")
    if relit:
        parts.append("<h2>Relit</h2><div class=videos>")
        parts += [_video_tag(data, f"under {html.escape(name)}") for name, data in relit.items()]
        parts.append("</div>")
    if motion is not None or turntable is not None:
        parts.append("<h2>Motion</h2><div class=videos>")
        if motion is not None:
            parts.append(_video_tag(motion, "input frames (masks overlaid) beside the fitted model replaying "
                                            "their motion"))
        if turntable is not None:
            parts.append(_video_tag(turntable, "the rest pose (turntable)"))
        parts.append("</div>")
    if len(pairs):
        parts.append("<h2>Held-out views: photo | baked asset</h2><div class=pairs>")
        for photo, rendered, caption in pairs:
            parts.append(f"<div class=pair><img src='{_img_uri(photo, 400)}'><img src='{_img_uri(rendered, 400)}'>"
                         f"<div>{html.escape(caption)}</div></div>")
        parts.append("</div>")

    parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>")
    parts += [f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in metrics.items()]
    parts.append("</table>")
    if textures:
        parts.append("<h2>Textures</h2><div class=textures>")
        parts += [f"<img title='{html.escape(k)}' alt='{html.escape(k)}' src='{_img_uri(t, 512, 'PNG')}'>"
                  for k, t in textures.items()]
        parts.append("</div>")
    if procedural is not None:
        rows, regions, regenerated = procedural
        parts.append("<h2>Procedural materials</h2><div class=sub>Each region of like material explained by a "
                     "resolution-free procedural material (materials.json; <code>recon export --texture-size N"
                     "</code> regenerates it at any size). PSNR: the procedural albedo against the fitted albedo "
                     "over the region's texels, beside the region's mean colour; a stochastic family (noise, cells, "
                     "brushed) matches statistics, not texels (stats error: variogram + histogram, 0 = same). "
                     "Export regenerates only the regions close enough to their texture (used on export); the "
                     "picture shows every region's procedural albedo."
                     "</div><table><tr><th>region</th><th>family</th><th>area</th><th>PSNR dB</th>"
                     "<th>mean colour dB</th><th>stats error</th><th>used on export</th></tr>")
        for r in rows:
            colour = "#" + "".join(f"{round(255 * v):02x}" for v in r.get("mean_albedo_srgb", [0.5] * 3))
            stats = _fmt(r["stats_error"]) if "stats_error" in r else "-"
            parts.append(f"<tr><td><span style='background:{colour};padding:0 10px'>&nbsp;</span> {r['region']}</td>"
                         f"<td>{html.escape(r['family'])}</td><td>{100 * r.get('area_fraction', 0):.0f}%</td>"
                         f"<td>{_fmt(r['psnr'])}</td><td>{_fmt(r['psnr_uniform'])}</td><td>{stats}</td>"
                         f"<td>{'yes' if r.get('accepted') else 'no'}</td></tr>")
        parts.append("</table><div class=textures>"
                     f"<img title='regions' alt='regions' src='{_img_uri(regions, 512, 'PNG')}'>"
                     f"<img title='albedo from the procedural materials' alt='procedural albedo' "
                     f"src='{_img_uri(regenerated, 512, 'PNG')}'></div>")
    if "<video" in "".join(parts):  # flags a test (or a person) can read: every video decoded its first frame
        parts.append("<script>{const vs=[...document.querySelectorAll('video')];let n=0;"
                     "const ok=()=>{if(++n===vs.length)document.body.dataset.videosLoaded='1'};"
                     "vs.forEach(v=>{v.addEventListener('error',()=>document.body.dataset.videoError='1');"
                     "if(v.readyState>=2)ok();else v.addEventListener('loadeddata',ok,{once:true});});}</script>")
    parts.append("</body></html>")
    return "".join(parts)
