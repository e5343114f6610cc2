"""Optimisers by name, with optional gradient clipping: the update rule every trainer uses, and the check
of the numbers it is given (`check_positive`), shared by every training config."""

from __future__ import annotations

import math
import numbers

import numpy as np
import optax

__all__ = ["DEFAULT_LEARNING_RATE", "FLOAT32_MAX", "OPTIMIZERS", "check_positive", "make_optimizer"]

# Optimisers selectable by name; each is called with the learning rate.
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}
DEFAULT_LEARNING_RATE = 1e-3
# The largest float32: training computes in float32, where a larger number (e.g. a learning rate of 1e39)
# is inf, and every update it scales becomes inf or NaN.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_positive(name: str, value, *, allow_none: bool = False) -> float | None:
    """`value` as a float if it is a real number > 0 that float32 holds (finite, at most `FLOAT32_MAX`),
    else a TypeError (not a number) or ValueError naming `name`; None passes with `allow_none`."""
    if value is None and allow_none:
        return None
    expected = f"{'None or ' if allow_none else ''}a positive number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {expected}, got {value!r} ({type(value).__name__})")
    if not value > 0:  # NaN included
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    if not (math.isfinite(value) and value <= FLOAT32_MAX):
        raise ValueError(
            f"{name}: expected {expected} that float32 (the compute dtype) holds, at most "
            f"{FLOAT32_MAX:.4g}, got {value!r}"
        )
    return float(value)


def make_optimizer(
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """The update rule of every trainer: `optax.clip_by_global_norm(clip_norm)` if given, then the optimiser.

    Args:
      optimizer: a name in `OPTIMIZERS` ("adam", "sgd", "rmsprop") or an `optax.GradientTransformation`
        (which then brings its own learning rate).
      learning_rate: for a named optimiser: a positive number or an optax schedule (a callable from
        step to rate, e.g. `optax.cosine_decay_schedule`); None means 1e-3. Must be None for a
        transformation.
      clip_norm: None (no clipping) or the largest global gradient norm passed on (Pascanu et al., 2013).
    Returns:
      An `optax.GradientTransformation`.
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: expected one of {sorted(OPTIMIZERS)} or an optax.GradientTransformation, "
                f"got {optimizer!r}"
            )
        lr = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        if not callable(lr):
            lr = check_positive("learning_rate", lr)
        base = OPTIMIZERS[optimizer](lr)
    elif isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is not None:
            raise ValueError(
                f"learning_rate: expected None with an optax.GradientTransformation (it has its own "
                f"learning rate), got {learning_rate!r}"
            )
        base = optimizer
    else:
        raise TypeError(
            f"optimizer: expected a name in {sorted(OPTIMIZERS)} or an optax.GradientTransformation, "
            f"got {type(optimizer).__name__}"
        )
    if clip_norm is None:
        return base
    return optax.chain(optax.clip_by_global_norm(check_positive("clip_norm", clip_norm)), base)
