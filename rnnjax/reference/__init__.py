"""Independent NumPy reference implementation of the rnnjax recurrent cells.

Explicit Python loops over time in float64, with backpropagation through time
derived and written out by hand (no autodiff), used as ground truth for tests.
It never imports jax nor any other part of rnnjax.

Conventions: ``xs`` is batch-major ``(B, T, I)``; kernels are ``(in, out)``
with gates fused along the last axis (LSTM: i, f, g, o; GRU: r, z, n); carries
are dicts of ``(B, H)`` arrays (``{"h"}``, plus ``"c"`` for the LSTM and
``"h_im"`` for the LRU); variable-length batches are right-padded, and a padded
step leaves the carry unchanged and outputs zeros.

Layout: ``classic`` (simple, lstm, gru) and ``long_memory`` (orthogonal, lru,
mingru, minlstm) hold the cells, each step with its hand-derived backward;
``unroll`` holds the one table of kinds, the masked loop, BPTT and the loss;
``gradcheck`` the finite-difference utilities.
"""

from .gradcheck import max_relative_error, numerical_grad
from .unroll import backward, forward, loss, loss_and_grads, readout_logits

__all__ = [
    "backward",
    "forward",
    "loss",
    "loss_and_grads",
    "max_relative_error",
    "numerical_grad",
    "readout_logits",
]
