"""Throughput of rnnjax's cells against Flax linen `nn.RNN`, Flax NNX `nnx.RNN`, PyTorch `nn.RNN`/`nn.LSTM`/
`nn.GRU` (CPU, and CUDA = cuDNN on a GPU), `jax.experimental.rnn` (cuDNN LSTM, GPU only) and a naive
hand-written `lax.scan`, forward and forward+backward, all in one process on the same shapes, at one
matched matmul precision.

    python -m benchmarks.throughput --quick      # 3 shapes x 3 cells x 2 modes (run times: README)
    python -m benchmarks.throughput              # the default grid, 18 shapes (15 TFLOP per contender and
                                                 # repetition, most of it at H=1024, B=128, T=1024)
    python -m benchmarks.throughput --grid gpu --precision default   # the GPU grid, 12 shapes, TF32 allowed
    python -m benchmarks.throughput --quick --contenders rnnjax --unrolls 1 2 4 8 16   # scan unroll sweep
    python -m benchmarks.throughput --quick --cells lstm gru --modes fwd+bwd --contenders rnnjax torch

PyTorch is the optional extra `bench` (`pip install -e ".[bench]"`, torch==2.13.0 CPU build); without it
the torch columns are skipped with a message. On a machine without a GPU the GPU contenders (torch-cuda,
jax-cudnn) are skipped with one message; `make gpu-check` runs the GPU grid on a GPU machine (docs/gpu.md).

Contenders (`benchmarks.contenders`: what each runs, how the same rnnjax weights are copied into it, the
cross-check): rnnjax (the default path), rnnjax@uK (with --unrolls K ...: rnnjax with `unroll=K`, one
contender per value), rnnjax-plain (`fast=False`), flax, flax-nnx (`nnx.RNN` under `nnx.jit`), torch
(CPU), torch-cuda, jax-cudnn (LSTM only) and a naive `lax.scan`; float32, inputs <float32>[B, T, I],
I = --input-size = 128 by default.
Modes: "fwd" (the outputs ys <[B, T, H]>) and "fwd+bwd" (the gradient of loss = sum(ys) w.r.t. all
params). Every contender's first call (tracing, compilation, one run) is reported separately as
compile_s, then one untimed warm-up call whose results are cross-checked against rnnjax's (abort on a
mismatch), then --reps calls per contender timed round-robin (`benchmarks.timing.time_interleaved`,
`block_until_ready`).

Precision (--precision, matched on both sides, recorded in the JSON): "highest" (the default) is float32
matmuls everywhere: rnnjax `precision="highest"`, Flax and the scan traced under
`jax.default_matmul_precision("highest")`, torch `torch.backends.cuda.matmul.allow_tf32 = False` and
`torch.backends.cudnn.allow_tf32 = False`, jax-cudnn `precision=HIGHEST` (jaxlib then builds the cuDNN RNN
with CUDNN_FMA_MATH: no tensor cores). "default" is each library's fast float32 path: JAX's DEFAULT
(TF32 on recent NVIDIA GPUs), torch with both allow_tf32 flags True (torch's own defaults are False for
matmuls and True for cuDNN), jax-cudnn `precision=HIGH` (CUDNN_DEFAULT_MATH: TF32 tensor cores allowed;
jax refuses DEFAULT for this op, which it reads as bfloat16). On a CPU both settings compute in float32.

FLOPs counted (multiply-add = 2, element-wise gate math ignored), with G = len(cell.gates) gate blocks
(1 simple, 4 LSTM, 3 GRU):
    forward, per step:   2 * B * (I + H) * G*H                 (x @ W_ih and h @ W_hh)
    backward, per step:  2 * B * (I + 2H) * G*H                (dW_ih, dW_hh and dh; no dx, xs is constant)
so fwd+bwd = 2 * B * T * G*H * (2I + 3H). Achieved GFLOP/s is that count over the median time; "% mm" is it
over the fastest float32 --matmul-size^3 matmul (JAX, torch, torch-cuda as they ran, at the run's
precision), timed at the start and end of the same run.
Ratios are peer median / rnnjax median: > 1 means rnnjax is faster. With flax and flax-nnx both run, one
line per row also gives flax-nnx median / flax median (> 1: NNX is slower than linen).

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
from benchmarks.contenders import (
    GPU_CONTENDERS,
    JAX_CUDNN_PRECISION,
    SWEEP,
    Contender,
    build_contenders,
    cross_check,
    gpu_skips,
    import_torch,
    restore_torch_precision,
    skip_message,
    tolerances,
    torch_info,
    torch_precision,
    with_random_biases,
)
from benchmarks.timing import compile_time, machine_info, time_interleaved
from rnnjax import results
from rnnjax.command import cli as _cli
from rnnjax.train import parallel

Kind = Literal["simple", "lstm", "gru"]
Mode = Literal["fwd", "fwd+bwd"]
Grid = Literal["default", "quick", "gpu"]
Precision = Literal["highest", "default"]

QUICK_SHAPES = ((32, 128, 256), (1, 128, 128), (32, 1024, 256))  # (B, T, H): goal shape, small, long
GOAL_SHAPE = (32, 128, 256)
# The GPU grid: 12 shapes (B, T, H); --batches/--lengths/--hidden-sizes given with it replace its
# values.
GPU_GRID = dict(batches=(1, 32, 256), lengths=(128, 1024), hidden_sizes=(256, 1024))


@dataclasses.dataclass(frozen=True)
class Config:
    """Tokens per second against other implementations. Expected run time on a 2-core CPU: --quick ~4 min,
    the default grid about 4 h; --grid gpu on a GPU: not measured yet."""

    cells: tuple[Kind, ...] = ("simple", "lstm", "gru")
    modes: tuple[Mode, ...] = ("fwd", "fwd+bwd")
    contenders: tuple[Contender, ...] = (
        "rnnjax", "rnnjax-plain", "flax", "flax-nnx", "torch", "scan", "torch-cuda", "jax-cudnn"
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
    """`cfg` checked (ValueError naming the field; sizes whose arrays cannot fit in memory: `check_sizes`)
    and resolved: `--quick` as `grid="quick"`, and the GPU grid's batches/lengths/hidden_sizes in the
    fields left at their defaults."""
    cfg = _resolved(cfg)
    check_sizes(cfg)
    return cfg


def _resolved(cfg: Config) -> Config:
    """`check_config` without the memory check."""
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
    return _cli.quick(cfg, GPU_GRID) if cfg.grid == "gpu" else cfg


def _shapes(cfg: Config) -> list[tuple[int, int, int]]:
    """The (B, T, H) shapes of a resolved config (`_resolved`)."""
    if cfg.quick:
        return list(QUICK_SHAPES)
    return list(itertools.product(cfg.batches, cfg.lengths, cfg.hidden_sizes))


def shapes_of(cfg: Config) -> list[tuple[int, int, int]]:
    """The (B, T, H) shapes a config runs, in order (checked as by `check_config`, except their memory)."""
    return _shapes(_resolved(cfg))


def check_sizes(cfg: Config) -> None:
    """Refuse (ValueError naming the fields, `parallel.check_memory`) a shape or matmul reference whose
    arrays cannot fit in memory, before anything is allocated. Counted, in float32, what any contender
    needs at least, per shape (B, T, H) of a cell with G gate blocks: the inputs <[B, T, I]>, its outputs
    <[B, T, H]>, the backward pass's states and gates <[B, T, (G + 2) H]>, and the weights, their gradient
    and a copy <[G H, I + H + 1]>; for the matmul reference, its three n x n matrices. (The contenders'
    copies of them come on top, on the host or the accelerator: the check refuses only what cannot fit.)"""
    I = cfg.input_size
    for B, T, H in _shapes(cfg):
        G = max(len(rnnjax.cells.make(kind, H).gates) for kind in cfg.cells)
        floats = B * T * (I + H * (G + 3)) + 3 * G * H * (I + H + 1)
        parallel.check_memory(
            "batches, lengths, hidden_sizes",
            (B, T, H),
            4.0 * floats,
            f"the float32 inputs, outputs and backward-pass states of the shape B={B}, T={T}, H={H} (I={I})",
        )
    n = cfg.matmul_size
    parallel.check_memory("matmul_size", n, 4.0 * 3 * n * n, f"three float32 {n} x {n} matrices")


def flops(kind: str, mode: str, B: int, T: int, I: int, H: int) -> float:
    """Matmul FLOPs of one call (see the module docstring for the formula)."""
    G = len(rnnjax.cells.make(kind, H).gates)
    fwd = 2.0 * B * T * (I + H) * G * H
    return fwd if mode == "fwd" else fwd + 2.0 * B * T * (I + 2 * H) * G * H


# --------------------------------------------------------------------------------------------
# One benchmark point, and the matmul reference.


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
    """The CPU issue's targets, evaluated on the rows that ran (value None when a contender is missing, and
    on any backend but the CPU, where they would compare rnnjax on the accelerator with torch on the CPU)."""

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
    on_cpu = jax.default_backend() == "cpu"  # the goals compare rnnjax and torch on the same CPU
    for g in out:
        if not on_cpu:
            g["value"] = None
            g["note"] = f"not evaluated: CPU goals, and rnnjax ran on {jax.default_backend()}"
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


def pair_ratios(rows: list[dict], name: str = "flax-nnx", base: str = "flax") -> str:
    """One line per row where both ran: median time of `name` over that of `base` (> 1: `name` slower),
    and their geometric mean; "" when no row has both."""
    pairs = [
        (r, r["contenders"][name]["median_ms"] / r["contenders"][base]["median_ms"])
        for r in rows
        if name in r["contenders"] and base in r["contenders"]
    ]
    if not pairs:
        return ""
    lines = [f"{name} / {base} median time (> 1: {name} slower)"]
    for r, ratio in pairs:
        lines.append(f"{r['cell']:<6} {r['mode']:<7} B={r['B']} T={r['T']} H={r['H']}: {ratio:.2f}x")
    geo = float(np.exp(np.mean([np.log(ratio) for _, ratio in pairs])))
    lines.append(f"geometric mean over {len(pairs)} rows: {geo:.2f}x")
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
    from rnnjax.command.plots import legend_below, panels, save, title_and_caption  # imported only to plot

    rows = record["rows"]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    kinds = list(dict.fromkeys(r["cell"] for r in rows))
    names = list(dict.fromkeys(n for r in rows for n in r["contenders"]))
    fig, axes = panels(len(modes), len(kinds), 4.2, 3.2)
    width = 0.8 / max(len(names), 1)
    for i, mode in enumerate(modes):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            sel = [r for r in rows if r["mode"] == mode and r["cell"] == kind]
            x = np.arange(len(sel))
            for k, name in enumerate(names):
                vals = [r["contenders"].get(name, {}).get("tokens_per_s", np.nan) for r in sel]
                ax.bar(x + (k - (len(names) - 1) / 2) * width, vals, width, label=name)
            ax.set_xticks(x, [f"B{r['B']} T{r['T']}\nH{r['H']}" for r in sel])
            ax.set_yscale("log")
            ax.set_ylabel("tokens / s (log scale)")
            ax.set_title(f"{kind}, {mode}")
    title_and_caption(fig, "Tokens per second of each implementation, per cell and shape: higher is faster")
    legend_below(
        fig,
        axes[0][0],
        caption=f"float32, input size I={rows[0]['I']}; B: batch, T: sequence length, H: hidden size; on "
        f"{record['machine']['processor']}.",
    )
    save(fig, path)


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
        f"precision {p['requested']}: rnnjax precision={p['rnnjax']!r}, flax/flax-nnx/scan under "
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
    if pair_ratios(record["rows"]):
        print("\n" + pair_ratios(record["rows"]))
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
