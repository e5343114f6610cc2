"""Walkthrough 2: one step of an Elman RNN and its softmax readout, worked by hand and printed vector by
vector, computed three ways (the concatenation formula in NumPy, rnnjax, the NumPy reference) that agree.

    python -m experiments.walkthrough_step                            # default I=3, H=2, 4 classes
    python -m experiments.walkthrough_step --matrices my_step.json    # your own numbers (a JSON file)
    python -m experiments.walkthrough_step --matrices '{"x": [1, 2, 3], "h": [0, 0]}'   # or inline JSON
    python -m experiments.walkthrough_step --run mine                 # in results/walkthrough_step/mine/

`--quick` and `--no-progress` are accepted, as by every experiment, and change nothing: the run is one step,
seconds long, with no progress bar. Bad input prints one line `error: ...` (`--debug`: traceback).

The step, in rnnjax's row-vector convention (kernels are (in, out)):

    [x, h]                                 concatenate input <[I]> and previous state <[H]>  -> <[I + H]>
    z  = [x, h] W + b,   W = [W_ih; W_hh]  W_ih <[I, H]> stacked on top of W_hh <[H, H]>    -> <[H]>
       = x W_ih + h W_hh + b               (the same sum, split at row I of W)
    h' = tanh(z)                                                                              -> <[H]>
    logits = h' W_o + b_o,  p = softmax(logits),  prediction = argmax p                      -> <[V]>

In the column-vector notation of most textbooks the matrix is the transpose, W^T = [W_ih^T | W_hh^T]
<[H, I + H]>, and W^T [x; h] = W_ih^T x + W_hh^T h: one matmul on the concatenation equals two matmuls
added, which is why libraries keep W_ih and W_hh apart (or fuse them) as they like.

`--matrices` takes a JSON object (a file path, or the text itself if it starts with "{") with any of the
keys x, h, w_ih, w_hh, b, w_o, b_o; the others keep their defaults, so give every array whose shape your
sizes change. Mis-shaped or non-numeric arrays are reported by name with the shape expected.

With the defaults, by hand: [x, h] W = x W_ih + h W_hh = [0.75, -0.6] + [0.25, -0.3]; z = [1.0, -0.8];
h' = [0.761594, -0.664037]; logits = [0.429576, -0.993613, 0.944834, -0.464037];
p = [0.300825, 0.072482, 0.503603, 0.123090]; prediction class 2. The three ways agree when rnnjax is within
TOL_F32 of the formula and the NumPy reference within TOL_F64.

Writes `results/walkthrough_step/<run>/`: config.json, metrics.json (inputs, every
intermediate, the three results), summary.md (the printout), all atomically.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax
from rnnjax import readout, reference, results
from rnnjax.command import cli as _cli

EXPERIMENT = "walkthrough_step"
# rnnjax computes in float32, the other two in float64 from the same numbers: float32 rounding of O(1)
# values separates them.
TOL_F32 = 1e-6
# The NumPy reference and the concatenation formula are both float64; they differ only in summation order.
TOL_F64 = 1e-12
F32_MAX = float(np.finfo(np.float32).max)  # larger inputs become inf in rnnjax's float32 step

KEYS = ("x", "h", "w_ih", "w_hh", "b", "w_o", "b_o")
# Small readable defaults: I = 3 inputs, H = 2 hidden units, V = 4 classes.
DEFAULTS: dict[str, list] = {
    "x": [1.0, 0.5, -1.0],
    "h": [0.5, -0.5],
    "w_ih": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]],
    "w_hh": [[0.7, -0.1], [0.2, 0.5]],
    "b": [0.0, 0.1],
    "w_o": [[1.0, -1.0, 0.5, 0.0], [0.5, 0.5, -1.0, 1.0]],
    "b_o": [0.0, 0.1, -0.1, 0.2],
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Where the numbers come from and where the printout goes (about 2 s)."""

    matrices: str | None = None  # JSON object (file path, or inline text starting with "{"); None: defaults
    quick: bool = False  # no effect: the run is already seconds long (accepted like every experiment's)
    progress: bool = True  # no effect: there is no long loop to show progress of
    run: str | None = None  # results/walkthrough_step/<run>; default: a UTC timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)


def read_matrices(spec: str | None) -> dict:
    """The user's JSON object (a file path or inline JSON text) merged over `DEFAULTS`.

    Args:
      spec: None, JSON text starting with "{", or the path of a JSON file.
    Returns:
      {key: nested lists} for every key of `KEYS` (not yet checked: see `check_matrices`).
    """
    if spec is None:
        return dict(DEFAULTS)
    text = spec if spec.lstrip().startswith("{") else None
    if text is None:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ValueError(
                f"matrices: expected inline JSON starting with '{{' or the path of a JSON file, "
                f"got {spec!r}, which is neither"
            )
        text = path.read_text(encoding="utf-8")
    try:
        given = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"matrices: expected a JSON object, got invalid JSON ({e})") from None
    if not isinstance(given, dict):
        raise ValueError(f"matrices: expected a JSON object {{key: array}}, got a {type(given).__name__}")
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise ValueError(f"matrices: unknown key(s) {unknown}; expected some of {list(KEYS)}")
    return {**DEFAULTS, **given}


def _array(name: str, value, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a {'vector' if ndim == 1 else 'matrix'} of numbers, got {value!r}"
        ) from None
    if a.ndim != ndim or a.size == 0:
        raise ValueError(
            f"{name}: expected a non-empty {ndim}-D array ({'a list' if ndim == 1 else 'a list of rows'}), "
            f"got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got {a.tolist()}")
    if np.any(np.abs(a) > F32_MAX):  # rnnjax's float32 would turn them into inf
        raise ValueError(
            f"{name}: expected finite numbers that float32 (rnnjax's compute dtype) holds, of magnitude at "
            f"most {F32_MAX:.4g}, got {a.tolist()}"
        )
    return a


def check_matrices(m: dict) -> dict[str, np.ndarray]:
    """Check the shapes against each other and return float64 arrays.

    The sizes are read from x (I), h (H) and w_o (V); every other array must agree with them.

    Args:
      m: {key: nested lists or arrays} for every key of `KEYS`.
    Returns:
      {key: <float64> array}: x [I], h [H], w_ih [I, H], w_hh [H, H], b [H], w_o [H, V], b_o [V].
    """
    missing = [k for k in KEYS if k not in m]
    if missing:
        raise ValueError(f"matrices: missing key(s) {missing}; expected all of {list(KEYS)}")
    ndims = {"x": 1, "h": 1, "w_ih": 2, "w_hh": 2, "b": 1, "w_o": 2, "b_o": 1}
    a = {k: _array(k, m[k], ndims[k]) for k in KEYS}
    I, H, V = a["x"].shape[0], a["h"].shape[0], a["w_o"].shape[1]
    want = {
        "w_ih": ((I, H), "(len(x), len(h))"),
        "w_hh": ((H, H), "(len(h), len(h))"),
        "b": ((H,), "(len(h),)"),
        "w_o": ((H, V), "(len(h), classes)"),
        "b_o": ((V,), "(classes,)"),
    }
    for k, (shape, meaning) in want.items():
        if a[k].shape != shape:
            raise ValueError(
                f"{k}: expected shape {shape} = {meaning} for I={I} inputs, H={H} hidden units and "
                f"V={V} classes, got shape {a[k].shape}"
            )
    return a


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())  # shifting by the max changes nothing but avoids overflow
    return e / e.sum()


def _v(a) -> str:
    return np.array2string(np.asarray(a, np.float64), precision=6, floatmode="fixed", max_line_width=200)


def by_concatenation(a: dict[str, np.ndarray], say=print) -> dict[str, np.ndarray]:
    """The step by the concatenation formula in float64 NumPy, printing every intermediate.

    Returns:
      {"xh", "W", "x_w_ih", "h_w_hh", "z", "h_new", "logits", "probs"} (float64 arrays) and "prediction".
    """
    I = a["x"].shape[0]
    xh = np.concatenate([a["x"], a["h"]])  # (I + H,)
    W = np.concatenate([a["w_ih"], a["w_hh"]], axis=0)  # (I + H, H): W_ih on top of W_hh
    say(f"[x, h]                       = {_v(xh)}")
    say(f"W = [W_ih; W_hh]             = {_v(W).replace(chr(10), chr(10) + ' ' * 31)}")
    z = xh @ W + a["b"]
    x_part, h_part = xh[:I] @ W[:I], xh[I:] @ W[I:]
    say(f"[x, h] W                     = {_v(xh @ W)}")
    say(f"  = x W_ih {_v(x_part)} + h W_hh {_v(h_part)}")
    say(f"z = [x, h] W + b             = {_v(z)}")
    h_new = np.tanh(z)
    say(f"h' = tanh(z)                 = {_v(h_new)}")
    logits = h_new @ a["w_o"] + a["b_o"]
    say(f"logits = h' W_o + b_o        = {_v(logits)}")
    probs = _softmax(logits)
    say(f"p = softmax(logits)          = {_v(probs)}   (sum {probs.sum():.6f})")
    prediction = int(np.argmax(probs))
    say(f"prediction = argmax p        = class {prediction} (p = {probs[prediction]:.6f})")
    return dict(
        xh=xh, W=W, x_w_ih=x_part, h_w_hh=h_part, z=z, h_new=h_new, logits=logits, probs=probs,
        prediction=prediction,
    )  # fmt: skip


def by_rnnjax(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The step with `rnnjax.cells.simple(H).step` and `readout.dense`, in float32."""
    f32 = {k: jnp.asarray(v, jnp.float32) for k, v in a.items()}
    cell = rnnjax.cells.simple(a["h"].shape[0], "tanh")
    params = rnnjax.SimpleParams(f32["w_ih"], f32["w_hh"], f32["b"])
    _, h_new = cell.step(params, rnnjax.RNNCarry(f32["h"]), f32["x"])
    logits = readout.dense(readout.DenseParams(f32["w_o"], f32["b_o"]), h_new)
    probs = jax.nn.softmax(logits)
    out = {k: np.asarray(v, np.float64) for k, v in dict(h_new=h_new, logits=logits, probs=probs).items()}
    return out | dict(prediction=int(np.argmax(out["probs"])))


def by_reference(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The step with the NumPy reference (`reference.forward` on a batch of one, one time step)."""
    params = {"w_ih": a["w_ih"], "w_hh": a["w_hh"], "b": a["b"]}
    _, ys = reference.forward("simple", params, a["x"][None, None, :], {"h": a["h"][None, :]})  # (1, 1, H)
    logits = reference.readout_logits({"w": a["w_o"], "b": a["b_o"]}, ys)[0, 0]
    probs = _softmax(logits)
    return dict(h_new=ys[0, 0], logits=logits, probs=probs, prediction=int(np.argmax(probs)))


def main(cfg: Config) -> dict:
    """Print the step three ways and how far apart they are; returns the numbers."""
    start = time.perf_counter()
    a = check_matrices(read_matrices(cfg.matrices))  # before any output is written
    out = _cli.new_run(EXPERIMENT, cfg)
    say = _cli.Printout()

    I, H, V = a["x"].shape[0], a["h"].shape[0], a["w_o"].shape[1]
    say(f"One Elman RNN step with I={I} inputs, H={H} hidden units, V={V} classes (row vectors).")
    for k in KEYS:
        say(f"{k:<5}{list(a[k].shape)!s:<8} = {_v(a[k]).replace(chr(10), chr(10) + ' ' * 16)}")
    say("")
    say("W [x, h]: the concatenated matrix is W_ih stacked on W_hh, so [x, h] W = x W_ih + h W_hh")
    say("(in column-vector notation: [W_ih^T | W_hh^T] [x; h] = W_ih^T x + W_hh^T h).")
    say("")
    say("1. By hand (NumPy float64, concatenation formula):")
    concat = by_concatenation(a, say)
    lib = by_rnnjax(a)
    ref = by_reference(a)
    say("")
    say("2. rnnjax (cells.simple(H).step + readout.dense, float32), 3. NumPy reference (reference.forward):")
    diffs = {}
    for key in ("h_new", "logits", "probs"):
        d_lib = float(np.max(np.abs(lib[key] - concat[key])))
        d_ref = float(np.max(np.abs(ref[key] - concat[key])))
        diffs[key] = dict(rnnjax=d_lib, reference=d_ref)
        name = {"h_new": "h'", "logits": "logits", "probs": "p"}[key]
        say(f"  {name:<7} rnnjax    {_v(lib[key])}   max |diff| to 1. {d_lib:.1e}")
        say(f"  {'':<7} reference {_v(ref[key])}   max |diff| to 1. {d_ref:.1e}")
    say(
        f"  prediction: by hand {concat['prediction']}, rnnjax {lib['prediction']}, "
        f"reference {ref['prediction']}"
    )
    worst_lib = max(d["rnnjax"] for d in diffs.values())
    worst_ref = max(d["reference"] for d in diffs.values())
    agree = (
        worst_lib <= TOL_F32
        and worst_ref <= TOL_F64
        and concat["prediction"] == lib["prediction"] == ref["prediction"]
    )
    say(
        f"{'All three agree' if agree else 'MISMATCH'}: rnnjax {worst_lib:.1e} (tolerance {TOL_F32:g}), "
        f"reference {worst_ref:.1e} (tolerance {TOL_F64:g})."
    )
    metrics = dict(
        inputs=a,
        by_hand=concat,
        rnnjax=lib,
        reference=ref,
        max_abs_diff=diffs,
        agree=agree,
        seconds=time.perf_counter() - start,
    )
    results.write_json(out / "metrics.json", metrics)
    say.save(out / "summary.md", "walkthrough_step")
    return metrics | dict(out=out)


if __name__ == "__main__":
    _cli.run(Config, main)
