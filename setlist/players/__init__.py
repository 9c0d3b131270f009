"""Players: what turns timeline cues into sound (libVLC live, Spotify Connect, render).

Only the protocol lives here; each backend is imported on demand so a machine without
libVLC can still plan, export and render.
"""

from setlist.players.base import Clock, Fault, MonotonicClock, Player, VoiceState

__all__ = ["Clock", "Fault", "MonotonicClock", "Player", "VoiceState"]
