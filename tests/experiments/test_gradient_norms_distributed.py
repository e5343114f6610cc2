"""`experiments.gradient_norms` over a `jax.distributed` run: 2 processes x 2 CPU devices on localhost (gloo)
write the same metrics as one process; only process 0 writes a run folder."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds for all processes together; a hung collective is killed and fails the test
# A small sweep: 3 seeds x 2 gains over 4 devices (padded to 8 points per length), two lengths.
SWEEP = ["--cells", "simple-tanh", "--gains", "0.9", "1.5", "--inits", "orthogonal", "--input-scales", "1",
         "--lengths", "12", "20", "--seeds", "3", "--hidden-size", "4", "--input-size", "2",
         "--no-linear-float64", "--no-progress"]  # fmt: skip
# Entries that describe the machine, not the measurement.
MACHINE = {"wall_time_s", "devices", "processes", "backend"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run(workdir: Path, run: str, processes: int, devices: int) -> None:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT)
    port = str(_free_port())
    procs, logs = [], []
    try:
        for k in range(processes):
            flags = ["--coordinator", f"localhost:{port}", "--num-processes", str(processes),
                     "--process-id", str(k)] if processes > 1 else []  # fmt: skip
            logs.append(open(workdir / f"{run}-{k}.log", "w"))
            command = [sys.executable, "-m", "experiments.gradient_norms", *SWEEP, "--run", run, *flags]
            procs.append(
                subprocess.Popen(command, cwd=workdir, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
            )
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in logs:
            f.close()
    for k, p in enumerate(procs):
        assert p.returncode == 0, (workdir / f"{run}-{k}.log").read_text()[-3000:]


def test_two_processes_write_the_metrics_of_one(tmp_path):
    _run(tmp_path, "one", processes=1, devices=1)
    _run(tmp_path, "two", processes=2, devices=2)
    runs = tmp_path / "results" / "gradient_norms"
    assert sorted(p.name for p in runs.iterdir()) == ["one", "two"]  # process 1 made no folder of its own
    one, two = (json.loads((runs / name / "metrics.json").read_text()) for name in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert len(two["devices"]) == 4
    assert {k: v for k, v in one.items() if k not in MACHINE} == {
        k: v for k, v in two.items() if k not in MACHINE
    }
    assert (runs / "two" / "summary.md").is_file() and (runs / "two" / "decay_heatmap.png").is_file()
