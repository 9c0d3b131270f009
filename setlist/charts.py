"""Text charts of an arc's intensity curve for terminals and plain-text notes.

Pure: returns lines. Unicode block characters give eighth-row resolution; `ascii=True`
falls back to '#' for terminals and logs that cannot show them.
"""

from __future__ import annotations

import numpy as np

from setlist.models import Arc
from setlist.units import format_clock

_BLOCKS = " ▁▂▃▄▅▆▇█"


def intensity_chart(
    arc: Arc, *, width: int = 64, height: int = 8, ascii: bool = False
) -> list[str]:
    """A filled area chart of the target intensity with phase marks and a time axis.

    Each column shows the curve at the column's centre; the axis below marks where
    each phase begins and labels the phases that fit.
    """
    width = max(16, width)
    height = max(2, height)
    centres = (np.arange(width) + 0.5) * arc.length / width
    values = np.asarray(arc.intensity_at(centres))
    levels = np.clip(values, 0.0, 1.0) * height  # in rows
    rows = []
    for r in range(height - 1, -1, -1):
        fill = np.clip(levels - r, 0.0, 1.0)
        if ascii:
            chars = ["#" if f >= 0.5 else " " for f in fill]
        else:
            chars = [_BLOCKS[round(f * 8)] for f in fill]
        top = (r + 1) / height
        label = f"{top:4.2f} " if r == height - 1 or abs(top - 0.5) < 1e-9 else " " * 5
        rows.append(label + "│" if not ascii else label + "|")
        rows[-1] += "".join(chars)
    starts = [round(s / arc.length * width) for s in arc.starts]
    axis = ["─" if not ascii else "-"] * width
    names = [" "] * (width + 12)
    for i, (col, phase) in enumerate(zip(starts, arc.phases, strict=True)):
        axis[min(col, width - 1)] = "┬" if not ascii else "+"
        nxt = starts[i + 1] if i + 1 < len(starts) else width
        room = max(1, nxt - col - 1)
        text = phase.name if len(phase.name) <= room else phase.name[:room]
        for j, ch in enumerate(text):
            names[col + j] = ch
    corner = "└" if not ascii else "+"
    rows.append("   0 " + corner + "".join(axis))
    rows.append("      " + "".join(names).rstrip())
    times = [" "] * (width + 12)
    for label_at, seconds in ((0, 0.0), (width // 2, arc.length / 2), (width, arc.length)):
        text = format_clock(seconds)
        begin = max(0, min(label_at - len(text) // 2, width + 6 - len(text)))
        if label_at == 0:
            begin = 0
        for j, ch in enumerate(text):
            times[begin + j] = ch
    rows.append("      " + "".join(times).rstrip())
    return rows
