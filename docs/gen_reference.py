"""MkDocs hook: write the catalogue and the hook-order trace from the code at build time.

A page asks for a generated section with an HTML comment on a line of its own:

- ``<!-- generate: catalogue layers -->`` (or activations, initializers, regularizers,
  losses, metrics, optimizers, schedules): every public class of that package with its
  signature, summary, arguments and the names ``compile``/``get`` accept for it;
- ``<!-- generate: hook-trace -->``: the hooks a real ``fit``, ``evaluate`` and
  ``predict`` call, in order, recorded from a plugin that implements them all;
- ``<!-- generate: benchmarks -->``: the run line, the ratio table and the plugin
  overhead table of the last full benchmark run (``benchmarks/RESULTS.md``).

So the reference cannot drift from the code: it is the code, read when the site is
built (``mkdocs build``). ``python docs/gen_reference.py catalogue layers`` prints a
section to check it by eye.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import loopkit as lk

__all__ = [
    "KINDS",
    "benchmark_tables",
    "catalogue",
    "hook_trace",
    "on_page_markdown",
    "public_classes",
]

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "RESULTS.md"

KINDS: dict[str, str] = {  # package -> the base class every member derives from
    "layers": "Layer",
    "activations": "ActivationFunction",
    "initializers": "Initializer",
    "regularizers": "Regularizer",
    "losses": "Loss",
    "metrics": "Metric",
    "optimizers": "Optimizer",
    "schedules": "LearningRateSchedule",
}
# Keras's short names, shown where ``get`` accepts them (checked, not assumed).
_SHORT_NAMES = ("mse", "mae", "mape", "msle", "bce", "kld", "logcosh", "acc", "silu")
_MARKER = re.compile(r"^<!-- generate: ([\w-]+)(?: (\w+))? -->$", re.MULTILINE)
_SECTION = re.compile(
    r"^(Args|Arguments|Returns|Raises|Yields|Attributes|Example|Examples):$"
)


def public_classes(kind: str) -> list[type]:
    """Return the public classes of ``loopkit.<kind>``, base class last, aliases once."""
    module = importlib.import_module(f"loopkit.{kind}")
    base = getattr(module, KINDS[kind])
    found: dict[type, None] = {}
    for name in sorted(module.__all__, key=str.lower):
        value = getattr(module, name)
        if isinstance(value, type) and issubclass(value, base) and value is not base:
            found[value] = None
    return [*found, base]


def _default(value: Any) -> str:
    """Return a parameter default as code; attrs factories show as ``...`` (computed)."""
    if repr(value) == "NOTHING" or type(value).__name__ == "Factory":
        return "..."
    return repr(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _names_for(kind: str, cls: type) -> list[str]:
    """Return the strings ``loopkit.<kind>.get`` turns into an instance of ``cls``."""
    module = importlib.import_module(f"loopkit.{kind}")
    get = getattr(module, "get", None)
    if get is None or kind in ("layers", "schedules"):
        return []
    candidates = {_snake(cls.__name__), cls.__name__.lower(), *_SHORT_NAMES}
    candidates.update(n for n in module.__all__ if n.islower())
    with contextlib.suppress(Exception):  # needs arguments, or has no name
        candidates.add(str(cls().name))
    names = []
    for candidate in sorted(candidates):
        try:
            value = get(candidate)
        except Exception:  # not a name of this kind
            continue
        if type(value) is cls and candidate not in ("get", "serialize", "deserialize"):
            names.append(candidate)
    return names


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Return a Google docstring's description and its ``Args:`` (name -> text)."""
    description: list[str] = []
    args: dict[str, str] = {}
    section = None
    current = None
    for line in doc.splitlines():
        heading = _SECTION.match(line.strip())
        if heading and not line.startswith(" "):
            section = heading.group(1)
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments"):
            item = re.match(r"^ {4}(\*{0,2}\w+)(?: \([^)]*\))?: ?(.*)$", line)
            if item:
                current = item.group(1).lstrip("*")
                args[current] = item.group(2).strip()
            elif line.startswith("        ") and current:
                args[current] += " " + line.strip()
            elif line.strip() and not line.startswith(" "):
                section = None
                description.append(line)
    return "\n".join(description).strip(), args


def _signature(cls: type, qualified: str) -> str:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return f"{qualified}(...)"
    parts: list[str] = []
    star = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            star = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.default is p.empty:
            parts.append(p.name)
        else:
            parts.append(f"{p.name}={_default(p.default)}")
    one_line = f"{qualified}({', '.join(parts)})"
    if len(one_line) <= 88:
        return one_line
    return f"{qualified}(\n" + "".join(f"    {part},\n" for part in parts) + ")"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _defaults(cls: type) -> dict[str, str]:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: ("required" if p.default is p.empty else f"`{_default(p.default)}`")
        for p in params
    }


def catalogue(kind: str) -> str:
    """Return the Markdown catalogue of ``loopkit.<kind>``."""
    classes = public_classes(kind)
    out = [
        "Every public class of `loopkit."
        + kind
        + "`: "
        + ", ".join(f"[`{c.__name__}`](#{c.__name__.lower()})" for c in classes)
        + ".",
        "",
    ]
    for cls in classes:
        qualified = f"loopkit.{kind}.{cls.__name__}"
        description, args = _split_docstring(inspect.getdoc(cls) or "")
        out += [f"### {cls.__name__}", "", "```text", _signature(cls, qualified), "```", ""]
        if cls.__name__ == KINDS[kind]:
            out += ["The base class: subclass it to write your own.", ""]
        out += [description or "(no description)", ""]
        names = _names_for(kind, cls)
        if names:
            out += ["By name: " + ", ".join(f'`"{n}"`' for n in names) + ".", ""]
        if args:
            defaults = _defaults(cls)
            out += ["| argument | default | meaning |", "| --- | --- | --- |"]
            for name, text in args.items():
                default = defaults.get(name, "")
                out.append(f"| `{name}` | {default} | {_cell(text)} |")
            out.append("")
    return "\n".join(out)


class _Recorder:
    """Implements every loopkit hook and records each call's name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @classmethod
    def build(cls) -> _Recorder:
        for name in lk.HOOK_NAMES:
            setattr(cls, name, lk.hookimpl(_recording(name)))
        return cls()


def _recording(name: str) -> Callable[..., None]:
    def record(self: _Recorder) -> None:
        self.calls.append(name)

    record.__name__ = name
    return record


def _indented(calls: list[str]) -> Iterator[str]:
    """Indent each ``*_begin`` .. ``*_end`` pair's contents one level deeper."""
    depth = 0
    for name in calls:
        if name.endswith("_end"):
            depth -= 1
        yield "    " * depth + name
        if name.endswith("_begin"):
            depth += 1


def hook_trace() -> str:
    """Return the hooks of a 2-epoch fit (2 batches, validation), evaluate and predict."""
    lk.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    model = lk.Sequential([lk.layers.Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    recorder = _Recorder.build()
    sections = []
    runs: list[tuple[str, Callable[[], Any]]] = [
        (
            "model.fit(x, y, epochs=2, batch_size=2, validation_data=(x[:2], y[:2]))",
            lambda: model.fit(
                x[:4],
                x[:4, :1],
                epochs=2,
                batch_size=2,
                verbose=0,
                validation_data=(x[:2], x[:2, :1]),
                plugins=[recorder],
            ),
        ),
        (
            "model.evaluate(x, y, batch_size=2)",
            lambda: model.evaluate(
                x[:4], x[:4, :1], batch_size=2, verbose=0, plugins=[recorder]
            ),
        ),
        (
            "model.predict(x, batch_size=2)",
            lambda: model.predict(x[:4], batch_size=2, verbose=0, plugins=[recorder]),
        ),
    ]
    for title, run in runs:
        recorder.calls.clear()
        run()
        sections += [
            f"`{title}`, 2 batches:",
            "",
            "```text",
            *_indented(recorder.calls),
            "```",
            "",
        ]
    return "\n".join(sections)


def benchmark_tables() -> str:
    """Return how the last benchmark run was made, its ratio table and plugin overheads."""
    text = RESULTS.read_text(encoding="utf-8")
    sections = {
        part.split("\n", 1)[0].strip(): part.split("\n", 1)[1].strip()
        for part in text.split("\n## ")[1:]
    }
    generated = next(line for line in text.splitlines() if line.startswith("Generated by"))
    wanted = ("Ratio to the floor", "Plugin overhead")
    out = [generated, ""]
    for title, body in sections.items():
        if title.startswith(wanted):
            out += [f"### {title}", "", body, ""]
    if len(out) < 2 + 2 * len(wanted):
        raise ValueError(f"docs: {RESULTS} lacks one of the sections {wanted}")
    return "\n".join(out)


def _generate(match: re.Match[str]) -> str:
    what, argument = match.group(1), match.group(2)
    if what == "catalogue" and argument in KINDS:
        return catalogue(argument)
    if what == "hook-trace":
        return hook_trace()
    if what == "benchmarks":
        return benchmark_tables()
    raise ValueError(f"docs: unknown generated section {match.group(0)!r}")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: replace every ``<!-- generate: ... -->`` line with its section."""
    return _MARKER.sub(_generate, markdown)


if __name__ == "__main__":
    print(on_page_markdown(f"<!-- generate: {' '.join(sys.argv[1:])} -->"))
