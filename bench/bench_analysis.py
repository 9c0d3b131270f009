"""Analysis throughput against decoding alone and against librosa, in one process.

Generates a small library (default 20 files x 3 min, 44.1 kHz stereo, FLAC/MP3/Ogg
Opus/M4A/WAV) into a temporary folder, then measures, as x realtime:

* `decode_blocks` alone (decode + resample to 22.05 kHz): the floor for any analysis;
* `analyze_file` (decode + all features): its ratio to decode-only is the cost of the
  maths on top of I/O (target >= 0.6);
* the feature maths alone on identical decoded samples: ours (`features_from_samples`,
  which also does BS.1770 loudness, LRA and voice) against a librosa pipeline computing
  RMS, spectral centroid, onset strength, onsets and beat tracking (target >= 10x);
  librosa's numba is warmed first so start-up is not counted;
* `analyze_file` over the files with 2 worker processes against 1.

librosa is a benchmark-only reference (`.venv/bin/pip install librosa`); setlist never
imports it. Run:

    .venv/bin/python bench/bench_analysis.py [--files 20] [--minutes 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

from setlist.library.analysis import features_from_samples
from setlist.library.decode import analyze_file, decode_blocks

RATE = 22050
SOURCE_RATE = 44100
FORMATS = {  # suffix: (encoder, sample format, rate)
    ".flac": ("flac", "s16", SOURCE_RATE),
    ".mp3": ("libmp3lame", "fltp", SOURCE_RATE),
    ".ogg": ("libopus", "flt", 48000),
    ".m4a": ("aac", "fltp", SOURCE_RATE),
    ".wav": ("pcm_s16le", "s16", SOURCE_RATE),
}


def synth_piece(seconds: float, rate: int, seed: int) -> npt.NDArray[np.float32]:
    """A stereo piece mixing a chord pad, a beat at a random tempo and noise hats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    root = rng.choice([110.0, 130.8, 146.8, 164.8])
    chord = sum(
        np.sin(2 * np.pi * root * ratio * k * t + rng.uniform(0, 6)) / k
        for ratio in (1.0, 1.25, 1.5)
        for k in range(1, 7)
    )
    x = np.asarray(chord) * (0.6 - 0.4 * np.cos(2 * np.pi * t / rng.uniform(6, 20)))
    bpm = rng.uniform(60, 150)
    busy = rng.uniform(0, 1)
    kick_t = np.arange(int(0.3 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-kick_t / 0.03)) * kick_t) * np.exp(-kick_t / 0.1)
    hats = sosfilt(butter(4, 5000, "hp", fs=rate, output="sos"), rng.standard_normal(n))
    gate = np.zeros(n)
    for start in np.arange(0, seconds, 60 / bpm):
        i = int(start * rate)
        j = min(n, i + len(kick))
        x[i:j] += 3 * busy * kick[: j - i]
        gate[i : min(n, i + int(0.04 * rate))] = busy
    x = x + hats * gate * 0.5
    left = x
    right = np.roll(x, int(0.01 * rate)) * 0.9
    stereo = np.stack([left, right], axis=1)
    return (0.25 * stereo / np.abs(stereo).max()).astype(np.float32)


def write(path: Path, samples: npt.NDArray[np.float32]) -> None:
    codec, fmt, rate = FORMATS[path.suffix]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo", format=fmt)
        for i in range(0, len(samples), 1 << 16):
            chunk = samples[i : i + (1 << 16)]
            if fmt == "s16":
                data = (chunk * 32767).astype(np.int16).reshape(1, -1)
            elif fmt == "flt":
                data = np.ascontiguousarray(chunk.reshape(1, -1))
            else:
                data = np.ascontiguousarray(chunk.T)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_library(folder: Path, files: int, minutes: float) -> list[Path]:
    paths = []
    suffixes = list(FORMATS)
    for i in range(files):
        suffix = suffixes[i % len(suffixes)]
        path = folder / f"piece{i:02d}{suffix}"
        write(path, synth_piece(minutes * 60, FORMATS[suffix][2], seed=i))
        paths.append(path)
    return paths


REPEAT = 2


def best_of(fn: Callable[[], object], repeat: int = REPEAT) -> tuple[float, float]:
    """Shortest (wall, CPU) seconds of `repeat` runs.

    The machine may be shared with other sessions: noise only ever adds time, and this
    process's CPU time is what it would take alone (one thread does the work).
    """
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def add(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], a[1] + b[1]


def librosa_features(y: npt.NDArray[np.float32], sr: int) -> tuple[object, ...]:
    """The comparable librosa pipeline: each feature as librosa users call it."""
    import librosa

    rms = librosa.feature.rms(y=y)
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr)
    envelope = librosa.onset.onset_strength(y=y, sr=sr)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr)
    tempo, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr)
    return rms, centroid, onsets, tempo, beats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # librosa's own notices

    with tempfile.TemporaryDirectory(prefix="setlist-bench-") as tmp:
        start = time.perf_counter()
        paths = make_library(Path(tmp), args.files, args.minutes)
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"generated {len(paths)} files x {args.minutes:g} min ({size:.0f} MB) "
            f"in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs"
        )

        # Warm our side once (imports, FFT plans) outside the timings.
        analyze_file(paths[0])
        audio = sum(sum(len(b) for b in decode_blocks(p)) for p in paths) / RATE
        load_before = os.getloadavg()[0]
        # (measure, x realtime by wall clock, x realtime by this process's CPU, note)
        rows: list[tuple[str, float, float, str]] = []

        def speed(
            name: str, t: tuple[float, float], seconds: float = audio, note: str = ""
        ) -> None:
            rows.append((name, seconds / t[0], seconds / t[1], note))

        def ratio(name: str, num: tuple[float, float], den: tuple[float, float], note: str) -> None:
            rows.append((name, num[0] / den[0], num[1] / den[1], note))

        def decode_only() -> None:
            for p in paths:
                for _ in decode_blocks(p):
                    pass

        t_decode = best_of(decode_only)
        t_analyze = best_of(lambda: [analyze_file(p) for p in paths])
        speed("decode_blocks only (decode + resample)", t_decode)
        speed("analyze_file (decode + all features)", t_analyze)
        ratio("  ratio analyze/decode", t_decode, t_analyze, "target >= 0.6")

        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(analyze_file, paths[:2]))  # start and warm both workers
            t_pool = best_of(lambda: list(pool.map(analyze_file, paths)))[0]
        rows.append(("analyze_file, 2 worker processes", audio / t_pool, float("nan"), "wall"))
        rows.append(("  speed-up over 1 process", t_analyze[0] / t_pool, float("nan"), "wall"))

        # Feature maths on identical decoded samples, file by file (bounded memory). Ours
        # first, then librosa (imported and its numba warmed only now).
        import librosa

        librosa_features(synth_piece(20, RATE, 99)[:, 0], RATE)
        librosa.load(paths[0], sr=RATE, mono=True, duration=5)
        zero = (0.0, 0.0)
        t_ours = t_mono = t_librosa = t_load = zero
        loadable = 0.0  # librosa.load (soundfile) cannot read M4A here: time the rest
        for p in paths:
            stereo = np.concatenate(list(decode_blocks(p)))
            mono = (stereo[:, 0] + stereo[:, 1]) * np.float32(0.5)
            t_ours = add(t_ours, best_of(lambda s=stereo: features_from_samples(s, RATE)))
            t_mono = add(t_mono, best_of(lambda m=mono: features_from_samples(m, RATE)))
            t_librosa = add(t_librosa, best_of(lambda m=mono: librosa_features(m, RATE)))
            if p.suffix != ".m4a":
                t_load = add(t_load, best_of(lambda p=p: librosa.load(p, sr=RATE, mono=True)))
                loadable += len(mono) / RATE
        speed("features_from_samples, stereo (ours)", t_ours)
        speed("features_from_samples, mono (ours)", t_mono)
        speed("librosa features, mono, same samples", t_librosa)
        ratio("  ratio ours(stereo)/librosa", t_librosa, t_ours, "target >= 10")
        ratio("  ratio ours(mono)/librosa", t_librosa, t_mono, "")
        speed("librosa.load (22.05 kHz mono), no M4A", t_load, loadable, "for scale")
        per_second = [t_load[i] / loadable + t_librosa[i] / audio for i in (0, 1)]
        rows.append(
            ("librosa end to end (load + features)", 1 / per_second[0], 1 / per_second[1], "")
        )
        load_after = os.getloadavg()[0]

    print(
        f"\n{audio / 60:.0f} min of audio at {RATE} Hz; x realtime (ratios plain); best of {REPEAT}"
    )
    print(f"load average {load_before:.2f} before, {load_after:.2f} after (2 CPUs, may be shared)")
    print(f"{'measure':42s} {'wall':>8s} {'CPU':>8s}  note")
    for name, wall, cpu, note in rows:
        cpu_text = "" if np.isnan(cpu) else f"{cpu:8.2f}"
        print(f"{name:42s} {wall:8.2f} {cpu_text:>8s}  {note}")


if __name__ == "__main__":
    main()
