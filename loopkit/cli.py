"""The ``loopkit`` console command: ``loopkit plugins`` lists the installed plugins."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from loopkit._dispatch.entry_points import disabled_names, installed_plugins

__all__ = ["main"]


def _static_doc(module_name: str, attribute: str) -> str | None:
    """Return the docstring of a module, or of a class or function defined in it.

    Read from the source without importing, so listing is fast (a plugin's heavy
    dependencies are not imported) and runs no plugin code. None when the attribute
    is something else (an instance, say), which only an import can describe.

    Raises:
        ModuleNotFoundError: the module is not installed.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {module_name!r}")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    if not attribute:
        return ast.get_docstring(tree) or ""
    definitions = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found = [n for n in tree.body if isinstance(n, definitions) and n.name == attribute]
    return (ast.get_docstring(found[-1]) or "") if found else None


def _describe(value: str) -> str:
    """Return the first docstring line of the object an entry point names."""
    module_name, _, attribute = (part.strip() for part in value.partition(":"))
    try:
        doc = _static_doc(module_name, attribute)
        if doc is None:
            obj = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                obj = getattr(obj, part)
            doc = inspect.getdoc(obj) or ""
    except Exception as err:  # a broken plugin must not hide the others
        return f"(cannot be loaded: {err})"
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
        blocked = disabled_names()
        for plugin in found:
            off = "  (disabled: LOOPKIT_DISABLE_PLUGINS)" if plugin.name in blocked else ""
            print(f"{plugin.name:<{width}}  {plugin.value}  [{plugin.distribution}]{off}")
            print(f"{'':<{width}}  {_describe(plugin.value)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
