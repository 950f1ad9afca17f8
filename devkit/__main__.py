"""`python -m devkit`: the `activity-sync` command line plus the dev kit's commands."""

from devkit import commands  # noqa: F401  # registers demo, broker, salesforce-emulator
from streams.cli import main

main()
