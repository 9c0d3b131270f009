"""`python -m setlist` runs the CLI."""

from setlist.cli import main

main()
