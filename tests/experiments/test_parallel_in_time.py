"""`experiments.parallel_in_time` end to end on a tiny sweep through its command line: every output, the
predictability result on networks whose λ_max sign is known (W_hh = g·Q with g = 0.5 contracts, g = 3
is chaotic), iteration counts that are the library's own, and one-line errors."""

import json

import jax.numpy as jnp
import pytest

from experiments import parallel_in_time as pit
from rnnjax import newton
from rnnjax.command import cli as _cli

FIGURES = ("iterations_vs_length.png", "iterations_vs_lyapunov.png", "wall_time.png")
FILES = ("config.json", "metrics.json", "summary.md", *FIGURES)
TINY = (
    "--gains 0.5 3.0 --lengths 20 60 --hidden-size 16 --batch-size 2 --seeds 1 --max-iters 40 "
    "--lyapunov-length 300 --train-steps 0 --train-length 10 --repeats 1 --timed-methods deer quasi-deer "
    "--no-progress --run tiny"
).split()


def test_a_tiny_sweep_end_to_end(tmp_path, monkeypatch):
    """One run (about a minute of compiling), every check on it: a module fixture would run it once per
    test worker."""
    monkeypatch.chdir(tmp_path)
    _cli.run(pit.Config, pit.main, TINY)
    tiny_run = tmp_path / "results" / "parallel_in_time" / "tiny"
    writes_every_output(tiny_run)
    contracting_networks_converge_in_few_iterations_and_chaotic_ones_need_many(tiny_run)
    the_recorded_iterations_are_what_newton_unroll_reports(tiny_run)


def writes_every_output(tiny_run):
    for name in FILES:
        assert (tiny_run / name).stat().st_size > 0, name
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert [r["network"] for r in m["rows"]] == ["tanh g=0.5", "tanh g=3", "gru init", "lstm init"]
    assert set(m["wall"]["seconds"]) == {"sequential", "deer", "quasi-deer"}
    assert "λ_max < 0" in (tiny_run / "summary.md").read_text()


def contracting_networks_converge_in_few_iterations_and_chaotic_ones_need_many(tiny_run):
    rows = {r["network"]: r for r in json.loads((tiny_run / "metrics.json").read_text())["rows"]}
    calm, chaotic = rows["tanh g=0.5"], rows["tanh g=3"]
    assert calm["lyapunov"] < 0 < chaotic["lyapunov"], (calm, chaotic)
    deer_calm, deer_chaotic = calm["iterations"]["deer"], chaotic["iterations"]["deer"]
    assert all(c is not None and c <= 8 for c in deer_calm)  # bounded, and the same at T = 20 and 60
    assert deer_chaotic[0] is not None and deer_chaotic[0] > 2 * max(deer_calm)
    assert deer_chaotic[1] is None or deer_chaotic[1] > deer_chaotic[0]  # grows with T (or hits the cap)


def the_recorded_iterations_are_what_newton_unroll_reports(tiny_run):
    """The experiment's count for the g = 0.5 network at T = 20, recomputed through the public API."""
    m = json.loads((tiny_run / "metrics.json").read_text())
    cfg = pit.validate(pit.Config(**_fields(json.loads((tiny_run / "config.json").read_text()))))
    _, cell, params = pit.networks(cfg)[0]  # the tests run in float64 (conftest), as the experiment does
    xs = pit.inputs(cfg, 20, cfg.batch_size, salt=2)
    info = newton.unroll(cell, params[0], xs, max_iters=20, on_failure="sequential")[2]
    assert xs.dtype == jnp.float64
    assert int(info.iterations) == m["rows"][0]["iterations"]["deer"][0]


def _fields(saved: dict) -> dict:
    keep = {f.name for f in pit.Config.__dataclass_fields__.values()} - {"plot_only", "run", "overwrite"}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in keep}


def test_bad_options_print_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        _cli.run(pit.Config, pit.main, ["--timed-methods", "newton", "--no-progress"])
    assert "timed_methods: expected names from" in capsys.readouterr().err
