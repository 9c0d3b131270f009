"""Check intensity (and voice) on real recorded music, not only on synthetic signals.

Real music here comes from a Debian package, so the check needs no network beyond the
package mirror: Battle for Wesnoth's orchestral soundtrack (CC BY-SA / GPL, Ogg Vorbis),

    apt-get update && apt-get install -y wesnoth-1.16-music

The pieces below are labelled by what their titles say, before any score is read: calm
(1: sad, love theme, sanctuary, a wanderer, a journey's end, a nunc dimittis...), tense (2:
suspense, into the shadows) and battle (3: battle, frantic, siege, casualties of war...).
Titles that do not clearly say one of these (faction themes, places) are left out. The
script reports the Spearman rank correlation between our `intensity` and those labels,
and the share of calm/battle pairs that intensity orders correctly (AUC).

The titles are a coarse proxy for arousal and the soundtrack is one genre (orchestral
game music), so this is a sanity check of direction and spread, not a calibration set.
What was tuned on this soundtrack is stated in `setlist.library.analysis`: the scale of
the flux component and the onset thresholds (from the range of values over all 41
pieces, not from the labels).

If `flite` is installed (`apt-get install flite`), a synthesised spoken paragraph checks
that `voice` rises for speech and stays low for the music.

    .venv/bin/python bench/validate_intensity.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from setlist.errors import AnalysisError
from setlist.library.decode import analyze_file
from setlist.models import Features

MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
LABELS = {
    **dict.fromkeys(
        [
            "sad",
            "transience",
            "elf-land",
            "elvish-theme",
            "silvan_sanctuary",
            "love_theme",
            "wanderer",
            "journeys_end",
            "nunc_dimittis",
        ],
        1,
    ),
    **dict.fromkeys(["suspense", "into_the_shadows"], 2),
    **dict.fromkeys(
        [
            "battle",
            "battle-epic",
            "frantic",
            "frantic-old",
            "casualties_of_war",
            "siege_of_laurelmor",
            "the_city_falls",
            "vengeful",
            "weight_of_revenge",
        ],
        3,
    ),
}
NAMES = {1: "calm", 2: "tense", 3: "battle"}
SPEECH = (
    "The session begins with a calm onset. Breathe slowly and let the sound carry you. "
    "We will build toward a gentle peak, and then return to stillness. When the music "
    "fades, take your time, notice your body, and open your eyes when you are ready."
)


def auc(calm: list[float], battle: list[float]) -> float:
    """Share of (calm, battle) pairs ordered correctly, ties counting half."""
    wins = sum((b > c) + 0.5 * (b == c) for c in calm for b in battle)
    return wins / (len(calm) * len(battle))


def main() -> int:
    if not MUSIC.is_dir():
        print(f"{MUSIC} not found: apt-get install wesnoth-1.16-music", file=sys.stderr)
        return 1
    results: dict[str, Features] = {}
    for name in LABELS:
        try:
            results[name] = analyze_file(MUSIC / f"{name}.ogg")
        except AnalysisError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    names = sorted(results, key=lambda n: results[n].intensity)
    print(
        f"{'piece':22s} {'label':7s} {'intensity':>9s} {'LUFS':>7s} {'BPM':>7s} "
        f"{'conf':>5s} {'onsets/s':>8s} {'bright':>7s} {'voice':>6s}"
    )
    for n in names:
        f = results[n]
        bpm = f"{f.tempo_bpm:.0f}" if f.tempo_bpm else "-"
        print(
            f"{n:22s} {NAMES[LABELS[n]]:7s} {f.intensity:9.3f} {f.loudness_lufs:7.1f} {bpm:>7s} "
            f"{f.tempo_confidence:5.2f} {f.onset_rate:8.2f} {f.brightness_hz:7.0f} {f.voice:6.3f}"
        )
    scores = [results[n].intensity for n in names]
    labels = [LABELS[n] for n in names]
    rho = spearmanr(scores, labels)
    calm = [results[n].intensity for n in names if LABELS[n] == 1]
    battle = [results[n].intensity for n in names if LABELS[n] == 3]
    print(
        f"\nSpearman rho (intensity vs calm<tense<battle, n={len(names)}): "
        f"{rho.statistic:.3f} (p={rho.pvalue:.1g})"
    )
    print(
        f"calm-vs-battle AUC: {auc(calm, battle):.3f}; "
        f"median calm {np.median(calm):.3f}, median battle {np.median(battle):.3f}"
    )

    flite = shutil.which("flite")
    if flite:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run([flite, "-t", SPEECH, "-o", str(wav)], check=True)
            speech = analyze_file(wav).voice
        music = max(f.voice for f in results.values())
        print(f"voice: synthetic speech (flite) {speech:.3f}; highest of the music {music:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
