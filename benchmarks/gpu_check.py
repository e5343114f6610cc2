"""`make gpu-check`: on a machine with an NVIDIA GPU, the test suite, then `benchmarks.throughput` on the
issue's GPU grid at both matmul precisions (against torch on CUDA = cuDNN and `jax.experimental.rnn`'s cuDNN
LSTM), then a scan-unroll sweep of rnnjax, and a summary of the ratios and goals. On a machine without a
GPU it says so and exits with status 1 having run nothing (the CPU benchmark is
`python -m benchmarks.throughput --quick`). How to set a GPU machine up: docs/gpu.md.

    python -m benchmarks.gpu_check                            # everything (what `make gpu-check` runs)
    python -m benchmarks.gpu_check --skip-tests --precisions highest --unrolls   # one grid, no sweep
    python -m benchmarks.gpu_check --tests tests/test_fused.py tests/test_equivalence.py

Each step is a child process with `XLA_PYTHON_CLIENT_PREALLOCATE=false`, so that pytest's workers, JAX and
torch share the GPU's memory instead of JAX reserving 75% of it in the first process. Outputs:
results/benchmarks/<run>-highest/, <run>-default/ and <run>-unroll/ (throughput.json, throughput.png).
Exit status: 0 when the tests passed and every benchmark step finished (a goal missed is a result, printed
as FAIL, not an error), 1 otherwise or without a GPU, 2 for bad options.
"""

from __future__ import annotations

import os

# Before JAX starts its GPU backend in this process (it only reads the GPU's name here).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks.contenders import GPU_CONTENDERS, Contender  # noqa: E402
from benchmarks.throughput import Precision  # noqa: E402
from rnnjax import results  # noqa: E402
from rnnjax.command import cli as _cli  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    """The GPU check (docs/gpu.md). Its run time on a GPU has not been measured yet."""

    tests: tuple[str, ...] = ("tests",)  # pytest paths
    skip_tests: bool = False  # run only the benchmarks
    workers: int = 2  # pytest-xdist workers (0 or 1: one process)
    precisions: tuple[Precision, ...] = ("highest", "default")  # one GPU-grid run each
    contenders: tuple[Contender, ...] = ("rnnjax", "flax", "torch-cuda", "jax-cudnn")
    unrolls: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # rnnjax's unroll sweep; --unrolls alone skips it
    reps: int = 10  # timed calls per contender and shape
    run: str = "gpu-check"  # prefix of the run folders in results/benchmarks/
    overwrite: bool = False  # replace earlier runs of that name
    progress: bool = True  # progress bars of the benchmark steps (--no-progress: none, for logs)


def gpu_state() -> dict:
    """What this machine offers: JAX's backend and devices, and whether torch sees CUDA."""
    import jax

    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except ImportError:
        cuda = None
    return dict(
        jax_backend=jax.default_backend(), jax_devices=[str(d) for d in jax.devices()], torch_cuda=cuda
    )


def no_gpu_reason(state: dict) -> str | None:
    """Why the GPU check cannot run here (None: it can)."""
    if state["jax_backend"] == "gpu":
        return None
    torch = (
        "torch not installed"
        if state["torch_cuda"] is None
        else f"torch.cuda.is_available() {state['torch_cuda']}"
    )
    return f"no GPU (jax backend {state['jax_backend']}, {torch})"


def folders(cfg: Config) -> dict[str, Path]:
    """{step: its results folder} of the benchmark steps."""
    steps = [*cfg.precisions, *(["unroll"] if cfg.unrolls else [])]
    return {step: Path("results") / "benchmarks" / f"{cfg.run}-{step}" for step in steps}


def commands(cfg: Config) -> list[tuple[str, list[str]]]:
    """The steps, in order: (name, argv), each run with this Python."""
    py = sys.executable
    steps = []
    if not cfg.skip_tests:
        workers = ["-n", str(cfg.workers)] if cfg.workers > 1 else ["-p", "no:xdist"]
        steps.append(("tests", [py, "-m", "pytest", "-q", *workers, *cfg.tests]))
    common = ["--reps", str(cfg.reps), *([] if cfg.progress else ["--no-progress"])]
    common += ["--overwrite"] if cfg.overwrite else []
    for precision in cfg.precisions:
        steps.append((
            f"grid {precision}",
            [py, "-m", "benchmarks.throughput", "--grid", "gpu", "--precision", precision,
             "--contenders", *cfg.contenders, "--run", f"{cfg.run}-{precision}", *common],
        ))  # fmt: skip
    if cfg.unrolls:
        steps.append((
            "unroll sweep",
            [py, "-m", "benchmarks.throughput", "--quick", "--precision", "highest", "--contenders", "rnnjax",
             "--unrolls", *map(str, cfg.unrolls), "--run", f"{cfg.run}-unroll", *common],
        ))  # fmt: skip
    return steps


def ratio_table(record: dict) -> str:
    """rnnjax's median ms and its speed-up over each other contender, one line per row of a throughput
    record (peer median / rnnjax median: > 1 means rnnjax is faster)."""
    peers = list(dict.fromkeys(n for r in record["rows"] for n in r["rnnjax_speedup"] if "@" not in n))
    lines = [
        f"{'cell':<6} {'mode':<7} {'B':>4} {'T':>5} {'H':>5} {'rnnjax ms':>10} "
        + " ".join(f"{'x ' + p:>12}" for p in peers)
    ]
    for r in record["rows"]:
        ratios = [r["rnnjax_speedup"].get(p) for p in peers]
        lines.append(
            f"{r['cell']:<6} {r['mode']:<7} {r['B']:>4} {r['T']:>5} {r['H']:>5} "
            f"{r['contenders']['rnnjax']['median_ms']:>10.3f} "
            + " ".join(f"{'-' if v is None else f'{v:.2f}x':>12}" for v in ratios)
        )
    return "\n".join(lines)


def summary(record: dict, title: str) -> str:
    """A benchmark step's record as text: the ratios and the GPU goals."""
    from benchmarks.throughput import precision_line, sweep_table

    lines = [f"== {title}", precision_line(record)]
    if record["unroll_sweep"]:
        lines.append(sweep_table(record["unroll_sweep"]))
    else:
        lines.append(ratio_table(record))
    for g in record["gpu_goals"] if not record["unroll_sweep"] else []:
        verdict = "n/a" if g["ok"] is None else ("PASS" if g["ok"] else "FAIL")
        value = "-" if g["value"] is None else f"{g['value']:.2f}x"
        lines.append(f"goal {g['goal']:<52} {value:>7} (target >= {g['target']}x): {verdict}")
    return "\n".join(lines)


def main(cfg: Config) -> int:
    _cli.check_ints(cfg, "workers", minimum=0)
    _cli.check_ints(cfg, "reps")
    if cfg.unrolls:
        _cli.check_ints(cfg, "unrolls")
    if not cfg.precisions:
        raise ValueError("precisions: expected at least one of 'highest', 'default', got none")
    if missing := [p for p in GPU_CONTENDERS if p not in cfg.contenders]:
        print(
            f"note: {', '.join(missing)} not among --contenders: its goals are not evaluated", file=sys.stderr
        )
    results.check_run_name(cfg.run)
    for step, folder in folders(cfg).items():
        if folder.exists() and not cfg.overwrite:
            raise FileExistsError(
                f"run: {str(folder)!r} already holds a run ({step}); pass --overwrite to replace it"
            )
    state = gpu_state()
    reason = no_gpu_reason(state)
    if reason is not None:
        raise _cli.RunFailed(
            f"gpu-check: {reason}: nothing was run. On a machine with an NVIDIA GPU, install jax with CUDA "
            "and a CUDA build of torch first (docs/gpu.md); the CPU benchmark is "
            "python -m benchmarks.throughput --quick"
        )
    print(f"gpu-check on {', '.join(state['jax_devices'])}; torch CUDA: {state['torch_cuda']}", flush=True)
    status = {}
    for name, argv in commands(cfg):
        print(f"\n== {name}: {' '.join(argv[1:])}", flush=True)
        status[name] = subprocess.run(argv, check=False).returncode
    for step, folder in folders(cfg).items():
        path = folder / "throughput.json"
        if path.is_file():
            print("\n" + summary(json.loads(path.read_text()), f"{step} ({path})"))
    print(
        "\n"
        + "; ".join(f"{name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'}" for name, rc in status.items())
    )
    if any(status.values()):
        raise _cli.RunFailed(f"gpu-check: failed steps: {', '.join(n for n, rc in status.items() if rc)}")
    return 0


if __name__ == "__main__":
    _cli.run(Config, main)
