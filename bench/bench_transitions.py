"""Loudness at every join of a rendered session, measured by ffmpeg's ebur128 (outside ref).

Builds a session with the CLI on the real-music corpus (scripts/real-music.sh) and on the
demo library, renders it to WAV and reads short-term loudness S 10 s before and after each
crossfade centre, plus the longest near-silence inside the session. Targets: worst step
<= 3 LU, median <= 1.5 LU, no stretch > 1.5 s below -50 LUFS momentary.

    .venv/bin/python bench/bench_transitions.py [--arc NAME] [--seed N] [--minutes M] [--json]
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
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import realmusic

BIN = Path(sys.executable).parent / "setlist"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, check=False)


def index_for(name: str, music: Path) -> Path:
    db = realmusic.cache_dir() / "bench" / f"{name}.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    r = run("library", "scan", str(music), "--db", str(db))
    if r.returncode != 0:
        sys.exit(f"bench: scan of {music} failed: {r.stderr.strip().splitlines()[-1]}")
    return db


def measure(name: str, db: Path, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    build = ["build", args.arc, "--db", str(db), "--seed", str(args.seed), "--dir", str(tmp)]
    build += ["--out", name, "--format", "setlist"]
    if args.minutes:
        build += ["--minutes", str(args.minutes)]
    r = run(*build)
    if r.returncode != 0:
        return {
            "library": name,
            "error": " ".join(x.strip() for x in r.stderr.strip().splitlines()) or "?",
        }
    path = tmp / f"{name}.setlist.yaml"
    wav = tmp / f"{name}.wav"
    r = run("render", str(path), "-o", str(wav))
    if r.returncode != 0:
        return {
            "library": name,
            "error": " ".join(x.strip() for x in r.stderr.strip().splitlines()) or "?",
        }
    data = yaml.safe_load(path.read_text())
    loud = realmusic.ebur128(wav)
    entries = data["entries"]
    joins = []
    for prev, e in itertools.pairwise(entries):
        centre = float(e["start"]) + float(e["fade_in"]) / 2
        before, after = loud.s_at(centre - 10), loud.s_at(centre + 10)
        joins.append(
            {
                "time": round(centre, 1),
                "phase": e["phase"],
                "outgoing": prev["track"]["title"],
                "incoming": e["track"]["title"],
                "s_before": before,
                "s_after": after,
                "step": round(after - before, 2),
            }
        )
    inside = (loud.t > 3) & (loud.t < loud.t[-1] - 3)
    silent, silent_at = realmusic.longest_run(inside & (loud.momentary < -50))
    low, low_at = realmusic.longest_run(inside & (loud.momentary < loud.integrated - 20))
    steps = np.abs([j["step"] for j in joins]) if joins else np.zeros(1)
    worst, median = float(steps.max()), float(np.median(steps))
    return {
        "library": name,
        "integrated": loud.integrated,
        "joins": joins,
        "worst_step": worst,
        "median_step": median,
        "longest_below_50": silent,
        "longest_below_50_at": float(loud.t[silent_at]) if silent else None,
        "longest_20_below_integrated": low,
        "longest_20_below_at": float(loud.t[low_at]) if low else None,
        "pass": {"worst": worst <= 3.0, "median": median <= 1.5, "silence": silent <= 1.5},
    }


def report(res: dict[str, object]) -> None:
    print(f"== {res['library']}")
    if "error" in res:
        print(f"   build failed: {res['error']}")
        return
    print(f"   {'time':>7} {'phase':<12} {'S before':>8} {'S after':>8} {'step':>6}  join")
    for j in res["joins"]:  # type: ignore[attr-defined]
        print(
            f"   {j['time']:7.0f} {j['phase'][:12]:<12} {j['s_before']:8.1f} {j['s_after']:8.1f} "
            f"{j['step']:+6.1f}  {j['outgoing'][:28]} -> {j['incoming'][:28]}"
        )
    ok = res["pass"]
    mark = {True: "PASS", False: "FAIL"}
    print(f"   integrated {res['integrated']:.1f} LUFS")
    print(f"   worst |step| {res['worst_step']:.2f} LU (target <= 3)  {mark[ok['worst']]}")
    print(f"   median |step| {res['median_step']:.2f} LU (target <= 1.5)  {mark[ok['median']]}")
    print(
        f"   longest M < -50 LUFS {res['longest_below_50']:.1f} s at {res['longest_below_50_at']} "
        f"(target <= 1.5 s)  {mark[ok['silence']]}"
    )
    print(
        f"   longest M > 20 LU below integrated {res['longest_20_below_integrated']:.1f} s "
        f"at {res['longest_20_below_at']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arc", default="ketamine-im-psychedelic")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=["real", "demo"])
    args = ap.parse_args()
    libs = []
    if args.only != "demo":
        libs.append(("real-music", realmusic.corpus_dir()))
    if args.only != "real":
        demo = realmusic.cache_dir() / "bench" / "demo-music"
        if not demo.is_dir():
            r = run("demo-library", str(demo))
            if r.returncode != 0:
                sys.exit(f"bench: demo-library failed: {r.stderr.strip()}")
        libs.append(("demo", demo))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, music in libs:  # one at a time: ffmpeg and render share 2 cores
            results.append(measure(name, index_for(name, music), args, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for res in results:
            report(res)


if __name__ == "__main__":
    main()
