"""Planner speed and quality: the beam planner against greedy and random baselines.

Everything runs in this one process on the same arc (default: the two-hour
ketamine-im-psychedelic template) and the same libraries:

- speed: `plan` alone (candidates are built before the clock starts) on synthetic
  libraries of 10,000 and 100,000 tracks (`setlist.testing.make_candidates`); the median
  of `--runs` runs up to 20,000 tracks, one run above. Targets: < 1 s at 10,000 tracks,
  < 10 s at 100,000 (in general 1 s per 10,000 tracks, never under 1 s);
- quality: fit RMSE and worst transition (`Setlist.metrics`) of the planner
  (search="beam") against a greedy baseline (the track nearest the target at its middle,
  search="greedy", which ignores the seed) and a random choice within the same hard
  constraints (search="random"), over `--seeds` seeds on each of those libraries.
  Target: mean planner RMSE <= 0.5 x mean greedy RMSE;
- the same quality comparison on the library-like demo index (`make demo` writes
  demo/library.sqlite), skipped with a note when it is missing.

    .venv/bin/python bench/bench_planner.py [--sizes 10000,100000] \
        [--arc ketamine-im-psychedelic] [--seeds 3] [--strict]

Exits non-zero on a missed target only with --strict.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from setlist.arcfiles import Catalogue
from setlist.library.index import Index
from setlist.models import Arc, Candidates, PlanMetrics
from setlist.planner import PlanOptions, Search, plan
from setlist.testing import make_candidates
from setlist.units import format_duration

REPO = Path(__file__).resolve().parent.parent
SEARCHES: tuple[Search, ...] = ("beam", "greedy", "random")
#: Planner RMSE must be at most this fraction of the greedy baseline's.
RATIO_TARGET = 0.5
#: Up to this many tracks the timing is a median of several runs; above, one run.
MEDIAN_UP_TO = 20_000


def time_target(n: int) -> float:
    """Seconds `plan` may take on an n-track library: 1 s per 10,000, never under 1 s."""
    return max(1.0, n / 10_000)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class Run:
    seconds: float
    metrics: PlanMetrics


class Bench:
    """Plans one arc from one library, remembering every (search, seed) result."""

    def __init__(self, arc: Arc, candidates: Candidates) -> None:
        self.arc = arc
        self.candidates = candidates
        self.runs: dict[tuple[Search, int], Run] = {}

    def run(self, search: Search, seed: int) -> Run:
        key = (search, seed)
        if key not in self.runs:
            options = PlanOptions(seed=seed, search=search)
            start = time.perf_counter()
            s = plan(self.arc, self.candidates, options)
            self.runs[key] = Run(time.perf_counter() - start, s.metrics)
        return self.runs[key]


def speed(bench: Bench, n: int, runs: int) -> bool:
    count = runs if n <= MEDIAN_UP_TO else 1
    times = [bench.run("beam", seed).seconds for seed in range(count)]
    median = statistics.median(times)
    target = time_target(n)
    how = f"median of {count}" if count > 1 else "1 run"
    spread = f" (min {min(times):.2f} s, max {max(times):.2f} s)" if count > 1 else ""
    ok = median < target
    print(
        f"  plan time, {n:,} tracks: {median:.2f} s, {how}{spread}  "
        f"target < {target:g} s  {verdict(ok)}"
    )
    return ok


def quality(bench: Bench, seeds: int) -> bool:
    """Print the three searches side by side; True when the RMSE ratio meets its target."""
    print(
        f"  {'search':<8} {'fit RMSE mean':>13} {'(min-max)':>15} {'worst step mean':>16} "
        f"{'max':>6} {'plan s':>7}"
    )
    rmse: dict[str, float] = {}
    worst: dict[str, float] = {}
    for search in SEARCHES:
        results = [bench.run(search, seed) for seed in range(seeds)]
        r = [x.metrics.fit_rmse for x in results]
        w = [x.metrics.worst_transition for x in results]
        t = statistics.median(x.seconds for x in results)
        violations = sum(len(x.metrics.violations) for x in results)
        rmse[search], worst[search] = statistics.fmean(r), statistics.fmean(w)
        flag = f"  {violations} violation(s)" if violations else ""
        print(
            f"  {search:<8} {rmse[search]:>13.4f} {f'({min(r):.4f}-{max(r):.4f})':>15} "
            f"{worst[search]:>16.3f} {max(w):>6.3f} {t:>7.2f}{flag}"
        )
    ratio = rmse["beam"] / rmse["greedy"] if rmse["greedy"] > 0 else float("inf")
    ok = ratio <= RATIO_TARGET
    print(
        f"  planner/greedy RMSE ratio {ratio:.2f}  target <= {RATIO_TARGET}  {verdict(ok)};  "
        f"planner/random {rmse['beam'] / max(rmse['random'], 1e-12):.2f}"
    )
    print(
        f"  worst transition (mean over seeds): planner {worst['beam']:.3f}, "
        f"greedy {worst['greedy']:.3f}, random {worst['random']:.3f}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000", help="Synthetic library sizes, comma-separated."
    )
    parser.add_argument("--arc", default="ketamine-im-psychedelic", help="Arc name or path.")
    parser.add_argument("--seeds", type=int, default=3, help="Plan seeds per search.")
    parser.add_argument("--runs", type=int, default=5, help="Timing runs for small libraries.")
    parser.add_argument("--library-seed", type=int, default=0, help="Synthetic library seed.")
    parser.add_argument(
        "--demo",
        type=Path,
        default=REPO / "demo" / "library.sqlite",
        help="Library-like index to compare on (made by `make demo`).",
    )
    parser.add_argument("--strict", action="store_true", help="Exit 1 if a target is missed.")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    seeds = max(1, args.seeds)

    arc = Catalogue.default().load(args.arc)
    phases = ", ".join(f"{p.name} {format_duration(p.duration)}" for p in arc.phases)
    print(f"arc {arc.name}: {format_duration(arc.length)} ({phases})")
    print(f"seeds 0-{seeds - 1} for every search; library seed {args.library_seed}")
    checks: list[tuple[str, bool]] = []
    began = time.perf_counter()

    for n in sizes:
        start = time.perf_counter()
        candidates = make_candidates(n, seed=args.library_seed)
        print(
            f"\nsynthetic library, {n:,} tracks (built in {time.perf_counter() - start:.1f} s, "
            "not timed)"
        )
        bench = Bench(arc, candidates)
        checks.append((f"plan time, {n:,} tracks", speed(bench, n, max(1, args.runs))))
        checks.append((f"RMSE ratio, {n:,} tracks", quality(bench, seeds)))

    demo = args.demo
    if demo.is_file():
        with Index.open(demo) as index:
            candidates = index.candidates()
        print(f"\ndemo library {demo} ({len(candidates)} analysed tracks)")
        checks.append(("RMSE ratio, demo library", quality(Bench(arc, candidates), seeds)))
    else:
        print(f"\ndemo library: {demo} is missing, skipped (run `make demo` to make it)")

    missed = [name for name, ok in checks if not ok]
    print(
        f"\n{len(checks) - len(missed)} of {len(checks)} targets met"
        + (f"; missed: {'; '.join(missed)}" if missed else "")
        + f"  (total {time.perf_counter() - began:.0f} s)"
    )
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
