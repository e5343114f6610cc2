"""Input checks shared by the public functions: integer index arrays whose values can be inspected
whenever they are concrete (outside `jit`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_traced(x) -> bool:
    """Whether `x` is an abstract value under a JAX transformation (its values cannot be read)."""
    return isinstance(x, jax.core.Tracer)


def check_indices(name: str, values, upper: int, what: str) -> jax.Array:
    """`values` as an integer array; when concrete, every entry must lie in [0, upper).

    Raises TypeError for a non-integer dtype and ValueError for out-of-range entries, naming `name`,
    the range expected and the range given. `what` describes the entries ("class indices", "token ids").
    """
    values = jnp.asarray(values)
    if not jnp.issubdtype(values.dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer {what}, got dtype {values.dtype}")
    if not is_traced(values):
        v = np.asarray(values)
        if v.size and (v.min() < 0 or v.max() >= upper):
            raise ValueError(f"{name}: expected {what} in [0, {upper}), got values in [{v.min()}, {v.max()}]")
    return values
