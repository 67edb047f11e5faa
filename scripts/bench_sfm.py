"""Time video -> cameras: frame selection, decoding and structure-from-motion (``load_capture``).

    .venv/bin/python scripts/bench_sfm.py --video ../shared/data/videos/car-turnaround-2.mp4 --max-frames 60

Prints the run's log, then, last, one JSON line:
{"video", "registered", "total", "seconds", "sfm_seconds", "points", "reproj_error", "cpu_seconds", ...}.
``total`` counts the frames selection kept (up to --max-frames; near-duplicates
are dropped), ``seconds`` is wall time of the whole load, ``cpu_seconds`` the
process CPU time (compare runs on a busy machine with it).
"""
from __future__ import annotations

import argparse
import json
import os
import time

from recon.capture import load_capture
from recon.core.config import load_config
from recon.core.errors import ReconError
from recon.core.log import setup_logging


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", required=True, help="video file")
    ap.add_argument("--max-frames", type=int, default=60, help="frames kept from the video (default 60)")
    ap.add_argument("--preset", default=None, help="config preset (default: none, the config defaults)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set capture.max_size=400")
    ap.add_argument("--quiet", action="store_true", help="no logs, only the JSON line")
    args = ap.parse_args()
    setup_logging(quiet=args.quiet)
    cfg = load_config(args.preset, None, [*args.overrides, f"capture.max_frames={args.max_frames}"]).capture

    t, cpu = time.perf_counter(), time.process_time()
    result = {"video": args.video, "max_frames": args.max_frames, "max_size": cfg.max_size,
              "cpus": len(os.sched_getaffinity(0)), "load_average": round(os.getloadavg()[0], 2)}
    try:
        cap = load_capture(args.video, cfg)
        sfm = cap.meta["sfm"]
        result.update(registered=sfm["registered"], total=sfm["total"], points=sfm["n_points"],
                      reproj_error=round(sfm["mean_reproj_error"], 3), sfm_seconds=sfm["seconds"])
    except ReconError as exc:  # a failed SfM is a result too
        result.update(registered=0, error=str(exc))
    result.update(seconds=round(time.perf_counter() - t, 1), cpu_seconds=round(time.process_time() - cpu, 1))
    print(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
