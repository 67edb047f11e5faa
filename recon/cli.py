"""The ``recon`` command line: parses arguments, loads config, calls the API. Nothing else."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _add_config_args(p: argparse.ArgumentParser, default_preset: str | None = "object-fast") -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--preset", default=default_preset,
                   help=f"YAML preset from configs/ (default: {default_preset})")
    g.add_argument("--config", metavar="FILE", help="YAML config file applied after the preset")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set capture.max_frames=40 (repeatable)")
    g.add_argument("--seed", type=int, help="random seed (overrides config 'seed')")


def _add_common_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info logs")
    g.add_argument("--log-json", metavar="FILE", help="append JSON-lines logs to FILE ('-' for stdout)")
    g.add_argument("--verbose", "-v", action="store_true", help="debug logs")


def _resolve_config(args):
    from .core.config import load_config

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load_config(args.preset, args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon",
        description="Turn photos and videos of real things into production 3D assets.")
    parser.add_argument("--version", action="version", version=f"recon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "capture", help="read a video, image folder, transforms.json, COLMAP or DTU capture into a capture folder",
        description="Read SOURCE (video, image folder, transforms.json, COLMAP model, IDR/DTU folder), "
                    "select frames, solve cameras with SfM when the source has none, normalise the scene "
                    "to the unit sphere, and write OUT/{frames,masks}/, transforms.json and capture.json.")
    p.add_argument("source", help="video file or capture folder")
    p.add_argument("--out", required=True, help="output capture folder (written atomically)")
    p.add_argument("--max-frames", type=int, help="frames kept from a video (config capture.max_frames)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_config_args(p)
    _add_common_args(p)
    p.set_defaults(func=_cmd_capture)

    p = sub.add_parser(
        "synth", help="render a mesh from known cameras into a capture with ground truth",
        description="Render MESH (any format trimesh reads; textured, or with a procedural texture) from "
                    "cameras on a sphere into RGBA images, masks, depth and normals, written as a capture "
                    "folder with transforms.json (train/test) and the ground-truth mesh.")
    p.add_argument("mesh", help="mesh file (.ply .obj .glb .gltf ...)")
    p.add_argument("--out", required=True, help="output capture folder (written atomically)")
    p.add_argument("--views", type=int, default=60, help="training views (default 60)")
    p.add_argument("--test-views", type=int, default=10, help="held-out test views (default 10)")
    p.add_argument("--size", type=int, default=256, help="image width and height in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed for camera placement (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_common_args(p)
    p.set_defaults(func=_cmd_synth)
    return parser


def _cmd_capture(args) -> int:
    from .capture import capture_to_folder
    from .core.config import write_config

    if args.max_frames is not None:
        args.overrides.append(f"capture.max_frames={args.max_frames}")
    cfg = _resolve_config(args)
    cap = capture_to_folder(args.source, args.out, cfg.capture, overwrite=args.overwrite)
    write_config(cfg, Path(args.out) / "config.yaml")
    n_train, n_test = len(cap.split_indices("train")), len(cap.split_indices("test"))
    print(f"{args.out}: {len(cap)} frames ({n_train} train, {n_test} test)")
    return 0


def _cmd_synth(args) -> int:
    from .synth import synth_capture

    synth_capture(args.mesh, args.out, views=args.views, test_views=args.test_views, size=args.size,
                  seed=args.seed, overwrite=args.overwrite)
    print(f"{args.out}: {args.views} train + {args.test_views} test views of {args.mesh}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .core.errors import ReconError
    from .core.log import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(quiet=getattr(args, "quiet", False), json_path=getattr(args, "log_json", None),
                  verbose=getattr(args, "verbose", False))
    try:
        return int(args.func(args) or 0)
    except ReconError as exc:
        print(f"recon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
