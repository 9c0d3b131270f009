"""The local music library: scanning tags, decoding and analysing audio, the SQLite index.

Adapters at the edge (mutagen, PyAV, sqlite3) beside pure pieces (`analysis`,
`tags_to_track`), so the planner sees only `setlist.models` values.
"""
