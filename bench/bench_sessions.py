"""Build every shipped arc on the real-music corpus and judge the plans.

Per arc: built or the failure line, fit RMSE (from the written setlist), the worst
intensity step at a join (track envelopes 10 s either side of the crossfade centre) and
the worst overshoot of a track above its phase target (90th percentile of its envelope
over the played span minus the target's maximum over that span). Targets: >= 8 of 9
build, median RMSE <= 0.10, no overshoot > 0.15.

    .venv/bin/python bench/bench_sessions.py [--seed N] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import realmusic

from setlist.exports import load_setlist

BIN = Path(sys.executable).parent / "setlist"
ARCS = Path(__file__).resolve().parent.parent / "arcs"


def env_at(entry, rel: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    f = entry.track.features
    env = np.asarray(f.envelope, dtype=np.float64)
    idx = np.clip(((entry.offset + rel) / f.envelope_step).astype(int), 0, env.size - 1)
    return env[idx]


def judge(arc: str, db: Path, seed: int, tmp: Path) -> dict[str, object]:
    cmd = [str(BIN), "build", arc, "--db", str(db), "--seed", str(seed)]
    cmd += ["--dir", str(tmp), "--out", arc, "--format", "setlist"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return {
            "arc": arc,
            "error": " ".join(x.strip() for x in r.stderr.strip().splitlines()) or "?",
        }
    s = load_setlist(tmp / f"{arc}.setlist.yaml")
    over, over_at = -1.0, ""
    for e in s.entries:
        rel = np.arange(0.0, e.length, 1.0)
        target = np.asarray(s.arc.intensity_at(e.start + rel))
        o = float(np.percentile(env_at(e, rel), 90) - target.max())
        if o > over:
            over, over_at = o, e.track.title
    step = 0.0
    for a, b in itertools.pairwise(s.entries):
        centre = b.start + b.fade_in / 2
        before = env_at(a, np.array([centre - 10 - a.start]).clip(0, a.length))[0]
        after = env_at(b, np.array([centre + 10 - b.start]).clip(0, b.length))[0]
        step = max(step, abs(float(after - before)))
    return {
        "arc": arc,
        "tracks": len(s.entries),
        "fit_rmse": float(s.metrics.fit_rmse),
        "worst_join_step": step,
        "worst_overshoot": over,
        "overshoot_track": over_at,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    music = realmusic.corpus_dir()
    db = realmusic.cache_dir() / "bench" / "real-music.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        [str(BIN), "library", "scan", str(music), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        sys.exit(f"bench: scan failed: {r.stderr.strip().splitlines()[-1]}")
    arcs = sorted(p.stem for p in ARCS.glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        results = [judge(a, db, args.seed, Path(tmp)) for a in arcs]
    built = [x for x in results if "error" not in x]
    rmse = float(np.median([x["fit_rmse"] for x in built])) if built else float("nan")
    over = max((x["worst_overshoot"] for x in built), default=float("nan"))
    summary = {
        "built": len(built),
        "arcs": len(arcs),
        "median_rmse": rmse,
        "worst_overshoot": over,
        "pass": {
            "built": len(built) >= len(arcs) - 1,
            "rmse": rmse <= 0.10,
            "overshoot": over <= 0.15,
        },
    }
    if args.json:
        print(json.dumps({"arcs": results, "summary": summary}, indent=2))
        return
    for x in results:
        if "error" in x:
            print(f"{x['arc']:<28} FAILED: {x['error']}")
        else:
            print(
                f"{x['arc']:<28} {x['tracks']:3d} tracks  rmse {x['fit_rmse']:.3f}  "
                f"worst join step {x['worst_join_step']:.2f}  worst overshoot "
                f"{x['worst_overshoot']:+.2f} ({x['overshoot_track']})"
            )
    mark = {True: "PASS", False: "FAIL"}
    ok = summary["pass"]
    print(f"built {len(built)} of {len(arcs)} (target >= {len(arcs) - 1})  {mark[ok['built']]}")
    print(f"median fit RMSE {rmse:.3f} (target <= 0.10)  {mark[ok['rmse']]}")
    print(f"worst overshoot {over:+.3f} (target <= 0.15)  {mark[ok['overshoot']]}")


if __name__ == "__main__":
    main()
