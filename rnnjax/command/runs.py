"""The one owner of a command's run folder `results/<experiment>/<run>/`.

A command opens its folder once, with `open_run`, and holds the folder's lock (`results.RunLock`) for the
rest of its life (`cli.run` calls `release` however the command ends; the OS drops the lock if the process
dies). So a second command on the same folder is refused, naming the PID that holds it, whatever it asks
(`--overwrite` included): no live run can be deleted, or mixed with another one's files.

A folder that holds no result yet (`holds_results` is false: a run killed before its first checkpoint or
output) is cleaned and reused without `--overwrite`; one that does is refused unless `--overwrite`
(replace it) or `--resume` (continue it).

    out = open_run("gradient_norms", "smoke", overwrite=cfg.overwrite)   # locked until release()
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import warnings
from pathlib import Path

from rnnjax.results import RunLock, check_run_name

__all__ = [
    "RESULT_FILES",
    "from_file",
    "holds_results",
    "open_run",
    "own",
    "owned",
    "read_json",
    "release",
    "run_path",
]

# Files whose presence (anywhere in a run folder) means the run has produced something worth keeping;
# a `checkpoints/<step>` folder means the same.
RESULT_FILES = ("metrics.json", "summary.md", "final.json")
_OWNED: list[tuple[Path, RunLock]] = []


def run_path(experiment: str, run: str | None, root: str | os.PathLike = "results") -> Path:
    """`root/experiment/run` (run defaults to a UTC timestamp), checked but neither created nor locked."""
    run = check_run_name(run or datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S"))
    return Path(root) / experiment / run


def holds_results(folder: Path) -> bool:
    """Whether `folder` holds a result (`RESULT_FILES`) or a checkpoint step anywhere inside it."""
    for path in folder.rglob("*"):
        if path.name in RESULT_FILES and path.is_file():
            return True
        if path.parent.name == "checkpoints" and path.name.isdigit() and path.is_dir():
            return True
    return False


def _check_in_the_way(path: Path) -> None:
    """A ValueError naming the file that stands where `path` or one of its parent folders should be."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            raise ValueError(
                f"run: {str(part)!r} is a file, where the run folder {str(path)!r} needs a folder; move it "
                f"away or choose another --run"
            )


def open_run(
    experiment: str,
    run: str | None,
    root: str | os.PathLike = "results",
    *,
    overwrite: bool = False,
    resume: bool = False,
) -> Path:
    """The run folder `root/experiment/run`, created and locked for this process until `release`.

    Args:
      experiment, run: the folder's parts (`run`: a plain name; default a UTC timestamp).
      root: the results folder.
      overwrite: a folder that holds results is emptied first (refused while another process uses it).
      resume: the folder must exist and is returned as it is (a run to continue).
    Raises:
      ValueError naming the argument: a folder in use by another process (its PID), a file in the way, a
      folder holding results without `overwrite` or `resume`, a missing folder to resume.
    """
    for name, value in (("overwrite", overwrite), ("resume", resume)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
    if overwrite and resume:
        raise ValueError("overwrite, resume: expected at most one of them, got both")
    path = run_path(experiment, run, root)
    _check_in_the_way(path)
    if resume and not path.is_dir():
        raise ValueError(f"resume: there is no run {path.name!r} to continue (no folder {str(path)!r})")
    existed = path.is_dir()
    lock = RunLock(path)
    lock.__enter__()  # refuses a folder another process holds, naming its PID
    try:
        leftovers = [p for p in path.iterdir() if p.name != ".lock"] if existed else []
        if leftovers and not resume:
            if holds_results(path) and not overwrite:
                raise ValueError(
                    f"run: {str(path)!r} already holds a run; pass --overwrite to replace it, --resume to "
                    f"continue it (where the command can), or choose another --run"
                )
            if not overwrite:
                names = ", ".join(sorted(p.name for p in leftovers))
                warnings.warn(
                    f"run: {str(path)!r} held only the leftovers of a run that ended before its first "
                    f"result ({names}); starting it afresh",
                    stacklevel=2,
                )
            for p in leftovers:  # the lock file stays: this process holds it
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    _OWNED.append((path, lock))
    return path


def own(folder: str | os.PathLike) -> Path:
    """Lock the folder `folder` (created; e.g. a benchmark's `--out`) for this process until `release`, as
    `open_run` does, leaving its contents alone."""
    folder = Path(folder)
    _check_in_the_way(folder)
    lock = RunLock(folder)
    lock.__enter__()
    _OWNED.append((folder, lock))
    return folder


def owned() -> list[Path]:
    """The run folders this process has opened and not released, oldest first."""
    return [path for path, _ in _OWNED]


def release() -> None:
    """Unlock every run folder this process opened (the end of a command)."""
    while _OWNED:
        _, lock = _OWNED.pop()
        lock.__exit__(None, None, None)


def read_json(path: str | os.PathLike, keys: tuple[str, ...] = (), *, what: str = "a run file") -> dict:
    """The JSON object in `path`, a file a command reads from a run folder (config, command, vocabulary,
    labels, metrics): every problem is a ValueError naming the file and what was expected: a missing file,
    a folder in its place, text that does not parse, a value that is not an object, or a missing key of
    `keys`. `what` says what the file should be (e.g. "the config.json of a classify run")."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r}: expected {what}, got a folder")
    if not path.is_file():
        raise ValueError(f"{str(path)!r}: expected {what}, but there is no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r}: expected {what} (UTF-8 JSON), got other bytes") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r}: expected {what}, got text that is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r}: expected {what}, a JSON object, got a JSON {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(
            f"{str(path)!r}: expected {what} with the key{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}, which {'are' if len(missing) > 1 else 'is'} missing "
            f"(edited, or a file of another command?)"
        )
    return data


@contextlib.contextmanager
def from_file(path: str | os.PathLike):
    """Inside, a value read from the run file `path` and refused (ValueError, TypeError, KeyError) is
    reported as the file's, not as a flag the user passed: "'results/x/r/config.json': hidden_size:
    expected an int >= 1, got 'big'"."""
    try:
        yield
    except (ValueError, TypeError, KeyError) as e:
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        if isinstance(e, KeyError):
            message = f"the key {message!r} is missing"
        raise ValueError(f"{str(path)!r}: {message} (an edited or foreign run file?)") from None
