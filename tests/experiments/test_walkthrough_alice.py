"""The word-level Alice walkthrough end to end on a small text: every cell trains and the run folder is
written, and the prediction recomputed by hand in NumPy equals the library's (and the NumPy reference
package's) for every cell."""

import json

import jax
import numpy as np
import pytest

from experiments import walkthrough_alice
from rnnjax import reference

# The walkthrough computes in float32 and recomputes in float64 from the same float32 weights: the two
# agree to float32 rounding of O(1) numbers.
TOL_F32 = 1e-6

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
        run="t",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        m = walkthrough_alice.main(cfg)
    return cfg, m, tmp / "results" / "walkthrough_alice" / "t"


def test_alice_runs_every_cell_and_writes_the_run_folder(alice_run):
    cfg, m, out = alice_run
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
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["cells"]) == {"simple", "lstm", "gru"}
    assert "| GRU |" in (out / "summary.md").read_text()


def test_alice_refuses_to_overwrite_a_trained_run(alice_run, monkeypatch):
    cfg, _, out = alice_run
    monkeypatch.chdir(out.parents[2])
    with pytest.raises(FileExistsError, match=r"run: results/walkthrough_alice/t holds a trained run"):
        walkthrough_alice.main(cfg)


def test_alice_epoch_records_are_the_training_loops_log(alice_run):
    # Each epoch's record comes from the loop's metrics.jsonl: the training means over the epoch's steps
    # and the evaluation after it.
    cfg, m, out = alice_run
    for kind in cfg.cells:
        records = [json.loads(line) for line in (out / kind / "metrics.jsonl").read_text().splitlines()]
        per_epoch = m["cells"][kind]["steps_per_epoch"]
        for r in m["cells"][kind]["epochs"]:
            step = r["epoch"] * per_epoch
            train = next(x for x in records if x["split"] == "train" and x["step"] == step)
            valid = next(x for x in records if x["split"] == "valid" and x["step"] == step)
            assert (r["train_loss"], r["train_accuracy"]) == (train["loss"], train["accuracy"])
            assert (r["valid_loss"], r["valid_accuracy"]) == (valid["loss"], valid["accuracy"])


def test_alice_from_scratch_equals_library_and_reference(alice_run):
    cfg, m, _ = alice_run
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
    model = walkthrough_alice.make_model(kind, H, V)
    params = walkthrough_alice.init_params(jax.random.key(1), model)
    # Non-zero biases and a larger readout, so that no term can hide.
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree_util.tree_unflatten(
        tree, [a + 0.5 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    )
    window = np.random.default_rng(3).integers(0, V, T).astype(np.int32)
    logits, _ = jax.jit(model.apply)({"params": params}, window[None])
    lib = jax.nn.softmax(logits, axis=-1)[0]
    np.testing.assert_allclose(
        walkthrough_alice.from_scratch(kind, params, window), lib, rtol=0, atol=TOL_F32
    )
    # The independent NumPy reference on the same one-hot inputs.
    p = {k: np.asarray(v) for k, v in params["rnn"]["layer_0"]._asdict().items() if v is not None}
    _, hs = reference.forward(kind, p, np.eye(V)[window][None])
    head = params["readout"]
    logits = reference.readout_logits({"w": np.asarray(head.w), "b": np.asarray(head.b)}, hs)
    ref = np.exp(logits[0, -1] - logits[0, -1].max())
    np.testing.assert_allclose(
        walkthrough_alice.from_scratch(kind, params, window), ref / ref.sum(), rtol=0, atol=1e-12
    )


def test_alice_params_have_the_model_form():
    # The Keras initialisation is drawn by hand; its tree and shapes are those of the model's own init
    # (shapes only: with float64 enabled, as in these tests, the model's head follows the float64 one-hot).
    model = walkthrough_alice.make_model("gru", 6, 11)
    ours = walkthrough_alice.init_params(jax.random.key(0), model)
    tokens = np.zeros((2, 4), np.int32)
    theirs = jax.eval_shape(lambda k: model.init(k, tokens)["params"], jax.random.key(0))
    shape = lambda tree: jax.tree_util.tree_map(np.shape, tree)  # noqa: E731
    assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(theirs)
    assert shape(ours) == shape(theirs)


def test_alice_split_is_a_contiguous_tail_and_vocab_is_from_training():
    words = [f"w{i % 7}" for i in range(90)] + ["late"] * 10  # "late" only in the last 10%
    cfg = walkthrough_alice.Config(seq_len=3, batch_size=4)
    data = walkthrough_alice.prepare(words, cfg)
    assert "late" not in data.vocab and data.vocab.tokens[0] == "<unk>"
    assert len(data.train_y) == 90 - 3 and len(data.valid_y) == 10 - 3
    np.testing.assert_array_equal(data.valid_y, 0)  # every validation target is "late" -> <unk>
    np.testing.assert_array_equal(data.train_x[0], data.vocab.encode(["w0", "w1", "w2"]))
    assert data.seed_window.shape == (3,) and any((data.seed_window == v).all() for v in data.valid_x)


def test_alice_bad_settings_raise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    short = walkthrough_alice.Config(seq_len=10)
    with pytest.raises(ValueError, match=r"text: the validation split has 2 of 20 words; expected at least"):
        walkthrough_alice.prepare([f"w{i}" for i in range(20)], short)
    with pytest.raises(ValueError, match=r"cells: expected each cell at most once"):
        walkthrough_alice.main(walkthrough_alice.Config(cells=("lstm", "lstm"), run="t"))
    with pytest.raises(ValueError, match=r"hidden_size: expected an int >= 1, got 0"):
        walkthrough_alice.main(walkthrough_alice.Config(hidden_size=0, run="t"))
    assert not (tmp_path / "results").exists()  # refused before anything is written


# One-line errors of this command: its rows in tests/experiments/test_command_bad_inputs.py.
