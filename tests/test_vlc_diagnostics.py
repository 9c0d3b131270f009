"""libVLC's and ALSA's diagnostics never reach the therapist's screen.

On a machine without a sound card, opening libVLC's ALSA output makes alsa-lib print
dozens of "ALSA lib ..." lines on stderr, straight over the live view. A real player in a
child process (so stderr is its own) proves they are caught and kept for the log.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from setlist.players.vlc import DIAG_BURST, Diagnostics
from tests.audiofiles import tone, write_audio

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from setlist.library.index import path_to_uri
    from setlist.players.vlc import VlcPlayer

    p = VlcPlayer(aout="alsa")
    p.open(0, path_to_uri(Path(sys.argv[1])), 0.0)
    for _ in range(20):
        p.faults(); time.sleep(0.05)
    p.start(0, 0.5)
    for _ in range(20):
        p.faults(); time.sleep(0.05)
    kept = p.diagnostics()
    p.close()
    print(len(kept))
    for line in kept:
        print(line)
    """
)


def test_alsa_and_libvlc_messages_go_to_the_log_not_stderr(tmp_path: Path) -> None:
    pytest.importorskip("vlc")
    if not Path("/usr/lib/x86_64-linux-gnu/libasound.so.2").exists():
        pytest.skip("no alsa-lib here: nothing would print")
    src = write_audio(tmp_path / "t.wav", tone(2.0, 220.0, 0.3, 44100), 44100)
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(src)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ALSA lib" not in res.stderr
    assert res.stderr.strip() == "", res.stderr[-2000:]
    kept = res.stdout.splitlines()[1:]
    if not kept:
        pytest.skip("this machine's ALSA opened quietly (a real card?)")
    assert len(kept) <= DIAG_BURST
    assert all(line.startswith(("ALSA: ", "libVLC: ")) for line in kept)


def test_diagnostics_are_rate_limited_and_counted() -> None:
    now = [0.0]
    d = Diagnostics(clock=lambda: now[0])
    for i in range(100):
        d.add("ALSA", f"message {i}")
    d.add("ALSA", "message 99")
    assert len(d.drain()) == DIAG_BURST
    now[0] = 61.0
    d.add("libVLC", "later")
    assert d.drain() == ["81 more diagnostics not kept", "libVLC: later"]
