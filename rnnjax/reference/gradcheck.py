"""Gradient-checking utilities: central finite differences and a norm-wise relative error."""

from __future__ import annotations

import numpy as np

from ._float64 import f64


def _tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_map(fn, v) for v in tree)
    return fn(tree)


def numerical_grad(f, arrays, eps=1e-6):
    """Central finite-difference gradient of a scalar function.

    Args:
      f: callable taking a structure like ``arrays`` and returning a scalar.
      arrays: array, or (possibly nested) dict / list / tuple of arrays.
      eps: perturbation size (absolute).

    Returns:
      The same structure, each leaf a float64 array of df/d(leaf),
      (f(a + eps) - f(a - eps)) / (2 eps) per element. ``f`` is evaluated on
      float64 copies, so the caller's arrays are never modified.
    """
    work = _tree_map(lambda a: np.array(a, dtype=np.float64), arrays)

    def leaf_grad(a):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            orig = a[idx]
            a[idx] = orig + eps
            f_plus = float(f(work))
            a[idx] = orig - eps
            f_minus = float(f(work))
            a[idx] = orig
            g[idx] = (f_plus - f_minus) / (2.0 * eps)
        return g

    return _tree_map(leaf_grad, work)


def _leaf_pairs(a, b, path):
    if isinstance(b, dict):
        if not isinstance(a, dict) or set(a) != set(b):
            raise ValueError(f"structures differ at {path or 'root'}")
        for k in b:
            yield from _leaf_pairs(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        if not isinstance(a, (list, tuple)) or len(a) != len(b):
            raise ValueError(f"structures differ at {path or 'root'}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _leaf_pairs(x, y, f"{path}[{i}]")
    else:
        yield path, a, b


def max_relative_error(a, b):
    """Largest norm-wise relative error between two matching structures.

    Args:
      a: array, or (possibly nested) dict / list / tuple of arrays.
      b: the reference, with the same structure and leaf shapes.

    Returns:
      max over leaves of max|a - b| / max(max|b|, tiny), a float (0.0 for
      empty structures).
    """
    tiny = np.finfo(np.float64).tiny
    worst = 0.0
    for path, x, y in _leaf_pairs(a, b, ""):
        x, y = f64(x), f64(y)
        if x.shape != y.shape:
            raise ValueError(f"shapes differ at {path or 'root'}: {x.shape} vs {y.shape}")
        if y.size == 0:
            continue
        err = float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), tiny))
        if np.isnan(err):
            return float("nan")
        worst = max(worst, err)
    return worst
