"""The one-step walkthrough: the step worked by hand, by rnnjax and by the NumPy reference agree, on the
defaults and on user matrices, and mis-shaped matrices are refused by name."""

import json

import numpy as np
import pytest

from experiments import walkthrough_step
from rnnjax.command import cli as _cli

# The walkthrough computes in float32 and recomputes in float64 from the same float32 weights: the two
# agree to float32 rounding of O(1) numbers.
TOL_F32 = 1e-6


def test_step_defaults_three_ways_agree(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    m = walkthrough_step.main(walkthrough_step.Config(run="d"))
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
    saved = tmp_path / "results" / "walkthrough_step" / "d" / "metrics.json"
    assert json.loads(saved.read_text())["agree"] is True


def test_step_user_matrices_from_a_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    I, H, V = 4, 3, 5
    given = {
        "x": rng.normal(size=I), "h": rng.normal(size=H), "w_ih": rng.normal(size=(I, H)),
        "w_hh": rng.normal(size=(H, H)), "b": rng.normal(size=H), "w_o": rng.normal(size=(H, V)),
        "b_o": rng.normal(size=V),
    }  # fmt: skip
    path = tmp_path / "step.json"
    path.write_text(json.dumps({k: v.tolist() for k, v in given.items()}))
    monkeypatch.chdir(tmp_path)
    m = walkthrough_step.main(walkthrough_step.Config(matrices=str(path), run="u"))
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
def test_step_bad_matrices_raise_clear_errors(tmp_path, monkeypatch, matrices, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        walkthrough_step.main(walkthrough_step.Config(matrices=matrices, run="bad"))
    assert not (tmp_path / "results").exists()  # checked before anything is written


def test_step_cli_flags_write_named_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _cli.run(walkthrough_step.Config, walkthrough_step.main, ["--quick", "--no-progress", "--run", "x"])
    run = tmp_path / "results" / "walkthrough_step" / "x"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["quick"] is True and cfg["progress"] is False and cfg["run"] == "x"
    assert json.loads((run / "metrics.json").read_text())["agree"] is True
    assert "All three agree" in capsys.readouterr().out


# One-line errors of this command: its rows in tests/experiments/test_command_bad_inputs.py.
