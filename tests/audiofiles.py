"""Real audio files for tests, written with PyAV (no fixtures on disk, no network)."""

from __future__ import annotations

from pathlib import Path

import av
import mutagen
import numpy as np
from mutagen import id3
from mutagen.mp4 import MP4FreeForm, MP4Tags

CODECS = {
    ".flac": "flac",
    ".mp3": "libmp3lame",
    ".wav": "pcm_s16le",
    ".m4a": "aac",
    ".opus": "libopus",
    ".ogg": "libopus",
}
_DTYPES = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}


def write_audio(
    path: Path,
    samples: np.ndarray,
    rate: int = 22050,
    tags: dict[str, str] | None = None,
) -> Path:
    """Encode float samples (n,) or (n, channels) in [-1, 1] to `path` by its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = CODECS[path.suffix]
    data = np.atleast_2d(np.asarray(samples, dtype=np.float64).T)  # (channels, n)
    if codec == "libopus" and rate != 48000:  # Opus runs at 48 kHz: resample (linear is fine)
        n = data.shape[1]
        src = np.arange(n) / rate
        dst = np.arange(int(n * 48000 / rate)) / 48000
        data = np.stack([np.interp(dst, src, ch) for ch in data])
        rate = 48000
    layout = "stereo" if data.shape[0] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        fmt = stream.codec_context.format.name
        dtype = _DTYPES[fmt.rstrip("p")]
        scale = {np.int16: 32767, np.int32: 2**31 - 1}.get(dtype, 1)
        arr = np.clip(data, -1, 1) * scale
        arr = arr.astype(dtype)
        if not fmt.endswith("p"):
            arr = arr.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    if tags:
        raw = path.suffix in (".wav", ".m4a")  # no (complete) easy wrapper for these
        audio = mutagen.File(path, easy=not raw)
        if audio.tags is None:
            audio.add_tags()
        for key, value in tags.items():
            if path.suffix == ".wav":
                audio.tags.add(getattr(id3, _ID3[key])(encoding=3, text=[value]))
            elif path.suffix == ".m4a":
                _set_mp4(audio.tags, key, value)
            else:
                audio[key] = value
        audio.save()
    return path


def _set_mp4(tags: MP4Tags, key: str, value: str) -> None:
    if key == "tracknumber":
        tags["trkn"] = [(int(value.split("/")[0]), 0)]
    elif key == "bpm":
        tags["tmpo"] = [int(float(value))]
    elif key in _MP4:
        tags[_MP4[key]] = [value]
    else:
        tags[f"----:com.apple.iTunes:{key.upper()}"] = [MP4FreeForm(value.encode())]


_MP4 = {
    "title": "\xa9nam",
    "artist": "\xa9ART",
    "album": "\xa9alb",
    "genre": "\xa9gen",
    "date": "\xa9day",
}
_ID3 = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "genre": "TCON",
    "isrc": "TSRC",
    "bpm": "TBPM",
    "date": "TDRC",
    "tracknumber": "TRCK",
}


def tone(
    seconds: float, freq: float = 220.0, level: float = 0.3, rate: int = 22050, stereo: bool = True
) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = level * np.sin(2 * np.pi * freq * t)
    return np.stack([x, x], axis=1) if stereo else x
