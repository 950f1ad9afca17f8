"""`python -m devkit`: the `activity-sync` command line plus the dev kit's commands."""

import streams.cli  # first: it reads the settings, a mistake there is one line
from devkit import commands  # noqa: F401  # registers demo, broker, salesforce-emulator

streams.cli.main()
