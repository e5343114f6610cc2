"""SIGKILL a training run at random moments (during steps and during checkpoint saves), resume it each
time, and compare the final state with an uninterrupted run, bit for bit.

    python tests/train/kill_and_resume.py --kills 20 --folder /tmp/killtest     # prints a JSON summary

Run as a script (the test module `test_checkpoint_faults.py` runs it with a few kills and fewer steps). The
training is `rnnjax.train.loop.fit` on a small LSTM sequence model with Adam and a checkpoint after every
step, so a random moment often falls inside a save. Each kill aims 1 to 3 steps past the newest sealed
checkpoint (then waits up to 0.2 s more) and none is sent once that checkpoint is within 8 steps of the end:
`--steps` must leave room for every kill asked for (40 steps hold 3 kills with room to spare).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

STEPS = 120


def train(folder: str, steps: int = STEPS) -> None:
    """The run being killed: deterministic in the step number, a checkpoint after every step. It resumes
    when a sealed checkpoint exists (a kill before the first seal leaves only debris: start over)."""
    import shutil

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from rnnjax import cells, models
    from rnnjax.train.loop import fit

    model = models.sequence_model(cells.lstm(16), 1)
    xs = jax.random.normal(jax.random.key(0), (8, 12, 3))
    params = model.init(jax.random.key(1), xs)["params"]
    tx = optax.adam(1e-2)

    def batches(step):
        x = jax.random.normal(jax.random.fold_in(jax.random.key(2), step), (8, 12, 3))
        return x, jnp.cumsum(x[..., :1], axis=1)

    def train_step(state, batch, key):
        p, opt = state
        x, y = batch
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((model.apply({"params": p}, x)[0] - y) ** 2))(p)
        updates, opt = tx.update(grads, opt)
        return (optax.apply_updates(p, updates), opt), {"loss": loss}

    ckpt = Path(folder) / "checkpoints"
    resume = ckpt.is_dir() and any((p / "CHECKSUMS.json").exists() for p in ckpt.iterdir())
    if not resume and ckpt.exists():
        shutil.rmtree(ckpt)
    result = fit(train_step, (params, tx.init(params)), batches, steps=steps, run=folder, resume=resume,
                 save_every=1, keep_last=2, progress=False)  # fmt: skip
    leaves = [np.asarray(x) for x in jax.tree.leaves(result.state)]
    np.savez(Path(folder) / "final.npz", *leaves)


def _steps(folder: Path) -> list[int]:
    ckpt = folder / "checkpoints"
    return [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.is_dir() else []


def _sealed_steps(folder: Path) -> list[int]:
    return [s for s in _steps(folder) if (folder / "checkpoints" / str(s) / "CHECKSUMS.json").exists()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps of every run")
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train(args.folder, args.steps)
        return
    import numpy as np

    root = Path(args.folder)
    rng = random.Random(args.seed)
    me = [sys.executable, __file__, "--steps", str(args.steps), "--folder"]
    subprocess.run([*me, str(root / "reference"), "--train"], check=True)
    killed, runs, folder = 0, 0, root / "killed"
    while True:
        proc = subprocess.Popen([*me, str(folder), "--train"])
        runs += 1
        start = max(_sealed_steps(folder), default=0)
        if killed < args.kills and start + 1 <= args.steps - 8:
            # Kill at a random moment after a random step's checkpoint appeared: a step takes tens of
            # milliseconds and a save about as long, so the moment often falls inside a save.
            target = min(start + rng.randint(1, 3), args.steps - 8)
            while proc.poll() is None and max(_steps(folder), default=0) < target:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.2))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                killed += 1
                continue
        if proc.wait() != 0:
            raise SystemExit(f"training exited with {proc.returncode}")
        break
    want, got = np.load(root / "reference" / "final.npz"), np.load(folder / "final.npz")
    identical = all(np.array_equal(want[k], got[k]) for k in want.files)
    print(json.dumps({"kills": killed, "runs": runs, "bit_identical": identical}))
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
