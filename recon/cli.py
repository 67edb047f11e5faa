"""The ``recon`` command line: parses arguments, loads config, calls the API. Nothing else."""
from __future__ import annotations

import argparse
import json
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
        description="Turn photos and videos of real things into production 3D assets.",
        epilog="Exit codes: 0 done; 2 bad input (one line naming the file and the problem); 1 an internal "
               "failure (one line; its traceback goes to ~/.recon/logs/, printed too with --verbose).")
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
    _add_up_arg(p)
    _add_mask_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_config_args(p)
    _add_common_args(p)
    p.set_defaults(func=_cmd_capture)

    p = sub.add_parser(
        "synth", help="render a mesh (or a walking rigged critter) into a capture with ground truth",
        description="Render MESH (any format trimesh reads; textured, or with a procedural texture) from "
                    "cameras on a sphere into RGBA images, masks, depth and normals, written as a capture "
                    "folder with transforms.json (train/test) and the ground-truth mesh. With --articulated "
                    "instead of MESH: a procedural rigged quadruped walking for --frames instants, filmed by "
                    "a moving training camera (t_000...) and a second test camera at the same instants "
                    "(c2_000...), with the posed mesh per instant (gt_posed/) and the rig (gt_rig.npz).")
    p.add_argument("mesh", nargs="?", help="mesh file (.ply .obj .glb .gltf ...); omit with --articulated")
    p.add_argument("--articulated", action="store_true",
                   help="render the built-in walking critter instead of a mesh")
    p.add_argument("--still", action="store_true",
                   help="--articulated: the critter holds its rest pose while the cameras move (a static subject)")
    p.add_argument("--out", required=True, help="output capture folder (written atomically)")
    p.add_argument("--views", type=int, default=60, help="training views (default 60; mesh only)")
    p.add_argument("--test-views", type=int, default=10, help="held-out test views (default 10; mesh only)")
    p.add_argument("--frames", type=int, default=60,
                   help="animation instants at 30 fps (default 60; --articulated only)")
    p.add_argument("--size", type=int, default=None,
                   help="image width and height in pixels (default 256, or 128 with --articulated)")
    p.add_argument("--seed", type=int, default=0, help="random seed for cameras and pattern (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_common_args(p)
    p.set_defaults(func=_cmd_synth)
    _add_library_parser(sub)
    _add_ingest_parser(sub)
    _add_export_parser(sub)
    _add_relight_parser(sub)
    _add_fit_parser(sub)
    return parser


def _add_mask_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "subject masks (config capture.segmenter)",
        "By default a capture's own masks are used; without any, the subject is found automatically: if it moves against the background (its flow breaks the "
        "background's rigid motion), by that motion, else as what the cameras converge on. The run says "
        "which it picked and why; recon capture writes the masks to DIR/masks/ for you to inspect")
    m = g.add_mutually_exclusive_group()
    m.add_argument("--masks", metavar="PATH", help="your masks: a folder of mask images named like the frames "
                                                   "(255 = subject), or a mask video")
    m.add_argument("--subject-box", metavar="X0,Y0,X1,Y1",
                   help="a box around the subject in one frame (source pixels); refined with GrabCut and "
                        "followed through the other frames with optical flow")
    m.add_argument("--auto-masks", action="store_true",
                   help="find the subject automatically even if the source has masks (static or motion, picked)")
    m.add_argument("--static-masks", action="store_true",
                   help="a still subject: what the cameras converge on, refined per frame")
    m.add_argument("--motion-masks", action="store_true",
                   help="a subject that moves against the background (its flow disagrees with the "
                        "background's motion), refined per frame")
    m.add_argument("--onnx-masks", metavar="MODEL.onnx",
                   help="run your ONNX segmentation model (needs onnxruntime: pip install 'recon[onnx]')")
    m.add_argument("--people-masks", choices=["selfie", "pose"], nargs="?", const="selfie",
                   help="people, with MediaPipe selfie (default) or pose segmentation (needs the humans extra)")
    m.add_argument("--no-masks", action="store_true", help="no masks at all (the source's own are ignored)")
    g.add_argument("--subject-points", metavar="X,Y,L[;X,Y,L...]",
                   help="with --subject-box: clicks in the same frame, L = 1 on the subject (a part GrabCut missed, "
                        "e.g. one coloured like the background), L = 0 on background it took")
    g.add_argument("--prompt-frame", type=int, help="the frame --subject-box is drawn in (default 0)")


def _prompt_points(text: str | None) -> list[str]:
    """The config override for ``--subject-points "x,y,label;..."`` (none when not given)."""
    if not text:
        return []
    from .core.errors import InputError

    points = []
    for item in text.split(";"):
        try:
            x, y, label = (float(v) for v in item.split(","))
        except ValueError:
            x = y = label = float("nan")
        if label not in (0.0, 1.0):
            raise InputError(None, f"--subject-points wants x,y,label triples with label 1 (subject) or 0 "
                                   f"(background), separated by ';' (got '{item}')")
        points.append([x, y, int(label)])
    return [f"capture.subject_points={json.dumps(points)}"]


def _mask_overrides(args) -> list[str]:
    """config overrides for the mask options given on the command line."""
    if args.masks:
        return ["capture.segmenter=folder", f"capture.masks_path={json.dumps(str(args.masks))}"]
    if args.subject_box:
        from .core.errors import InputError

        try:
            box = [float(v) for v in args.subject_box.split(",")]
        except ValueError:
            box = []
        if len(box) != 4:
            raise InputError(None, f"--subject-box wants four numbers x0,y0,x1,y1 (got '{args.subject_box}')")
        return ["capture.segmenter=prompt", f"capture.subject_box={box}"] + _prompt_points(args.subject_points) + \
            ([f"capture.prompt_frame={args.prompt_frame}"] if args.prompt_frame is not None else [])
    if args.subject_points:
        from .core.errors import InputError

        raise InputError(None, "--subject-points needs --subject-box (the clicks refine a box prompt)")
    if args.onnx_masks:
        return ["capture.segmenter=onnx", f"capture.onnx_model={json.dumps(str(args.onnx_masks))}"]
    if args.people_masks:
        return ["capture.segmenter=people", f"capture.people_mode={args.people_masks}"]
    if args.auto_masks:  # the source's own masks are dropped, so "auto" segments
        return ["capture.segmenter=auto", "capture.masks=none"]
    for flag, method in (("static_masks", "static"), ("motion_masks", "motion"), ("no_masks", "none")):
        if getattr(args, flag):
            return [f"capture.segmenter={method}"] + (["capture.masks=none"] if method == "none" else [])
    return []


def _add_up_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--up", choices=["x", "y", "z", "-x", "-y", "-z"],
                   help="the subject's up axis in the source's world (config capture.up; default: the source's "
                        "convention, e.g. +Z for Blender/nerfstudio transforms.json, else estimated from the "
                        "cameras). Assets are written with it along +Y, their base at y = 0")


def _cmd_capture(args) -> int:
    from .capture import capture_to_folder
    from .core.config import write_config
    from .pipeline import rigid_check

    for opt, key in ((args.max_frames, "capture.max_frames"), (args.up, "capture.up")):
        if opt is not None:
            args.overrides.append(f"{key}={opt}")
    args.overrides += _mask_overrides(args)
    cfg = _resolve_config(args)
    cap = capture_to_folder(args.source, args.out, cfg.capture, overwrite=args.overwrite, hull_iou=rigid_check(cfg))
    write_config(cfg, Path(args.out) / "config.yaml")
    n_train, n_test = len(cap.split_indices("train")), len(cap.split_indices("test"))
    up = cap.meta.get("up")
    up_text = f"; up {[round(v, 3) for v in up]} ({cap.meta.get('up_method')})" if up is not None else ""
    print(f"{args.out}: {len(cap)} frames ({n_train} train, {n_test} test){up_text}")
    return 0


def _cmd_synth(args) -> int:
    from .core.errors import InputError
    from .synth import synth_articulated, synth_capture

    if (args.mesh is None) == (not args.articulated):
        raise InputError(None, "give either a MESH file or --articulated (not both)" if args.articulated
                         else "give a MESH file to render, or --articulated for the walking critter")
    if args.articulated:
        size = 128 if args.size is None else args.size
        cap = synth_articulated(args.out, frames=args.frames, size=size, seed=args.seed, overwrite=args.overwrite,
                                still=args.still)
        n_test = len(cap.split_indices("test"))
        print(f"{args.out}: {'still' if args.still else 'walking'} critter, {args.frames} train + {n_test} test frames")
        return 0
    size = 256 if args.size is None else args.size
    synth_capture(args.mesh, args.out, views=args.views, test_views=args.test_views, size=size,
                  seed=args.seed, overwrite=args.overwrite)
    print(f"{args.out}: {args.views} train + {args.test_views} test views of {args.mesh}")
    return 0


def _add_library_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", metavar="PATH_OR_URL",
                   help="catalogue: a SQLite file or postgresql://user@host/db "
                        "(default: $RECON_LIBRARY or ~/.recon/library.db)")
    p.add_argument("--store", metavar="DIR_OR_URL",
                   help="blob store folder or fsspec URL (default: the one the catalogue recorded; "
                        "for a new SQLite library <file stem>.blobs beside it)")


def _add_library_parser(sub) -> None:
    lib = sub.add_parser("library", help="the asset library: list, show, find, export, remove, gc, verify",
                         description="Browse and maintain the asset library (catalogue + content-addressed blobs).")
    cmds = lib.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    def action(name: str, help: str, json_out: bool = True) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help, description=help)
        _add_library_args(p)
        if json_out:
            p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
        _add_common_args(p)
        p.set_defaults(func=_cmd_library)
        return p

    p = action("ls", "list assets (newest version of each name with --latest)")
    p.add_argument("--latest", action="store_true", help="only the newest version of each name")
    p = action("show", "show one asset: provenance, metrics, files")
    p.add_argument("asset", help="asset id (or unique prefix), NAME (latest version) or NAME@VERSION")
    p = action("find", "search assets")
    p.add_argument("--kind", help="the model really fitted: object, articulated, head, body or garment")
    p.add_argument("--tag", help="assets carrying this tag")
    p.add_argument("--name", help="name, '*' wildcards allowed")
    p.add_argument("--min-psnr", type=float,
                   help="the baked mesh's PSNR on held-out photos (metrics psnr_heldout_baked) at least this; "
                        "assets without one are left out (a field's or training-view PSNR does not count)")
    p.add_argument("--material", help="radiance (colour from the field) or pbr")
    p.add_argument("--latest", action="store_true", help="only the newest version of each name")
    p = action("add", "add an asset folder (what recon bake writes to OUT/asset)", json_out=True)
    p.add_argument("asset_dir", help="the asset folder")
    p.add_argument("--name", help="asset name (default: provenance.json, else the mesh file's stem)")
    p.add_argument("--tag", dest="tags", action="append", default=[], help="tag (repeatable)")
    p.add_argument("--kind", help="object, articulated, head, body or garment (default: provenance.json; "
                                  "refused if it contradicts the fitted kind recorded there)")
    p.add_argument("--licence", help="licence of the source capture")
    p.add_argument("--operator", help="who captured or ingested it")
    p.add_argument("--notes", help="free text")
    p = action("export", "write an asset as glb, obj (+mtl, textures), ply, or its whole folder", json_out=False)
    p.add_argument("asset", help="asset id (or unique prefix), NAME or NAME@VERSION")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (a folder for --format folder)")
    p.add_argument("--format", choices=["glb", "obj", "ply", "folder"], help="default: the --out suffix")
    p.add_argument("--landmarks", action="store_true",
                   help="also write the asset's landmark sets (a head's landmarks.json: Multi-PIE 68, dense, "
                        "MediaPipe 478, as triangle + barycentric) beside the file, as <stem>.landmarks.json")
    p.add_argument("--texture-size", type=int, metavar="N",
                   help="textures of N x N texels: the procedural material regions (a PBR asset's materials.json) "
                        "regenerated at that size, the rest resampled")
    p = action("rm", "remove assets (their blobs go when no other asset uses them)", json_out=False)
    p.add_argument("assets", nargs="+", help="asset ids, NAMEs or NAME@VERSIONs")
    action("gc", "delete unreferenced blobs and leftovers of interrupted writes", json_out=False)
    action("verify", "re-hash every blob; exit 1 if any is missing or corrupt")


def _cmd_library(args) -> int:
    from .library import Library, tables

    as_json = getattr(args, "json", False)
    cmd = args.library_command
    with Library(args.library, store=args.store, create=cmd in ("add", "rm", "gc")) as lib:
        if cmd == "ls":
            tables.print_assets(lib.find(latest=args.latest), lib.display_url, as_json)
        elif cmd == "find":
            found = lib.find(kind=args.kind, tag=args.tag, name=args.name, min_psnr=args.min_psnr,
                             material=args.material, latest=args.latest)
            tables.print_assets(found, "found", as_json)
        elif cmd == "show":
            tables.print_asset(lib.get(args.asset), as_json)
        elif cmd == "add":
            a = lib.add(args.asset_dir, name=args.name, tags=args.tags, kind=args.kind, licence=args.licence,
                        operator=args.operator, notes=args.notes)
            print(json.dumps(a.to_dict(), indent=2) if as_json else f"{a.id} {a.name} v{a.version}")
        elif cmd == "export":
            print(lib.export(args.asset, args.out, format=args.format, texture_size=args.texture_size))
            if args.landmarks:
                print(lib.export_landmarks(args.asset, args.out))
        elif cmd == "rm":
            for ref in args.assets:
                a = lib.remove(ref)
                print(f"removed {a.id} {a.name} v{a.version}")
        elif cmd == "gc":
            tables.print_gc(lib.gc())
        elif cmd == "verify":
            report = lib.verify()
            tables.print_verify(report, as_json)
            return 0 if report.ok else 1
    return 0


def _add_ingest_parser(sub) -> None:
    p = sub.add_parser(
        "ingest", help="turn a manifest of captures into library assets (resumable batch jobs)",
        description="Run capture -> fit -> bake -> library add for every capture of MANIFEST (YAML or CSV), "
                    "each job in its own work folder with its own log. Rerunning skips finished jobs and "
                    "retries failed ones. 'recon ingest status [MANIFEST]' shows the jobs' progress.")
    p.add_argument("manifest", metavar="MANIFEST", help="manifest file, or 'status'")
    p.add_argument("status_manifest", nargs="?", metavar="MANIFEST",
                   help="with 'status': only this manifest's jobs")
    _add_library_args(p)
    p.add_argument("--runner", choices=["local", "ray"], default="local",
                   help="local process pool (default) or a Ray cluster")
    p.add_argument("--workers", type=int, help="jobs at once (local default: min(4, CPUs); ray: cluster CPUs)")
    p.add_argument("--address", help="Ray cluster address (ray://host:10001 or host:6379; default: $RAY_ADDRESS, "
                                     "else the cluster `ray start` runs on this machine, else a new local Ray)")
    p.add_argument("--retries", type=int, default=2, help="extra attempts per failed job, across reruns (default 2)")
    p.add_argument("--work", metavar="DIR", help="work folders root (default: <manifest stem>-work beside it)")
    p.add_argument("--cpus-per-job", type=float, default=1.0, help="Ray: CPUs requested per job (default 1)")
    p.add_argument("--gpus-per-job", type=float, help="Ray: GPUs per job (default 1 if the cluster has GPUs, else 0)")
    p.add_argument("--pipeline", metavar="MODULE:FUNC",
                   help="advanced: a function (job, work_dir) -> asset folder replacing capture -> fit -> bake")
    p.add_argument("--json", action="store_true", help="status as JSON on stdout")
    _add_common_args(p)
    p.set_defaults(func=_cmd_ingest)


def _cmd_ingest(args) -> int:
    from .jobs.batch import ingest, job_states
    from .jobs.status import print_status

    if args.manifest == "status" and not Path("status").is_file():
        print_status(job_states(args.library, args.status_manifest, store=args.store), as_json=args.json)
        return 0
    if args.status_manifest:
        from .core.errors import InputError

        raise InputError(None, f"unexpected argument '{args.status_manifest}' (one manifest per run)")

    def event(st) -> None:
        from .core.log import log_event

        log_event("job", name=st.name, status=st.status, attempts=st.attempts, asset=st.asset_id,
                  error=st.error)

    result = ingest(args.manifest, library=args.library, store=args.store, runner=args.runner, workers=args.workers,
                    address=args.address, retries=args.retries, work_root=args.work, pipeline=args.pipeline,
                    cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job, on_event=event)
    print_status(result.states, as_json=args.json)
    return 0 if result.ok else 1


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="write a baked asset folder's mesh as .glb, .obj (+ .mtl + textures) or .ply",
        description="Read the .glb of ASSET_DIR (an <out>/asset folder written by the baker) and write it "
                    "as FORMAT to FILE, in the capture's units; OBJ writes its .mtl and PNG textures beside FILE.")
    p.add_argument("asset_dir", metavar="ASSET_DIR", help="baked asset folder (holds <name>.glb)")
    p.add_argument("--format", choices=["glb", "obj", "ply"], help="output format (default: FILE's extension)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file")
    p.add_argument("--texture-size", type=int, metavar="N",
                   help="textures of N x N texels: regions with procedural materials (a PBR asset's materials.json) "
                        "are regenerated at that size, the rest of the textures resampled")
    _add_common_args(p)
    p.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    from .bake import export_asset

    files = export_asset(args.asset_dir, args.format, args.out, args.texture_size)
    print(f"{args.out}: wrote {len(files)} file{'s' if len(files) > 1 else ''}")
    return 0


def _add_relight_parser(sub) -> None:
    p = sub.add_parser(
        "relight", help="render a PBR asset under another environment light: a picture or a turntable video",
        description="Render ASSET (an <out>/asset folder or its .glb; fitted with --materials pbr) under the "
                    "equirectangular HDR light ENV (.hdr or .exr, +Y up; or the name of a map installed by "
                    "scripts/setup.sh: apartment, city, studio, sunset, ...) into OUT: .png/.jpg (one view) or "
                    ".mp4 (a turntable).")
    p.add_argument("asset", metavar="ASSET", help="asset folder or .glb")
    p.add_argument("--env", required=True, metavar="ENV", help="environment map file or installed map name")
    p.add_argument("--out", required=True, metavar="OUT", help="output .png, .jpg or .mp4")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--frames", type=int, default=48, help="turntable frames for .mp4 (default 48)")
    p.add_argument("--exposure", type=float, default=1.0, help="scale on the light (default 1)")
    _add_common_args(p)
    p.set_defaults(func=_cmd_relight)


def _cmd_relight(args) -> int:
    from .bake.relight import relight_asset

    out = relight_asset(args.asset, args.env, args.out, args.size, args.frames, args.exposure)
    print(f"{out}: {args.asset} under {args.env}")
    return 0


def _add_fit_parser(sub) -> None:
    from .core.types import SUBJECT_KINDS

    p = sub.add_parser(
        "fit", help="capture -> fit -> bake: a video or capture in, a textured .glb asset out",
        description="Read the source (--video, or --data: an image folder, transforms.json, COLMAP, IDR/DTU or "
                    "recon capture folder), solve and normalise the cameras into OUT/capture/, fit a neural field "
                    "(hash-grid NeRF or NeuS SDF, per the preset) into OUT/fit/ (checkpoints, log.jsonl, eval.json "
                    "with held-out PSNR/SSIM), and bake it into OUT/asset/: NAME.glb/.obj/.ply with PBR textures, "
                    "metrics.json, thumb.png, turntable.mp4 and report.html. A head (--image PHOTO, or "
                    "--video FILE --subject head) skips SfM and the field: ICT-FaceKit's head is fitted to the "
                    "face's MediaPipe landmarks and baked with its 57 expressions as morph targets and "
                    "landmarks.json beside it.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="FILE", help="a video of the subject (frames picked, cameras from SfM)")
    src.add_argument("--data", metavar="DIR", help="capture folder or any source recon reads")
    src.add_argument("--image", metavar="FILE", help="one photo of a face (--subject head, the default for a photo)")
    p.add_argument("--subject", choices=("auto",) + SUBJECT_KINDS, default="auto",
                   help="what the capture shows (default auto: a subject that moves against the background "
                        "and does not move rigidly gets the articulated model, anything else the object "
                        "model; the run says which and why). 'object' and 'articulated' have their own "
                        "models (a subject that never moves is fitted as an object even when articulated is "
                        "asked for, and the run says it is static); 'head' fits the ICT-FaceKit head model "
                        "to the face's landmarks in one photo (--image) or a video: an asset with the 57 ARKit "
                        "expressions as morph targets and dense landmarks (landmarks.json). body and garment "
                        "are fitted as static objects for now and recorded as kind 'object' with "
                        "requested_subject set to what you asked for")
    p.add_argument("--face-index", type=int, metavar="N",
                   help="head: the face to fit when a frame holds several (0 = the largest, the default; "
                        "config head.face_index)")
    p.add_argument("--name", help="asset name (default: the source's file or folder name)")
    p.add_argument("--out", metavar="OUT", help="job folder (default: out/<name>)")
    p.add_argument("--minutes", type=float, help="training wall-time budget in minutes (config fit.minutes)")
    p.add_argument("--iterations", type=int, help="iteration budget (config fit.iterations)")
    p.add_argument("--backend", choices=["auto", "cuda", "cpp", "torch"], help="kernel backend (config backend)")
    p.add_argument("--materials", choices=["pbr", "radiance"],
                   help="pbr: fit albedo, roughness, metallic and the capture's light (a relightable asset, "
                        "environment.hdr beside it); radiance: keep the captured colour, written unlit "
                        "(config materials.mode; the presets say which is their default)")
    _add_up_arg(p)
    _add_mask_args(p)
    p.add_argument("--no-bake", action="store_true", help="stop after the fit (no OUT/asset/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true",
                   help="continue the job in OUT: reuse finished stages, continue the fit from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace an earlier job in OUT")
    _add_config_args(p)
    _add_common_args(p)
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args) -> int:
    from .pipeline import fit, fitted_kind

    for opt, key in ((args.minutes, "fit.minutes"), (args.iterations, "fit.iterations"), (args.backend, "backend"),
                     (args.up, "capture.up"), (args.materials, "materials.mode"), (args.face_index, "head.face_index")):
        if opt is not None:
            args.overrides.append(f"{key}={opt}")
    args.overrides += _mask_overrides(args)
    cfg = _resolve_config(args)
    if args.subject != fitted_kind(args.subject) and not args.quiet:
        print(f"recon: no {args.subject} model yet: fitting a static object model; the asset is recorded as "
              f"kind 'object' (requested_subject '{args.subject}')", file=sys.stderr)
    res = fit(args.video or args.data or args.image, out=args.out, subject=args.subject, name=args.name, preset=args.preset,
              overrides=args.overrides, config=cfg, bake=not args.no_bake, resume=args.resume,
              overwrite=args.overwrite)
    ev = res.eval
    if res.kind == "head":
        _print_head(res)
        return 0
    extra = f", mask IoU {ev['mask_iou']:.3f}" if "mask_iou" in ev else ""
    split = "held-out" if ev["split"] == "test" else "training"
    print(f"{res.fit_dir}: {res.kind} model; field PSNR {ev['psnr']:.2f} dB, SSIM {ev['ssim']:.3f}{extra} on "
          f"{ev['n_views']} {split} views; {ev['iterations']} iterations in {ev['train_seconds']:.0f} s "
          f"({ev['rays_per_second']:.0f} rays/s, {ev['backend']})")
    if res.metrics is not None:
        m = res.metrics
        baked = [(k, t) for k, t in (("psnr_heldout_baked", "held-out"), ("psnr_train_baked", "training"))
                 if k in m]
        scores = [f"baked PSNR {m[k]:.2f} dB on {m[k + '_views']} {t} views" for k, t in baked[:1]]
        scores += [f"Chamfer {m['chamfer']:.4g}, F-score {m['fscore']:.3f}" if "chamfer" in m else None]
        print(f"{res.asset_dir}: {m['name']}.glb ({m.get('material')} material), {m['triangles']} triangles, "
              f"{'watertight' if m['watertight'] else 'not watertight'}, {m['texture_size']} px textures"
              + "".join(f"; {s}" for s in scores if s) + "; report.html, turntable.mp4")
    return 0


def _print_head(res) -> None:
    ev, m = res.eval, res.metrics
    print(f"{res.fit_dir}: head model; {ev['frames_fitted']} of {ev['frames_read']} frames fitted, the 478 "
          f"detected landmarks reproject at {ev['landmarks478_px_mean']:.2f} px mean; {ev['fit_seconds']:.0f} s")
    if m is not None:
        lm = ", ".join(f"{k} {v}" for k, v in m["landmarks"].items())
        print(f"{res.asset_dir}: {m['name']}.glb ({m['triangles']} triangles on ICT-FaceKit's topology, "
              f"{m['morph_targets']} expression morph targets, '{m['animation']}' animation), landmarks.json "
              f"({lm}); report.html")


def main(argv: list[str] | None = None) -> int:
    """Run one command. Failures end as one line on stderr: exit 2 for the user's (recon's errors, paths
    that cannot be written), 1 for internal ones, whose traceback goes to ~/.recon/logs/ (and, with
    --verbose, to stderr)."""
    import traceback

    from .core.errors import ReconError, os_error_line, save_traceback
    from .core.log import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    verbose = getattr(args, "verbose", False)
    try:
        setup_logging(quiet=getattr(args, "quiet", False), json_path=getattr(args, "log_json", None),
                      verbose=verbose)
        return int(args.func(args) or 0)
    except ReconError as exc:
        print(f"recon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, OSError) and (line := os_error_line(exc)):
            print(f"recon: error: {line}", file=sys.stderr)
            return 2
        if verbose:
            traceback.print_exc()
        log = save_traceback(exc)
        msg = (str(exc).splitlines() or [""])[0]
        print(f"recon: internal error: {type(exc).__name__}: {msg} "
              f"({f'traceback in {log}' if log else 'rerun with --verbose for the traceback'})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
