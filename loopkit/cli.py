"""The ``loopkit`` console command: ``loopkit plugins`` lists the installed plugins."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Sequence

from loopkit.entry_points import installed_plugins

__all__ = ["main"]


def _describe(value: str) -> str:
    """Return the first docstring line of the object an entry point names."""
    module_name, _, attribute = value.partition(":")
    try:
        obj = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as err:  # a broken plugin must not hide the others
        return f"(cannot be loaded: {err})"
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="loopkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "plugins", help="list installed plugins (enable them with plugins=['name'])"
    )
    args = parser.parse_args(argv)
    if args.command == "plugins":
        found = installed_plugins()
        if not found:
            print("No loopkit plugins are installed.")
            return 0
        width = max(len(p.name) for p in found)
        for plugin in found:
            print(f"{plugin.name:<{width}}  {plugin.value}  [{plugin.distribution}]")
            print(f"{'':<{width}}  {_describe(plugin.value)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
