"""`rnnjax.command.runs`, the one owner of a command's run folder: locked for the command's whole life (a
second command is refused naming the first one's PID, `--overwrite` included: checked with real second
processes against a running gradient_norms and classify), leftovers of a run that produced nothing are
cleaned, a file in the way is named, and a run file that is not what it should be is named with it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnjax.command import runs
from rnnjax.results import RunLock

ROOT = Path(__file__).resolve().parents[2]
# A process that owns results/x/r (of its working folder) for a minute.
HOLD = (
    "import time; from rnnjax.command import runs; runs.open_run('x', 'r'); print('held', flush=True); "
    "time.sleep(60)"
)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def holder(tmp_path):
    """Another process that owns results/x/r under `tmp_path` (killed at the end)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_folder_in_use_is_refused_naming_the_pid_even_with_overwrite(tmp_path, holder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for options in (dict(), dict(overwrite=True), dict(resume=True)):
        with pytest.raises(ValueError, match=rf"is in use by another process \(PID {holder.pid}\)"):
            runs.open_run("x", "r", **options)
    assert (tmp_path / "results" / "x" / "r").is_dir()  # nothing deleted


def test_the_lock_lasts_until_release_and_is_reentrant(tmp_path):
    path = runs.open_run("x", "r", tmp_path)
    try:
        with RunLock(path):  # the same process again (as fit does): allowed
            pass
        elsewhere = HOLD.replace("'x', 'r'", f"'x', 'r', {str(tmp_path)!r}")
        other = subprocess.run([sys.executable, "-c", elsewhere], env=_env(), capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert other.returncode == 1 and f"PID {os.getpid()}" in other.stderr  # still held after the `with`
        assert runs.owned() == [path]
    finally:
        runs.release()
    assert runs.owned() == []


def test_leftovers_of_a_run_without_results_are_cleaned_and_results_are_kept(tmp_path):
    folder = tmp_path / "x" / "r"
    (folder / "checkpoints" / "5.orbax-checkpoint-tmp-1").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    try:
        with pytest.warns(UserWarning, match=r"held only the leftovers .*\(checkpoints, config.json\)"):
            assert runs.open_run("x", "r", tmp_path) == folder
        assert [p.name for p in folder.iterdir()] == [".lock"]
    finally:
        runs.release()
    (folder / "checkpoints" / "5").mkdir(parents=True)  # a checkpoint step: a result worth keeping
    with pytest.raises(ValueError, match="already holds a run; pass --overwrite"):
        runs.open_run("x", "r", tmp_path)
    assert (folder / "checkpoints" / "5").is_dir()
    try:
        runs.open_run("x", "r", tmp_path, overwrite=True)
        assert [p.name for p in folder.iterdir()] == [".lock"]
    finally:
        runs.release()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "x").write_text("not a folder")
    with pytest.raises(ValueError, match=rf"run: '{tmp_path / 'x'}' is a file, where the run folder"):
        runs.open_run("x", "r", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "expected the config.json of a run, but there is no such file"),
        ("", "expected the config.json of a run, got text that is not JSON"),
        ("[1, 2]", "expected the config.json of a run, a JSON object, got a JSON list"),
        ('{"seed": 1}', "expected the config.json of a run with the key 'cells', which is missing"),
    ],
)
def test_run_files_are_read_as_inputs(tmp_path, text, message):
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as caught:
        runs.read_json(path, ("cells",), what="the config.json of a run")
    assert str(caught.value).startswith(f"{str(path)!r}: {message}")


def test_values_from_a_file_are_reported_as_the_files(tmp_path):
    expected = r"'c.json': hidden_size: expected an int >= 1, got 'big' \(an edited"
    with pytest.raises(ValueError, match=expected), runs.from_file("c.json"):
        raise ValueError("hidden_size: expected an int >= 1, got 'big'")


def _wait_for_lock(folder: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        lock = folder / ".lock"
        if lock.is_file() and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"the first command did not open {folder} (exit {proc.poll()})")


@pytest.mark.parametrize(
    "experiment, first, second",
    [
        ("gradient_norms", ["--quick", "--seed", "0"], ["--quick", "--seed", "1"]),
        ("classify", ["--quick", "--epochs", "6", "--cell", "lstm"], ["--quick", "--cell", "gru"]),
    ],
)
def test_overwrite_of_a_live_run_is_refused_and_the_first_run_is_intact(tmp_path, experiment, first, second):
    command = [sys.executable, "-m", f"experiments.{experiment}", "--run", "R", "--no-progress"]
    folder = tmp_path / "results" / experiment / "R"
    a = subprocess.Popen([*command, *first], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for_lock(folder, a)
    b = subprocess.run([*command, *second, "--overwrite"], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    out, err = a.communicate(timeout=600)
    assert b.returncode == 2, b.stderr
    assert b.stderr.strip() == (
        f"error: run: '{Path('results') / experiment / 'R'}' is in use by another process (PID {a.pid}); "
        f"wait for it to finish or choose another --run"
    )
    assert a.returncode == 0, err[-2000:]
    config = json.loads((folder / "config.json").read_text())  # the first run's, untouched by the second
    if experiment == "gradient_norms":
        assert config["seed"] == 0 and json.loads((folder / "metrics.json").read_text())["seed"] == 0
    else:
        assert config["classify"]["cell"] == ["lstm"] and (folder / "lstm").is_dir()
        assert not (folder / "gru").exists()
    assert (folder / "summary.md").is_file()
