"""The synthesised demo library: real files, real tags, known answers, and a corrupt corpus."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags
from scipy import signal

from setlist.library import demo
from setlist.library.demo import (
    CORRUPT_CORPUS_EXPECTED,
    FORMATS,
    DemoTrack,
    generate_demo_library,
    plan_demo_tracks,
    read_demo_truth,
    write_corrupt_corpus,
    write_demo_track,
)

SMALL = {"tracks": 8, "duration_range": (20.0, 40.0)}
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoTrack], list[Path]]:
    root = tmp_path_factory.mktemp("demo")
    planned = plan_demo_tracks(SMALL["tracks"], 0, SMALL["duration_range"])
    paths = generate_demo_library(root, seed=0, jobs=1, **SMALL)
    return root, planned, paths


def decode(path: Path) -> tuple[np.ndarray, int]:
    """All samples as float32 (channels, n) and the decoder's sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            if frame.format.is_planar:
                chunks.append(data)
            else:
                chunks.append(data.reshape(-1, len(frame.layout.channels)).T)
        rate = stream.rate
    audio = np.concatenate(chunks, axis=1)
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768, rate
    if audio.dtype == np.int32:
        return audio.astype(np.float32) / 2**31, rate
    return audio.astype(np.float32), rate


def tag(path: Path, name: str) -> str | None:
    """One tag, whatever the dialect: ID3 frames, MP4 atoms or Vorbis comments."""
    tags = mutagen.File(path).tags
    if isinstance(tags, ID3):
        frame = {
            "title": "TIT2",
            "artist": "TPE1",
            "genre": "TCON",
            "isrc": "TSRC",
            "bpm": "TBPM",
            "language": "TLAN",
            "comment": "COMM::eng",
            "replaygain_track_gain": "TXXX:REPLAYGAIN_TRACK_GAIN",
        }[name]
        return str(tags[frame].text[0]) if frame in tags else None
    if isinstance(tags, MP4Tags):
        atoms = {"title": "\xa9nam", "artist": "\xa9ART", "genre": "\xa9gen", "bpm": "tmpo"}
        atoms |= {"comment": "\xa9cmt", "isrc": "ISRC", "language": "LANGUAGE"}
        atom = atoms.get(name, name)
        atom = atom if atom[0] == "\xa9" or atom == "tmpo" else f"----:com.apple.iTunes:{atom}"
        if atom not in tags:
            return None
        value = tags[atom][0]
        return value.decode() if isinstance(value, bytes) else str(value)
    values = tags.get(name)
    return values[0] if values else None


def reference_loudness(audio: np.ndarray, rate: int) -> float:
    """BS.1770 integrated loudness of decoded samples, filtered sample by sample."""
    weighted = signal.sosfilt(demo._k_weighting(rate), audio.astype(np.float64), axis=-1)
    power = np.square(weighted).sum(axis=0)
    seg = rate // 10
    count = power.size // seg
    return demo._integrated(power[: count * seg].reshape(count, seg).mean(axis=1))


# --- the files --------------------------------------------------------------------------


def test_files_span_formats_and_decode_to_their_duration(library) -> None:
    root, planned, paths = library
    assert [p.relative_to(root) for p in paths] == [t.relpath for t in planned]
    assert len({t.format for t in planned}) >= 4
    assert len({p.suffix for p in paths}) >= 4
    for track, path in zip(planned, paths, strict=True):
        audio, rate = decode(path)
        assert audio.shape[0] == track.channels
        assert audio.shape[1] / rate == pytest.approx(track.duration, abs=0.06), path.name
        # Soft-clipped at -1 dBFS; lossy decoders may overshoot that a little.
        assert 0 < np.abs(audio).max() < (0.9 if FORMATS[track.format].lossless else 1.25)


def test_every_file_carries_tags_and_ground_truth(library) -> None:
    _, planned, paths = library
    for track, path in zip(planned, paths, strict=True):
        assert tag(path, "title") == track.title
        assert tag(path, "artist") == track.artist
        assert tag(path, "genre") == track.genre
        isrc = tag(path, "isrc")
        assert isrc == track.isrc and ISRC.match(isrc)
        bpm = tag(path, "bpm")
        assert (bpm and int(float(bpm))) == (track.tempo or None)
        truth = read_demo_truth(path)
        assert truth == track.ground_truth()
        assert set(truth) >= {"texture", "tempo", "has_voice", "intensity", "lufs"}
        assert 0.0 <= truth["intensity"] <= 1.0


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_writes_every_tag(tmp_path: Path, fmt: str) -> None:
    """Vocal, pulsed, ReplayGain-tagged: every optional tag, in every format's dialect."""
    base = plan_demo_tracks(8, 3, (4.0, 6.0))[0]
    rate = 24000 if fmt == "opus" else 22050
    track = replace(
        base,
        format=fmt,
        sample_rate=rate,
        channels=2,
        hops=round(3.0 * rate / 512),
        tempo=96,
        has_voice=True,
        replaygain=fmt != "opus",
        lead_silence=0.0,
        trail_silence=0.0,
    )
    path = write_demo_track(track, tmp_path)
    assert path.suffix == FORMATS[fmt].suffix
    assert int(tag(path, "bpm")) == 96
    assert tag(path, "language") == "zxx"
    assert "vocals" in tag(path, "comment")
    assert tag(path, "isrc") == track.isrc
    assert read_demo_truth(path)["tempo"] == 96
    if fmt == "opus":
        assert int(tag(path, "r128_track_gain")) == round((-23.0 - track.lufs) * 256)
    else:
        gain = tag(path, "replaygain_track_gain")
        assert gain and float(gain.split()[0]) == pytest.approx(-18.0 - track.lufs, abs=0.01)


def test_loudness_and_silence_match_the_ground_truth(library) -> None:
    _, planned, paths = library
    checked = 0
    for track, path in zip(planned, paths, strict=True):
        if not FORMATS[track.format].lossless:
            continue
        audio, rate = decode(path)
        assert reference_loudness(audio, rate) == pytest.approx(track.lufs, abs=1.0)
        lead = int(track.lead_silence * rate)
        assert not audio[:, : max(lead - 1, 0)].any()
        checked += 1
    assert checked


def test_k_weighting_matches_the_published_48k_filter() -> None:
    """BS.1770 lists 48 kHz coefficients; the design formula must agree (within 0.05 dB)."""
    published = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
             0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )  # fmt: skip
    freqs = np.geomspace(20, 20000, 200)
    ours = np.abs(signal.freqz_sos(demo._k_weighting(48000), worN=freqs, fs=48000)[1])
    theirs = np.abs(signal.freqz_sos(published, worN=freqs, fs=48000)[1])
    assert np.max(np.abs(20 * np.log10(ours / theirs))) < 0.05
    # The loudness estimate's own response (no scipy.signal in workers) is the same filter.
    bins = np.fft.rfftfreq(4096, 1 / 48000)
    direct = np.abs(signal.freqz_sos(demo._k_weighting(48000), worN=bins, fs=48000)[1])
    assert np.allclose(demo._k_magnitude(48000, 4096), direct)


# --- determinism and idempotence -----------------------------------------------------


def test_same_seed_same_library_and_reruns_overwrite(tmp_path: Path, library) -> None:
    root, planned, paths = library
    again = generate_demo_library(tmp_path / "again", seed=0, jobs=1, **SMALL)
    assert [p.relative_to(tmp_path / "again") for p in again] == [
        p.relative_to(root) for p in paths
    ]
    for first, second, track in zip(paths, again, planned, strict=True):
        assert read_demo_truth(first) == read_demo_truth(second)
        assert tag(first, "title") == tag(second, "title")
        if FORMATS[track.format].lossless:
            assert np.array_equal(decode(first)[0], decode(second)[0])
    # Into the same folder: up-to-date files are kept as they are (a rescan sees them
    # unchanged); a damaged one is rewritten; no temporary files are left.
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "again").rglob("*"))
    stamps = [p.stat().st_mtime_ns for p in again]
    again[0].write_bytes(b"damaged")
    generate_demo_library(tmp_path / "again", seed=0, jobs=1, **SMALL)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "again").rglob("*")) == before
    assert [p.stat().st_mtime_ns for p in again][1:] == stamps[1:]
    assert read_demo_truth(again[0]) == read_demo_truth(paths[0])
    generate_demo_library(tmp_path / "again", seed=0, jobs=1, force=True, **SMALL)
    assert all(p.stat().st_mtime_ns != t for p, t in zip(again[1:], stamps[1:], strict=True))
    assert not list((tmp_path / "again").rglob("*.part"))


def test_another_seed_gives_another_library(library) -> None:
    planned = library[1]
    other = plan_demo_tracks(SMALL["tracks"], 1, SMALL["duration_range"])
    assert [t.title for t in other] != [t.title for t in planned]
    track = replace(other[0], format=planned[0].format, sample_rate=planned[0].sample_rate)
    track = replace(track, channels=planned[0].channels, hops=planned[0].hops)
    mine = np.concatenate(list(demo.render_demo_track(planned[0])), axis=-1)
    theirs = np.concatenate(list(demo.render_demo_track(track)), axis=-1)
    assert mine.shape == theirs.shape and not np.allclose(mine, theirs)


def test_process_pool_and_progress(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    paths = generate_demo_library(
        tmp_path,
        tracks=3,
        seed=5,
        duration_range=(5.0, 8.0),
        jobs=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert all(p.is_file() for p in paths)
    assert [read_demo_truth(p)["index"] for p in paths] == [0, 1, 2]


# --- the plan -----------------------------------------------------------------------------


def test_default_plan_is_varied() -> None:
    planned = plan_demo_tracks()
    levels = [t.intensity for t in planned]
    assert max(levels) - min(levels) >= 0.6
    assert sum(t.has_voice for t in planned) >= 3
    per_artist: dict[str, int] = {}
    for t in planned:
        per_artist[t.artist] = per_artist.get(t.artist, 0) + 1
    assert len(per_artist) >= 10 and sum(n > 1 for n in per_artist.values()) >= 8
    assert {t.format for t in planned} == set(FORMATS)
    assert len({t.texture for t in planned}) >= 6
    tempos = [t.tempo for t in planned if t.tempo]
    assert min(tempos) <= 70 and max(tempos) >= 130 and all(50 <= x <= 150 for x in tempos)
    assert any(t.tempo is None for t in planned)
    assert {t.arc for t in planned} >= {"steady", "crescendo", "decrescendo"}
    lufs = [t.lufs for t in planned]
    assert min(lufs) <= -25 and max(lufs) >= -13 and all(-30 <= x <= -10 for x in lufs)
    assert any(t.channels == 1 for t in planned) and sum(t.channels == 2 for t in planned) > 45
    assert any(t.lead_silence >= 0.5 for t in planned)
    assert any(t.replaygain for t in planned)
    assert all(120 <= t.duration <= 480.1 for t in planned)
    assert len({t.isrc for t in planned}) == len({t.relpath for t in planned}) == 60


@pytest.mark.parametrize("seed", range(5))
def test_even_a_small_plan_spans_calm_to_driving(seed: int) -> None:
    planned = plan_demo_tracks(8, seed, (20.0, 40.0))
    levels = [t.intensity for t in planned]
    assert max(levels) - min(levels) >= 0.6
    assert any(t.has_voice for t in planned)
    assert len({t.format for t in planned}) >= 4
    assert plan_demo_tracks(8, seed, (20.0, 40.0)) == planned


def test_arc_shapes_average_to_the_intended_intensity() -> None:
    for track in plan_demo_tracks(60, 2):
        curve = demo._arc_curve(track, np.linspace(0, 1, 2001))
        assert curve.mean() == pytest.approx(track.intensity, abs=0.01)
        assert curve.min() >= 0.0 and curve.max() <= 1.0
        if track.arc == "crescendo":
            assert track.intensity_end > track.intensity_start
        if track.arc == "decrescendo":
            assert track.intensity_end < track.intensity_start


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tracks"):
        plan_demo_tracks(0)
    with pytest.raises(ValueError, match="duration_range"):
        generate_demo_library(tmp_path, tracks=1, duration_range=(30.0, 10.0))


# --- the corrupt corpus -----------------------------------------------------------------


def test_corrupt_corpus_is_written_as_documented(tmp_path: Path) -> None:
    corpus = write_corrupt_corpus(tmp_path)
    assert write_corrupt_corpus(tmp_path).keys() == corpus.keys()  # idempotent
    assert corpus.keys() == CORRUPT_CORPUS_EXPECTED.keys()
    assert set(CORRUPT_CORPUS_EXPECTED.values()) == {"failed", "ignored", "ok"}

    assert corpus["random_bytes"].stat().st_size == 8192
    assert corpus["empty_ogg"].stat().st_size == 0
    assert corpus["text_m4a"].read_bytes().startswith(b"This is a text file")
    assert mutagen.File(corpus["text_m4a"]) is None  # no format recognises it
    with pytest.raises(av.error.FFmpegError):
        decode(corpus["text_m4a"])

    truncated = corpus["truncated_flac"]
    declared = mutagen.File(truncated).info.length  # the header is intact...
    try:  # ...but decoding fails or falls well short of it
        audio, rate = decode(truncated)
    except av.error.FFmpegError:
        pass
    else:
        assert audio.shape[1] / rate < declared * 0.75

    wav = corpus["short_wav"].read_bytes()
    claimed = int.from_bytes(wav[40:44], "little")
    assert claimed > len(wav) - 44

    latin1 = corpus["latin1_name"]
    raw = os.fsencode(latin1)
    assert b"\xe9" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    audio, rate = decode(latin1)
    assert audio.shape[1] / rate == pytest.approx(6.0, abs=0.05)

    assert corpus["unsupported_midi"].read_bytes().startswith(b"MThd")
    assert corpus["unsupported_text"].suffix == ".txt"
    loop = corpus["symlink_loop"]
    assert loop.is_symlink() and loop.resolve() == tmp_path.resolve()
    dangling = corpus["dangling_symlink"]
    assert dangling.is_symlink() and not dangling.exists()


def test_isrc_designations_are_deterministic() -> None:
    a = [t.isrc for t in plan_demo_tracks(12, 7)]
    assert a == [t.isrc for t in plan_demo_tracks(12, 7)]
    assert all(ISRC.match(x) and x.startswith("XXDMO") for x in a)
    assert len(set(a)) == 12
