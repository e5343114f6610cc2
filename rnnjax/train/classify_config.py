"""The configuration of a classification run (`rnnjax.train.classify`): one frozen dataclass with its
defaults, the check of its values, and the cells it trains.

    cfg = ClassifyConfig(csv=Path("reviews.csv"), text_column="review", label_column="sentiment")
    check_config(cfg)           # ValueError naming the first field out of range
    cells_for(cfg)              # ("lstm",) on a CSV, every kind on the synthetic set, or cfg.cell

The command line (`experiments.classify`) parses this same dataclass, so its `--help` shows these defaults
and the comments beside the fields.
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import Literal

from rnnjax import cells
from rnnjax.data import labelled
from rnnjax.train import parallel
from rnnjax.train.optimizers import OPTIMIZERS, check_positive

__all__ = ["RESUMABLE_FIELDS", "ClassifyConfig", "cells_for", "check_config", "config_from_json"]

# Config fields that may change when a run is resumed (they do not change what was already trained).
RESUMABLE_FIELDS = ("epochs", "steps", "log_every", "save_every", "padding_factors")
# Memory of one word of a synthetic text while the set is built (Python strings, lists and token ids).
SYNTHETIC_BYTES_PER_WORD = 200


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
    """Data (a CSV file or the synthetic set), model and training of a classification run."""

    csv: Path | None = None  # labelled CSV with a header row; None: the synthetic sentiment set
    text_column: str = "text"  # CSV column with each example's text
    label_column: str = "label"  # CSV column with each example's class (any strings)
    encoding: str = "utf-8"  # codec of the CSV file
    decode_errors: Literal["strict", "replace"] = "strict"  # "replace": undecodable bytes become U+FFFD
    level: Literal["word", "char"] = "word"  # tokens: words and punctuation marks, or characters
    lowercase: bool = True  # lowercase texts before tokenizing ("Great" = "great"); --no-lowercase keeps case
    min_count: int = 1  # keep tokens seen at least this often in the training rows; the rest are <unk>
    max_vocab: int | None = 20000  # vocabulary size cap, <unk> included
    max_len: int | None = None  # truncate longer sequences; None: pad to the longest
    truncate: Literal["pre", "post"] = "pre"  # drop the start ("pre") or the end ("post") of long ones
    valid_fraction: float = 0.1  # seeded random share of the examples for validation (every epoch)
    test_fraction: float = 0.1  # seeded random share held out for the final test (predictions.csv)
    synthetic_n: int = 12000  # synthetic set (without --csv): number of texts
    synthetic_seq_len: int = 100  # synthetic set: longest text, in words
    synthetic_min_len: int = 10  # synthetic set: shortest text (short ones let gradients reach the word)
    synthetic_signal: tuple[int, int] = (0, 5)  # synthetic set: sentiment word position drawn from [lo, hi)
    cell: tuple[str, ...] | None = None  # cells (rnnjax.cells.KINDS); None: all (synthetic), lstm (CSV)
    pooling: Literal["last", "mean"] = "last"  # classify from the last valid step or the mean over them
    hidden_size: int = 64
    embed_size: int | None = 32  # None: one-hot inputs
    num_layers: int = 1
    bidirectional: bool = False  # each layer reads the sequence both ways (outputs concatenated)
    dropout: float = 0.0  # between layers and before the readout, training only
    epochs: int = 5
    steps: int | None = None  # if set, train exactly this many steps instead of `epochs` epochs
    batch_size: int = 64
    optimizer: str = "adam"  # one of rnnjax.train.OPTIMIZERS
    learning_rate: float = 3e-3
    clip_norm: float | None = 1.0  # clip the gradient's global norm; None: no clipping
    seed: int = 0  # fixes the synthetic set, the split, the initial params, dropout and the batch order
    padding_factors: tuple[int, ...] = (2, 4)  # padding check: evaluate at these multiples of the length
    log_every: int = 10  # steps per "train" record of metrics.jsonl
    save_every: int | None = None  # steps between checkpoints (with a run folder); None: only at the end


def _check_int(name: str, value, minimum: int = 1, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        want = f"an int >= {minimum}"
        raise ValueError(f"{name}: expected {'None or ' + want if allow_none else want}, got {value!r}")


def check_config(cfg: ClassifyConfig) -> None:
    """Raise ValueError naming the first field of `cfg` that is out of range."""
    if not isinstance(cfg, ClassifyConfig):
        raise TypeError(f"cfg: expected a ClassifyConfig, got {type(cfg).__name__}")
    for name in ("min_count", "synthetic_n", "synthetic_seq_len", "synthetic_min_len", "hidden_size"):
        _check_int(name, getattr(cfg, name))
    for name in ("num_layers", "epochs", "batch_size", "log_every"):
        _check_int(name, getattr(cfg, name))
    for name in ("max_vocab", "max_len", "steps", "embed_size", "save_every"):
        _check_int(name, getattr(cfg, name), allow_none=True)
    _check_int("seed", cfg.seed, 0)
    choices = dict(
        decode_errors=("strict", "replace"),
        level=labelled.LEVELS,
        truncate=("pre", "post"),
        pooling=("last", "mean"),
        optimizer=tuple(OPTIMIZERS),
    )
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name}: expected one of {allowed}, got {getattr(cfg, name)!r}")
    kinds = tuple(cells.KINDS)
    if cfg.cell is not None:
        if isinstance(cfg.cell, str) or not cfg.cell:
            raise ValueError(f"cell: expected a non-empty tuple of names from {kinds}, got {cfg.cell!r}")
        for c in cfg.cell:
            if c not in kinds:
                raise ValueError(f"cell: expected names from {kinds}, got {c!r}")
        if len(set(cfg.cell)) != len(cfg.cell):
            raise ValueError(f"cell: expected each cell once, got {cfg.cell!r}")
    for name in ("valid_fraction", "test_fraction"):
        if not 0.0 < getattr(cfg, name) < 1.0:
            raise ValueError(f"{name}: expected a number in (0, 1), got {getattr(cfg, name)!r}")
    if cfg.valid_fraction + cfg.test_fraction >= 1.0:
        raise ValueError(
            f"valid_fraction, test_fraction: expected a sum below 1 (rows left to train on), got "
            f"{cfg.valid_fraction!r} + {cfg.test_fraction!r}"
        )
    if not (_is_real(cfg.dropout) and 0.0 <= cfg.dropout < 1.0):
        raise ValueError(f"dropout: expected a rate in [0, 1), got {cfg.dropout!r}")
    check_positive("learning_rate", cfg.learning_rate)
    check_positive("clip_norm", cfg.clip_norm, allow_none=True)
    for name in ("lowercase", "bidirectional"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name}: expected True or False, got {getattr(cfg, name)!r}")
    for f in cfg.padding_factors:
        if isinstance(f, bool) or not isinstance(f, int) or f < 2:
            raise ValueError(f"padding_factors: expected ints >= 2, got {cfg.padding_factors!r}")
    _check_synthetic(cfg)
    for cell in cells_for(cfg):
        parallel.check_recurrent_size(
            "hidden_size",
            cfg.hidden_size,
            gates=len(cells.make(cell, 1).gates),
            input_size=cfg.embed_size or 0,  # one-hot inputs: the vocabulary is not known yet
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            directions=2 if cfg.bidirectional else 1,
        )


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_synthetic(cfg: ClassifyConfig) -> None:
    """The synthetic set's settings, named as the flags (used only without a CSV)."""
    signal = cfg.synthetic_signal
    if not (
        isinstance(signal, tuple | list)
        and len(signal) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in signal)
        and 0 <= signal[0] < signal[1]
    ):
        raise ValueError(f"synthetic_signal: expected two ints lo, hi with 0 <= lo < hi, got {signal!r}")
    if not signal[1] <= cfg.synthetic_min_len <= cfg.synthetic_seq_len:
        raise ValueError(
            f"synthetic_min_len: expected an int in [synthetic_signal hi = {signal[1]}, synthetic_seq_len = "
            f"{cfg.synthetic_seq_len}] (every text holds the sentiment word), got {cfg.synthetic_min_len!r}"
        )
    if cfg.csv is None:
        if cfg.synthetic_n < 3:  # (an int >= 1: checked above)
            raise ValueError(
                f"synthetic_n: expected an int >= 3 (an example each to train, validate and test on), got "
                f"{cfg.synthetic_n!r}"
            )
        parallel.check_memory(
            "synthetic_n",
            cfg.synthetic_n,
            SYNTHETIC_BYTES_PER_WORD * cfg.synthetic_n * cfg.synthetic_seq_len,
            f"{cfg.synthetic_n} texts of up to {cfg.synthetic_seq_len} words",
        )


def cells_for(cfg: ClassifyConfig) -> tuple[str, ...]:
    """The cells to train: `cfg.cell`, or every kind on the synthetic set and the LSTM on a CSV."""
    if cfg.cell is not None:
        return tuple(cfg.cell)
    return ("lstm",) if cfg.csv is not None else ("lstm", "gru", "simple")


def config_from_json(saved: dict) -> ClassifyConfig:
    """The `ClassifyConfig` of its JSON form (`rnnjax.results.to_jsonable`); unknown keys are ignored."""
    names = {f.name for f in dataclasses.fields(ClassifyConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names}
    if values.get("csv") is not None:
        values["csv"] = Path(values["csv"])
    return ClassifyConfig(**values)
