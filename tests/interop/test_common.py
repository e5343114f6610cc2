"""rnnjax.interop's shared pieces: the package imports without torch and keras, and the helpers every
library's conversion uses (cells and params built from the registry, GRU bias sums, kind inference from
gate counts) agree with the cells' own `init`, with the sums written out by hand and with each converter's
table of supported kinds.
"""

import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from interop.comparisons import H, I, assert_trees_equal, random_params, uniform

from rnnjax import cells
from rnnjax.interop import _common
from rnnjax.interop import flax as flax_interop
from rnnjax.interop import keras as keras_interop
from rnnjax.interop import torch as torch_interop

CONVERTERS = (torch_interop, keras_interop, flax_interop)
CLASSIC = {"simple": "spec of simple", "lstm": "spec of lstm", "gru": "spec of gru"}  # a converter's table

# Every cell form a conversion can produce: (kind, activation, reset_after).
FORMS = [
    ("simple", "tanh", True),
    ("simple", "relu", True),
    ("simple", "linear", True),
    ("lstm", "tanh", True),
    ("gru", "tanh", True),
    ("gru", "tanh", False),
]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: "-".join(map(str, f)))
def test_make_cell_and_params_match_the_cells_own_init(form):
    kind, activation, reset_after = form
    cell = _common.make_cell(kind, H, np.float32, activation=activation, reset_after=reset_after)
    assert (cell.kind, cell.hidden_size, cell.activation) == (kind, H, activation)
    assert cell.reset_after == (reset_after if kind == "gru" else None)
    want = cell.init(jax.random.key(0), I)
    arrays = [np.asarray(a) for a in want[:3]]
    b_hn = getattr(want, "b_hn", None)
    got = _common.make_params(kind, *arrays, None if b_hn is None else np.asarray(b_hn))
    assert_trees_equal(got, want)
    assert _common.check_cell_params("cell", "params", cell, got, CLASSIC, "test") == (I, H, CLASSIC[kind])


@pytest.mark.parametrize(
    "converter, kind",
    [(m, kind) for m in CONVERTERS for kind in m.SUPPORTED],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_gate_blocks_match_the_kernel_width(converter, kind):
    G = len(_common.gate_names(kind))
    w_hh = cells.make(kind, H).init(jax.random.key(1), I).w_hh
    assert w_hh.shape == (H, G * H)
    assert _common.kind_with_blocks(G, converter.SUPPORTED) == kind


def test_no_supported_kind_has_five_gate_blocks():
    assert _common.kind_with_blocks(5, CLASSIC) is None


def test_kind_inference_considers_only_the_kinds_given(monkeypatch):
    """A registry kind with the LSTM's 4 gate blocks, listed first, is never inferred: the converters pass
    their own kinds (the new kinds such as minLSTM share block counts with the classic ones)."""
    fake = lambda hidden_size, **options: cells.lstm(hidden_size, **options)._replace(kind="fake4")  # noqa: E731
    monkeypatch.setattr(cells, "KINDS", {"fake4": fake, **cells.KINDS})
    assert _common.kind_with_blocks(4, cells.KINDS) == "fake4"  # what scanning the registry would give
    assert _common.kind_with_blocks(4, CLASSIC) == "lstm"
    assert _common.kind_with_blocks(4, ("simple", "gru")) is None
    rng = np.random.default_rng(20)
    state = {"weight_ih_l0": uniform(rng, (4 * H, I)), "weight_hh_l0": uniform(rng, (4 * H, H))}
    (cell,), _ = torch_interop.from_torch(state)
    assert cell.kind == "lstm"


def test_supported_errors_name_the_argument_kind_and_converter():
    assert _common.supported("cell", "gru", CLASSIC, "test") == "spec of gru"
    want = "cell: test converts kinds ('simple', 'lstm', 'gru'), got kind 'lru'"
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        _common.supported("cell", "lru", CLASSIC, "test")
    with pytest.raises(ValueError, match=re.escape("kind: test converts kinds ('simple',), got kind None")):
        _common.supported("kind", None, {"simple": 0}, "test")


def test_gru_bias_sums_and_write_back():
    rng = np.random.default_rng(18)
    b_input, b_recurrent = uniform(rng, (3 * H,)), uniform(rng, (3 * H,))
    b, b_hn = _common.sum_gru_biases(b_input, b_recurrent)
    np.testing.assert_array_equal(b[: 2 * H], b_input[: 2 * H] + b_recurrent[: 2 * H])
    np.testing.assert_array_equal(b[2 * H :], b_input[2 * H :])
    np.testing.assert_array_equal(b_hn, b_recurrent[2 * H :])
    written = _common.gru_recurrent_bias(b_hn, np.float32)
    np.testing.assert_array_equal(written, np.concatenate([np.zeros(2 * H, np.float32), b_hn]))
    again = _common.sum_gru_biases(b, written)  # writing back and reading again is bit-exact
    np.testing.assert_array_equal(again[0], b)
    np.testing.assert_array_equal(again[1], b_hn)


def test_check_cell_params_errors():
    rng = np.random.default_rng(19)
    with_b_hn, without_b_hn = random_params("gru", I, rng), random_params("gru", I, rng, reset_after=False)

    def check(cell, params):
        return _common.check_cell_params("cell", "params", cell, params, CLASSIC, "test")

    with pytest.raises(TypeError, match="cell: expected an rnnjax.cells.Cell, got str"):
        check("gru", with_b_hn)
    with pytest.raises(
        ValueError, match=re.escape("cell: test converts kinds ('simple', 'lstm', 'gru'), got kind 'mgu'")
    ):
        check(cells.gru(H)._replace(kind="mgu"), with_b_hn)
    with pytest.raises(ValueError, match="cell: unknown cell kind 'mgu'"):  # a table kind the registry lacks
        _common.check_cell_params(
            "cell", "params", cells.gru(H)._replace(kind="mgu"), with_b_hn, {"mgu": 0}, "test"
        )
    with pytest.raises(ValueError, match=r"params\.b_hn: a reset_after=True GRU needs b_hn of shape \(3,\)"):
        check(cells.gru(H), without_b_hn)
    with pytest.raises(ValueError, match=r"params\.b_hn: a reset_after=False GRU has no b_hn"):
        check(cells.gru(H, reset_after=False), with_b_hn)
    with pytest.raises(ValueError, match=r"params\.b: expected shape \(9,\)"):
        check(cells.gru(H), with_b_hn._replace(b=with_b_hn.b[:-1]))


def test_module_imports_without_torch_and_keras():
    """torch and keras are optional: the package imports and the NumPy-only paths run without them."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["keras"] = None
        import numpy as np
        from rnnjax import interop
        state = {"weight_ih_l0": np.ones((6, 2), np.float32), "weight_hh_l0": np.ones((6, 2), np.float32)}
        cells, params = interop.from_torch(state)
        assert cells[0].kind == "gru"
        cell, p = interop.from_keras("SimpleRNN", [np.ones((2, 2), np.float32), np.ones((2, 2), np.float32)],
                                     use_bias=False)
        assert len(interop.to_keras(cell, p)) == 3
        try:
            interop.from_torch(object())
        except TypeError as e:
            assert "torch is not installed" in str(e), e
        else:
            raise AssertionError("expected a TypeError")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
