"""Argument checks shared by the public functions. Each raises naming the argument, what was given and
what was expected, in one sentence.

Every check reads only Python values and static shapes and dtypes, so under `jit` it runs once, at trace
time, and costs nothing in the compiled program. Array *values* are inspected only when they are
concrete (outside `jit`)."""

from __future__ import annotations

import contextlib
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

PRECISIONS = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")


def check_precision(precision) -> str | None:
    """`precision` if it is None (JAX's default) or a name JAX's `default_matmul_precision` takes."""
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision: expected None or one of {PRECISIONS}, got {precision!r}")
    return precision


def matmul_precision(precision):
    """A context in which every matmul traced gets `precision` (nothing changes for None).

    The precision is written into each traced `dot_general`, so it holds however the program is later
    compiled and whatever the global `jax_default_matmul_precision` says."""
    check_precision(precision)
    return contextlib.nullcontext() if precision is None else jax.default_matmul_precision(precision)


def is_traced(x) -> bool:
    """Whether `x` is an abstract value under a JAX transformation (its values cannot be read)."""
    return isinstance(x, jax.core.Tracer)


def check_bool(name: str, value) -> bool:
    """`value` if it is a bool (NumPy's included); anything else ("no", 0, None) raises a TypeError, since a
    truthy "no" must never act as True."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_int(name: str, value, *, minimum: int = 1, optional: bool = False) -> int | None:
    """`value` as an int >= `minimum` (bools refused); None passes when `optional`."""
    if value is None and optional:
        return None
    expected = f"{'None or ' if optional else ''}an int >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {expected}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def check_scan_unroll(unroll) -> None:
    """`jax.lax.scan`'s `unroll`: steps per loop iteration (an int >= 1), or a bool (True: fully)."""
    if not isinstance(unroll, bool | np.bool_):
        check_int("unroll", unroll)


def check_number(
    name: str, value, *, minimum: float | None = None, positive: bool = False, optional: bool = False
) -> float | None:
    """`value` as a finite real number (bools refused), `>= minimum` (or `> 0` when `positive`); None
    passes when `optional`. NaN and ±inf are refused: they would turn every later result into NaN."""
    if value is None and optional:
        return None
    if positive:
        kind = "a positive number"
    elif minimum == 0:
        kind = "a non-negative number"
    else:
        kind = "a number" if minimum is None else f"a number >= {minimum}"
    expected = f"{'None or ' if optional else ''}{kind} (finite)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {expected}, got {value!r}")
    if not math.isfinite(value) or (positive and not value > 0) or (minimum is not None and value < minimum):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def check_callable(name: str, value, expected: str, *, optional: bool = False):
    """`value` if it is callable (or None when `optional`); `expected` describes its signature."""
    if value is None and optional:
        return None
    if not callable(value):
        raise TypeError(f"{name}: expected {'None or ' if optional else ''}{expected}, got {value!r}")
    return value


def check_float_dtype(name: str, dtype, *, optional: bool = False):
    """`dtype` as a floating-point NumPy dtype (None passes when `optional`)."""
    if dtype is None and optional:
        return None
    try:
        resolved = jnp.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point dtype such as jnp.float32, got {dtype!r}")
    return resolved


def check_key(name: str, key) -> None:
    """One JAX PRNG key: a typed key of shape () (`jax.random.key`) or a legacy uint32 key of shape (2,)
    (`jax.random.PRNGKey`); traced keys (under `vmap`, `jit`) pass on their static shape and dtype."""
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return
        if key.dtype == np.uint32 and key.shape == (2,):  # legacy jax.random.PRNGKey
            return
        got = f"an array of dtype {key.dtype} and shape {key.shape}"
    else:
        got = repr(key)
    raise TypeError(f"{name}: expected one JAX PRNG key, e.g. jax.random.key(0), got {got}")


def check_float_array(name: str, value, what: str = "array") -> jax.Array:
    """`value` as a floating-point JAX array; anything else raises naming its dtype or type."""
    try:
        array = jnp.asarray(value)
    except TypeError:
        raise TypeError(f"{name}: expected a floating-point {what}, got {type(value).__name__}") from None
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point {what}, got dtype {array.dtype}")
    return array


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


def check_lengths(lengths, batch_shape: tuple[int, ...], T: int, of: str = "xs") -> jax.Array:
    """Valid lengths <int>[*batch] of right-padded sequences of T steps, each in [1, T] when concrete;
    `of` names the array whose batch shape they must have."""
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"lengths: expected an integer array, got dtype {lengths.dtype}")
    if lengths.shape != tuple(batch_shape):
        raise ValueError(
            f"lengths: expected shape {tuple(batch_shape)} (the batch shape of {of}), got {lengths.shape}"
        )
    if not is_traced(lengths):
        values = np.asarray(lengths)
        bad = (values < 1) | (values > T)
        if bad.any():
            raise ValueError(
                f"lengths: expected every length in [1, T={T}], got {values[bad].tolist()} "
                f"at batch index {np.argwhere(bad).tolist()}"
            )
    return lengths
