"""The same programs, two revisions: does a change alter what rnnjax hands XLA, and how fast it runs?

    python -m benchmarks.revisions --against 65cbc01             # jaxprs compared, then timed (~3 min)
    python -m benchmarks.revisions --against 65cbc01 --no-time   # jaxprs only (~30 s)

The revision `--against` is checked out beside this one (`git worktree add --detach`, removed afterwards),
and one worker process is started in each checkout, each importing its own `rnnjax`. For every cell
(simple tanh, LSTM, GRU built by `cells.simple/lstm/gru(H)`, float32, default options) both workers trace
`rnnjax.unroll(cell, params, xs)` (forward: the sum of ys) and `jax.grad` of it, and the jaxprs are compared
as text: identical jaxprs mean XLA compiles the same program, so any timing difference is noise. Then both
workers compile the same functions on the same inputs and are timed in alternating rounds (one round: a
call of each function in one worker, then in the other), so machine noise hits both revisions alike.

Writes results/benchmarks/<run>/revisions.json (default run: revisions): per cell and mode, whether the
jaxprs are identical, and the median times and their ratio (against / this; > 1: this revision is faster).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.timing import machine_info
from rnnjax import results
from rnnjax.command import cli as _cli
from rnnjax.command import runs

ROOT = Path(__file__).resolve().parents[1]

# The worker: runs inside one checkout, answers one JSON line per command read from stdin.
WORKER = r"""
import json, sys, time
import jax, jax.numpy as jnp
import rnnjax
from rnnjax import cells
B, T, I, H = (int(a) for a in sys.argv[1:5])
kinds = sys.argv[5].split(",")
fns, args = {}, {}
for kind in kinds:
    cell = {"simple": cells.simple, "lstm": cells.lstm, "gru": cells.gru}[kind](H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I), jnp.float32)
    fwd = lambda p, xs, cell=cell: jnp.sum(rnnjax.unroll(cell, p, xs)[1])
    for mode, fn in (("fwd", fwd), ("fwd+bwd", jax.grad(fwd))):
        fns[kind, mode], args[kind, mode] = fn, (params, xs)
for line in sys.stdin:
    command = line.strip()
    if command == "where":
        out = {"rnnjax": rnnjax.__file__}
    elif command == "jaxprs":
        out = {f"{k}|{m}": str(jax.make_jaxpr(fn)(*args[k, m])) for (k, m), fn in fns.items()}
    elif command == "compile":
        fns = {key: jax.jit(fn) for key, fn in fns.items()}
        for key, fn in fns.items():
            jax.block_until_ready(fn(*args[key]))  # compile and warm up
        out = {}
    else:
        out = {}
        for key, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args[key]))
            out["|".join(key)] = time.perf_counter() - start
    print(json.dumps(out), flush=True)
"""


@dataclasses.dataclass(frozen=True)
class Config:
    """Two revisions on the same programs. Expected run time on a 2-core CPU: ~3 min; --no-time ~30 s."""

    against: str = "65cbc01"  # the git revision to compare this checkout with
    cells: tuple[str, ...] = ("simple", "lstm", "gru")
    shape: tuple[int, int, int, int] = (32, 128, 128, 256)  # B, T, I, H (the goal shape)
    rounds: int = 20  # alternating timing rounds
    time: bool = True  # time the functions (--no-time: compare the jaxprs only)
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/revisions
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # a progress bar over the rounds


def check(cfg: Config) -> Config:
    for name in cfg.cells:
        if name not in ("simple", "lstm", "gru"):
            raise ValueError(f"cells: expected names from ['gru', 'lstm', 'simple'], got {name!r}")
    if not cfg.cells:
        raise ValueError("cells: expected at least one of ['gru', 'lstm', 'simple'], got none")
    if len(cfg.shape) != 4 or min(cfg.shape) < 1:
        raise ValueError(f"shape: expected four positive ints B T I H, got {cfg.shape}")
    _cli.check_ints(cfg, "rounds")
    if not cfg.against or cfg.against.startswith("-"):
        raise ValueError(f"against: expected a git revision, got {cfg.against!r}")
    revision = f"{cfg.against}^{{commit}}"
    git = ["git", "-C", str(ROOT)]
    done = subprocess.run(
        [*git, "rev-parse", "--verify", "--quiet", revision], capture_output=True, text=True
    )
    if done.returncode:
        raise ValueError(f"against: expected a git revision of this repository, got {cfg.against!r}")
    return cfg


def _worker(checkout: Path, cfg: Config) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    argv = [sys.executable, "-c", WORKER, *map(str, cfg.shape), ",".join(cfg.cells)]
    return subprocess.Popen(argv, cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip


def _ask(worker: subprocess.Popen, command: str) -> dict:
    try:
        worker.stdin.write(command + "\n")
        worker.stdin.flush()
    except BrokenPipeError:
        raise _cli.RunFailed(f"a worker process ended early (exit status {worker.wait()})") from None
    line = worker.stdout.readline()
    if not line:
        raise _cli.RunFailed(f"a worker process ended early (exit status {worker.wait()})")
    return json.loads(line)


def compare(cfg: Config) -> dict:
    """Jaxprs and (with cfg.time) alternating timings of this checkout and `cfg.against`."""
    with tempfile.TemporaryDirectory(prefix="rnnjax-revision-") as tmp:
        other = Path(tmp) / "checkout"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "--quiet", str(other), cfg.against], check=True)
        workers = {}
        try:
            workers = {"this": _worker(ROOT, cfg), "against": _worker(other, cfg)}
            for (name, w), checkout in zip(workers.items(), (ROOT, other)):
                where = Path(_ask(w, "where")["rnnjax"]).resolve()
                if checkout.resolve() not in where.parents:
                    raise _cli.RunFailed(f"the {name} worker imported rnnjax from {where}, not {checkout}")
            jaxprs = {name: _ask(w, "jaxprs") for name, w in workers.items()}
            times = {name: {key: [] for key in jaxprs["this"]} for name in workers}
            for w in workers.values() if cfg.time else ():
                _ask(w, "compile")
            rounds = range(cfg.rounds if cfg.time else 0)
            for _ in tqdm(rounds, desc="rounds", disable=not cfg.progress or not cfg.time):
                for name, w in workers.items():
                    for key, seconds in _ask(w, "time").items():
                        times[name][key].append(seconds)
        finally:
            try:
                for w in workers.values():
                    try:
                        w.stdin.close()
                        w.wait(timeout=60)
                    except (OSError, subprocess.TimeoutExpired):
                        w.kill()
                        w.wait()
            finally:  # the checkout goes whatever happened to the workers
                subprocess.run([*git, "remove", "--force", str(other)], check=False)
    rows = {}
    for key in jaxprs["this"]:
        row = dict(identical_jaxpr=jaxprs["this"][key] == jaxprs["against"].get(key))
        if cfg.time:
            this, against = np.median(times["this"][key]), np.median(times["against"][key])
            row.update(this_ms=1e3 * this, against_ms=1e3 * against, ratio=against / this)
        rows[key] = row
    return rows


def main(cfg: Config) -> Path:
    cfg = check(cfg)
    out = runs.open_run("benchmarks", cfg.run or "revisions", overwrite=cfg.overwrite)
    rows = compare(cfg)
    print(f"this checkout against {cfg.against}, B, T, I, H = {cfg.shape}:")
    for key, row in rows.items():
        timing = ""
        if cfg.time:
            timing = f"  {row['this_ms']:8.2f} ms vs {row['against_ms']:8.2f} ms  ({row['ratio']:.2f}x)"
        print(f"  {key:16s} jaxpr {'identical' if row['identical_jaxpr'] else 'DIFFERENT'}{timing}")
    record = dict(config=dataclasses.asdict(cfg), machine=machine_info(), rows=rows)
    results.write_json(out / "revisions.json", record)
    print(f"wrote {out / 'revisions.json'}")
    return out


if __name__ == "__main__":
    _cli.run(Config, main)
