"""Smoke tests of the benchmark scripts (`benchmarks.throughput` with `benchmarks.contenders`,
`benchmarks.memory`) on tiny shapes: they run end to end, write records of the expected structure, and
their cross-checks hold. Timings are never asserted. About 10-20 s in all."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import contenders, linear_scan, memory, throughput
from rnnjax import cells

# B=2, T=8, H=8, I=4: small enough to compile in well under a second per function.
MODES = ("fwd", "fwd+bwd")
TINY = dict(batches=(2,), lengths=(8,), hidden_sizes=(8,), input_size=4, reps=2, matmul_size=32)


@functools.cache
def _result(kind, name, mode, B=2, T=8, H=8, I=4):
    """One contender's result in one mode, converted to rnnjax's layout, as the benchmark's warm-up call
    computes it, on shared weights and inputs (cached: each function is compiled once per process)."""
    # Every weight and bias random (NumPy, so no eager JAX init to compile): a wrong mapping shows.
    rng = np.random.default_rng(3)
    normal = lambda *shape: jnp.asarray(0.3 * rng.standard_normal(shape), jnp.float32)  # noqa: E731
    shapes = jax.eval_shape(lambda: cells.make(kind, H).init(jax.random.key(0), I))  # types only, not run
    params = type(shapes)(*(normal(*leaf.shape) for leaf in shapes))  # w_ih, w_hh, b (, b_hn) in order
    xs = normal(B, T, I)
    torch = contenders.import_torch() if name == "torch" else None
    c = contenders.build_contenders(kind, params, xs, [name], (mode,), torch)[name]
    fn, args = c[mode]
    return c["to_rnnjax"][mode](fn(*args))


def _results(kind, names, mode):
    """{contender: result} for rnnjax and `names`."""
    return {name: _result(kind, name, mode) for name in ("rnnjax", *names)}


def test_throughput_main_writes_record(tmp_path):
    cfg = throughput.Config(cells=("simple",), contenders=("rnnjax", "scan"), out=str(tmp_path), **TINY)
    throughput.main(cfg)
    record = json.loads((tmp_path / "throughput.json").read_text())
    assert (tmp_path / "throughput.png").stat().st_size > 0
    assert {"machine", "config", "shapes", "matmul", "tolerances", "rows", "goals"} <= set(record)
    assert record["shapes"] == [[2, 8, 8]]
    assert record["matmul"]["peak_gflops"] > 0
    assert [(r["cell"], r["mode"]) for r in record["rows"]] == [("simple", "fwd"), ("simple", "fwd+bwd")]
    for row in record["rows"]:
        assert set(row["contenders"]) == {"rnnjax", "scan"}
        assert set(row["rnnjax_speedup"]) == set(row["check"]) == {"scan"}
        assert row["flops"] == throughput.flops("simple", row["mode"], 2, 8, 4, 8)
        for p in row["contenders"].values():
            assert len(p["times_ms"]) == TINY["reps"]
            assert {"compile_s", "median_ms", "q25_ms", "q75_ms", "min_ms"} <= set(p)
            assert {"tokens_per_s", "gflops", "pct_matmul"} <= set(p)
    # No torch in this run and not the goal shape: every goal that needs one is "n/a" (None), not a crash.
    assert all(g["ok"] is None for g in record["goals"])


def test_linear_scan_benchmark_writes_record_and_the_methods_agree(tmp_path):
    cfg = linear_scan.Config(lengths=(16, 64), batch=2, hidden_size=4, repeats=2, out=str(tmp_path))
    linear_scan.main(cfg)
    record = json.loads((tmp_path / "linear_scan.json").read_text())
    assert [(r["dtype"], r["T"]) for r in record["rows"]] == [
        ("float32", 16),
        ("float32", 64),
        ("complex64", 16),
        ("complex64", 64),
    ]
    for row in record["rows"]:
        assert row["max_relative_difference"] <= 1e-5  # float32 rounding, products grouped differently
        assert set(row["timing"]) == {
            f"{m} {p}" for m in ("associative", "sequential") for p in ("forward", "grad")
        }
        ratio = row["timing"]["sequential grad"]["median"] / row["timing"]["associative grad"]["median"]
        assert row["sequential_over_associative"]["grad"] == pytest.approx(ratio)
    for dtype, parts in record["crossover_T"].items():  # the smallest T with a ratio > 1, from the rows
        rows = [r for r in record["rows"] if r["dtype"] == dtype]
        faster = [r["T"] for r in rows if r["sequential_over_associative"]["forward"] > 1]
        assert parts["forward"] == (min(faster) if faster else None)


def test_flops_formula_by_hand():
    # LSTM, B=T=I=H=1: forward x@W_ih (1x4) + h@W_hh (1x4) = 8 multiply-adds; backward adds dW_ih (4),
    # dW_hh (4) and dh (4) = 12 more.
    assert throughput.flops("lstm", "fwd", 1, 1, 1, 1) == 16
    assert throughput.flops("lstm", "fwd+bwd", 1, 1, 1, 1) == 16 + 24
    assert throughput.flops("simple", "fwd", 2, 3, 5, 7) == 2 * 2 * 3 * (5 + 7) * 7
    # GRU, B=T=I=H=1: three gate blocks, x@W_ih (1x3) + h@W_hh (1x3) = 6 multiply-adds.
    assert throughput.flops("gru", "fwd", 1, 1, 1, 1) == 12


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_naive_scan_and_flax_compute_rnnjax_function(kind):
    # Gradients of sum(ys) w.r.t. every weight: equal gradients need equal functions, including the
    # bias mapping. Forward outputs: the torch and cross-check tests below, and the benchmark itself.
    diffs = contenders.cross_check(kind, "fwd+bwd", _results(kind, ["scan", "flax"], "fwd+bwd"))
    assert diffs["scan"] <= contenders.GRAD_RTOL and diffs["flax"] <= contenders.GRAD_RTOL


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_flax_nnx_computes_rnnjax_function(kind):
    # nnx.RNN under nnx.jit, outputs and gradients, on every weight random (the GRU's b_hn included, which
    # the contender gives NNX's GRUCell as a recurrent bias 0‖0‖b_hn).
    for mode in MODES:
        diff = contenders.cross_check(kind, mode, _results(kind, ["flax-nnx"], mode))["flax-nnx"]
        assert diff <= (contenders.PEER_TOL if mode == "fwd" else contenders.GRAD_RTOL)


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("mode", MODES)
def test_torch_computes_rnnjax_function(kind, mode):
    pytest.importorskip("torch", reason="torch (optional extra 'bench') not installed")
    assert contenders.cross_check(kind, mode, _results(kind, ["torch"], mode))["torch"] <= contenders.PEER_TOL


def test_cross_check_rejects_a_wrong_function():
    fwd = _results("gru", ["scan"], "fwd")
    assert contenders.cross_check("gru", "fwd", fwd)["scan"] <= contenders.SCAN_TOL
    with pytest.raises(RuntimeError, match="cross-check failed"):
        contenders.cross_check("gru", "fwd", dict(fwd, scan=fwd["scan"] + 1e-3))
    grads = _results("gru", ["scan"], "fwd+bwd")
    wrong = grads["scan"]._replace(b_hn=grads["scan"].b_hn * 1.01)
    with pytest.raises(RuntimeError, match="cross-check failed"):
        contenders.cross_check("gru", "fwd+bwd", dict(grads, scan=wrong))


def test_memory_methods_agree_and_chunks_divide():
    diffs = memory.check_methods_agree(T=24, B=2, H=8, I=4)
    assert set(diffs) == {"remat", "chunked"}
    for T in (1, 7, 24, 1000, 3000, 100_000):
        c = memory.chunk_size(T)
        assert T % c == 0
        # no divisor of T is closer to sqrt(T) on a log scale
        best = min(abs(math.log(d) - 0.5 * math.log(T)) for d in range(1, T + 1) if T % d == 0)
        assert abs(math.log(c) - 0.5 * math.log(T)) == best


def test_memory_fit_exponent_recovers_power_law():
    ts = np.array([1e3, 3e3, 1e4, 3e4])
    assert memory.fit_exponent(ts, 5.0 * ts**0.5) == pytest.approx(0.5, abs=1e-9)
    assert memory.fit_exponent([10], [1.0]) is None


def test_memory_point_skipped_over_cap_and_measured_in_subprocess():
    skipped = memory.measure_point("plain", T=16, B=2, H=8, I=4, cap_bytes=1.0)  # compiles, does not run
    assert "skipped" in skipped and "run_s" not in skipped and skipped["xla_temp_bytes"] > 0
    cfg = memory.Config(batch=2, hidden_size=8, input_size=4)
    rec = memory.measure_in_subprocess("chunked", 16, cfg)
    assert "error" not in rec, rec
    assert rec["chunk"] == 4 and rec["finite"]
    assert rec["rss_peak_bytes"] >= rec["rss_before_run_bytes"] > 0
