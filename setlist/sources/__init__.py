"""Music that lives elsewhere: Spotify today (sign-in, import, export, Connect control).

`spotify` is the only module importing spotipy; `spotify_translate` turns Web API JSON
into `setlist.models` values with pure functions; `spotify_sync` runs imports and exports
between the client and the library index.
"""
