"""Shared fixtures: the embedded broker, the Salesforce emulator and worker processes.

Each real part runs as its own process, as in production; fixtures start it on a free
port, wait until it answers and stop it afterwards.
"""

from __future__ import annotations
