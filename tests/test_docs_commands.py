"""The commands and links of README.md and docs/*.md still work as written.

Every `python -m experiments.X ...` / `python -m benchmarks.X ...` command in a fenced code block or an
inline code span is parsed by that command's own parser, in process: the module's `if __name__ ==
"__main__":` block is run with `rnnjax.command.cli.run` replaced by a recorder of the `(command, main)` it is
given, then `_cli.parse(command, argv)` must return a config
(a `--help`-level dry run; nothing is trained or read). A ValueError means the documented command has
rotted; the failure names the file, the line and the command. The README is a door (STYLE.md item 13): at
most `README_MAX_LINES` lines, with a table of contents whose links all reach a heading, and every relative
link or image in README.md and docs/*.md reaches a file (and, with a `#fragment`, a heading of it).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnnjax.command import cli as _cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 320  # the "at most ~300 lines", with a little room
OUR_PACKAGES = ("experiments.", "benchmarks.")  # commands parsed here; others (pytest, pip) are not ours
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "2>", "2>&1", "<"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PYTHON = re.compile(r"^(\S*/)?python(3(\.\d+)?)?$")  # python, python3, .venv/bin/python
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
COMMAND_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(\S*/)?python3?\s+-m\s")  # outside a fence
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@dataclasses.dataclass(frozen=True)
class Command:
    """One documented command: where it is written and what it runs."""

    path: Path
    line: int  # 1-based line of its first line
    text: str  # as written (continuations joined)
    module: str
    argv: tuple[str, ...]

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text}"


def code_lines(text: str):
    """(line number, text, in a fenced block) of every line of a Markdown file."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


def snippets(path: Path):
    """(line number, shell text) of every code line, backslash continuations joined: the lines of fenced
    blocks, lines that start with a command outside them (an indented block), and every inline code span
    (a span may wrap over the lines of its paragraph)."""
    pending, start, paragraph = "", 0, []
    for number, line, fenced in code_lines(path.read_text(encoding="utf-8")):
        if fenced or COMMAND_LINE.match(line) or pending:
            yield from spans(paragraph)
            paragraph = []
            if not pending:
                start = number
            stripped = line.strip() if not fenced else line.rstrip()
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            yield start, pending + stripped
            pending = ""
        elif line.strip():
            paragraph.append((number, line))
        else:
            yield from spans(paragraph)
            paragraph = []
    yield from spans(paragraph)


def spans(paragraph: list[tuple[int, str]]):
    """(line number, text) of the inline code spans of a paragraph given as (line number, line) pairs."""
    if not paragraph:
        return
    text = "\n".join(line for _, line in paragraph)
    for match in INLINE_CODE.finditer(text):
        yield paragraph[0][0] + text[: match.start()].count("\n"), match.group(2).replace("\n", " ")


def commands_in(path: Path) -> list[Command]:
    """Every `python -m MODULE ...` of `path` (env assignments and `.venv/bin/` dropped, `# comments`
    and everything after a shell operator ignored)."""
    found = []
    for line, text in snippets(path):
        if "python" not in text or "-m" not in text:
            continue
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError:  # unbalanced quotes: not a shell line (e.g. a fragment of prose)
            continue
        for i, token in enumerate(tokens[:-2]):
            if PYTHON.match(token) and tokens[i + 1] == "-m" and not ENV_ASSIGNMENT.match(token):
                argv = []
                for t in tokens[i + 3 :]:
                    if t in SHELL_OPERATORS or t.endswith(";"):
                        break
                    argv.append(t)
                found.append(Command(path, line, text.strip(), tokens[i + 2], tuple(argv)))
    return found


def ours(commands):
    return [c for c in commands if c.module.startswith(OUR_PACKAGES)]


ALL_COMMANDS = [c for path in DOCS for c in commands_in(path)]
# A `$VAR` or `$(...)` (a shell loop, a Slurm example) cannot be parsed without a shell: those few are
# left out and counted, so that docs prefer real values (`--run alice`, not `--run RUN`).
PARSED = [c for c in ours(ALL_COMMANDS) if not any("$" in a for a in c.argv)]
MAX_SKIPPED = 4
# Commands the README's first hour is built on: one of them missing means the extraction is broken.
EXPECTED_MODULES = (
    "experiments.text_generation",
    "experiments.classify",
    "experiments.walkthrough_step",
    "experiments.gradient_norms",
    "experiments.quickstart",
    "benchmarks.throughput",
)


_entries: dict[str, tuple] = {}


def entry(module: str):
    """The `(command, main)` that `module`'s `if __name__ == "__main__":` block passes to `_cli.run`: the
    module is imported as usual and that block's body is run in its namespace with `_cli.run` recording."""
    if module not in _entries:
        namespace = vars(importlib.import_module(module))
        tree = ast.parse(Path(namespace["__file__"]).read_text(encoding="utf-8"))
        blocks = [node.body for node in tree.body if isinstance(node, ast.If) and is_main_test(node.test)]
        assert len(blocks) == 1, (
            f'{module}: expected one `if __name__ == "__main__":` block, got {len(blocks)}'
        )
        recorded, run = [], _cli.run
        _cli.run = lambda command, main, argv=None: recorded.append((command, main))
        try:
            exec(
                compile(ast.Module(body=blocks[0], type_ignores=[]), namespace["__file__"], "exec"), namespace
            )
        finally:
            _cli.run = run
        assert len(recorded) == 1, (
            f"{module}: its __main__ block should call _cli.run once, got {len(recorded)}"
        )
        _entries[module] = recorded[0]
    return _entries[module]


def is_main_test(test: ast.expr) -> bool:
    """Whether `test` is `__name__ == "__main__"`."""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def test_docs_hold_commands_of_every_kind():
    """The extraction finds the commands the docs are about (a guard against a broken extractor)."""
    modules = {c.module for c in PARSED}
    for expected in EXPECTED_MODULES:
        assert expected in modules, f"no `python -m {expected}` command found in README.md or docs/*.md"
    skipped = [c.where() for c in ours(ALL_COMMANDS) if c not in PARSED]
    assert len(skipped) <= MAX_SKIPPED, "too many commands with shell variables:\n" + "\n".join(skipped)


def test_documented_modules_exist():
    for c in ours(ALL_COMMANDS):
        assert importlib.util.find_spec(c.module) is not None, f"{c.where()}\nno module {c.module}"


def test_documented_commands_parse(monkeypatch, tmp_path):
    """Each command's argv is accepted by its own parser. It is parsed in an empty working folder, so no
    saved run is read (`--resume --run NAME` parses against the defaults)."""
    known = [c for c in PARSED if importlib.util.find_spec(c.module) is not None]  # others: the test above
    commands = {c.module: entry(c.module)[0] for c in known}
    monkeypatch.chdir(tmp_path)
    failures = []
    for c in known:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                config = _cli.parse(commands[c.module], list(c.argv))
        except SystemExit as e:  # a documented `--help`
            if e.code not in (0, None) or not {"--help", "-h"} & set(c.argv):
                failures.append(f"{c.where()}\n    exit {e.code}")
            continue
        except ValueError as e:
            failures.append(f"{c.where()}\n    {e}")
            continue
        if not dataclasses.is_dataclass(config):
            failures.append(f"{c.where()}\n    parsed to {config!r}, not a config")
    assert not failures, "documented commands that no longer parse:\n" + "\n".join(failures)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> Iterator[str]:
    """The anchors of every heading of `path` (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    for _, line, fenced in code_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and not fenced:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            yield base if n == 0 else f"{base}-{n}"


def links(path: Path):
    """(line number, target) of every Markdown link and image outside fenced code (inline code spans
    removed first)."""
    for number, line, fenced in code_lines(path.read_text(encoding="utf-8")):
        if not fenced:
            for match in LINK.finditer(INLINE_CODE.sub("", line)):
                yield number, match.group(1)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    """Every relative link and image reaches a file, and a `#fragment` a heading of a Markdown file."""
    broken = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        name, _, fragment = target.partition("#")
        where = (path.parent / name).resolve() if name else path
        if not where.exists():
            broken.append(f"{path.relative_to(ROOT)}:{number}: {target} (no file {where})")
        elif fragment and where.suffix == ".md" and fragment not in set(anchors(where)):
            broken.append(f"{path.relative_to(ROOT)}:{number}: {target} (no heading #{fragment})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_is_a_door():
    """README.md is short and opens with a table of contents whose links all reach its headings."""
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    headings = set(anchors(readme))
    assert "contents" in headings, "README.md has no `## Contents` heading"
    start = next(i for i, line in enumerate(lines) if re.match(r"^##\s+Contents\s*$", line))
    toc = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        toc += [m.group(1) for m in LINK.finditer(line)]
    local = [t[1:] for t in toc if t.startswith("#")]
    missing = [t for t in local if t not in headings]
    assert not missing, f"table-of-contents links with no heading: {missing}"
    sections = [slug(line[3:]) for line in lines if line.startswith("## ") and line.strip() != "## Contents"]
    unlisted = [s for s in sections if s not in local]
    assert not unlisted, f"README.md sections missing from its table of contents: {unlisted}"
