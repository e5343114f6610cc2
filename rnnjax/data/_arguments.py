"""Argument checks shared by the `rnnjax.data` modules: one message for each kind of argument, naming the
argument, what was given and what was expected. NumPy only: `rnnjax._checks` has the JAX-side checks, but
`rnnjax.data` must not import jax."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np


def flag(name: str, value) -> bool:
    """`value` if it is a bool (NumPy's included). Anything else (1, "yes", "no", None) raises: a truthy
    "no" must not act as True."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def seed(name: str, value) -> int | None:
    """`value` if it is None or an int >= 0 (what `numpy.random.default_rng` takes as a seed here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be None or an int >= 0, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be None or an int >= 0, got {value!r}")
    return int(value)


def iterable(name: str, value, expected: str):
    """`value` if it can be iterated; else a TypeError saying it must be `expected` (e.g. "a list of str")."""
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    return value


def tagged_json(data, tag: str, writer: str) -> dict:
    """The object in the JSON text `data`, written by `writer` (e.g. "Vocabulary.to_json") with
    `"format": tag`; anything else (not text, invalid JSON, another format) raises naming `data`."""
    if not isinstance(data, str | bytes | bytearray):
        raise TypeError(f"data must be JSON text (a str) written by {writer}, got {type(data).__name__}")
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"data must be JSON text written by {writer}, got invalid JSON: {e}") from None
    if not isinstance(obj, dict) or obj.get("format") != tag:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"data must have format {tag!r}, got {got!r}")
    return obj
