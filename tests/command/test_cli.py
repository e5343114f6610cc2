"""`rnnjax.command.cli.run`, the one entry of every command: warnings in one line, an interrupted training's
continue command, SIGTERM outside training, a command with subcommands given none."""

import dataclasses
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import jax.numpy as jnp
import pytest

from experiments import text_generation
from rnnjax.command import cli as _cli
from rnnjax.train.loop import FitResult, Interrupted

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Resumable:
    run: str = "r"
    overwrite: bool = False
    resume: bool = False


@dataclasses.dataclass(frozen=True)
class NotResumable:
    run: str = "r"


def _interrupted(saved: bool, signum=signal.SIGINT) -> Interrupted:
    run = Path("results/x/r")
    result = FitResult(jnp.zeros(1), {"total_steps": 40}, "interrupted", "", None, None, 12, run)
    return Interrupted(result, signum, saved=saved)


def test_an_interrupted_training_prints_the_command_that_continues_it(capsys):
    def main(cfg):
        raise _interrupted(saved=True, signum=signal.SIGTERM)

    with pytest.raises(SystemExit) as exit_info:
        _cli.run(Resumable, main, ["--run", "r", "--overwrite"])
    assert exit_info.value.code == 143
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted at step 12 of 40; saved in 'results/x/r'; continue with: ")
    # --overwrite (which would delete what was saved) is dropped and --resume added
    assert err.endswith("--run r --resume") and "--overwrite" not in err


@pytest.mark.parametrize(
    "command, saved, expected",
    [
        (NotResumable, True, "this command cannot continue a run; run it again to start over"),
        (Resumable, False, "this command keeps no checkpoint; run it again to start over"),
    ],
)
def test_an_interrupt_that_cannot_be_continued_says_so(capsys, command, saved, expected):
    def main(cfg):
        raise _interrupted(saved=saved)

    with pytest.raises(SystemExit) as exit_info:
        _cli.run(command, main, [])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip().endswith(expected)


def test_warnings_print_as_one_line_without_their_source(capsys):
    def main(cfg):
        warnings.warn("resume: steps differ\nfrom the saved run", UserWarning, stacklevel=1)

    _cli.run(NotResumable, main, [])
    err = capsys.readouterr().err
    assert err == "warning: resume: steps differ from the saved run\n"


def test_sigterm_outside_training_interrupts_with_status_143(capsys):
    def main(cfg):
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a fresh process
    try:
        with pytest.raises(SystemExit) as exit_info:
            _cli.run(NotResumable, main, [])
        assert exit_info.value.code == 143
        assert capsys.readouterr().err == "error: interrupted\n"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    finally:
        signal.signal(signal.SIGTERM, before)


def test_text_generation_without_a_subcommand_names_them():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bare = subprocess.run([sys.executable, "-m", "experiments.text_generation"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)  # fmt: skip
    assert bare.returncode == 2
    assert bare.stderr.strip() == "error: Missing subcommand: Expected one of {train, sample}."
    with pytest.raises(SystemExit) as exit_info:
        text_generation.parse(["--help"])
    assert exit_info.value.code == 0


def test_help_lists_only_the_real_subcommands(capsys):
    with pytest.raises(SystemExit):
        text_generation.parse(["--help"])
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage.endswith("{train,sample}"), usage
