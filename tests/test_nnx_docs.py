"""The code of docs/nnx.md runs as written: every ```python block, each in a fresh namespace, under JAX's
default configuration (32-bit: the test suite's float64 switch is turned off around each block, as a reader
runs it). A block that raises fails the test, which names the block's first line in the page; the blocks
check their own claims (e.g. the bit-exact round trip) with `assert`."""

import re
from pathlib import Path

import jax
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "nnx.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks() -> list[tuple[int, str]]:
    """(line of the block's first code line, code) of every ```python block of the page."""
    text = PAGE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_page_shows_the_three_moves():
    assert len(blocks()) == 3  # use a cell in an NNX model, convert and measure, train


@pytest.mark.parametrize("line, code", blocks(), ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_block_runs(line, code, capsys):
    with jax.enable_x64(False):
        exec(compile(code, f"{PAGE}:{line}", "exec"), {"__name__": "docs_nnx"})  # noqa: S102
    assert capsys.readouterr().out  # every block prints what it shows
