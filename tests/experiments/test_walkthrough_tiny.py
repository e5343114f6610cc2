"""The tiny Keras word model end to end: the textbook parameter counts and predictions, and its prediction
recomputed by hand in NumPy equal to the library's (and to the NumPy reference package's)."""

import json

import jax
import numpy as np
import pytest

from experiments import walkthrough_tiny
from rnnjax import reference
from rnnjax.command import cli as _cli

# The walkthrough computes in float32 and recomputes in float64 from the same float32 weights: the two
# agree to float32 rounding of O(1) numbers.
TOL_F32 = 1e-6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    cfg = walkthrough_tiny.Config(progress=False, run="t")  # the default 500 epochs: ~3 s
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        m = walkthrough_tiny.main(cfg)
    return cfg, m, tmp / "results" / "walkthrough_tiny" / "t"


def test_tiny_parameter_counts_and_predictions(tiny):
    _, m, _ = tiny
    assert m["param_counts"] == {"simple_rnn": 3, "dense": 10, "total": 13}
    assert m["vocab"] == ["<pad>", "this", "is", "an", "example"]
    assert [(p["context"], p["word"]) for p in m["predictions"]] == [
        ("this is", "an"),
        ("is an", "example"),
    ]
    assert m["losses"][-1] < 0.1 < m["losses"][0]


def test_tiny_from_scratch_equals_library_and_reference(tiny):
    cfg, m, out = tiny
    assert np.max(np.abs(m["probs_numpy"] - m["probs_rnnjax"])) <= TOL_F32
    assert m["max_abs_diff"] == pytest.approx(np.max(np.abs(m["probs_numpy"] - m["probs_rnnjax"])))
    # A third way: the independent NumPy reference package on the same weights.
    p = m["params"]
    xs = walkthrough_tiny.make_dataset(cfg.text, cfg.window).xs
    _, hs = reference.forward(
        "simple",
        {k: np.asarray(v) for k, v in p["rnn"]["layer_0"]._asdict().items()},
        xs[..., None].astype(np.float64),
    )
    logits = hs[:, -1] @ np.asarray(p["readout"].w, np.float64) + np.asarray(p["readout"].b, np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(m["probs_numpy"], probs, rtol=0, atol=1e-12)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["param_counts"]["total"] == 13
    assert "Total params: 13" in (out / "summary.md").read_text()
    assert json.loads((out / "config.json").read_text())["run"] == "t"


def test_tiny_counts_come_from_the_params():
    p = walkthrough_tiny.init_params(jax.random.key(0), 3, 7)
    rows = walkthrough_tiny.summary_rows(p, 7)
    assert rows == [("simple_rnn", "(None, 3)", 3 + 9 + 3), ("dense", "(None, 7)", 3 * 7 + 7)]


def test_tiny_params_have_the_model_form():
    # The Keras initialisation is drawn by hand; its tree and shapes are those of the model's own init.
    ours = walkthrough_tiny.init_params(jax.random.key(0), 3, 7)
    model = walkthrough_tiny.make_model(3, 7)
    inputs = np.zeros((2, 4, 1), np.float32)
    theirs = jax.eval_shape(lambda k: model.init(k, inputs)["params"], jax.random.key(0))
    shape = lambda tree: jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), tree)  # noqa: E731
    assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(theirs)
    assert shape(ours) == shape(theirs)


def test_tiny_dataset_pre_pads_prefixes():
    data = walkthrough_tiny.make_dataset("This is, an example!", 2, prefixes=True)
    np.testing.assert_array_equal(data.xs, [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(data.ys, [2, 3, 4])
    np.testing.assert_array_equal(walkthrough_tiny.pad_pre([[5, 6, 7], [], [8]], 2), [[6, 7], [0, 0], [0, 8]])
    with pytest.raises(ValueError, match="text: expected at least window"):
        walkthrough_tiny.make_dataset("too short", 2)


def test_tiny_command_reports_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(walkthrough_tiny.Config, walkthrough_tiny.main, ["--window", "0", "--no-progress"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: window: expected an int >= 1, got 0\n"
    assert not (tmp_path / "results").exists()  # refused before anything is written
