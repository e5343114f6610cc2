"""The tutorial walkthroughs run end to end on small settings, and the numbers each one recomputes by hand
in NumPy equal the library's; the tiny Keras example has the textbook parameter counts and predictions."""

import functools
import json

import jax
import numpy as np
import pytest

from experiments import walkthrough_alice, walkthrough_step, walkthrough_tiny
from rnnjax import reference

# The walkthroughs compute in float32 and recompute in float64 from the same float32 weights: the two
# agree to float32 rounding of O(1) numbers.
TOL_F32 = 1e-6


# ------------------------------------------------------------------------------------- walkthrough_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    cfg = walkthrough_tiny.Config(progress=False, out=out)  # the default 500 epochs: ~3 s
    return cfg, walkthrough_tiny.main(cfg)


def test_tiny_parameter_counts_and_predictions(tiny):
    _, m = tiny
    assert m["param_counts"] == {"simple_rnn": 3, "dense": 10, "total": 13}
    assert m["vocab"] == ["<pad>", "this", "is", "an", "example"]
    assert [(p["context"], p["word"]) for p in m["predictions"]] == [
        ("this is", "an"),
        ("is an", "example"),
    ]
    assert m["losses"][-1] < 0.1 < m["losses"][0]


def test_tiny_from_scratch_equals_library_and_reference(tiny):
    cfg, m = tiny
    assert np.max(np.abs(m["probs_numpy"] - m["probs_rnnjax"])) <= TOL_F32
    assert m["max_abs_diff"] == pytest.approx(np.max(np.abs(m["probs_numpy"] - m["probs_rnnjax"])))
    # A third way: the independent NumPy reference package on the same weights.
    p = m["params"]
    xs = walkthrough_tiny.make_dataset(cfg.text, cfg.window).xs
    _, hs = reference.forward(
        "simple",
        {k: np.asarray(v) for k, v in p.simple_rnn._asdict().items()},
        xs[..., None].astype(np.float64),
    )
    logits = hs[:, -1] @ np.asarray(p.dense.w, np.float64) + np.asarray(p.dense.b, np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(m["probs_numpy"], probs, rtol=0, atol=1e-12)
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert saved["param_counts"]["total"] == 13
    assert "Total params: 13" in (cfg.out / "summary.md").read_text()


def test_tiny_counts_come_from_the_params():
    p = walkthrough_tiny.init_params(jax.random.key(0), 3, 7)
    rows = walkthrough_tiny.summary_rows(p, 7)
    assert rows == [("simple_rnn", "(None, 3)", 3 + 9 + 3), ("dense", "(None, 7)", 3 * 7 + 7)]


def test_tiny_dataset_pre_pads_prefixes():
    data = walkthrough_tiny.make_dataset("This is, an example!", 2, prefixes=True)
    np.testing.assert_array_equal(data.xs, [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(data.ys, [2, 3, 4])
    np.testing.assert_array_equal(walkthrough_tiny.pad_pre([[5, 6, 7], [], [8]], 2), [[6, 7], [0, 0], [0, 8]])
    with pytest.raises(ValueError, match="text: expected at least window"):
        walkthrough_tiny.make_dataset("too short", 2)


# ------------------------------------------------------------------------------------- walkthrough_step


def test_step_defaults_three_ways_agree(tmp_path, capsys):
    m = walkthrough_step.main(walkthrough_step.Config(out=tmp_path))
    d = walkthrough_step.DEFAULTS
    x, h = np.array(d["x"]), np.array(d["h"])
    w_ih, w_hh, b = np.array(d["w_ih"]), np.array(d["w_hh"]), np.array(d["b"])
    # Column-vector textbook form, computed here independently: W^T [x; h] with W^T = [W_ih^T | W_hh^T].
    z = np.hstack([w_ih.T, w_hh.T]) @ np.concatenate([x, h]) + b
    np.testing.assert_allclose(m["by_hand"]["z"], z, rtol=0, atol=1e-15)
    np.testing.assert_allclose(m["by_hand"]["x_w_ih"] + m["by_hand"]["h_w_hh"] + b, z, rtol=0, atol=1e-15)
    logits = np.tanh(z) @ np.array(d["w_o"]) + np.array(d["b_o"])
    np.testing.assert_allclose(m["by_hand"]["logits"], logits, rtol=0, atol=1e-15)
    for key in ("h_new", "logits", "probs"):
        np.testing.assert_allclose(m["rnnjax"][key], m["by_hand"][key], rtol=0, atol=TOL_F32)
        np.testing.assert_allclose(m["reference"][key], m["by_hand"][key], rtol=0, atol=1e-12)
    assert m["by_hand"]["prediction"] == m["rnnjax"]["prediction"] == m["reference"]["prediction"] == 2
    assert m["agree"]
    printed = capsys.readouterr().out
    assert "x W_ih" in printed and "All three agree" in printed
    assert json.loads((tmp_path / "metrics.json").read_text())["agree"] is True


def test_step_user_matrices_from_a_file(tmp_path):
    rng = np.random.default_rng(0)
    I, H, V = 4, 3, 5
    given = {
        "x": rng.normal(size=I), "h": rng.normal(size=H), "w_ih": rng.normal(size=(I, H)),
        "w_hh": rng.normal(size=(H, H)), "b": rng.normal(size=H), "w_o": rng.normal(size=(H, V)),
        "b_o": rng.normal(size=V),
    }  # fmt: skip
    path = tmp_path / "step.json"
    path.write_text(json.dumps({k: v.tolist() for k, v in given.items()}))
    m = walkthrough_step.main(walkthrough_step.Config(matrices=str(path), out=tmp_path / "out"))
    h_new = np.tanh(given["x"] @ given["w_ih"] + given["h"] @ given["w_hh"] + given["b"])
    np.testing.assert_allclose(m["by_hand"]["h_new"], h_new, rtol=0, atol=1e-15)
    assert m["by_hand"]["probs"].shape == (V,)
    np.testing.assert_allclose(m["rnnjax"]["probs"], m["by_hand"]["probs"], rtol=0, atol=TOL_F32)
    np.testing.assert_allclose(m["reference"]["probs"], m["by_hand"]["probs"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "matrices, message",
    [
        ('{"x": [1, 2]}', r"w_ih: expected shape \(2, 2\) = \(len\(x\), len\(h\)\).*got shape \(3, 2\)"),
        ('{"w_hh": [[1, 0, 0], [0, 1, 0]]}', r"w_hh: expected shape \(2, 2\).*got shape \(2, 3\)"),
        ('{"b_o": [1, 2, 3]}', r"b_o: expected shape \(4,\) = \(classes,\).*got shape \(3,\)"),
        ('{"w_ih": [[1, 2], [3]]}', r"w_ih: expected a matrix of numbers"),
        ('{"x": [[1, 2, 3]]}', r"x: expected a non-empty 1-D array.*got shape \(1, 3\)"),
        ('{"h": ["a", "b"]}', r"h: expected a vector of numbers"),
        ('{"b": [NaN, 0]}', r"b: expected finite numbers"),
        ('{"W": [[1]]}', r"matrices: unknown key\(s\) \['W'\]"),
        ("{x: 1}", r"matrices: expected a JSON object, got invalid JSON"),
        ("[1, 2]", r"matrices: expected inline JSON .* or the path of a JSON file"),
    ],
)
def test_step_bad_matrices_raise_clear_errors(tmp_path, matrices, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        walkthrough_step.main(walkthrough_step.Config(matrices=matrices, out=out))
    assert not out.exists()  # checked before anything is written


# ------------------------------------------------------------------------------------ walkthrough_alice

# A text a 10-word window predicts exactly: a cycle of 12 distinct words, punctuated and capitalised so
# that the normalisation (lowercase, strip punctuation) is exercised.
CYCLE = "Alice saw the White Rabbit, who ran past her; then the Queen shouted: off with heads!"


def _cycle_file(tmp_path, repeats=40):
    path = tmp_path / "cycle.txt"
    path.write_text("\n".join([CYCLE] * repeats), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def alice_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alice")
    cfg = walkthrough_alice.Config(
        path=_cycle_file(tmp),
        cells=("simple", "lstm", "gru"),
        hidden_size=16,
        batch_size=32,
        epochs=2,
        learning_rate=1e-2,
        generate=5,
        progress=False,
        out=tmp / "out",
    )
    return cfg, walkthrough_alice.main(cfg)


def test_alice_runs_every_cell_and_writes_the_run_folder(alice_run):
    cfg, m = alice_run
    assert m["data"]["words"] == 40 * 16 and m["data"]["vocab_size"] == 1 + 15  # <unk> + 15 distinct words
    for kind in cfg.cells:
        epochs = m["cells"][kind]["epochs"]
        assert [r["epoch"] for r in epochs] == [1, 2]
        assert len(epochs[-1]["sample"].split()) == cfg.generate
        assert np.isfinite(epochs[-1]["valid_loss"])
    # The cycle is deterministic given 10 words: the RNN beats the context-free unigram baseline.
    best = min(m["cells"][k]["epochs"][-1]["valid_loss"] for k in cfg.cells)
    assert best < m["data"]["baseline"]["unigram_loss"]
    for name in ("config.json", "vocab.json", "metrics.json", "loss.png", "summary.md"):
        assert (cfg.out / name).stat().st_size > 0
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert set(saved["cells"]) == {"simple", "lstm", "gru"}
    assert "| GRU |" in (cfg.out / "summary.md").read_text()


def test_alice_from_scratch_equals_library_and_reference(alice_run):
    cfg, m = alice_run
    fs = m["from_scratch"]
    assert fs["cell"] == "gru"
    probs_np, probs_lib = np.asarray(fs["probs_numpy"]), np.asarray(fs["probs_rnnjax"])
    assert probs_np.shape == (m["data"]["vocab_size"],)
    np.testing.assert_allclose(probs_np.sum(), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probs_np, probs_lib, rtol=0, atol=TOL_F32)
    assert fs["max_abs_diff"] == pytest.approx(np.max(np.abs(probs_np - probs_lib)))


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_alice_from_scratch_every_cell(kind):
    V, H, T = 11, 6, 10
    cell = walkthrough_alice.make_cell(kind, H)
    params = walkthrough_alice.init_params(jax.random.key(1), cell, V)
    # Non-zero biases and a larger readout, so that no term can hide.
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree_util.tree_unflatten(
        tree, [a + 0.5 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    )
    window = np.random.default_rng(3).integers(0, V, T).astype(np.int32)
    logits = jax.jit(functools.partial(walkthrough_alice.logits_fn, cell))(params, window[None])
    lib = jax.nn.softmax(logits, axis=-1)[0]
    np.testing.assert_allclose(
        walkthrough_alice.from_scratch(kind, params, window), lib, rtol=0, atol=TOL_F32
    )
    # The independent NumPy reference on the same one-hot inputs.
    p = {k: np.asarray(v) for k, v in params.cell._asdict().items() if v is not None}
    _, hs = reference.forward(kind, p, np.eye(V)[window][None])
    logits = reference.readout_logits({"w": np.asarray(params.dense.w), "b": np.asarray(params.dense.b)}, hs)
    ref = np.exp(logits[0, -1] - logits[0, -1].max())
    np.testing.assert_allclose(
        walkthrough_alice.from_scratch(kind, params, window), ref / ref.sum(), rtol=0, atol=1e-12
    )


def test_alice_split_is_a_contiguous_tail_and_vocab_is_from_training():
    words = [f"w{i % 7}" for i in range(90)] + ["late"] * 10  # "late" only in the last 10%
    cfg = walkthrough_alice.Config(seq_len=3, batch_size=4)
    data = walkthrough_alice.prepare(words, cfg)
    assert "late" not in data.vocab and data.vocab.tokens[0] == "<unk>"
    assert len(data.train_y) == 90 - 3 and len(data.valid_y) == 10 - 3
    np.testing.assert_array_equal(data.valid_y, 0)  # every validation target is "late" -> <unk>
    np.testing.assert_array_equal(data.train_x[0], data.vocab.encode(["w0", "w1", "w2"]))
    assert data.seed_window.shape == (3,) and any((data.seed_window == v).all() for v in data.valid_x)


def test_alice_bad_settings_raise(tmp_path):
    short = walkthrough_alice.Config(seq_len=10)
    with pytest.raises(ValueError, match=r"text: the validation split has 2 of 20 words; expected at least"):
        walkthrough_alice.prepare([f"w{i}" for i in range(20)], short)
    with pytest.raises(ValueError, match=r"cells: expected each cell at most once"):
        walkthrough_alice.main(walkthrough_alice.Config(cells=("lstm", "lstm"), out=tmp_path))
    with pytest.raises(ValueError, match=r"hidden_size: expected an int >= 1, got 0"):
        walkthrough_alice.main(walkthrough_alice.Config(hidden_size=0, out=tmp_path))
