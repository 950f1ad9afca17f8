"""`python -m streams` is the `activity-sync` command."""

from streams.cli import main

main()
