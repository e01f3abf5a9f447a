"""docs/sequence-models.md runs as written, and the forecaster example learns."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_python_block_of_the_sequence_page_runs_and_prints_what_it_says() -> None:
    text = (ROOT / "docs" / "sequence-models.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    namespace: dict[str, object] = {}
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "sequence-models.md", "exec"), namespace)
        promised = re.findall(r"print\(.*\)  # (.*)", block)
        assert out.getvalue().splitlines() == promised


def test_the_forecaster_example_beats_the_naive_forecast() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import sequence_forecaster
    finally:
        sys.path.remove(str(ROOT / "examples"))
    with contextlib.redirect_stdout(io.StringIO()):
        mse, naive = sequence_forecaster.main(epochs=3)
    assert mse < naive / 5
