"""The command line before Faust parses it.

Faust's command line takes any argument that starts with `--app` as the app to import
(`-A/--app`, found by a prefix match in faust/cli/base.py), so `backfill --app-version 2`
would make it import a module named `2`. `rewrite` renames our `--app-version` to
`--rebuild-version` (the option's other name) before Faust sees it. `command_of` finds
the command's name (`worker`, `produce`, ...) past Faust's global options.
"""

from __future__ import annotations

from collections.abc import Sequence

# Our options whose names Faust's `--app` prefix match would take, and what they become.
RENAMED = {"--app-version": "--rebuild-version"}


def rewrite(argv: Sequence[str]) -> list[str]:
    """`argv` with every RENAMED option (also `--opt=value`) under its other name."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(RENAMED[name] + eq + value if name in RENAMED else arg)
    return out


def _global_options_with_values() -> set[str]:
    from faust.cli.faust import cli

    names: set[str] = set()
    for param in cli.params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        names |= {*param.opts, *getattr(param, "secondary_opts", ())}
    return names


def command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` (without the program name) runs, or None (`--help`, nothing)."""
    takes_value = _global_options_with_values()
    args = iter(argv)
    for arg in args:
        if arg == "--":
            return next(args, None)
        if arg.startswith("-"):
            if arg in takes_value:
                next(args, None)
            continue
        return arg
    return None


def option_value(argv: Sequence[str], *names: str) -> str | None:
    """The value of an option given as `--name value` or `--name=value` (the last one)."""
    found = None
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in names:
            found = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    return found
