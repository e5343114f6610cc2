"""The GPU side of `benchmarks.throughput` (its contenders in `benchmarks.contenders`) and
`benchmarks.gpu_check`, checked on a CPU: the GPU contenders are skipped with one message, the jax-cudnn
weight mapping holds through `jax.experimental.rnn.lstm_ref` (the same layout code as the cuDNN path),
torch's TF32 switches follow --precision and are restored, the unroll sweep times one rnnjax per value
with equal outputs, the new options refuse bad values in one line, and `make gpu-check` without a GPU runs
nothing. Timings are never asserted. About 15 s."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

from benchmarks import contenders, gpu_check, throughput
from rnnjax import cells
from rnnjax.command import cli as _cli

REPO = Path(__file__).resolve().parents[2]
TINY = dict(batches=(2,), lengths=(8,), hidden_sizes=(8,), input_size=4, reps=2, matmul_size=32)
on_gpu = pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the behaviour without a GPU")


def _lstm(B=2, T=8, H=8, I=4):
    """LSTM params with every weight and bias random (a wrong mapping shows), and inputs <[B, T, I]>."""
    rng = np.random.default_rng(5)
    normal = lambda *shape: jnp.asarray(0.3 * rng.standard_normal(shape), jnp.float32)  # noqa: E731
    shapes = jax.eval_shape(lambda: cells.make("lstm", H).init(jax.random.key(0), I))  # types only
    return type(shapes)(*(normal(*leaf.shape) for leaf in shapes)), normal(B, T, I)


def _rnnjax(params, xs, mode):
    c = contenders.build_contenders("lstm", params, xs, ["rnnjax"], (mode,), precision="highest")["rnnjax"]
    fn, args = c[mode]
    return fn(*args)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_jax_cudnn_weight_mapping_through_lstm_ref(mode):
    # jax.experimental.rnn.lstm (cuDNN) has no CPU path; lstm_ref computes the same function from the same
    # flat vector, unpacked by jax's own unpack_lstm_weights. The GPU contender differs only in the call.
    params, xs = _lstm()
    apply = contenders.cudnn_lstm_apply(4, 8, "highest", reference=True)
    flat = contenders.cudnn_lstm_weights(params)
    if mode == "fwd":
        got = jax.jit(apply)(flat, xs)
    else:
        grad = jax.jit(jax.grad(lambda w, x: jnp.sum(apply(w, x))))(flat, xs)
        got = contenders.params_from_cudnn(grad, params)
        # b_ih and b_hh enter the same pre-activation: equal gradients, or the layout is misread.
        _, _, db_ih, db_hh = rnn.unpack_lstm_weights(grad, 4, 8, 1, False)
        np.testing.assert_array_equal(db_ih[0], db_hh[0])
    diffs = contenders.cross_check("lstm", mode, {"rnnjax": _rnnjax(params, xs, mode), "jax-cudnn": got})
    assert diffs["jax-cudnn"] <= (contenders.PEER_TOL if mode == "fwd" else contenders.GRAD_RTOL)


def test_jax_cudnn_mapping_check_sees_a_swapped_gate():
    params, xs = _lstm()
    apply = contenders.cudnn_lstm_apply(4, 8, "highest", reference=True)
    i, f, g, o = jnp.split(params.w_hh, 4, axis=1)  # rnnjax order i, f, g, o; swap f and o
    flat = contenders.cudnn_lstm_weights(params._replace(w_hh=jnp.concatenate([i, o, g, f], axis=1)))
    with pytest.raises(RuntimeError, match="cross-check failed"):
        contenders.cross_check(
            "lstm", "fwd", {"rnnjax": _rnnjax(params, xs, "fwd"), "jax-cudnn": apply(flat, xs)}
        )


def test_torch_precision_switches_follow_precision_and_are_restored():
    torch = pytest.importorskip("torch", reason="torch (optional extra 'bench') not installed")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    for precision, tf32 in (("highest", False), ("default", True)):
        state = contenders.torch_precision(torch, precision)
        assert (state["cuda_matmul_allow_tf32"], state["cudnn_allow_tf32"]) == (tf32, tf32)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (tf32, tf32)
        contenders.restore_torch_precision(torch, state)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@on_gpu
def test_gpu_contenders_skipped_and_unroll_sweep(tmp_path, capsys):
    torch = contenders.import_torch()
    before = (
        None if torch is None else (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    )
    cfg = throughput.Config(
        cells=("lstm",), contenders=("rnnjax", "torch-cuda", "jax-cudnn"), unrolls=(1, 3),
        precision="default", out=str(tmp_path), progress=False, **TINY,
    )  # fmt: skip
    throughput.main(cfg)
    captured = capsys.readouterr()
    err, out = captured.err, captured.out
    cuda_reason = "torch not installed" if torch is None else "torch.cuda.is_available() False"
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert skipped == [contenders.skip_message({"torch-cuda": cuda_reason, "jax-cudnn": "jax backend cpu"})]
    if torch is not None:
        assert skipped == [
            "torch-cuda, jax-cudnn: skipped (no GPU: jax backend cpu, torch.cuda.is_available() False)"
        ]
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    record = json.loads((tmp_path / "throughput.json").read_text())
    assert set(record["skipped"]) == {"torch-cuda", "jax-cudnn"}
    assert record["precision"]["requested"] == "default"
    if torch is not None:
        assert record["precision"]["torch"]["cudnn_allow_tf32"] is True
    assert record["tolerances"]["scan"] == contenders.SCAN_TOL  # "default" on a CPU is float32: tight
    # One rnnjax contender per unroll value, each cross-checked against rnnjax at the scan's tolerance.
    for row in record["rows"]:
        assert set(row["contenders"]) == {"rnnjax", "rnnjax@u1", "rnnjax@u3"}
        assert set(row["check"]) == {"rnnjax@u1", "rnnjax@u3"}
        assert all(d <= contenders.SCAN_TOL for d in row["check"].values())
    sweep = record["unroll_sweep"]
    assert [(s["cell"], s["mode"]) for s in sweep] == [("lstm", "fwd"), ("lstm", "fwd+bwd")]
    for s, row in zip(sweep, record["rows"]):
        assert s["base"] == 1 and set(s["ms"]) == {"1", "3"}  # JSON keys
        assert s["speedup"]["3"] == pytest.approx(row["contenders"]["rnnjax@u1"]["median_ms"] / s["ms"]["3"])
    # The GPU goals are listed, not evaluated.
    assert record["gpu_goals"] and all(g["ok"] is None for g in record["gpu_goals"])
    assert {g["note"] for g in record["gpu_goals"]} == {"not evaluated: no GPU"}
    assert "scan unroll sweep" in out and "n/a (not evaluated: no GPU)" in out
    assert "K=3" in gpu_check.summary(record, "tiny")


def test_sweep_contenders_are_checked_at_the_scan_tolerance():
    params, xs = _lstm()
    ys = _rnnjax(params, xs, "fwd")
    off = ys + 2 * contenders.SCAN_TOL  # within PEER_TOL, beyond SCAN_TOL
    with pytest.raises(RuntimeError, match="rnnjax@u4 differs"):
        contenders.cross_check("lstm", "fwd", {"rnnjax": ys, "rnnjax@u4": off})
    assert contenders.cross_check("lstm", "fwd", {"rnnjax": ys, "flax": off})["flax"] <= contenders.PEER_TOL


def test_grids():
    gpu = throughput.shapes_of(throughput.Config(grid="gpu"))
    assert len(gpu) == 12 and sorted(gpu) == sorted(
        (B, T, H) for B in (1, 32, 256) for T in (128, 1024) for H in (256, 1024)
    )
    assert throughput.shapes_of(throughput.Config(grid="gpu", lengths=(128,))) == [
        s for s in gpu if s[1] == 128
    ]
    assert throughput.shapes_of(throughput.Config(grid="quick")) == list(throughput.QUICK_SHAPES)
    assert throughput.shapes_of(throughput.Config(quick=True)) == list(throughput.QUICK_SHAPES)
    assert len(throughput.shapes_of(throughput.Config())) == 18


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--precision", "fast"], ["precision", "fast", "highest"]),
        (["--grid", "tpu"], ["grid", "tpu", "gpu"]),
        (["--unrolls", "0"], ["unrolls", "(0,)", ">= 1"]),
        (["--unrolls", "4", "4"], ["unrolls", "distinct", "(4, 4)"]),
        (["--quick", "--grid", "gpu"], ["grid", "--quick", "gpu"]),
        (["--contenders", "cudnn"], ["contenders", "cudnn", "jax-cudnn"]),
    ],
)
def test_bad_options_give_one_line_errors(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        _cli.run(throughput.Config, throughput.main, [*argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, (word, err)
    assert not any(tmp_path.iterdir())  # refused before any work


@on_gpu
def test_gpu_check_without_gpu_runs_nothing(monkeypatch, tmp_path, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError(f"gpu-check ran a step without a GPU: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        _cli.run(gpu_check.Config, gpu_check.main, [])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: gpu-check: no GPU (jax backend cpu") and "nothing was run" in err
    assert "\n" not in err and not any(tmp_path.iterdir())


def test_gpu_check_steps_are_commands_the_benchmark_accepts():
    steps = dict(gpu_check.commands(gpu_check.Config()))
    assert list(steps) == ["tests", "grid highest", "grid default", "unroll sweep"]
    assert steps["tests"][1:] == ["-m", "pytest", "-q", "-n", "2", "tests"]
    assert dict(gpu_check.commands(gpu_check.Config(workers=1)))["tests"][4:] == ["-p", "no:xdist", "tests"]
    for name in ("grid highest", "grid default", "unroll sweep"):
        argv = steps[name]
        assert argv[1:3] == ["-m", "benchmarks.throughput"]
        cfg = throughput.check_config(_cli.parse(throughput.Config, argv[3:]))
        if name == "unroll sweep":
            assert (
                cfg.grid == "quick" and cfg.unrolls == (1, 2, 4, 8, 16, 32) and cfg.contenders == ("rnnjax",)
            )
        else:
            assert cfg.precision == name.split()[1]
            assert len(throughput.shapes_of(cfg)) == 12 and {"torch-cuda", "jax-cudnn"} <= set(cfg.contenders)
    assert "unroll sweep" not in dict(gpu_check.commands(gpu_check.Config(unrolls=())))


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_gpu_check_target_runs_the_gpu_check():
    # Under `make test` this make is nested: without the parent's MAKEFLAGS/MAKELEVEL it prints no
    # "Entering/Leaving directory" lines, only the recipe.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "gpu-check"], cwd=REPO, capture_output=True, text=True,
        check=True, env=env,
    ).stdout
    assert any("-m benchmarks.gpu_check --workers 2" in line for line in out.splitlines()), out
