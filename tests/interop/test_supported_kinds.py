"""Each converter's table of supported kinds: a cell of any other kind (the LRU, say) is refused by every
direction that takes an rnnjax Cell with one message naming the argument, the kind given and the kinds
that converter supports, before any library is imported. No torch, keras or flax is needed.
"""

import re

import numpy as np
import pytest
from interop.comparisons import B, H, I, T, random_params

from rnnjax import cells, interop
from rnnjax.interop import flax as flax_interop
from rnnjax.interop import keras as keras_interop
from rnnjax.interop import torch as torch_interop
from rnnjax.unrolling import BidirectionalParams

CLASSIC = ("simple", "lstm", "gru")


def _unsupported():
    """An LSTM cell and params relabelled as a kind no converter has (the kind need not exist)."""
    return cells.lstm(H)._replace(kind="lru"), random_params("lstm", I, np.random.default_rng(21))


def _refusal(argument: str, module, kind: str = "lru") -> str:
    return "^" + re.escape(f"{argument}: {module.__name__} converts kinds {CLASSIC}, got kind {kind!r}") + "$"


@pytest.mark.parametrize("module", [torch_interop, keras_interop, flax_interop], ids=lambda m: m.__name__)
def test_tables_list_the_classic_registry_kinds(module):
    assert tuple(module.SUPPORTED) == CLASSIC
    assert set(module.SUPPORTED) <= set(cells.KINDS)


CALLS = [
    ("to_torch", "cells", torch_interop, lambda c, p: interop.to_torch(c, p)),
    ("to_torch stack", "cells", torch_interop, lambda c, p: interop.to_torch((c, c), (p, p))),
    (
        "to_torch bidirectional",
        "cells",
        torch_interop,
        lambda c, p: interop.to_torch(c, BidirectionalParams(p, p)),
    ),
    (
        "unroll_converted",
        "cells",
        torch_interop,
        lambda c, p: interop.unroll_converted(c, p, np.zeros((T, B, I), np.float32)),
    ),
    ("to_keras", "cell", keras_interop, lambda c, p: interop.to_keras(c, p)),
    ("to_flax", "cell", flax_interop, lambda c, p: interop.to_flax(c, p)),
]


@pytest.mark.parametrize("case", CALLS, ids=lambda c: c[0])
def test_a_cell_of_an_unsupported_kind_is_refused(case):
    _, argument, module, call = case
    cell, params = _unsupported()
    with pytest.raises(ValueError, match=_refusal(argument, module)):
        call(cell, params)


@pytest.mark.parametrize("kind", ["lru", "minlstm", "LRU", 3])
def test_from_torch_refuses_an_unsupported_kind_argument(kind):
    rng = np.random.default_rng(22)
    state = {"weight_ih_l0": rng.standard_normal((4 * H, I)), "weight_hh_l0": rng.standard_normal((4 * H, H))}
    with pytest.raises(ValueError, match=_refusal("kind", torch_interop, kind)):
        interop.from_torch(state, kind=kind)


def test_from_torch_infers_only_supported_kinds():
    """2 gate blocks (minGRU's count) is no torch layer: refused, naming the block counts torch has."""
    rng = np.random.default_rng(23)
    state = {"weight_ih_l0": rng.standard_normal((2 * H, I)), "weight_hh_l0": rng.standard_normal((2 * H, H))}
    want = "has 2 gate blocks of H=3; expected 1 (nn.RNN), 3 (nn.GRU) or 4 (nn.LSTM)"
    with pytest.raises(ValueError, match=re.escape(want)):
        interop.from_torch(state)
