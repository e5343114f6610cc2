"""What every reference cell shares: float64 helpers and ``Kind``, the record of one cell kind's facts.

Each cell module (``classic``, ``long_memory``) describes its kinds with ``Kind`` records; the one table
keyed by kind is ``unroll.KINDS``. The generic time loop only ever asks a ``Kind``.

Step contract, for x (B, I) and carry fields (B, H)::

    step(p, x, carry, opts) -> (new_carry, y, cache)                 # y (B, H), the step's output
    step_back(p, cache, d_new, dy, opts) -> (d_params, dx, d_prev)

``step_back`` maps the gradients w.r.t. the new carry (a dict) and the output y to gradients w.r.t. the
(expanded, see ``Kind.expand``) parameters (this step's contribution), the input and the previous carry.
``opts`` holds exactly the keyword options of ``Kind.options``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

# The activations the classic kinds accept (those that ignore it accept them too, as before).
CLASSIC_ACTIVATIONS = ("tanh", "relu", "linear", "sigmoid")


def f64(a):
    return np.asarray(a, dtype=np.float64)


def sigmoid(x):
    # Equal to 1 / (1 + exp(-x)), but cannot overflow for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def split(a, n):
    """Split the fused gate axis (the last one) into ``n`` equal blocks."""
    return np.split(a, n, axis=-1)


class SizeFrom(NamedTuple):
    """Where the hidden size H is read: ``params[key].shape[axis] == blocks * H``."""

    key: str
    axis: int
    blocks: int
    shape: str  # the expected shape in words, for the error message, e.g. "(I, 2H)"


class Kind(NamedTuple):
    """The facts of one cell kind that the generic loop, validation and loss need."""

    carry: tuple[str, ...]  # carry keys, each (B, H); "h" first
    shapes: Callable[[int, int, dict], dict]  # (n_in, n_hid, opts) -> {param key: shape}
    size: SizeFrom  # where H is read from the params
    step: Callable  # see the module docstring
    step_back: Callable
    options: tuple[str, ...] = ()  # the keyword options it reads: "activation", "reset_after", "normalize"
    shape_options: tuple[str, ...] = ()  # those of ``options`` that change the param keys or shapes
    activations: tuple[str, ...] = CLASSIC_ACTIVATIONS  # accepted values; the first is the default
    # The step sees derived ("expanded") parameters, e.g. W = expm(A - A^T): expand(params, opts) -> p,
    # and expand_back(params, d_p, opts) -> d_params maps their gradients back. None: p is params.
    expand: Callable | None = None
    expand_back: Callable | None = None
