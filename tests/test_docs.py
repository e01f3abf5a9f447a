"""Every Python block in README.md and docs/ runs as written; the site builds strictly.

The convention: a fenced ``python`` block runs on its own, in a fresh namespace and an
empty temporary folder. A block preceded by the line ``<!-- continue -->`` continues
the block before it in the same file: same namespace, same folder. Blocks in other
languages (``bash``, ``toml``, ``text``) are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTINUE = "<!-- continue -->"
FENCE = re.compile(r"^```(\w*)\s*$")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_chains(path: Path) -> list[list[tuple[int, str]]]:
    """Return the file's Python blocks as chains of (first line, source)."""
    chains: list[list[tuple[int, str]]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    previous = ""  # the last non-blank line before a fence
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened or not opened.group(1):
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        language, start = opened.group(1), index + 1
        index = start
        while not lines[index].startswith("```"):
            index += 1
        if language == "python":
            block = (start + 1, "\n".join(lines[start:index]) + "\n")
            if previous == CONTINUE:
                assert chains, f"{path}:{start}: {CONTINUE} before the first block"
                chains[-1].append(block)
            else:
                chains.append([block])
        elif previous == CONTINUE:
            raise AssertionError(f"{path}:{start}: {CONTINUE} before a {language} block")
        previous = ""
        index += 1
    return chains


CHAINS = [
    pytest.param(path, chain, id=f"{path.relative_to(ROOT)}:{chain[0][0]}")
    for path in markdown_files()
    for chain in python_chains(path)
]


@pytest.mark.parametrize(("path", "chain"), CHAINS)
def test_the_python_block_runs_as_written(
    path: Path,
    chain: list[tuple[int, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LOOPKIT_")]:
        monkeypatch.delenv(name)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        for line, source in chain:
            code = compile(source, f"{path.relative_to(ROOT)}:{line}", "exec")
            exec(code, namespace)
    finally:
        plt.close("all")


def test_the_blocks_and_their_continuations_are_found() -> None:
    blocks = {
        p.relative_to(ROOT).as_posix(): [len(chain) for chain in python_chains(p)]
        for p in markdown_files()
    }
    assert blocks["README.md"] == [2]  # the fifteen lines, then the plugin continuing them
    assert len(blocks["docs/getting-started.md"]) == 1
    assert sum(map(len, blocks.values())) >= 15
    assert sum(map(sum, blocks.values())) >= 40


def test_a_continuation_without_a_block_before_it_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"Text.\n\n{CONTINUE}\n```python\nx = 1\n```\n")
    with pytest.raises(AssertionError, match="before the first block"):
        python_chains(page)


def test_the_catalogue_lists_every_public_class_with_its_arguments() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    import loopkit.layers

    text = gen_reference.catalogue("layers")
    for name in loopkit.layers.__all__:
        value = getattr(loopkit.layers, name)
        if isinstance(value, type) and issubclass(value, loopkit.layers.Layer):
            assert f"### {name}\n" in text
    dense = "loopkit.layers.Dense(\n    units,\n    activation=None,\n    use_bias=True,"
    assert dense in text  # long signatures: one argument per line
    assert "loopkit.layers.Flatten(*, name=None, trainable=True" in text  # short: one line
    assert "| `units` | required | Number of outputs. |" in text
    losses = gen_reference.catalogue("losses")
    assert 'By name: `"mean_squared_error"`, `"mse"`.' in losses
    for kind in gen_reference.KINDS:
        page = (ROOT / "docs" / "reference" / f"{kind}.md").read_text(encoding="utf-8")
        assert f"<!-- generate: catalogue {kind} -->" in page


def test_the_hook_trace_is_the_order_the_loop_documents() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    trace = [line.strip() for line in gen_reference.hook_trace().splitlines()]
    fit = trace[trace.index("on_train_begin") : trace.index("on_train_end") + 1]
    table = (ROOT / "docs" / "loop.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| \d+ \| `(on_\w+)`", table, flags=re.MULTILINE)
    first_epoch = fit[: fit.index("on_epoch_end") + 1]
    deduplicated = [*dict.fromkeys(first_epoch), "on_train_end"]
    assert documented[: len(deduplicated)] == deduplicated


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    hooks = (tmp_path / "reference" / "hooks" / "index.html").read_text(encoding="utf-8")
    assert "on_before_optimizer_step" in hooks
    layers = (tmp_path / "reference" / "layers" / "index.html").read_text(encoding="utf-8")
    assert "Conv2D" in layers
    api = (tmp_path / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("fit", "compile", "compute_gradients", "apply_gradients"):
        assert f'id="loopkit.Sequential.{name}"' in api
    assert 'id="loopkit.History.plot"' in api


def ci_block(marker: str) -> list[str]:
    """Return the bash block after ``<!-- ci:marker -->`` in README.md, as CI reads it."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- ci:{marker} -->") + 1
    assert lines[start] == "```bash"
    end = lines.index("```", start + 1)
    return lines[start + 1 : end]


def test_the_readme_set_up_installs_test_and_mpi_extras_runs_tests_then_the_demo() -> None:
    setup = " && ".join(ci_block("setup"))
    assert 'python -m pip install -e ".[test,mpi]"' in setup  # the MPI tests need the extra
    assert setup.endswith("python -m pytest")
    assert ci_block("demo") == [". .venv/bin/activate && loopkit demo"]
