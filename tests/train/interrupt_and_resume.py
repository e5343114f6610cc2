"""Interrupt training commands with real signals at random steps, continue each with the command it
prints, and compare the result with an uninterrupted run, bit for bit.

    python tests/train/interrupt_and_resume.py --interrupts 12 --folder /tmp/interrupts   # JSON summary

Run as a script (`test_interrupts.py` runs it with a few interrupts). Each trial starts a command
(text_generation, classify or long_range, in turn) in a subprocess, waits until its training has taken a
first step (the run's `metrics.jsonl` holds the compile record), waits a random further moment, sends
SIGINT or SIGTERM, and checks that the command
- exits 130 (SIGINT) or 143 (SIGTERM), printing `interrupted at step N of M; saved ...; continue with: CMD`;
- left a checkpoint of step N;
then runs CMD, which must print `resuming from step N of M` and exit 0, and compares every final
checkpoint's arrays (and long_range's loss curves) with those of an uninterrupted run of the same command.
A signal that arrives after the training finished (exit 0) is counted as `late`, not as an interrupt; one
that falls between two trainings of a command (`error: interrupted between training steps ...; continue
with: CMD`) is continued the same way and recorded with `between_trainings`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Small trainings with room for an interrupt: a few hundred steps each.
COMMANDS = {
    "text_generation": ["experiments.text_generation", "train", "--quick", "--steps", "300"],
    "classify": ["experiments.classify", "--quick", "--epochs", "40", "--cell", "lstm", "gru"],
    "long_range": ["experiments.long_range", "--quick", "--steps", "600", "--cells", "lstm", "gru"],
}
INTERRUPTED = re.compile(r"interrupted at step (\d+) of (\d+); saved in .*; continue with: (.*)$", re.M)
# A signal between two trainings of one command (e.g. classify's cells): nothing new to save.
BETWEEN = re.compile(r"^error: interrupted between training steps .*; continue with: (.*)$", re.M)
WAIT_FOR_TRAINING = 240.0  # seconds for a command to start training (imports and compilation included)
WAIT_TO_END = 600.0


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _fresh_signals() -> None:
    """In the child, before exec: SIGINT and SIGTERM at their defaults, as in an interactive shell (a test
    run in the background would pass SIGINT on ignored, and `fit` respects an ignored signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _command(name: str, run: str) -> list[str]:
    module, *args = COMMANDS[name]
    return [sys.executable, "-m", module, *args, "--run", run, "--no-progress"]


def _training_started(folder: Path) -> bool:
    """Some training of the run has finished its first step (its compile record is written)."""
    for log in folder.rglob("metrics.jsonl") if folder.is_dir() else []:
        try:
            if '"split": "compile"' in log.read_text():
                return True
        except OSError:
            continue
    return False


def _final_states(folder: Path) -> dict[str, list]:
    """{training folder: the arrays of its newest checkpoint} for every training under `folder`."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    out = {}
    for ckpt in sorted(folder.rglob("checkpoints")):
        steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
        state = ocp.StandardCheckpointer().restore((ckpt / str(steps[-1]) / "state").resolve())
        key = str(ckpt.parent.relative_to(folder))
        out[key] = [steps[-1], [np.asarray(x) for x in jax.tree.leaves(state)]]
    return out


def _curves(folder: Path) -> list | None:
    """long_range's per-seed loss and gradient-norm curves and final losses (None for other commands)."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    runs = json.loads(path.read_text()).get("runs")
    if not isinstance(runs, list):
        return None
    return [[r["loss"], r["grad_norm"], r["final_loss"], r["successes"]] for r in runs]


def _same(a: Path, b: Path) -> list[str]:
    """What differs between the results of runs `a` and `b` (empty: bit-identical)."""
    import numpy as np

    problems = []
    sa, sb = _final_states(a), _final_states(b)
    if sorted(sa) != sorted(sb):
        return [f"trainings differ: {sorted(sa)} vs {sorted(sb)}"]
    if not sa:
        return ["no checkpoint found"]
    for key in sa:
        (step_a, xs), (step_b, ys) = sa[key], sb[key]
        if step_a != step_b:
            problems.append(f"{key}: final step {step_a} vs {step_b}")
        elif len(xs) != len(ys) or not all(np.array_equal(x, y) for x, y in zip(xs, ys, strict=True)):
            problems.append(f"{key}: the final checkpoint's arrays differ")
    if _curves(a) != _curves(b):
        problems.append("metrics.json curves differ")
    return problems


def _experiment_folder(cwd: Path, name: str, run: str) -> Path:
    return cwd / "results" / name / run


def trial(cwd: Path, name: str, run: str, rng: random.Random, reference: Path) -> dict:
    """One interrupted-then-continued run of command `name`; returns its record."""
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    folder = _experiment_folder(cwd, name, run)
    proc = subprocess.Popen(_command(name, run), cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_fresh_signals)  # fmt: skip
    deadline = time.monotonic() + WAIT_FOR_TRAINING
    while not _training_started(folder) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.0))
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=WAIT_TO_END)
    record = dict(command=name, run=run, signal=signal.Signals(sig).name, exit=proc.returncode)
    if proc.returncode == 0:
        record["outcome"] = "late"
        return record
    found, between = INTERRUPTED.search(err), BETWEEN.search(err)
    if proc.returncode != 128 + sig or (found is None and between is None):
        record.update(outcome="failed", why=f"exit {proc.returncode}, stderr tail: {err[-600:]!r}")
        return record
    if found is not None:
        step, total, resume = int(found[1]), int(found[2]), found[3]
        record.update(step=step, of=total)
        saved = [p for p in folder.rglob("checkpoints/*") if p.name == str(step)]
        if not saved:
            record.update(outcome="failed", why=f"no checkpoint of step {step} under {folder}")
            return record
    else:  # between two trainings: the resumed run starts where the saved ones end
        step, total, resume = None, None, between[1]
        record.update(between_trainings=True)
    argv = shlex.split(resume)
    if argv[:2] != ["python", "-m"]:
        record.update(outcome="failed", why=f"unexpected continue command {resume!r}")
        return record
    done = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=WAIT_TO_END)  # fmt: skip
    resumed = "" if step is None else f"resuming from step {step} of {total}"  # between: maybe none
    if done.returncode != 0 or resumed not in done.stdout:
        record.update(outcome="failed", why=f"resume exit {done.returncode}: {done.stdout[-300:]!r} "
                                            f"{done.stderr[-600:]!r}")  # fmt: skip
        return record
    problems = _same(folder, reference)
    record.update(outcome="identical" if not problems else "different", problems=problems)
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interrupts", type=int, default=12, help="trials, over the commands in turn")
    parser.add_argument("--folder", required=True, help="a working folder (results/ is made inside)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the signal kinds and delays")
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    args = parser.parse_args(argv)
    cwd = Path(args.folder).resolve()
    cwd.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    references = {}
    for name in args.commands:
        ref = subprocess.run(_command(name, "reference"), cwd=cwd, env=_env(), capture_output=True, text=True,
                             timeout=WAIT_TO_END)  # fmt: skip
        if ref.returncode != 0:
            raise SystemExit(f"the uninterrupted {name} run failed: {ref.stderr[-800:]}")
        references[name] = _experiment_folder(cwd, name, "reference")
    trials = []
    for i in range(args.interrupts):
        name = args.commands[i % len(args.commands)]
        trials.append(trial(cwd, name, f"interrupt{i}", rng, references[name]))
    counts = {k: sum(t["outcome"] == k for t in trials) for k in ("identical", "different", "failed", "late")}
    summary = dict(counts=counts, trials=trials)
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
