"""The small query language of `setlist library list|annotate QUERY` (pure).

Words match title, artist, album, album artist, genre or file path (all must match,
case-insensitive); `field:value` narrows one field: `artist:`, `album:`, `genre:`,
`title:`, `tag:`, `format:`, `status:`, `id:`, `vocals:`. Quotes group words:
`artist:"Stars of the Lid"`. Parsing is pure so the CLI can report a bad query before
touching the index.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from setlist.errors import LibraryError

FIELDS = ("artist", "album", "genre", "title", "tag", "format", "status", "id", "vocals", "path")


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: `field` None means "any text field contains `value`"."""

    field: str | None
    value: str


def parse_query(text: str) -> tuple[Term, ...]:
    """Terms of a query string; `LibraryError` for unknown fields or unbalanced quotes."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise LibraryError(f"cannot read query {text!r}: {exc}") from None
    terms = []
    for word in words:
        field, sep, value = word.partition(":")
        if sep and field and field.isidentifier() and not value.startswith("//"):
            key = field.casefold()
            if key not in FIELDS:
                guess = difflib.get_close_matches(key, FIELDS, n=1)
                tail = f"; did you mean '{guess[0]}:'?" if guess else ""
                raise LibraryError(
                    f"unknown query field '{field}:'{tail}",
                    hint="fields: " + ", ".join(f"{f}:" for f in FIELDS),
                )
            if not value:
                raise LibraryError(f"query field '{field}:' needs a value")
            if key == "id" and not value.isdigit():
                raise LibraryError(f"id:{value} is not a track number")
            terms.append(Term(key, value))
        else:
            terms.append(Term(None, word))
    return tuple(terms)
