"""Arc curve sampling: the vectorised `Arc.intensity_at` against a per-point loop.

The planner samples the target curve at thousands of points per candidate timeline, so
the vectorised path must stay far ahead of evaluating one time at a time. Both run in
this process on the same arc and the same times; the ratio is what we report.

    .venv/bin/python bench/bench_arcs.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from setlist.arcfiles import Catalogue


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    catalogue = Catalogue.default()
    files = catalogue.files()
    load = best_of(lambda: [catalogue.load(str(p)) for p in files])
    print(
        f"load+validate {len(files)} shipped arcs: {load * 1e3:.1f} ms "
        f"({load / len(files) * 1e3:.2f} ms each)"
    )
    arc = catalogue.load("ketamine-im-psychedelic")
    times = np.linspace(0, arc.length, 7201)  # one sample a second for 2 h
    vectorised = best_of(lambda: arc.intensity_at(times))
    loop = best_of(lambda: [arc.intensity_at(float(t)) for t in times], repeat=2)
    assert np.allclose(arc.intensity_at(times), [arc.intensity_at(float(t)) for t in times])
    print(
        f"intensity_at, {times.size} points: vectorised {vectorised * 1e3:.2f} ms, "
        f"per-point loop {loop * 1e3:.1f} ms, ratio {loop / vectorised:.0f}x"
    )


if __name__ == "__main__":
    main()
