"""``recon relight``: a PBR asset rendered under another environment light, as a picture or a turntable."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from ..core.fsutil import atomic_write_bytes
from .writers import read_mesh

OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".mp4")


def _asset_glb(asset: Path) -> Path:
    if asset.is_file() and asset.suffix.lower() == ".glb":
        return asset
    if asset.is_dir():
        glbs = sorted(asset.glob("*.glb"))
        if glbs:
            return glbs[0]
        raise InputError(asset, "no .glb asset in the folder")
    raise InputError(asset, "not an asset folder or a .glb file")


def relight_asset(asset: str | Path, env: str | Path, out: str | Path, size: int = 512, frames: int = 48,
                  exposure: float = 1.0) -> Path:
    """Render the asset (a folder holding a .glb, or the .glb) under ``env`` (an .hdr/.exr file or the name of
    an installed map) into ``out``: a .png/.jpg (the turntable's first view) or an .mp4 turntable."""
    from ..render.environment import load_environment, resolve_environment
    from .preview import encode_video, turntable
    from .writers._png import encode_png

    out = Path(out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise InputError(out, f"output must be one of {', '.join(OUT_SUFFIXES)}")
    if size < 16 or frames < 2:
        raise InputError(None, f"need --size >= 16 and --frames >= 2 (got {size}, {frames})")
    mesh = read_mesh(_asset_glb(Path(asset)))
    if mesh.unlit:
        raise InputError(Path(asset), "this asset holds captured radiance (its lighting is baked in): refit it "
                                      "with --materials pbr to relight it")
    light = load_environment(resolve_environment(env)) * float(exposure)
    movie = out.suffix.lower() == ".mp4"
    images = turntable(mesh, frames if movie else 1, size, light=light)
    if movie:
        data = encode_video(images, what=out.name)[0]
    elif out.suffix.lower() == ".png":
        data = encode_png(images[0])
    else:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(images[0]).save(buf, format="JPEG", quality=92)
        data = buf.getvalue()
    atomic_write_bytes(out, data)
    return out
