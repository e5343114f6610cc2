"""Commands asked for more than the machine has, or for a run that cannot start, end with one line
`error: ...` naming the argument, and leave no folder under `results/` (issue 19): sizes whose arrays cannot
fit in memory are refused before anything is allocated (not by XLA's allocator, after minutes); a sweep
whose every trajectory leaves the float range is refused naming the flags (not `max() arg is an empty
sequence`); a coordinator that does not resolve, a port in use and a run whose processes never all join
end with one line (not a segfault, a silent hang or JAX's C++ abort); inputs float32 cannot hold, and too
few synthetic examples, are refused naming their flag.

In-process through `rnnjax.command.cli.run`, as `python -m` runs them; the waits for processes that never
join run as real processes (the watchdog ends its process)."""

import importlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from rnnjax.command import cli as _cli

ROOT = Path(__file__).resolve().parents[2]
LY, BT, TG, GN = (
    "experiments.lyapunov",
    "benchmarks.throughput",
    "experiments.text_generation",
    ("experiments.gradient_norms"),
)
WS, CLS = "experiments.walkthrough_step", "experiments.classify"
FITS = "expected a size whose arrays fit in half of this machine's"
BUSY = "{busy}"  # replaced by a port something listens on
FINITE = "expected values where {} gives a finite λ_max, backward slope and exact-norm slope, got none at"

# (command, argv, the message after "error: " (a regex, matched at the start))
CASES = [
    # sizes: refused before allocation (measured before: XLA out of memory at 80 GB and 160 GB)
    (LY, ["--quick", "--hidden-size", "100000"], rf"hidden_size: {FITS} .* got 100000: the float32 weights"),
    (LY, ["--quick", "--length", "100000000"], rf"length: {FITS} .* got 100000000"),
    (LY, ["--spectrum-hidden-size", "100000"], rf"spectrum_hidden_size: {FITS}"),
    (BT, ["--batches", "100000", "--lengths", "100000"],
     rf"batches, lengths, hidden_sizes: {FITS} .* got \(100000, 100000, 128\)"),
    (BT, ["--matmul-size", "1000000"], rf"matmul_size: {FITS} .* got 1000000"),
    # a sweep with nothing to compare (before: `max() arg is an empty sequence` after ~30 s)
    (LY, ["--quick", "--cells", "simple-linear", "--gains", "1e-30"],
     r"gains, input_scales: " + FINITE.format("simple-linear") + r" \(gain 1e-30, input scale 1\): the exact "
     r"product norm left the float32 range"),
    (LY, ["--quick", "--cells", "simple-tanh", "--input-scales", "1e30"],
     r"gains, input_scales: " + FINITE.format("simple-tanh") + r" \(gain 0\.8, input scale 1e\+30\), \(gain "
     r"1\.2, input scale 1e\+30\): λ_max is -inf"),
    # the coordinator (before: SIGSEGV on a port in use, a silent hang on a host that does not resolve)
    (TG, ["train", "--coordinator", f"localhost:{BUSY}", "--num-processes", "1", "--process-id", "0"],
     r"coordinator: expected a free port for process 0's coordination service, got 'localhost:\d+': port "
     r"\d+ is in use"),
    (TG, ["train", "--coordinator", "no.such.host.invalid:1234", "--num-processes", "1", "--process-id", "0"],
     r"coordinator: expected HOST:PORT whose host resolves to an address of process 0's machine, got "
     r"'no\.such\.host\.invalid:1234'"),
    (TG, ["train", "--coordinator", "192.0.2.1:1234", "--num-processes", "2", "--process-id", "0"],
     r"coordinator: expected an address of this machine, where process 0 starts the coordination service"),
    (TG, ["train", "--coordinator-timeout", "0"], r"coordinator_timeout: expected an int >= 1, got 0"),
    (GN, ["--coordinator", "no.such.host.invalid:1", "--num-processes", "2", "--process-id", "1"],
     r"coordinator: expected HOST:PORT whose host resolves"),
    (GN, ["--coordinator", f"localhost:{BUSY}", "--num-processes", "2", "--process-id", "0"],
     r"coordinator: expected a free port"),
    (GN, ["--coordinator-timeout", "-5"], r"coordinator_timeout: expected an int >= 1, got -5"),
    # inputs (before: ran on with inf; named `n` instead of the flag)
    (WS, ["--matrices", '{"x": [1e39, 0.5, -1]}'],
     r"x: expected finite numbers that float32 \(rnnjax's compute dtype\) holds, of magnitude at most "
     r"3\.403e\+38, got \[1e\+39, 0\.5, -1\.0\]"),
    (CLS, ["--synthetic-n", "1"], r"synthetic_n: expected an int >= 3 \(an example each to train, validate"),
]  # fmt: skip


@pytest.fixture(scope="module")
def busy_port():
    """A port something listens on, for the test's whole length."""
    with socket.socket() as listener:
        listener.bind(("localhost", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _command_of(module):
    return getattr(module, "command", None) or module.Config


@pytest.mark.parametrize(
    "name, argv, message", CASES, ids=[f"{n.split('.')[-1]}:{' '.join(a)[:45]}" for n, a, _ in CASES]
)
def test_one_error_line_naming_the_argument_and_no_folder(
    tmp_path, monkeypatch, capsys, busy_port, name, argv, message
):
    def never(*args, **kwargs):  # the checks come first: JAX's coordination service is never started here
        raise AssertionError("jax.distributed.initialize reached")

    monkeypatch.setattr(jax.distributed, "initialize", never)
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    argv = [a.replace(BUSY, str(busy_port)) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(_command_of(module), module.main, [*argv, "--no-progress"] if name != WS else argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err  # exactly one line, no warnings
    assert re.match(rf"error: {message}", err), err
    assert not (tmp_path / "results").exists()  # no run folder left behind, nor its parents


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_processes_that_never_all_join_end_after_the_timeout_with_one_line(tmp_path):
    """Process 1 with nobody at the coordinator's port, and process 0 whose partner never comes, each with
    `--coordinator-timeout 2`: one line each, exit status 1, within seconds (JAX alone: a C++ abort with a
    stack trace, after 300 s by default), and no folder."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    runs = {
        "p1": ([TG, "train", "--quick", "--num-processes", "2", "--process-id", "1"],
               r"got no answer from process 0 there"),
        "p0": ([GN, "--quick", "--num-processes", "2", "--process-id", "0"],
               r"got fewer: the others never reached process 0"),
    }  # fmt: skip
    start = time.monotonic()
    procs = {
        key: subprocess.Popen(
            [
                sys.executable,
                "-m",
                *argv,
                "--no-progress",
                "--coordinator-timeout",
                "2",
                "--coordinator",
                f"localhost:{_free_port()}",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for key, (argv, _) in runs.items()
    }
    try:
        done = {key: proc.communicate(timeout=90) for key, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    for key, (_, detail) in runs.items():
        _, err = done[key]
        assert procs[key].returncode == 1, err
        assert err.count("\n") == 1, err
        assert re.match(
            r"error: coordinator: expected all 2 processes of the run to join at 'localhost:\d+' within 2 s "
            rf"\(--coordinator-timeout\), {detail}",
            err,
        ), err
    assert time.monotonic() - start < 60
    assert not (tmp_path / "results").exists()
