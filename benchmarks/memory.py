"""Peak memory of LSTM backpropagation through time against sequence length T, with and without
checkpointing, each point measured in a fresh subprocess.

    python -m benchmarks.memory --quick     # T in {1e3, 3e3, 1e4}: ~2 min on a 2-core CPU
    python -m benchmarks.memory             # T up to 1e5: ~8 min on 2 cores (plain BPTT at T=1e5 is
                                            # compiled, not run: XLA predicts more than --cap-gb 16)

One call = loss and gradient w.r.t. the params of loss = sum of all outputs, for an LSTM with B=32, H=256,
I=128 (float32, inputs <float32>[T, B, I] time-major, passed in as an argument). Methods:
  - plain:   `rnnjax.unroll` then `jnp.sum(ys)`: the backward pass keeps every step's internals, O(T).
  - remat:   `rnnjax.unroll(..., remat=True)`: `jax.checkpoint` on the scan body, so the backward pass
             keeps one carry per step and recomputes the step: still O(T), with a smaller constant.
  - chunked: written here (`rnnjax.unroll(checkpoint_every=c)` chunks the same way but returns ys, which
             this avoids): an outer `lax.scan` over T/c chunks of c ≈ sqrt(T) steps (a divisor of T),
             each chunk a `jax.checkpoint`-ed `rnnjax.unroll` returning the chunk's loss, so only the T/c
             chunk-boundary carries are kept and one chunk's internals are rebuilt at a time:
             O(T/c + c) = O(sqrt(T)) activation memory for one extra forward pass (Chen et al. 2016,
             "Training deep nets with sublinear memory cost"). The outputs are reduced inside each
             chunk, so ys <[T, B, H]> is never stored.
Memory per point, from a fresh Python process each (so no point inherits another's high-water mark):
  - XLA's `compiled.memory_analysis()`: temp (activations and workspace, excluding inputs and params),
    argument and output bytes, known after compiling, without running;
  - peak resident set size of the process (`os.wait4` rusage ru_maxrss, which includes the JAX runtime,
    the compiler and the inputs), and its growth during the call over the RSS just before it (a lower
    bound: the call may reuse memory the allocator kept after compiling, so small temps show ~0 growth).
A point whose XLA total (temp + arguments + outputs) exceeds --cap-gb is compiled but not run (reported
as skipped). The exponent k of memory ∝ T^k is a least-squares fit on log-log axes, for XLA temp bytes
(all points) and for the measured RSS growth (points that ran). Before the sweep, the gradients of the
three methods are checked to agree on a tiny problem (GRAD_RTOL). Writes memory.json and memory.png into
--out, or results/benchmarks/<run>/ (default run: memory; an existing one is replaced only with --overwrite).

The README has the measured exponents, bytes per step, peaks and run times. Measured before the fast
kernels of `rnnjax.fused` became unroll's default: plain BPTT took 426 KB of XLA temp memory per step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import rnnjax
from benchmarks.timing import machine_info
from rnnjax import results
from rnnjax.command import cli as _cli

Method = Literal["plain", "remat", "chunked"]
QUICK_LENGTHS = (1_000, 3_000, 10_000)
GRAD_RTOL = 1e-5  # float32 gradients of the three methods, relative to the largest entry
_RESULT = "MEMORY_RESULT "  # prefix of the child's one line of JSON on stdout
_ROOT = Path(__file__).resolve().parents[1]  # repository root: the child imports benchmarks.memory


@dataclasses.dataclass(frozen=True)
class Config:
    """Peak memory of BPTT against T. Expected run time on a 2-core CPU: --quick ~2 min."""

    lengths: tuple[int, ...] = (1_000, 3_000, 10_000, 30_000, 100_000)
    methods: tuple[Method, ...] = ("plain", "remat", "chunked")
    batch: int = 32
    hidden_size: int = 256
    input_size: int = 128
    cap_gb: float = 16.0  # skip running points whose XLA total exceeds this
    quick: bool = False  # lengths up to 1e4 (QUICK_LENGTHS)
    out: str | None = None  # an output folder elsewhere (empty, or an earlier memory run); None: --run
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/memory
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # a progress bar over the points
    timeout_s: float = 1800.0  # per point


def chunk_size(T: int) -> int:
    """The divisor of T closest to sqrt(T) on a log scale (the chunk length of the chunked method)."""
    divisors = [d for d in range(1, T + 1) if T % d == 0]
    return min(divisors, key=lambda d: (abs(math.log(d) - 0.5 * math.log(T)), d))


def loss_fn(method: str, cell: rnnjax.Cell, T: int):
    """`(params, xs <[T, B, I]>) -> scalar` loss = sum of all outputs, computed the method's way."""
    if method == "plain":
        return lambda p, xs: jnp.sum(rnnjax.unroll(cell, p, xs, time_major=True)[1])
    if method == "remat":
        return lambda p, xs: jnp.sum(rnnjax.unroll(cell, p, xs, time_major=True, remat=True)[1])
    if method != "chunked":
        raise ValueError(f"method: expected 'plain', 'remat' or 'chunked', got {method!r}")
    c = chunk_size(T)

    @jax.checkpoint  # keep only (params, carry, chunk inputs); rebuild the chunk's internals on the way back
    def run_chunk(p, carry, x_chunk):  # x_chunk (c, B, I)
        carry, ys = rnnjax.unroll(cell, p, x_chunk, carry, time_major=True)
        return carry, jnp.sum(ys)

    def loss(p, xs):
        _, B, I = xs.shape
        chunks = xs.reshape(T // c, c, B, I)  # (T/c, c, B, I)
        carry = cell.initial_carry((B,), xs.dtype)
        _, sums = jax.lax.scan(lambda h, x: run_chunk(p, h, x), carry, chunks)
        return jnp.sum(sums)

    return loss


def _rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _inputs(key, T: int, B: int, I: int) -> jax.Array:
    """<float32>[T, B, I] standard normal, generated in blocks of `chunk_size(T)` steps: one
    `jax.random.normal` of the whole array needs ~3x its size in temporaries, which would set the
    process's peak RSS before the call being measured."""
    c = chunk_size(T)
    block = lambda k: jax.random.normal(k, (c, B, I), jnp.float32)  # noqa: E731
    gen = jax.jit(lambda ks: jax.lax.map(block, ks).reshape(T, B, I))  # reshape inside: no second copy
    return gen(jax.random.split(key, T // c))


def measure_point(method: str, T: int, B: int, H: int, I: int, cap_bytes: float, run: bool = True) -> dict:
    """Compile (and unless over the cap or `run=False`, run once) one loss+grad; meant for a fresh process.

    Returns: method, T, chunk, XLA memory_analysis bytes (temp, argument, output, peak if reported),
    compile_s, and if run: run_s, rss_before_run_bytes (current RSS after compiling and allocating the
    inputs), rss_hwm_bytes (this process's ru_maxrss after the call) and a finite-loss check.
    """
    cell = rnnjax.cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    fn = jax.jit(jax.value_and_grad(loss_fn(method, cell, T)))
    start = time.perf_counter()
    compiled = fn.lower(params, jax.ShapeDtypeStruct((T, B, I), jnp.float32)).compile()
    compile_s = time.perf_counter() - start
    ma = compiled.memory_analysis()
    rec = dict(
        method=method,
        T=T,
        chunk=chunk_size(T) if method == "chunked" else None,
        compile_s=compile_s,
        xla_temp_bytes=int(ma.temp_size_in_bytes),
        xla_argument_bytes=int(ma.argument_size_in_bytes),
        xla_output_bytes=int(ma.output_size_in_bytes),
        xla_peak_bytes=int(getattr(ma, "peak_memory_in_bytes", 0)) or None,
    )
    total = rec["xla_temp_bytes"] + rec["xla_argument_bytes"] + rec["xla_output_bytes"]
    rec["xla_total_bytes"] = total
    if total > cap_bytes:
        rec["skipped"] = f"XLA predicts {total / 1e9:.1f} GB > cap {cap_bytes / 1e9:.1f} GB"
        return rec
    if not run:
        return rec
    xs = jax.block_until_ready(_inputs(jax.random.key(1), T, B, I))  # (T, B, I)
    rec["rss_before_run_bytes"] = _rss_bytes()
    start = time.perf_counter()
    loss, grads = jax.block_until_ready(compiled(params, xs))
    rec["run_s"] = time.perf_counter() - start
    rec["rss_hwm_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    rec["finite"] = bool(np.isfinite(float(loss))) and all(
        bool(np.all(np.isfinite(g))) for g in jax.tree.leaves(grads)
    )
    return rec


def measure_in_subprocess(method: str, T: int, cfg: Config) -> dict:
    """`measure_point` in a fresh interpreter; adds rss_peak_bytes (the child's ru_maxrss from `os.wait4`)."""
    kwargs = dict(
        method=method, T=T, B=cfg.batch, H=cfg.hidden_size, I=cfg.input_size, cap_bytes=cfg.cap_gb * 1e9
    )
    code = (
        "import json, sys\n"
        "from benchmarks.memory import measure_point, _RESULT\n"
        "print(_RESULT + json.dumps(measure_point(**json.loads(sys.argv[1]))), flush=True)\n"
    )
    timed_out = False
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(kwargs)], cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        # Reap the child ourselves with wait4, which returns its own rusage (ru_maxrss = its peak RSS).
        deadline = time.monotonic() + cfg.timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read()
    if timed_out:
        return dict(method=method, T=T, error=f"timed out after {cfg.timeout_s:.0f} s")
    lines = [line for line in out.splitlines() if line.startswith(_RESULT)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(out.splitlines()[-5:])
        return dict(method=method, T=T, error=f"child exited with {proc.returncode}: {tail}")
    rec = json.loads(lines[-1][len(_RESULT) :])
    if "run_s" in rec:
        rec["rss_peak_bytes"] = usage.ru_maxrss * 1024
        rec["rss_growth_bytes"] = max(rec["rss_peak_bytes"] - rec["rss_before_run_bytes"], 0)
    return rec


def check_methods_agree(T: int = 24, B: int = 2, H: int = 8, I: int = 4) -> dict[str, float]:
    """Loss+grad of every method on a tiny problem; returns max relative difference to 'plain', raising
    if any exceeds GRAD_RTOL."""
    cell = rnnjax.cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (T, B, I), jnp.float32)
    got = {
        m: jax.jit(jax.value_and_grad(loss_fn(m, cell, T)))(params, xs) for m in ("plain", "remat", "chunked")
    }
    diffs = {}
    for m in ("remat", "chunked"):
        d = 0.0
        for a, b in zip(jax.tree.leaves(got[m]), jax.tree.leaves(got["plain"]), strict=True):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            d = max(d, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)))
        diffs[m] = d
        if not d <= GRAD_RTOL:
            raise RuntimeError(
                f"{m} loss/gradient differs from plain BPTT by {d:.3g} (tolerance {GRAD_RTOL:g})"
            )
    return diffs


def fit_exponent(ts, values) -> float | None:
    """Slope k of log(value) = k log(T) + c (least squares); None with fewer than two positive points."""
    pts = [(t, v) for t, v in zip(ts, values) if v is not None and v > 0]
    if len(pts) < 2:
        return None
    t, v = np.log(np.array(pts, dtype=np.float64)).T
    return float(np.polyfit(t, v, 1)[0])


def exponents(points: list[dict], methods) -> dict[str, dict]:
    out = {}
    for m in methods:
        pts = [p for p in points if p["method"] == m and "error" not in p]
        out[m] = dict(
            xla_temp=fit_exponent([p["T"] for p in pts], [p["xla_temp_bytes"] for p in pts]),
            rss_growth=fit_exponent([p["T"] for p in pts], [p.get("rss_growth_bytes") for p in pts]),
            rss_peak=fit_exponent([p["T"] for p in pts], [p.get("rss_peak_bytes") for p in pts]),
        )
    return out


def table(points: list[dict]) -> str:
    gb = lambda b: "-" if b is None else f"{b / 1e9:.3f}"  # noqa: E731
    lines = [
        f"{'method':<8} {'T':>7} {'chunk':>5} {'XLA temp GB':>11} {'args GB':>8} {'RSS peak GB':>11}"
        f" {'RSS growth GB':>13} {'compile s':>9} {'run s':>7}  status"
    ]
    for p in points:
        status = p.get("error") or p.get("skipped") or ("ok" if p.get("finite") else "NON-FINITE")
        lines.append(
            f"{p['method']:<8} {p['T']:>7} {p.get('chunk') or '-':>5} {gb(p.get('xla_temp_bytes')):>11}"
            f" {gb(p.get('xla_argument_bytes')):>8} {gb(p.get('rss_peak_bytes')):>11}"
            f" {gb(p.get('rss_growth_bytes')):>13} {p.get('compile_s', float('nan')):>9.2f}"
            f" {p.get('run_s', float('nan')):>7.2f}  {status}"
        )
    return "\n".join(lines)


def plot(record: dict, path) -> None:
    """Log-log plot from a saved record: XLA temp bytes (solid) and measured peak RSS (dashed) vs T."""
    record = results.to_jsonable(record)  # the same plain values as the saved JSON
    from rnnjax.command.plots import legend_below, log_ticks, panels, save, title_and_caption  # only to plot

    fig, axes = panels(1, 1, 6.0, 4.8)  # the legend and caption take the bottom 1.4 in
    ax = axes[0, 0]
    for i, m in enumerate(record["config"]["methods"]):
        pts = [p for p in record["points"] if p["method"] == m and "error" not in p]
        if not pts:
            continue
        color = f"C{i}"
        k = record["exponents"][m]["xla_temp"]
        label = f"{m}: XLA temp" + (f" (∝ T^{k:.2f})" if k is not None else "")
        ax.plot(
            [p["T"] for p in pts], [p["xla_temp_bytes"] / 1e9 for p in pts], "o-", color=color, label=label
        )
        ran = [p for p in pts if "rss_peak_bytes" in p]
        if ran:
            ax.plot(
                [p["T"] for p in ran],
                [p["rss_peak_bytes"] / 1e9 for p in ran],
                "s--",
                color=color,
                alpha=0.6,
                label=f"{m}: process peak RSS (measured)",
            )
    ax.axhline(record["config"]["cap_gb"], color="gray", ls=":", label="cap (not run above)")
    log_ticks(ax.xaxis, [p["T"] for p in record["points"]])
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (steps, log scale)")
    ax.set_ylabel("memory (GB, log scale)")
    c = record["config"]
    title_and_caption(
        fig, "Memory to train an LSTM against sequence length T, per method: lower and flatter is better"
    )
    legend_below(
        fig,
        ax,
        caption=f"Batch B={c['batch']}, hidden size H={c['hidden_size']}, input size I={c['input_size']}, "
        "float32; solid: XLA's temporary buffers, dashed: the process's peak memory (RSS), measured.",
    )
    save(fig, path)


def run(cfg: Config) -> dict:
    """Check the methods agree, then measure every (method, T) in a subprocess; the record (no files)."""
    lengths = QUICK_LENGTHS if cfg.quick else cfg.lengths
    check = check_methods_agree()
    points = []
    grid = [(m, T) for T in lengths for m in cfg.methods]
    for m, T in tqdm(grid, desc="points", file=sys.stderr, disable=not cfg.progress):
        p = measure_in_subprocess(m, T, cfg)
        points.append(p)
        tqdm.write(table([p]).splitlines()[1], file=sys.stderr)
    record = dict(
        machine=machine_info(),
        config=dataclasses.replace(cfg, lengths=tuple(lengths)),
        shape=dict(B=cfg.batch, H=cfg.hidden_size, I=cfg.input_size, dtype="float32", cell="lstm"),
        gradient_check=dict(rtol=GRAD_RTOL, max_rel_diff_to_plain=check),
        points=points,
        exponents=exponents(points, cfg.methods),
    )
    return record


def main(cfg: Config) -> dict:
    _cli.check_ints(cfg, "lengths", "batch", "hidden_size", "input_size")
    for name in ("cap_gb", "timeout_s"):
        if not getattr(cfg, name) > 0:
            raise ValueError(f"{name}: expected a number > 0, got {getattr(cfg, name)!r}")
    out = _cli.output_folder("benchmarks", cfg, "memory", "memory.json")  # checked before the work
    record = run(cfg)
    results.write_json(out / "memory.json", record)
    plot(record, out / "memory.png")
    print(table(record["points"]))
    print(f"gradient check vs plain (max rel diff): {record['gradient_check']['max_rel_diff_to_plain']}")
    for m, e in record["exponents"].items():
        fmt = lambda k: "-" if k is None else f"{k:.2f}"  # noqa: E731
        print(
            f"exponent {m:<8} memory ∝ T^k: XLA temp k={fmt(e['xla_temp'])},"
            f" RSS growth k={fmt(e['rss_growth'])}, RSS peak k={fmt(e['rss_peak'])}"
        )
    longest = [p for p in record["points"] if p["method"] == "chunked" and "rss_peak_bytes" in p]
    if longest:
        p = max(longest, key=lambda q: q["T"])
        print(f"chunked at T={p['T']}: process peak {p['rss_peak_bytes'] / 1e9:.2f} GB in {p['run_s']:.1f} s")
    print(f"wrote {out}/memory.json and memory.png")
    return record


if __name__ == "__main__":
    _cli.run(Config, main)
