"""Throughput of rnnjax's cells against Flax linen `nn.RNN`, PyTorch `nn.RNN`/`nn.LSTM`/`nn.GRU` (CPU, and
CUDA = cuDNN on a GPU), `jax.experimental.rnn` (cuDNN LSTM, GPU only) and a naive hand-written `lax.scan`,
forward and forward+backward, all in one process on the same shapes, at one matched matmul precision.

    python -m benchmarks.throughput --quick      # 3 shapes x 3 cells x 2 modes (run times: README)
    python -m benchmarks.throughput              # the default grid, 18 shapes (15 TFLOP per contender and
                                                 # repetition, most of it at H=1024, B=128, T=1024)
    python -m benchmarks.throughput --grid gpu --precision default   # the GPU grid, 12 shapes, TF32 allowed
    python -m benchmarks.throughput --quick --contenders rnnjax --unrolls 1 2 4 8 16   # scan unroll sweep
    python -m benchmarks.throughput --quick --cells lstm gru --modes fwd+bwd --contenders rnnjax torch

PyTorch is the optional extra `bench` (`pip install -e ".[bench]"`, torch==2.13.0 CPU build); without it
the torch columns are skipped with a message. On a machine without a GPU the GPU contenders (torch-cuda,
jax-cudnn) are skipped with one message; `make gpu-check` runs the GPU grid on a GPU machine (docs/gpu.md).

Contenders (same cell equations, the same weights copied into each, float32, inputs <float32>[B, T, I]
batch-major for everyone, I = --input-size = 128 by default):
  - rnnjax:  `rnnjax.unroll(cell, params, xs, precision=P)` with `cells.make(kind, H)` (the simple cell's
             default activation is tanh): the default path (the backend's default scan unroll), the
             whole-sequence kernels of `rnnjax.fused` (hand-written backward pass);
  - rnnjax@uK (with --unrolls K ...): the same with `unroll=K` (lax.scan steps per loop iteration), one
             contender per value, so the per-backend default unroll can be re-measured by one command;
  - rnnjax-plain: the same with `fast=False`, autodiff of the `cell.step` scan (what the kernels replace);
  - flax:    `flax.linen.RNN` of `SimpleCell` / `OptimizedLSTMCell` / `GRUCell`;
  - torch:   `torch.nn.RNN(tanh)` / `LSTM` / `GRU` on the CPU with `batch_first=True` and
             `torch.set_num_threads(--torch-threads or os.cpu_count())`;
  - torch-cuda: the same modules on CUDA (cuDNN), each call ended by `torch.cuda.synchronize()`;
  - jax-cudnn: `jax.experimental.rnn.lstm` (cuDNN through JAX; LSTM only): one flat weight vector,
             `cudnn_lstm_weights`;
  - scan:    a naive `lax.scan` over a per-step cell written here (x @ W_ih + h @ W_hh + b, gates), sharing
             no code with rnnjax.
Modes: "fwd" returns ys <[B, T, H]> (torch under `inference_mode`); "fwd+bwd" returns the gradient of
loss = sum(ys) w.r.t. all params (`jax.grad`; torch `torch.autograd.grad`, so there are no .grad buffers
to zero). JAX functions are jitted; every contender's first call (tracing, compilation, one run) is
reported separately as compile_s, then one untimed warm-up call whose results are cross-checked, then
--reps calls per contender timed round-robin (`benchmarks.timing.time_interleaved`, `block_until_ready`).

Precision (--precision, matched on both sides, recorded in the JSON): "highest" (the default) is float32
matmuls everywhere: rnnjax `precision="highest"`, Flax and the scan traced under
`jax.default_matmul_precision("highest")`, torch `torch.backends.cuda.matmul.allow_tf32 = False` and
`torch.backends.cudnn.allow_tf32 = False`, jax-cudnn `precision=HIGHEST` (jaxlib then builds the cuDNN RNN
with CUDNN_FMA_MATH: no tensor cores). "default" is each library's fast float32 path: JAX's DEFAULT
(TF32 on recent NVIDIA GPUs), torch with both allow_tf32 flags True (torch's own defaults are False for
matmuls and True for cuDNN), jax-cudnn `precision=HIGH` (CUDNN_DEFAULT_MATH: TF32 tensor cores allowed;
jax refuses DEFAULT for this op, which it reads as bfloat16). On a CPU both settings compute in float32.

Cross-check (before timing, abort on mismatch): the rnnjax weights (biases perturbed by N(0, 0.1^2), as
they start at zero) are copied into the naive scan, Flax
(param dict built from them), torch (weight_ih = W_ih^T, weight_hh = W_hh^T, bias_ih = b, bias_hh = 0
except the GRU's candidate block, which holds b_hn) and jax-cudnn (the same four arrays, flattened in
cuDNN's order). Outputs must agree with rnnjax to SCAN_TOL (scan, rnnjax-plain, rnnjax@uK) or PEER_TOL
(the others) in max abs difference, and gradients (mapped back to rnnjax's layout) to GRAD_RTOL relative
to the largest rnnjax gradient entry. With --precision default on a GPU, where both sides round matmul
inputs to TF32, every tolerance is TF32_TOL instead (the mappings are checked tightly by the "highest"
run of the same grid).

FLOPs counted (multiply-add = 2, element-wise gate math ignored), with G = len(cell.gates) gate blocks
(1 simple, 4 LSTM, 3 GRU):
    forward, per step:   2 * B * (I + H) * G*H                 (x @ W_ih and h @ W_hh)
    backward, per step:  2 * B * (I + 2H) * G*H                (dW_ih, dW_hh and dh; no dx, xs is constant)
so fwd+bwd = 2 * B * T * G*H * (2I + 3H). Achieved GFLOP/s is that count over the median time; "% mm" is it
over the fastest float32 --matmul-size^3 matmul (JAX, torch, torch-cuda as they ran, at the run's
precision), timed at the start and end of the same run.
Ratios are peer median / rnnjax median: > 1 means rnnjax is faster.

Goals (issue), evaluated on whatever ran and printed with PASS/FAIL:
  - CPU: at B=32, T=128, I=128, H=256, LSTM and GRU fwd+bwd >= 1.0x torch and >= 1.4x flax; fwd
    >= 1.0x torch; simple >= 1.0x torch; no shape of the default grid below 0.7x torch.
  - GPU (when torch-cuda / jax-cudnn ran, else "not evaluated: no GPU"): >= 1.0x torch-cuda and >= 1.0x
    jax-cudnn at every shape of the GPU grid (B in {1, 32, 256}, T in {128, 1024}, H in {256, 1024}),
    and >= 2x both at B=32, T=128, H=256, each cell and mode.
Writes throughput.json and throughput.png into --out, or results/benchmarks/<run>/ (default run:
throughput; an existing one is replaced only with --overwrite).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import rnnjax
from benchmarks.timing import compile_time, machine_info, time_interleaved
from experiments import _cli
from rnnjax import results

Kind = Literal["simple", "lstm", "gru"]
Mode = Literal["fwd", "fwd+bwd"]
Contender = Literal["rnnjax", "rnnjax-plain", "flax", "torch", "scan", "torch-cuda", "jax-cudnn"]
Grid = Literal["default", "quick", "gpu"]
Precision = Literal["highest", "default"]

GPU_CONTENDERS = ("torch-cuda", "jax-cudnn")
QUICK_SHAPES = ((32, 128, 256), (1, 128, 128), (32, 1024, 256))  # (B, T, H): goal shape, small, long
GOAL_SHAPE = (32, 128, 256)
# The GPU grid: 12 shapes (B, T, H); --batches/--lengths/--hidden-sizes given with it replace its
# values.
GPU_GRID = dict(batches=(1, 32, 256), lengths=(128, 1024), hidden_sizes=(256, 1024))
SWEEP = "rnnjax@u"  # prefix of the unroll sweep's contenders: rnnjax@u1, rnnjax@u4, ...

# Cross-check tolerances (float32). The scan and rnnjax-plain run nearly the same ops as rnnjax; Flax and
# torch differ in the order of additions (torch adds two biases, Flax splits the matmuls per gate) and in
# kernels.
SCAN_TOL = 1e-5  # max |ys_scan - ys_rnnjax|
PEER_TOL = 1e-4  # max |ys_peer - ys_rnnjax|
GRAD_RTOL = 1e-4  # max |g_peer - g_rnnjax| / max |g_rnnjax|, per parameter
# --precision default on a GPU: both sides round every matmul input to TF32 (10-bit mantissa, unit
# roundoff 2^-11 = 4.9e-4) in their own order; the issue measured 1e-4 to 1.6e-3 between TF32 and float32
# results. A wrong mapping (a swapped gate block, a lost N(0, 0.1^2) bias) moves outputs by more.
TF32_TOL = 1e-2
# What jax-cudnn is given at each --precision (see `cudnn_lstm_apply`).
JAX_CUDNN_PRECISION = {
    "highest": "HIGHEST (cudnn_allow_tf32 False)",
    "default": "HIGH (cudnn_allow_tf32 True)",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Tokens per second against other implementations. Expected run time on a 2-core CPU: --quick ~4 min,
    the default grid about 4 h; --grid gpu on a GPU: not measured yet."""

    cells: tuple[Kind, ...] = ("simple", "lstm", "gru")
    modes: tuple[Mode, ...] = ("fwd", "fwd+bwd")
    contenders: tuple[Contender, ...] = (
        "rnnjax", "rnnjax-plain", "flax", "torch", "scan", "torch-cuda", "jax-cudnn"
    )  # fmt: skip
    grid: Grid = "default"  # the shapes: default (batches x lengths x hidden_sizes), quick, gpu (GPU_GRID)
    batches: tuple[int, ...] = (1, 32, 128)
    lengths: tuple[int, ...] = (128, 1024)
    hidden_sizes: tuple[int, ...] = (128, 256, 1024)
    input_size: int = 128
    precision: Precision = "highest"  # matmul precision, matched on every side (module docstring)
    unrolls: tuple[int, ...] = ()  # also time rnnjax with each of these scan unrolls (rnnjax@uK)
    reps: int = 10  # timed calls per contender (median reported)
    quick: bool = False  # the same as --grid quick: only the shapes in QUICK_SHAPES (B, T, H)
    matmul_size: int = 2048  # n of the n x n x n float32 matmul reference
    torch_threads: int = 0  # 0: os.cpu_count()
    out: str | None = None  # an output folder elsewhere (empty, or an earlier throughput run); None: --run
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/throughput
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # a progress bar over the shapes
    seed: int = 0


def check_config(cfg: Config) -> Config:
    """`cfg` checked (ValueError naming the field) and resolved: `--quick` as `grid="quick"`, and the GPU
    grid's batches/lengths/hidden_sizes in the fields left at their defaults."""
    _cli.check_ints(cfg, "batches", "lengths", "hidden_sizes", "input_size", "reps", "matmul_size")
    _cli.check_ints(cfg, "torch_threads", minimum=0)
    if cfg.unrolls:
        _cli.check_ints(cfg, "unrolls")
        if len(set(cfg.unrolls)) != len(cfg.unrolls):
            raise ValueError(f"unrolls: expected distinct values, got {cfg.unrolls}")
    if cfg.quick and cfg.grid not in ("default", "quick"):
        raise ValueError(f"grid: --quick is the quick grid, got --grid {cfg.grid} with --quick as well")
    if cfg.quick or cfg.grid == "quick":
        return dataclasses.replace(cfg, grid="quick", quick=True)
    if cfg.grid == "gpu":
        return _cli.quick(cfg, GPU_GRID)
    return cfg


def shapes_of(cfg: Config) -> list[tuple[int, int, int]]:
    """The (B, T, H) shapes a config runs, in order."""
    cfg = check_config(cfg)
    if cfg.quick:
        return list(QUICK_SHAPES)
    return list(itertools.product(cfg.batches, cfg.lengths, cfg.hidden_sizes))


def flops(kind: str, mode: str, B: int, T: int, I: int, H: int) -> float:
    """Matmul FLOPs of one call (see the module docstring for the formula)."""
    G = len(rnnjax.cells.make(kind, H).gates)
    fwd = 2.0 * B * T * (I + H) * G * H
    return fwd if mode == "fwd" else fwd + 2.0 * B * T * (I + 2 * H) * G * H


# --------------------------------------------------------------------------------------------
# Naive lax.scan: the cell equations written out again, independently of rnnjax.cells.


def naive_unroll(kind: str, params, xs: jax.Array) -> jax.Array:
    """ys <[B, T, H]> of a per-step cell in a `lax.scan`; params in rnnjax's layout (w_ih <[I, G*H]>,
    w_hh <[H, G*H]>, b <[G*H]>, and b_hn <[H]> for the GRU, gate order i,f,g,o / r,z,n)."""
    w_ih, w_hh, b = params.w_ih, params.w_hh, params.b
    H = w_hh.shape[0]
    B = xs.shape[0]

    def simple_step(h, x):  # h (B, H), x (B, I)
        h = jnp.tanh(x @ w_ih + h @ w_hh + b)
        return h, h

    def lstm_step(carry, x):
        h, c = carry
        z = x @ w_ih + h @ w_hh + b  # (B, 4H)
        i = jax.nn.sigmoid(z[:, :H])
        f = jax.nn.sigmoid(z[:, H : 2 * H])
        g = jnp.tanh(z[:, 2 * H : 3 * H])
        o = jax.nn.sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    def gru_step(h, x):
        a = x @ w_ih + b  # (B, 3H)
        u = h @ w_hh  # (B, 3H)
        r = jax.nn.sigmoid(a[:, :H] + u[:, :H])
        z = jax.nn.sigmoid(a[:, H : 2 * H] + u[:, H : 2 * H])
        n = jnp.tanh(a[:, 2 * H :] + r * (u[:, 2 * H :] + params.b_hn))
        h = (1 - z) * n + z * h
        return h, h

    zeros = jnp.zeros((B, H), xs.dtype)
    step, carry = {
        "simple": (simple_step, zeros),
        "lstm": (lstm_step, (zeros, zeros)),
        "gru": (gru_step, zeros),
    }[kind]
    _, ys = jax.lax.scan(step, carry, jnp.swapaxes(xs, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1)


# --------------------------------------------------------------------------------------------
# Flax linen: params built from rnnjax's (no Flax init, so no orthogonal QR is run at all).


def flax_module(kind: str, H: int):
    import flax.linen as nn

    cell = {"simple": nn.SimpleCell, "lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}[kind](H)
    return nn.RNN(cell)


def flax_variables(kind: str, params) -> dict:
    """rnnjax params -> `{"params": {"cell": ...}}` of `nn.RNN(SimpleCell/OptimizedLSTMCell/GRUCell)`.

    Flax names its per-gate dense layers after the gates (`ii`, `hf`, `hn`, ...), the same letters as
    rnnjax's `cell.gates`, which name the blocks of the fused kernels in order. The bias sits on the hidden
    side for the LSTM and on the input side for the GRU (whose `hn` holds b_hn)."""
    if kind == "simple":
        return {
            "params": {"cell": {"i": {"kernel": params.w_ih, "bias": params.b}, "h": {"kernel": params.w_hh}}}
        }
    gates = rnnjax.cells.make(kind, params.w_hh.shape[0]).gates
    wi, wh, b = (jnp.split(a, len(gates), axis=-1) for a in (params.w_ih, params.w_hh, params.b))
    biased = "h" if kind == "lstm" else "i"
    cell = {}
    for k, gate in enumerate(gates):
        cell[f"i{gate}"] = {"kernel": wi[k]}
        cell[f"h{gate}"] = {"kernel": wh[k]}
        cell[f"{biased}{gate}"]["bias"] = b[k]
    if kind == "gru":
        cell["hn"]["bias"] = params.b_hn
    return {"params": {"cell": cell}}


def params_from_flax(kind: str, variables: dict, like):
    """Inverse of `flax_variables` (used on gradients); `like` is an rnnjax params value of the kind."""
    cell = variables["params"]["cell"]
    if kind == "simple":
        return type(like)(cell["i"]["kernel"], cell["h"]["kernel"], cell["i"]["bias"])
    gates = rnnjax.cells.make(kind, like.w_hh.shape[0]).gates
    cat = lambda name, key: jnp.concatenate([cell[f"{name}{g}"][key] for g in gates], axis=-1)  # noqa: E731
    biased = "h" if kind == "lstm" else "i"
    rest = (cell["hn"]["bias"],) if kind == "gru" else ()
    return type(like)(cat("i", "kernel"), cat("h", "kernel"), cat(biased, "bias"), *rest)


# --------------------------------------------------------------------------------------------
# PyTorch: optional; on the CPU and, where CUDA is available, on the GPU (cuDNN).


def import_torch():
    """The torch module, or None (with a printed message) when the `bench` extra is not installed."""
    try:
        import torch
    except ImportError:
        print(
            "torch is not installed: skipping the torch contenders "
            '(install the optional extra: pip install -e ".[bench]", torch==2.13.0 CPU)',
            file=sys.stderr,
        )
        return None
    return torch


def torch_module(torch, kind: str, params, device: str = "cpu"):
    """A torch nn.RNN/LSTM/GRU (batch_first) holding the rnnjax params (see the module docstring), on
    `device`."""
    I, GH = params.w_ih.shape
    H = params.w_hh.shape[0]
    module = {
        "simple": lambda: torch.nn.RNN(I, H, nonlinearity="tanh", batch_first=True),
        "lstm": lambda: torch.nn.LSTM(I, H, batch_first=True),
        "gru": lambda: torch.nn.GRU(I, H, batch_first=True),
    }[kind]()
    as_torch = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731 (a copy, contiguous)
    bias_hh = np.zeros(GH, np.float32)
    if kind == "gru":
        bias_hh[2 * H :] = np.asarray(params.b_hn)  # torch's b_hn sits inside r * (W_hn h + b_hn), as ours
    with torch.no_grad():
        module.weight_ih_l0.copy_(as_torch(np.asarray(params.w_ih).T))
        module.weight_hh_l0.copy_(as_torch(np.asarray(params.w_hh).T))
        module.bias_ih_l0.copy_(as_torch(params.b))
        module.bias_hh_l0.copy_(torch.from_numpy(bias_hh))
    return module.to(device)  # moves the parameters in place (cuDNN's flat weight buffer on CUDA)


def params_from_torch(kind: str, grads: dict, like):
    """Torch gradients by parameter name -> rnnjax layout (bias_ih carries b; the GRU's b_hn is the
    candidate block of bias_hh)."""
    g = {k: np.asarray(v.detach().cpu().numpy()) for k, v in grads.items()}
    w_ih, w_hh, b = g["weight_ih_l0"].T, g["weight_hh_l0"].T, g["bias_ih_l0"]
    if kind == "gru":
        H = w_hh.shape[0]
        return type(like)(w_ih, w_hh, b, g["bias_hh_l0"][2 * H :])
    return type(like)(w_ih, w_hh, b)


def torch_contender(torch, kind: str, params, xs, device: str = "cpu") -> dict:
    """{"fwd": (fn, args), "fwd+bwd": (fn, args), "to_rnnjax": {...}} of the torch module on `device`
    ("cpu" or "cuda"; on CUDA each call waits for the GPU, so a call's wall time is its run time)."""
    module = torch_module(torch, kind, params, device)
    named = dict(module.named_parameters())
    x_t = torch.from_numpy(np.array(xs, np.float32)).to(device)
    wait = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def fwd(x):
        with torch.inference_mode():
            ys = module(x)[0]
        wait()
        return ys

    def fwd_bwd(x):
        ys, _ = module(x)
        grads = dict(zip(named, torch.autograd.grad(ys.sum(), list(named.values()))))
        wait()
        return grads

    return {
        "fwd": (fwd, (x_t,)),
        "fwd+bwd": (fwd_bwd, (x_t,)),
        "to_rnnjax": {
            "fwd": lambda y: np.asarray(y.cpu().numpy()),
            "fwd+bwd": lambda g: params_from_torch(kind, g, params),
        },
    }


def torch_precision(torch, precision: str) -> dict:
    """Set torch's TF32 switches for `precision` ("highest": off, "default": on) and return what torch
    reports afterwards (plus the earlier values under "before", to restore them with
    `restore_torch_precision`)."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = precision != "highest"
    torch.backends.cudnn.allow_tf32 = precision != "highest"
    out = dict(
        cuda_matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
        before=before,
    )
    rnn = getattr(torch.backends.cudnn, "rnn", None)  # torch >= 2.9 also reports the newer setting
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        out["cudnn_rnn_fp32_precision"] = str(rnn.fp32_precision)
    return out


def torch_info(torch) -> dict:
    return dict(
        version=torch.__version__,
        threads=torch.get_num_threads(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
    )


def restore_torch_precision(torch, state: dict) -> None:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = state["before"]


# --------------------------------------------------------------------------------------------
# jax.experimental.rnn: cuDNN's LSTM through JAX (GPU only; its `lstm_ref` is a CPU path, used by the tests
# to check the weight mapping).


def cudnn_lstm_weights(params) -> jax.Array:
    """rnnjax LSTM params -> the flat weight vector <[4H*I + 4H*H + 8H]> of `jax.experimental.rnn.lstm`
    with one layer and one direction: W_ih <[4H, I]>, W_hh <[4H, H]>, b_ih <[4H]>, b_hh <[4H]>, each
    flattened row-major, in that order. cuDNN's gate order is PyTorch's, i, f, g, o, which is rnnjax's;
    b_ih holds b and b_hh zeros (cuDNN adds both)."""
    return jnp.concatenate(
        [params.w_ih.T.reshape(-1), params.w_hh.T.reshape(-1), params.b, jnp.zeros_like(params.b)]
    )


def params_from_cudnn(flat, like):
    """Inverse of `cudnn_lstm_weights` (used on gradients), read with jax's own `unpack_lstm_weights`;
    the gradient of b is that of b_ih (the same as b_hh's: both add to the same pre-activation)."""
    from jax.experimental import rnn

    I, H = like.w_ih.shape[0], like.w_hh.shape[0]
    w_ih, w_hh, b_ih, _ = rnn.unpack_lstm_weights(jnp.asarray(flat), I, H, 1, False)
    return type(like)(w_ih[0].T, w_hh[0].T, b_ih[0])


def cudnn_lstm_apply(input_size: int, hidden_size: int, precision: str | None, reference: bool = False):
    """`apply(flat_weights, xs <[B, T, I]>) -> ys <[B, T, H]>` of `jax.experimental.rnn.lstm` (cuDNN,
    GPU only) from zero carries, every sequence full length; with `reference`, its pure-JAX twin
    `lstm_ref` on weights unpacked by `unpack_lstm_weights` (runs anywhere)."""
    from jax.experimental import rnn

    I, H = input_size, hidden_size
    # jax gives cuDNN one switch (`rnn._lstm_cudnn_allow_tf32`): HIGHEST -> no TF32, HIGH -> TF32 allowed;
    # None follows JAX's default precision, and DEFAULT (bfloat16 to jax) is refused for this op.
    lax_precision = {"highest": jax.lax.Precision.HIGHEST, "default": jax.lax.Precision.HIGH}.get(precision)

    def apply(flat, xs):
        B, T = xs.shape[:2]
        zeros = jnp.zeros((1, B, H), xs.dtype)  # (layers * directions, B, H)
        lengths = jnp.full((B,), T, jnp.int32)
        if reference:
            w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, I, H, 1, False)
            return rnn.lstm_ref(xs, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, I, H, 1, 0.0, False)[0]
        ys, _, _ = rnn.lstm(
            xs, zeros, zeros, flat, lengths, input_size=I, hidden_size=H, num_layers=1, dropout=0.0,
            bidirectional=False, precision=lax_precision,
        )  # fmt: skip
        return ys

    return apply


def gpu_skips(names, torch) -> dict[str, str]:
    """{GPU contender among `names`: why it cannot run here} (empty on a GPU machine with both)."""
    backend = jax.default_backend()
    cuda = torch is not None and bool(torch.cuda.is_available())
    why_torch = "torch not installed" if torch is None else f"torch.cuda.is_available() {cuda}"
    skips = {}
    if "torch-cuda" in names and not cuda:
        skips["torch-cuda"] = why_torch
    if "jax-cudnn" in names and backend != "gpu":
        skips["jax-cudnn"] = f"jax backend {backend}"
    return skips


def skip_message(skips: dict[str, str]) -> str:
    """One line naming every skipped GPU contender and why, e.g. "torch-cuda, jax-cudnn: skipped (no GPU:
    jax backend cpu, torch.cuda.is_available() False)"."""
    reasons = ", ".join(dict.fromkeys(skips[n] for n in ("jax-cudnn", "torch-cuda") if n in skips))
    no_gpu = "no GPU: " if all(r != "torch not installed" for r in skips.values()) else ""
    return f"{', '.join(skips)}: skipped ({no_gpu}{reasons})"


# --------------------------------------------------------------------------------------------
# Contenders and one benchmark point.


def build_contenders(
    kind, params, xs, names, modes, torch=None, precision: str | None = None
) -> dict[str, dict[str, tuple]]:
    """{contender: {mode: (fn, args)}}, plus a converter of each contender's result to rnnjax's layout
    under the key "to_rnnjax" ({mode: fn(result) -> ys or params-shaped grads}). `names` may hold
    rnnjax@uK (unroll K) and GPU contenders; jax-cudnn is left out for cells other than the LSTM.
    `precision` goes to rnnjax's `unroll` and jax-cudnn (None: JAX's default); the caller sets the JAX
    default for Flax and the scan, and torch's switches (`run`)."""
    cell = rnnjax.cells.make(kind, params.w_hh.shape[0])
    same = lambda r: r  # noqa: E731
    out: dict[str, dict] = {}

    def jax_pair(apply, args, to_grads=same):
        fwd = jax.jit(apply)
        grad = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x))))
        return {"fwd": (fwd, args), "fwd+bwd": (grad, args), "to_rnnjax": {"fwd": same, "fwd+bwd": to_grads}}

    def rnnjax_apply(**options):
        return lambda p, x: rnnjax.unroll(cell, p, x, precision=precision, **options)[1]

    for name in names:
        if name == "rnnjax":
            out[name] = jax_pair(rnnjax_apply(), (params, xs))
        elif name.startswith(SWEEP):
            out[name] = jax_pair(rnnjax_apply(unroll=int(name[len(SWEEP) :])), (params, xs))
        elif name == "rnnjax-plain":  # the same cell without its whole-sequence kernel: autodiff of step
            out[name] = jax_pair(rnnjax_apply(fast=False), (params, xs))
        elif name == "scan":
            out[name] = jax_pair(lambda p, x: naive_unroll(kind, p, x), (params, xs))
        elif name == "flax":
            module = flax_module(kind, params.w_hh.shape[0])
            variables = flax_variables(kind, params)
            want = jax.eval_shape(module.init, jax.random.key(0), xs)  # shapes only: no QR is run
            got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
            same_layout = jax.tree.structure(want) == jax.tree.structure(got)
            if not same_layout or jax.tree.leaves(want) != jax.tree.leaves(got):
                raise RuntimeError(f"flax {kind}: param layout changed: expected {want}, built {got}")
            out[name] = jax_pair(module.apply, (variables, xs), lambda g: params_from_flax(kind, g, params))
        elif name in ("torch", "torch-cuda"):
            out[name] = torch_contender(torch, kind, params, xs, "cuda" if name == "torch-cuda" else "cpu")
        elif name == "jax-cudnn" and kind == "lstm":
            apply = cudnn_lstm_apply(xs.shape[-1], params.w_hh.shape[0], precision)
            flat = cudnn_lstm_weights(params)
            out[name] = jax_pair(apply, (flat, xs), lambda g: params_from_cudnn(g, params))
    return {name: {m: c[m] for m in (*modes, "to_rnnjax")} for name, c in out.items()}


def tolerances(precision: str | None = "highest") -> dict[str, float]:
    """The cross-check tolerances of a run at `precision` on this backend (module docstring)."""
    if precision == "default" and jax.default_backend() == "gpu":
        return dict(scan=TF32_TOL, peer=TF32_TOL, grad_rtol=TF32_TOL)
    return dict(scan=SCAN_TOL, peer=PEER_TOL, grad_rtol=GRAD_RTOL)


def cross_check(kind: str, mode: str, results_by_name: dict, tol: dict | None = None) -> dict[str, float]:
    """Compare each contender's (already converted) result with rnnjax's; raise on mismatch.

    `tol`: `tolerances(...)` (default: those of precision "highest"). Returns {contender: max abs output
    difference (fwd) or max relative gradient difference (fwd+bwd)}.
    """
    tol = tolerances() if tol is None else tol
    ref = results_by_name["rnnjax"]
    diffs = {}
    for name, value in results_by_name.items():
        if name == "rnnjax":
            continue
        if mode == "fwd":
            diff = float(np.max(np.abs(np.asarray(value, np.float64) - np.asarray(ref, np.float64))))
            same_ops = name in ("scan", "rnnjax-plain") or name.startswith(SWEEP)
            limit = tol["scan"] if same_ops else tol["peer"]
        else:
            diff = 0.0
            for a, b in zip(jax.tree.leaves(value), jax.tree.leaves(ref), strict=True):
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                if a.shape != b.shape:
                    raise RuntimeError(
                        f"cross-check {kind} {mode} {name}: gradient shape {a.shape} != {b.shape}"
                    )
                diff = max(diff, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)))
            limit = tol["grad_rtol"]
        diffs[name] = diff
        if not diff <= limit:  # also catches NaN
            raise RuntimeError(
                f"cross-check failed: {kind} {mode}: {name} differs from rnnjax by {diff:.3g} "
                f"(tolerance {limit:g})"
            )
    return diffs


def with_random_biases(params, key, scale: float = 0.1):
    """Add N(0, scale^2) noise to the biases (zero at init), so the cross-check sees the bias mapping."""
    b = params.b + scale * jax.random.normal(key, params.b.shape, params.b.dtype)
    params = params._replace(b=b)
    if getattr(params, "b_hn", None) is not None:
        k = jax.random.fold_in(key, 1)
        params = params._replace(
            b_hn=params.b_hn + scale * jax.random.normal(k, params.b_hn.shape, params.b_hn.dtype)
        )
    return params


def bench_point(cfg: Config, kind: str, B: int, T: int, H: int, names, torch=None) -> list[dict]:
    """Compile, cross-check and time every contender at one (cell, B, T, H); one row per mode.

    Returns rows with: cell, mode, B, T, I, H, flops, check (contender -> difference), and per contender
    compile_s plus timing in ms (median, q25, q75, min, times), tokens_per_s and gflops.
    """
    I = cfg.input_size
    k_p, k_b, k_x = jax.random.split(jax.random.key(cfg.seed), 3)
    params = with_random_biases(rnnjax.cells.make(kind, H).init(k_p, I), k_b)
    xs = jax.random.normal(k_x, (B, T, I), jnp.float32)  # (B, T, I)
    contenders = build_contenders(kind, params, xs, names, cfg.modes, torch, cfg.precision)
    tol = tolerances(cfg.precision)
    rows = []
    for mode in cfg.modes:
        calls = {name: c[mode] for name, c in contenders.items()}
        compiled = {name: compile_time(fn, *args) for name, (fn, args) in calls.items()}
        warm = {name: contenders[name]["to_rnnjax"][mode](fn(*args)) for name, (fn, args) in calls.items()}
        check = cross_check(kind, mode, warm, tol) if "rnnjax" in warm else {}
        del warm
        timing = time_interleaved(calls, cfg.reps)
        n_flops = flops(kind, mode, B, T, I, H)
        per = {}
        for name, t in timing.items():
            per[name] = dict(
                compile_s=compiled[name],
                median_ms=t["median"] * 1e3,
                q25_ms=t["q25"] * 1e3,
                q75_ms=t["q75"] * 1e3,
                min_ms=t["min"] * 1e3,
                times_ms=[s * 1e3 for s in t["times"]],
                tokens_per_s=B * T / t["median"],
                gflops=n_flops / t["median"] / 1e9,
            )
        ratios = {}
        if "rnnjax" in per:
            base = per["rnnjax"]["median_ms"]
            ratios = {name: p["median_ms"] / base for name, p in per.items() if name != "rnnjax"}
        rows.append(
            dict(cell=kind, mode=mode, B=B, T=T, I=I, H=H, flops=n_flops, check=check, contenders=per,
                 rnnjax_speedup=ratios)
        )  # fmt: skip
    return rows


def matmul_reference(n: int, reps: int, torch=None, devices=("cpu",)) -> dict:
    """GFLOP/s of an n x n x n float32 matmul in JAX (jit) and torch on each of `devices` ("cpu", "cuda"),
    timed interleaved, at the precision in force (JAX's default, torch's allow_tf32)."""
    a, b = (jax.random.normal(k, (n, n), jnp.float32) for k in jax.random.split(jax.random.key(1)))
    calls = {"jax": (jax.jit(jnp.matmul), (a, b))}
    for device in devices if torch is not None else ():
        a_t, b_t = (torch.from_numpy(np.array(m)).to(device) for m in (a, b))
        if device == "cpu":
            calls["torch"] = (torch.mm, (a_t, b_t))
        else:
            mm = lambda x, y: (torch.mm(x, y), torch.cuda.synchronize())[0]  # noqa: E731 (waits for the GPU)
            calls[f"torch-{device}"] = (mm, (a_t, b_t))
    for fn, args in calls.values():
        compile_time(fn, *args)
    timing = time_interleaved(calls, reps)
    return {
        name: dict(median_ms=t["median"] * 1e3, gflops=2.0 * n**3 / t["median"] / 1e9)
        for name, t in timing.items()
    }


# --------------------------------------------------------------------------------------------
# Goals, table, figure.


def goals(rows: list[dict], full_grid: bool) -> list[dict]:
    """The issue's targets, evaluated on the rows that ran (value None when a contender is missing)."""

    def speedup(kind, mode, peer, shape=GOAL_SHAPE):
        for r in rows:
            if (r["cell"], r["mode"], (r["B"], r["T"], r["H"])) == (kind, mode, shape):
                return r["rnnjax_speedup"].get(peer)
        return None

    out = []
    for kind in ("lstm", "gru"):
        out.append(dict(goal=f"{kind} fwd+bwd vs torch", value=speedup(kind, "fwd+bwd", "torch"), target=1.0))
        out.append(dict(goal=f"{kind} fwd+bwd vs flax", value=speedup(kind, "fwd+bwd", "flax"), target=1.4))
    for kind in ("simple", "lstm", "gru"):
        out.append(dict(goal=f"{kind} fwd vs torch", value=speedup(kind, "fwd", "torch"), target=1.0))
    out.append(dict(goal="simple fwd+bwd vs torch", value=speedup("simple", "fwd+bwd", "torch"), target=1.0))
    vs_torch = [r["rnnjax_speedup"]["torch"] for r in rows if "torch" in r["rnnjax_speedup"]]
    label = "min over the default grid" if full_grid else "min over the shapes run (not the full grid)"
    out.append(dict(goal=f"{label} vs torch", value=min(vs_torch) if vs_torch else None, target=0.7))
    for g in out:
        g["ok"] = None if g["value"] is None else bool(g["value"] >= g["target"])
        g["where"] = "B=32 T=128 I=128 H=256" if "min" not in g["goal"] else "all rows"
    return out


def gpu_goals(rows: list[dict], full_grid: bool, skips: dict[str, str]) -> list[dict]:
    """The issue's GPU targets against torch-cuda and jax-cudnn: >= 1.0x at every shape (the minimum over
    the rows), >= 2x at B=32 T=128 H=256 for each cell and mode. `skips`: `gpu_skips` of the run (the
    reason a goal is not evaluated)."""
    label = "min over the GPU grid" if full_grid else "min over the shapes run (not the full GPU grid)"
    out = []
    for peer in GPU_CONTENDERS:
        vs = [r for r in rows if peer in r["rnnjax_speedup"]]
        note = None
        if not vs:
            why = skips.get(peer, f"{peer} not run")
            note = f"not evaluated: {'no GPU' if why.startswith(('jax backend', 'torch.cuda')) else why}"
        value = min((r["rnnjax_speedup"][peer] for r in vs), default=None)
        out.append(dict(goal=f"{label} vs {peer}", value=value, target=1.0, where="all rows", note=note))
        for r in rows:
            if (r["B"], r["T"], r["H"]) == GOAL_SHAPE and (peer != "jax-cudnn" or r["cell"] == "lstm"):
                out.append(
                    dict(goal=f"{r['cell']} {r['mode']} vs {peer}", value=r["rnnjax_speedup"].get(peer),
                         target=2.0, where="B=32 T=128 I=128 H=256", note=note)
                )  # fmt: skip
    for g in out:
        g["ok"] = None if g["value"] is None else bool(g["value"] >= g["target"])
    return out


def unroll_sweep(rows: list[dict]) -> list[dict]:
    """Per row with rnnjax@uK contenders: the median ms of each K and the speed-up t(K0) / t(K) over the
    first K0 of the sweep (unroll 1 when it is swept): > 1 means unroll K is faster. Keyed by str(K), as in
    the JSON."""
    out = []
    for r in rows:
        ms = {n[len(SWEEP) :]: p["median_ms"] for n, p in r["contenders"].items() if n.startswith(SWEEP)}
        if not ms:
            continue
        base = "1" if "1" in ms else next(iter(ms))
        out.append(
            dict(cell=r["cell"], mode=r["mode"], B=r["B"], T=r["T"], H=r["H"], base=int(base), ms=ms,
                 speedup={k: ms[base] / v for k, v in ms.items()})
        )  # fmt: skip
    return out


def sweep_table(sweep: list[dict]) -> str:
    """The unroll sweep as text, with the geometric mean speed-up of each unroll over the rows."""
    ks, base = list(sweep[0]["ms"]), str(sweep[0]["base"])
    lines = [
        f"scan unroll sweep (rnnjax@uK): speed-up t(K={base}) / t(K), > 1 means K is faster",
        f"{'cell':<6} {'mode':<7} {'B':>4} {'T':>5} {'H':>5} "
        + " ".join(f"{f'K={k}':>7}" for k in ks)
        + f"  ms at K={base}",
    ]
    for s in sweep:
        lines.append(
            f"{s['cell']:<6} {s['mode']:<7} {s['B']:>4} {s['T']:>5} {s['H']:>5} "
            + " ".join(f"{s['speedup'][k]:>6.2f}x" for k in ks)
            + f"  {s['ms'][base]:.3f}"
        )
    geo = {k: float(np.exp(np.mean([np.log(s["speedup"][k]) for s in sweep]))) for k in ks}
    lines.append(f"{'geometric mean':<30} " + " ".join(f"{geo[k]:>6.2f}x" for k in ks))
    return "\n".join(lines)


def table(rows: list[dict], peak_gflops: float) -> str:
    lines = [
        f"{'cell':<6} {'mode':<7} {'B':>4} {'T':>5} {'H':>5}  {'contender':<12} {'ms median [IQR]':>26}"
        f" {'tokens/s':>10} {'GFLOP/s':>8} {'% mm':>6} {'rnnjax x':>9}  compile s"
    ]
    for r in rows:
        for name, p in r["contenders"].items():
            speed = r["rnnjax_speedup"].get(name)
            lines.append(
                f"{r['cell']:<6} {r['mode']:<7} {r['B']:>4} {r['T']:>5} {r['H']:>5}  {name:<12}"
                f" {p['median_ms']:>10.3f} [{p['q25_ms']:>6.3f}-{p['q75_ms']:>6.3f}]"
                f" {p['tokens_per_s']:>10.3g} {p['gflops']:>8.2f} {100 * p['gflops'] / peak_gflops:>5.1f}%"
                f" {(f'{speed:.2f}x' if speed is not None else '-'):>9}  {p['compile_s']:.2f}"
            )
    return "\n".join(lines)


def plot(record: dict, path) -> None:
    """Bar chart from a saved record: tokens/s per contender, one panel per (mode, cell), groups = shapes."""
    record = results.to_jsonable(record)  # the same plain values as the saved JSON
    from experiments._plots import plt  # matplotlib on Agg, imported only to plot

    rows = record["rows"]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    kinds = list(dict.fromkeys(r["cell"] for r in rows))
    names = list(dict.fromkeys(n for r in rows for n in r["contenders"]))
    fig, axes = plt.subplots(
        len(modes), len(kinds), figsize=(4.5 * len(kinds), 3.6 * len(modes)), squeeze=False
    )
    width = 0.8 / max(len(names), 1)
    for i, mode in enumerate(modes):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            sel = [r for r in rows if r["mode"] == mode and r["cell"] == kind]
            x = np.arange(len(sel))
            for k, name in enumerate(names):
                vals = [r["contenders"].get(name, {}).get("tokens_per_s", np.nan) for r in sel]
                ax.bar(x + (k - (len(names) - 1) / 2) * width, vals, width, label=name)
            ax.set_xticks(x, [f"B{r['B']} T{r['T']}\nH{r['H']}" for r in sel], fontsize=7)
            ax.set_yscale("log")
            ax.set_ylabel("tokens / s (log scale)")
            ax.set_title(f"{kind}, {mode}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(names), bbox_to_anchor=(0.5, -0.03))
    fig.suptitle(f"RNN throughput, float32, I={rows[0]['I']} ({record['machine']['processor']})")
    fig.tight_layout()
    results.save_figure(fig, path)
    plt.close(fig)


def run(cfg: Config) -> dict:
    """Run the whole benchmark and return the JSON record (no files written)."""
    cfg = check_config(cfg)
    names = list(dict.fromkeys(cfg.contenders))
    names += [f"{SWEEP}{k}" for k in cfg.unrolls]
    torch = import_torch() if {"torch", "torch-cuda"} & set(names) else None
    if torch is None:
        names = [n for n in names if n != "torch"]
    skips = gpu_skips(names, torch)
    if skips:
        print(skip_message(skips), file=sys.stderr)
    names = [n for n in names if n not in skips]
    if "jax-cudnn" in names and set(cfg.cells) - {"lstm"}:
        print("jax-cudnn: LSTM rows only (jax.experimental.rnn has no simple or GRU cell)", file=sys.stderr)
    threads = cfg.torch_threads or os.cpu_count()
    torch_state = None
    if torch is not None:
        torch.set_num_threads(threads)
        torch_state = torch_precision(torch, cfg.precision)
    devices = ("cpu",) * ("torch" in names) + ("cuda",) * ("torch-cuda" in names)
    try:
        # Flax, the naive scan and the matmul reference trace under the run's precision (rnnjax and
        # jax-cudnn also get it explicitly); jit caches by this setting, so every call runs inside it.
        with jax.default_matmul_precision(cfg.precision):
            ref = [matmul_reference(cfg.matmul_size, cfg.reps, torch, devices)]
            shapes = shapes_of(cfg)
            rows = []
            for B, T, H in tqdm(shapes, desc="shapes", file=sys.stderr, disable=not cfg.progress):
                for kind in cfg.cells:
                    new = bench_point(cfg, kind, B, T, H, names, torch)
                    for r in new:
                        summary = ", ".join(f"{n} {v:.2f}x" for n, v in r["rnnjax_speedup"].items())
                        check = ", ".join(f"{n} {v:.1e}" for n, v in r["check"].items())
                        tqdm.write(
                            f"{kind:>6} {r['mode']:<7} B={B} T={T} H={H}: rnnjax "
                            f"{r['contenders'].get('rnnjax', {}).get('median_ms', float('nan')):.2f} ms; "
                            f"speedup vs {summary or '-'}; check diff {check or '-'}",
                            file=sys.stderr,
                        )
                    rows.extend(new)
            ref.append(matmul_reference(cfg.matmul_size, cfg.reps, torch, devices))
    finally:
        if torch_state is not None:
            restore_torch_precision(torch, torch_state)
    peak = max(v["gflops"] for r in ref for v in r.values())
    for r in rows:
        for p in r["contenders"].values():
            p["pct_matmul"] = 100.0 * p["gflops"] / peak
    full_grid = cfg.grid == "default" and shapes == shapes_of(Config())
    full_gpu_grid = shapes == shapes_of(Config(grid="gpu"))
    default_unroll = getattr(getattr(rnnjax, "backend", None), "default_scan_unroll", None)
    return dict(
        machine=machine_info(),
        config=cfg,
        shapes=shapes,
        torch=None if torch is None else torch_info(torch),
        precision=dict(
            requested=cfg.precision,
            jax_default_matmul_precision=cfg.precision,
            rnnjax=cfg.precision,
            torch=None if torch_state is None else {k: v for k, v in torch_state.items() if k != "before"},
            jax_cudnn=JAX_CUDNN_PRECISION[cfg.precision],
        ),
        skipped=skips,
        rnnjax_default_unroll=None if default_unroll is None else default_unroll(),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        matmul=dict(size=cfg.matmul_size, start=ref[0], end=ref[1], peak_gflops=peak),
        tolerances=tolerances(cfg.precision),
        rows=rows,
        goals=goals(rows, full_grid),
        gpu_goals=gpu_goals(rows, full_gpu_grid, skips),
        unroll_sweep=unroll_sweep(rows),
    )


def precision_line(record: dict) -> str:
    """What each side ran at, in one line."""
    p = record["precision"]
    torch = p["torch"]
    flags = "-"
    if torch is not None:
        flags = f"cuda.matmul.allow_tf32={torch['cuda_matmul_allow_tf32']}"
        flags += f" cudnn.allow_tf32={torch['cudnn_allow_tf32']}"
    return (
        f"precision {p['requested']}: rnnjax precision={p['rnnjax']!r}, flax/scan under "
        f"jax.default_matmul_precision({p['jax_default_matmul_precision']!r}), torch {flags}, "
        f"jax-cudnn precision={p['jax_cudnn']}"
    )


def print_goals(goal_list: list[dict]) -> None:
    for g in goal_list:
        verdict = "n/a" if g["ok"] is None else ("PASS" if g["ok"] else "FAIL")
        if g["ok"] is None and g.get("note"):
            verdict = f"n/a ({g['note']})"
        value = "-" if g["value"] is None else f"{g['value']:.2f}x"
        print(f"goal {g['goal']:<48} {value:>7} (target >= {g['target']}x, {g['where']}): {verdict}")


def main(cfg: Config) -> dict:
    cfg = check_config(cfg)
    out = _cli.output_folder("benchmarks", cfg, "throughput", "throughput.json")  # checked before the work
    record = run(cfg)
    results.write_json(out / "throughput.json", record)
    plot(record, out / "throughput.png")
    peak = record["matmul"]["peak_gflops"]
    print(table(record["rows"], peak))
    if record["unroll_sweep"]:
        print("\n" + sweep_table(record["unroll_sweep"]))
    print(
        f"\nmatmul reference {cfg.matmul_size}^3 float32: {peak:.1f} GFLOP/s (best of "
        f"{'/'.join(record['matmul']['start'])}, start+end)"
    )
    print(precision_line(record))
    if record["torch"]:
        print(f"torch {record['torch']['version']}, {record['torch']['threads']} threads")
    if record["skipped"]:
        print(skip_message(record["skipped"]))
    print_goals(record["goals"])
    print_goals(record["gpu_goals"])
    print(f"wrote {out}/throughput.json and throughput.png")
    return record


if __name__ == "__main__":
    _cli.run(Config, main)
