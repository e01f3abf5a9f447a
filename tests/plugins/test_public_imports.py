"""Built-in plugins use loopkit as a third party would: public names only."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import loopkit

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """Return ``(line, module, name)`` for every loopkit import (name None: the module)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module.split(".")[0] == "loopkit":
                found.extend((node.lineno, module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "loopkit"
            )
    return found


def _why_private(module: str, name: str | None) -> str | None:
    """Return why importing ``name`` from ``module`` is not public, or None if it is."""
    if module.startswith("."):
        return "a relative import (another plugin)"
    if module.startswith("loopkit.plugins"):
        return "another plugin"
    parts = module.split(".")
    if any(part.startswith("_") for part in parts):
        return "a private module"
    if len(parts) > 1 and parts[1] not in loopkit.__all__:
        return f"module {module!r}, which loopkit does not export"
    if name is None:
        return None
    public = getattr(importlib.import_module(module), "__all__", ())
    if name not in public:
        return f"{name!r}, not in {module}.__all__"
    return None


def test_every_toolkit_module_is_exported_from_loopkit() -> None:
    for module in ("validators", "monitor", "typing", "hookspecs", "callbacks"):
        assert module in loopkit.__all__
        assert getattr(loopkit, module).__name__ == f"loopkit.{module}"


@pytest.mark.parametrize("path", sorted(PLUGINS.glob("*.py")), ids=lambda p: p.name)
def test_built_in_plugins_import_only_public_names(path: Path) -> None:
    if path.name == "__init__.py":
        return  # the package resolves its members lazily by module name
    private = [
        f"line {line}: from {module} import {name}: {why}"
        for line, module, name in _imports(path)
        if (why := _why_private(module, name)) is not None
    ]
    assert private == [], (
        f"{path.name} imports names a third-party plugin could not rely on; export "
        "them from loopkit (or a public module's __all__) first"
    )


def test_the_check_catches_a_private_import(tmp_path: Path) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from loopkit._naming import snake_case\n"
        "from loopkit import Plugin, _version\n"
        "from loopkit.validators import Validator, _owner\n"
        "from .early_stopping import EarlyStopping\n"
    )
    reasons = [_why_private(m, n) for _, m, n in _imports(fake)]
    assert reasons == [
        "a private module",
        None,
        "'_version', not in loopkit.__all__",
        None,
        "'_owner', not in loopkit.validators.__all__",
        "a relative import (another plugin)",
    ]
