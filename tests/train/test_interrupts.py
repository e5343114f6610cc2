"""Ctrl-C and SIGTERM during training: `fit` finishes the step, checkpoints it and raises `Interrupted`;
resuming gives the state of an uninterrupted run bit for bit (the second way: the same steps written out
as a plain loop, `test_loop.by_hand`). Real signals are sent to this process from inside a step, and, in
`test_commands_interrupted_by_real_signals_resume_bit_identical`, to real command processes at random
steps (`interrupt_and_resume.py`, which runs more of them as a script)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from train.test_loop import batches, by_hand, make_step

from rnnjax.train.loop import Interrupted, fit

STEPS = 12
HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def default_handlers():
    """SIGINT and SIGTERM handled as in a fresh interactive process (a test run started in the background
    inherits SIGINT ignored, which `fit` respects), restored afterwards."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


def _signal_at(step: int, *signums: int):
    """An `on_step` that sends `signums` to this process once `step` is done, so they arrive while step
    `step + 1` runs (`on_step` is the last thing `fit` does for a step)."""

    def on_step(done, state):
        if done == step:
            for signum in signums:
                os.kill(os.getpid(), signum)

    return on_step


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_step_and_resume_equals_the_uninterrupted_run(tmp_path, signum):
    # Given a run signalled during step 6 (of 12), checkpointing only at the end or when stopped
    with pytest.raises(Interrupted) as caught:
        fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, progress=False,
            on_step=_signal_at(5, signum))  # fmt: skip
    # Then it stopped at that step, saved it, and says how it ended
    e = caught.value
    assert (e.result.step, e.signum, e.saved, e.exit_status) == (6, signum, True, 128 + signum)
    assert e.result.status == "interrupted" and str(e).startswith(f"interrupted at step 6 of {STEPS}; saved")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["6"]
    np.testing.assert_array_equal(e.result.state, by_hand(6)[0])
    # And resuming finishes the run exactly as an uninterrupted one
    resumed = fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, resume=True, progress=False)
    assert resumed.status == "done" and resumed.step == STEPS
    w, losses = by_hand(STEPS)
    np.testing.assert_array_equal(resumed.state, w)
    assert e.result.history["loss"] + resumed.history["loss"] == losses
    # And the handlers of before the run are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_resume_says_where_it_starts(tmp_path, capsys):
    with pytest.raises(Interrupted):
        fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, progress=False,
            on_step=_signal_at(3, signal.SIGINT))  # fmt: skip
    fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, resume=True, progress=False)
    assert f"train: resuming from step 4 of {STEPS}" in capsys.readouterr().out


def test_a_second_ctrl_c_aborts_at_once(tmp_path):
    # The second SIGINT raises a plain KeyboardInterrupt from its handler: nothing is saved
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, save_every=100, progress=False,
            on_step=_signal_at(4, signal.SIGINT, signal.SIGINT))  # fmt: skip
    assert not isinstance(caught.value, Interrupted)
    assert not any(p.name.isdigit() for p in (tmp_path / "checkpoints").iterdir())


def test_an_ignored_signal_stays_ignored(tmp_path):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job of a non-interactive shell
    result = fit(make_step(), jnp.zeros(3), batches, steps=STEPS, run=tmp_path, progress=False,
                 on_step=_signal_at(5, signal.SIGINT))  # fmt: skip
    assert result.status == "done" and result.step == STEPS
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_without_a_run_folder_the_state_comes_back_with_the_interrupt():
    with pytest.raises(Interrupted) as caught:
        fit(make_step(), jnp.zeros(3), batches, steps=STEPS, progress=False,
            on_step=_signal_at(7, signal.SIGTERM))  # fmt: skip
    assert not caught.value.saved and "not saved" in str(caught.value)
    np.testing.assert_array_equal(caught.value.result.state, by_hand(8)[0])


def test_commands_interrupted_by_real_signals_resume_bit_identical(tmp_path):
    """One interrupt (SIGINT or SIGTERM at a random step) of classify (several trainings in one command)
    and one of long_range (a resumed history rebuilt from the log); each resumed run equals an
    uninterrupted run of the same command, array for array. text_generation's turn comes in the script's
    longer runs (`python tests/train/interrupt_and_resume.py --interrupts 12 ...`)."""
    out = subprocess.run(
        [sys.executable, str(HERE / "interrupt_and_resume.py"), "--interrupts", "2",
         "--commands", "classify", "long_range", "--folder", str(tmp_path), "--seed", "1"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    trials = summary["trials"]
    assert [t["command"] for t in trials] == ["classify", "long_range"]
    assert all(t["outcome"] in ("identical", "late") for t in trials), trials
    assert summary["counts"]["identical"] >= 1, trials  # a signal after the end ("late") is rare
