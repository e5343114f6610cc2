"""One process of the multi-process test (tests/train/test_distributed.py); also runnable by hand.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu \\
        python tests/train/distributed_worker.py OUT --processes 2 --process-id 0 --port 12345 &
    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu \\
        python tests/train/distributed_worker.py OUT --processes 2 --process-id 1 --port 12345

With `--processes 1` it runs the same computations in one plain process (no `jax.distributed`), the
reference the test compares against. Each process writes `OUT/p<id>.npz` (its sweep results, a plain
vmap of the same sweep on one local device, the final params it holds, its validation losses and the
errors of two refused calls) and prints one line `done <id>`. The language model trains in `OUT/run`
(uninterrupted) and `OUT/resumed` (stopped after `STOP` steps, then resumed); a process other than 0 is
handed `OUT/run-p<id>` and `OUT/resumed-p<id>` instead, folders it must never create (only process 0
writes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

WORDS = "the cat sat on a mat and the dog ran to the red door while a bird sang in the old tree".split()
# The model and run: small enough to compile and train in seconds, with every part of a step exercised
# (2 stacked layers, embedding, dropout and carry resets drawn from the step's key, clipping). SGD, not
# Adam: Adam divides each update by its own gradient's size, which turns float32 round-off in tiny
# gradient entries into visible parameter differences (see DP_RTOL in tests/train/test_lm.py).
CONFIG = dict(level="char", hidden_size=16, num_layers=2, embed_size=8, dropout=0.1, carry_reset=0.2,
              steps=6, batch_size=8, seq_len=16, eval_every=3, save_every=3, keep_last=5, log_every=1,
              optimizer="sgd", learning_rate=0.5)  # fmt: skip
STOP = 3  # the resumed run stops after this step, then continues from its checkpoint
SWEEP_POINTS = 5  # not a multiple of 4 devices: sweep_map pads and drops the copies


def sweep_fn(point):
    import jax.numpy as jnp

    # A small recurrence per point, so each point's result needs a few dependent float64 operations.
    h = jnp.zeros(3)
    for _ in range(4):
        h = jnp.tanh(point["gain"] * (point["w"] @ h) + point["x"])
    return {"h": h, "norm": jnp.sum(h**2)}


def sweep_points() -> dict:
    rng = np.random.default_rng(1)
    return {
        "gain": np.linspace(0.5, 2.5, SWEEP_POINTS),
        "w": rng.normal(size=(SWEEP_POINTS, 3, 3)),
        "x": rng.normal(size=(SWEEP_POINTS, 3)),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-resume", action="store_true", help="skip the stopped and resumed run")
    args = parser.parse_args(argv)

    import jax

    from rnnjax.train import distributed

    if args.processes > 1:
        distributed.initialize(f"localhost:{args.port}", args.processes, args.process_id, timeout=60)
    jax.config.update("jax_enable_x64", True)  # as tests/conftest.py sets it for the tests
    jax.config.update("jax_default_matmul_precision", "highest")
    # The three runs compile the same training step: compile it once (each process its own cache).
    jax.config.update("jax_compilation_cache_dir", os.fspath(args.out / f"cache{args.process_id}"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    print(distributed.describe(), flush=True)

    from rnnjax.train import lm, parallel

    points = sweep_points()
    swept = parallel.sweep_map(sweep_fn, points)
    plain = jax.jit(jax.vmap(sweep_fn))(points)  # one local device, no sharding

    rng = np.random.default_rng(0)
    text = " ".join(rng.choice(WORDS, 3000)) + "\n"
    config = lm.LMConfig(**CONFIG)
    corpus = lm.prepare(text, config)
    me = "" if args.process_id == 0 else f"-p{args.process_id}"
    whole = lm.fit(config, corpus, args.out / f"run{me}", progress=False)
    runs = {"whole": whole}
    if not args.no_resume:
        first = lm.fit(config, corpus, args.out / f"resumed{me}", stop_after=STOP, progress=False)
        runs["resumed"] = lm.fit(config, corpus, args.out / f"resumed{me}", resume=True, progress=False)
        assert first.step == STOP and runs["resumed"].step == config.steps, (first.step, runs["resumed"].step)

    try:  # the folder holds checkpoints and resume is not asked: process 0 refuses, every process raises
        lm.fit(config, corpus, args.out / f"run{me}", progress=False)
        refused = "nothing raised"
    except ValueError as error:
        refused = f"{type(error).__name__}: {error}"

    def fails_on_process_1():
        if jax.process_index() == 1:
            raise FileNotFoundError("corpus: not on this host")
        return "read"

    caught = {}
    calls = {
        "together": lambda: distributed.together(fails_on_process_1, "reading"),
        "check_same": lambda: distributed.check_same(jax.process_index(), "settings"),
    }
    for name, call in calls.items():
        try:
            caught[name] = f"returned {call()!r}"
        except (FileNotFoundError, ValueError) as error:
            caught[name] = f"{type(error).__name__}: {error}"
    try:
        parallel.run_mesh(3)
        bad_mesh = "nothing raised"
    except ValueError as error:
        bad_mesh = str(error)
    two = [d.process_index for d in parallel.run_mesh(2).devices] if args.processes == 2 else []

    out = {"refused": np.str_(refused), "bad_mesh": np.str_(bad_mesh), "mesh_of_2": np.array(two)}
    out.update({f"caught/{k}": np.str_(v) for k, v in caught.items()})
    out.update({f"sweep/{k}": v for k, v in swept.items()})
    out.update({f"plain/{k}": np.asarray(v) for k, v in plain.items()})
    init = lm.init_state(lm.make_model(config, len(corpus.vocab)), config).params
    out.update({f"init/params/{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(init))})
    for name, result in runs.items():
        for i, leaf in enumerate(jax.tree.leaves(result.state.params)):
            out[f"{name}/params/{i}"] = np.asarray(leaf)
        out[f"{name}/valid_loss"] = np.float64(result.valid["loss"])
        out[f"{name}/best_step"] = np.int64(-1 if result.best_step is None else result.best_step)
    np.savez(args.out / f"p{args.process_id}.npz", **out)
    print(f"done {args.process_id}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[2]))  # the repository, for `rnnjax`
    main(sys.argv[1:])
