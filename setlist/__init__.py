"""setlist: music arcs for psychedelic-assisted therapy sessions."""

__version__ = "0.1.0"
