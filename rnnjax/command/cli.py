"""The one command-line entry of every experiment and benchmark: parse the command's frozen config
dataclass with tyro, run `main(config)`, and report every failure as one line `error: ...` on stderr.

Exit status: 0 done; 2 bad usage (a value refused by the command line, a config's checks or the library:
`BAD_INPUT`); 1 a run that failed (`RunFailed`, e.g. a diverged training, a full disk, or anything
unexpected); 130 interrupted by Ctrl-C, 143 by SIGTERM (training saves the interrupted step first and
prints the command that continues it). The traceback (or tyro's full parse report) only with `--debug`.
Warnings print as one line `warning: ...` (their source file and line only with `--debug`).

Every experiment's config has the same fields, so the same flags work everywhere: `--run NAME` (outputs in
`results/<experiment>/<NAME>/`, a plain folder name), `--overwrite` (replace an existing run of that
name; without it an existing run is refused), `--quick` (a smoke run of a few seconds) and
`--no-progress` (no progress bars, for logs and CI). `--quick` sets small values in the fields not given
on the command line (`quick`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import inspect
import io
import json
import os
import re
import shlex
import signal
import sys
import threading
import traceback
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tyro

from rnnjax import results
from rnnjax.command import runs
from rnnjax.train.loop import DivergenceWarning, Interrupted

__all__ = [
    "BAD_INPUT",
    "Printout",
    "RUN_MARKERS",
    "RunFailed",
    "check_ints",
    "flag_value",
    "named",
    "new_run",
    "one_line",
    "output_folder",
    "parse",
    "quick",
    "run",
    "run_folder",
    "saved_config",
    "saved_run",
    "trained_run",
]

# Exceptions that mean "the input was bad": their messages name the argument, what was given and what
# was expected, so the user needs no traceback.
BAD_INPUT = (ValueError, TypeError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError,
             IsADirectoryError)  # fmt: skip
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 2, 1, 130, 141, 143
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BOX = "│┃╭╮╰╯┌┐└┘├┤|+ \t"  # the frame of tyro's error panel, stripped from each line
_RULE = re.compile(r"[─━\-=]{3,}")  # a horizontal rule inside tyro's panel
_INNER = re.compile(r"^Error parsing (?!-)[^:]*: ")  # a config's own check: its message names the field
_CONVERSIONS = (  # Python's conversion errors, said in the words of the other messages
    (re.compile(r"^Error parsing (\S+): invalid literal for int\(\) with base 10: (.*)$"), "an int"),
    (re.compile(r"^Error parsing (\S+): could not convert string to float: (.*)$"), "a number"),
)


class RunFailed(RuntimeError):
    """The run started but did not succeed (e.g. training diverged): exit status 1."""


def one_line(message: str) -> str:
    """`message` with its lines joined by spaces (an error report is one line)."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _tyro_message(report: str) -> str:
    """The first meaningful line of tyro's parse-error report: its title and its first section, joined.

    The report is a title, a rule, the message (wrapped over lines), a rule, then help pointers; for a
    UTF-8 terminal it is drawn in a box, otherwise plain. Either way the frame is stripped here.
    """
    rows = [_ANSI.sub("", line).strip(_BOX + "─") for line in report.splitlines()]
    rows = ["" if _RULE.fullmatch(row) else row for row in rows]  # rules and blank lines end a section
    while rows and not rows[0]:
        rows.pop(0)
    if not rows:
        return "the command line could not be parsed (see --help)"
    title, rest = rows[0], rows[1:]
    while rest and not rest[0]:
        rest.pop(0)
    body = " ".join(rest[: rest.index("")] if "" in rest else rest)
    if not body:
        return title
    titled = body.split(maxsplit=1)[0].lower() not in title.lower().split()
    body = _INNER.sub("", body)
    for pattern, expected in _CONVERSIONS:
        body = pattern.sub(rf"\1: expected {expected}, got \2", body)
    return f"{title}: {body}" if titled else body


_LIST_PARSE = re.compile(r"^Error parsing --(\S+): Could not find valid parse for arguments: (\[.*\])$")
_ELEMENT_WORDS = {int: "ints", float: "numbers", str: "names", bool: "True or False values"}


def _list_message(message: str, target) -> str:
    """tyro's "Could not find valid parse" for a tuple option, said in the words of the other messages:
    "input_scales: expected numbers, got ['big']". The element type is read from the config's field of that
    name (nested configs searched too); other messages pass unchanged."""
    match = _LIST_PARSE.match(message)
    if match is None:
        return message
    flag, given = match.groups()
    name = flag.rsplit(".", 1)[-1].replace("-", "_")
    element = _field_element_type(target, name, set())
    if element not in _ELEMENT_WORDS:
        return message
    return f"{name}: expected {_ELEMENT_WORDS[element]}, got {given}"


def _field_element_type(cls, name: str, seen: set):
    """The element type of the `tuple[X, ...]` field `name` of dataclass `cls` or of a dataclass inside it
    (None where there is none)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)) or cls in seen:
        return None
    seen.add(cls)
    hints = typing.get_type_hints(cls)
    args = typing.get_args(hints.get(name))
    if args and typing.get_origin(hints[name]) is tuple:
        return args[0]
    for hint in hints.values():
        for inner in (hint, *typing.get_args(hint)):
            found = _field_element_type(inner, name, seen)
            if found is not None:
                return found
    return None


def parse(command, argv: list[str], debug: bool = False):
    """`argv` parsed by tyro into `command` (a config type, or a function `argv -> type` or
    `argv -> (type, default instance)`). A refused command line raises ValueError with tyro's message in
    one line; `--help` prints the help and exits 0 as usual."""
    target = command(argv) if inspect.isfunction(command) else command
    target, default = target if isinstance(target, tuple) else (target, None)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            given = {} if default is None else dict(default=default)  # None would add a "none" subcommand
            config = tyro.cli(target, args=argv, prog=_prog(), **given)
    except SystemExit as e:
        if e.code in (0, None) or debug:
            sys.stderr.write(captured.getvalue())
            raise
        raise ValueError(_list_message(_tyro_message(captured.getvalue()), target)) from None
    sys.stderr.write(captured.getvalue())
    for w in caught:  # tyro's notes on the config types are for their authors, not for the user
        if not w.category.__name__.startswith("Tyro"):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return config


def _prog() -> str | None:
    """How the command was started, for tyro's messages: `python -m experiments.NAME` (None: tyro's own)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None and spec.name else None


def run(command, main: Callable[[Any], object], argv: list[str] | None = None) -> None:
    """Parse `argv` (default: `sys.argv[1:]`) with `parse(command, ...)` and call `main` on the config.

    `--debug` (anywhere in argv, removed before parsing) re-raises errors with their traceback. Otherwise
    every failure prints one line `error: <message>` to stderr and exits with status 2 (bad input, see
    `BAD_INPUT`), 1 (the run failed) or 130 (interrupted).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    config = None
    try:
        with _plain_warnings(debug), _sigterm_interrupts() as received:
            config = parse(command, argv, debug)
            main(config)
    except Interrupted as e:
        if debug:
            raise
        sys.stdout.flush()
        print(f"{e}; {_continue_with(argv, config, e)}", file=sys.stderr, flush=True)
        raise SystemExit(e.exit_status) from None
    except KeyboardInterrupt:
        if debug:
            raise
        status = EXIT_TERMINATED if received else EXIT_INTERRUPTED
        _fail(f"interrupted{_continue_after(argv, config)}", status)
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error on exit
        raise SystemExit(EXIT_BROKEN_PIPE) from None
    except BAD_INPUT as e:
        if debug:
            raise
        _fail(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e), EXIT_BAD_INPUT)
    except RunFailed as e:
        if debug:
            raise
        _fail(str(e), EXIT_FAILED)
    except Exception as e:
        if debug:
            raise
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            _fail(e.strerror or str(e), EXIT_FAILED)
        where = traceback.extract_tb(e.__traceback__)[-1]
        _fail(
            f"{type(e).__name__}: {str(e) or 'no message'} (in {Path(where.filename).name}:{where.lineno}; "
            f"--debug shows the traceback)",
            EXIT_FAILED,
        )
    finally:
        runs.release()  # the command's run folders are free for the next one


def _resume_command(argv: list[str]) -> str:
    """The command line that continues this one: the same arguments with `--resume` and without
    `--overwrite` (which would delete what was saved)."""
    kept = [a for a in argv if a not in ("--overwrite", "--resume")]
    return " ".join(shlex.quote(a) for a in [*(_prog() or "python -m ?").split(), *kept, "--resume"])


def _continue_after(argv: list[str], config) -> str:
    """For an interrupt outside a training step: how to continue, when the command can resume and its run
    folder holds a checkpoint (else nothing: run the command again)."""
    folders = runs.owned()
    if not hasattr(config, "resume") or not folders or not any(runs.holds_results(f) for f in folders):
        return ""
    line = _resume_command(argv)
    return f" between training steps (the last step is saved); continue with: {line}"


def _continue_with(argv: list[str], config, interrupted: Interrupted) -> str:
    """How to continue an interrupted run: the same command line with `--resume` (and without
    `--overwrite`, which would delete what was saved), when the command can resume."""
    if not interrupted.saved:
        return "this command keeps no checkpoint; run it again to start over"
    if not hasattr(config, "resume"):
        return "this command cannot continue a run; run it again to start over"
    line = _resume_command(argv)
    return f"continue with: {line}"


@contextlib.contextmanager
def _sigterm_interrupts():
    """Inside (in the main thread), SIGTERM interrupts like Ctrl-C (a KeyboardInterrupt, so files are
    closed and locks released) instead of killing the process; the list yielded gets the signal number.
    Training (`rnnjax.train.loop.fit`) handles both signals itself: it saves the step first."""
    received: list[int] = []
    ignored = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # by whoever started the process: stays so
    if threading.current_thread() is not threading.main_thread() or ignored:
        yield received
        return

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _plain_warnings(debug: bool):
    """Inside, a warning prints as one line `warning: <message>` on stderr (with `debug`: Python's usual
    form, naming the source line); a `DivergenceWarning` not at all, since the command fails with it."""
    if debug:
        yield
        return
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DivergenceWarning):
            return  # a diverged training is the command's error (RunFailed), said once
        print(f"warning: {one_line(str(message))}", file=sys.stderr if file is None else file, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _fail(message: str, status: int):
    sys.stdout.flush()
    print(f"error: {one_line(message) or 'failed'}", file=sys.stderr, flush=True)
    raise SystemExit(status) from None


@contextlib.contextmanager
def named(field: str, *arguments: str):
    """Inside, bad input refused by a library call under its argument's name (one of `arguments`) is
    reported under the command's `field` instead, e.g. `named("corpus", "name_or_path")`."""
    try:
        yield
    except BAD_INPUT as e:
        message = str(e.args[0]) if e.args else ""
        name = next((a for a in arguments if message.startswith(f"{a}:")), None)
        if name is None:
            raise
        try:
            renamed = type(e)(field + message[len(name) :])
        except TypeError:  # an exception type that takes more than a message
            renamed = ValueError(field + message[len(name) :])
        raise renamed from None


def quick(cfg, settings: dict, defaults=None):
    """`cfg` with the `--quick` `settings` in the fields the user left at their default (`defaults`, a
    config of the same type; default: `type(cfg)()`), so explicit flags still win over `--quick`."""
    defaults = type(cfg)() if defaults is None else defaults
    keep = {k: v for k, v in settings.items() if getattr(cfg, k) == getattr(defaults, k)}
    return dataclasses.replace(cfg, **keep)


def check_ints(cfg, *names: str, minimum: int = 1) -> None:
    """Refuse (ValueError naming the field) the first field of `cfg` among `names` that is not an int >=
    `minimum` (for a tuple field: not a non-empty tuple of them)."""
    for name in names:
        value = getattr(cfg, name)
        values = value if isinstance(value, tuple) else (value,)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
            expected = f"{'ints' if isinstance(value, tuple) else 'an int'} >= {minimum}"
            raise ValueError(f"{name}: expected {expected}, got {value!r}")


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` in `argv` (`--flag VALUE` or `--flag=VALUE`; the last one wins)."""
    value = None
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def run_folder(experiment: str, cfg, *, resume: bool = False) -> Path:
    """`results/<experiment>/<cfg.run>/` for a new run (refused if it holds a run, unless
    `cfg.overwrite`), or, with `resume`, the existing folder of the run to continue; owned (locked) by this
    command until it ends (`runs.open_run`)."""
    return runs.open_run(experiment, cfg.run, overwrite=cfg.overwrite, resume=resume)


def trained_run(experiment: str, run: str, holds: tuple[str, ...] = ()) -> Path:
    """The folder `results/<experiment>/<run>/` of a trained run (never created), holding `holds` (e.g.
    "checkpoints"); else an error naming the run: no such folder (FileNotFoundError), a file in its place,
    a run of another experiment (`RUN_MARKERS`) or a folder without `holds` (ValueError)."""
    folder = Path("results") / experiment / results.check_run_name(run)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"run: {str(folder)!r} is a file, not a run folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"run: there is no run {run!r} of {experiment} (no folder {str(folder)!r})")
    _refuse_foreign(folder, experiment, "run")
    missing = [name for name in holds if not (folder / name).exists()]
    if missing:
        raise ValueError(
            f"run: {str(folder)!r} holds no {' or '.join(missing)}, which a trained run of {experiment} "
            f"holds (a run stopped before its first checkpoint, or not a run of {experiment})"
        )
    return folder


def output_folder(experiment: str, cfg, default_run: str, marker: str) -> Path:
    """The output folder of a benchmark-like command, checked before its work starts: `cfg.out` if given
    (an explicit folder: allowed if missing or empty, or, with `cfg.overwrite`, if it holds a run of this
    command, recognised by its `marker` file), else `results/<experiment>/<cfg.run or default_run>/`
    (`runs.open_run`); locked by this command until it ends."""
    if getattr(cfg, "out", None) is None:
        return runs.open_run(experiment, cfg.run or default_run, overwrite=cfg.overwrite)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: expected a folder, got {str(out)!r}, which is a file")
    if out.is_dir() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise ValueError(
                f"out: expected an empty folder or one holding a {marker} of an earlier run, got "
                f"{str(out)!r}, which holds other files; choose another --out"
            )
        if not cfg.overwrite:
            raise ValueError(f"out: {str(out)!r} already holds a {marker}; pass --overwrite to replace it")
    return runs.own(out)


def new_run(experiment: str, cfg) -> Path:
    """`run_folder(experiment, cfg)` with the run's `config.json` (`cfg`) written into it."""
    out = run_folder(experiment, cfg)
    results.write_json(out / "config.json", cfg)
    return out


def redraw(path, experiment: str, plot, keys: tuple[str, ...] = ()) -> Path:
    """`--plot-only PATH`: the saved run of `experiment` at `path` (`saved_run`; its metrics.json must hold
    `keys`), its figures redrawn by `plot(run)`. A value the figures need that is missing from metrics.json
    or of another type is reported as the file's error (`runs.from_file`)."""
    run = saved_run(path, experiment, keys={"metrics.json": keys})
    try:
        plot(run)
    except (KeyError, TypeError):  # the figures read metrics.json alone
        with runs.from_file(run / "metrics.json"):
            raise
    print(f"redrew figures in {run}")
    return run


def finish_run(out: Path, title: str, metrics: dict, plot, summarise, *, compact: bool = False) -> str:
    """Write a sweep's `metrics.json` (one line when `compact`: for large curves), draw its figures with
    `plot(out)` and write `summary.md` from the saved metrics with `summarise(metrics) -> text`, so figures
    and summary always show what the JSON holds. Returns the summary text."""
    if compact:
        results.atomic_write_text(out / "metrics.json", json.dumps(results.to_jsonable(metrics)) + "\n")
    else:
        results.write_json(out / "metrics.json", metrics)
    plot(out)
    text = summarise(json.loads((out / "metrics.json").read_text()))
    results.atomic_write_text(out / "summary.md", f"# {title}\n\n{text}\n")
    return text


class Printout:
    """`say(line)`: print a line (with `write`, e.g. `tqdm.write` between progress bars) and keep it in
    `lines`, for the run's summary.md."""

    def __init__(self, write: Callable[[str], object] = print):
        self.lines: list[str] = []
        self._write = write

    def __call__(self, line: str = "") -> None:
        self._write(line)
        self.lines.append(line)

    def save(self, path, title: str) -> None:
        """Write the lines as a Markdown file `path` (a `# title` and one code block), atomically."""
        results.atomic_write_text(path, f"# {title}\n\n```\n" + "\n".join(self.lines) + "\n```\n")


# A file or folder that a run of only one experiment holds: how a folder given as a run of one
# experiment is recognised as a run of another.
RUN_MARKERS = {
    "text_generation": "command.json",
    "classify": "labels.json",
    "long_range": "train",
    "lyapunov": "lyapunov_spectrum.png",
    "gradient_norms": "grad_whh_vs_T.png",
    "gradient_norms_training": "profiles.png",
}


def _refuse_foreign(folder: Path, experiment: str, what: str) -> None:
    """A ValueError naming `what` if `folder` holds the marker of exactly one other experiment's run."""
    others = [name for name, marker in RUN_MARKERS.items() if (folder / marker).exists()]
    if len(others) == 1 and others[0] != experiment:
        raise ValueError(f"{what}: {str(folder)!r} is a run of {others[0]}, not of {experiment}")


def saved_run(
    folder,
    experiment: str,
    needs: tuple[str, ...] = ("metrics.json",),
    what: str = "plot_only",
    keys: dict[str, tuple[str, ...]] | None = None,
) -> Path:
    """`folder` as a Path if it is a run of `experiment`: a folder, not another experiment's run
    (`RUN_MARKERS`), holding `needs` and config.json, each JSON file of them an object with the keys
    `keys[name]` (`runs.read_json`), locked for this command (`runs.own`); else a ValueError naming `what`
    (the flag that gave the folder), or the file and what it lacks."""
    folder, files = Path(folder), (*needs, "config.json")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what}: expected a run folder of {experiment}, got {str(folder)!r}: a file")
    if folder.is_dir():
        _refuse_foreign(folder, experiment, what)
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{what}: expected a run folder holding {' and '.join(needs)}, got {str(folder)!r}, which has no "
            f"{' or '.join(missing)} (a run of {experiment} holds {' and '.join(files)})"
        )
    for name in (f for f in files if f.endswith(".json")):
        runs.read_json(folder / name, (keys or {}).get(name, ()), what=f"the {name} of a {experiment} run")
    return runs.own(folder)  # its figures are rewritten: no other command may write there meanwhile


def saved_config(
    argv: list[str],
    experiment: str,
    name: str = "config.json",
    *,
    keys: tuple[str, ...] = (),
    build: Callable[[dict], Any] | None = None,
    required: bool = False,
):
    """With `--resume` and `--run NAME` in `argv`: the JSON object `name` saved in that run's folder,
    holding `keys` (`runs.read_json`), or `build(it)` (a refused value reported as the file's:
    `runs.from_file`), so a resumed command line starts from the run's own settings. None without
    `--resume`, or when the run does not exist (the command reports it), or, unless `required`, when the
    run holds no such file; with `required` that is refused (ValueError), never a silent fall back to the
    defaults."""
    run = flag_value(argv, "--run")
    if "--resume" not in argv or run is None:
        return None
    try:
        folder = runs.run_path(experiment, run)
    except ValueError:
        return None  # reported when the command runs
    path = folder / name
    if not path.exists():
        if required and folder.is_dir():
            raise ValueError(
                f"resume: run {run!r} has no {name} ({str(path)!r}: the settings it was trained with), so it "
                f"cannot be continued with its own settings; start a new --run"
            )
        return None
    saved = runs.read_json(path, keys, what=f"the {name} of a {experiment} run")
    if build is None:
        return saved
    with runs.from_file(path):
        return build(saved)
