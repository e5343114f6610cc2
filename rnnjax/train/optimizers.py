"""Optimisers by name, with optional gradient clipping: the update rule every trainer uses."""

from __future__ import annotations

import numbers

import optax

__all__ = ["DEFAULT_LEARNING_RATE", "OPTIMIZERS", "make_optimizer"]

# Optimisers selectable by name; each is called with the learning rate.
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}
DEFAULT_LEARNING_RATE = 1e-3


def _check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
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
            lr = _check_positive_float("learning_rate", lr)
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
    return optax.chain(optax.clip_by_global_norm(_check_positive_float("clip_norm", clip_norm)), base)
