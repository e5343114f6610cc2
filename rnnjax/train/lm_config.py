"""The configuration of a language-model run (`rnnjax.train.lm`): one frozen dataclass, its defaults, the
defaults that depend on the token level, and the learning-rate schedule and optimiser it describes.

    config = LMConfig.for_level("word", steps=1200)   # word-level defaults, one field changed
    config = LMConfig(hidden_size=512)                # char-level defaults (the field defaults)

The command line (`experiments.text_generation train`) parses this same dataclass, so its `--help` shows
these defaults and the comments beside the fields.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Literal

import numpy as np
import optax

from rnnjax import cells
from rnnjax.data.text import LEVELS
from rnnjax.train import parallel
from rnnjax.train.optimizers import OPTIMIZERS, check_positive, make_optimizer

__all__ = [
    "DATA_FIELDS",
    "LEVEL_DEFAULTS",
    "MODEL_FIELDS",
    "RESUMABLE_FIELDS",
    "SCHEDULES",
    "TRAJECTORY_FIELDS",
    "LMConfig",
    "learning_rate_schedule",
    "optimizer",
]

SCHEDULES = ("constant", "cosine", "linear")

# The defaults that depend on the level: LMConfig's field defaults are the char-level ones, and
# `LMConfig.for_level(level)` replaces these fields by the level's values.
LEVEL_DEFAULTS: dict[str, dict] = {
    "char": {},
    "word": dict(
        lowercase=True,
        min_count=2,
        num_layers=1,
        embed_size=128,
        dropout=0.5,
        batch_size=32,
        seq_len=35,
        steps=600,
    ),
}

# Config fields that must match between a checkpoint and the run that resumes or samples from it.
MODEL_FIELDS = ("cell", "activation", "hidden_size", "num_layers", "embed_size")
DATA_FIELDS = ("level", "lowercase", "strip_punctuation", "min_count", "max_vocab", "valid_fraction")
# Fields a resumed run may change on the command line (the target and the bookkeeping cadence); the
# others are taken from the run (`experiments.text_generation train --resume`).
RESUMABLE_FIELDS = ("steps", "eval_every", "save_every", "keep_last", "log_every")
# Fields that define the training trajectory: resuming with other values is allowed (e.g. more steps) but
# no longer reproduces an uninterrupted run, so it warns.
TRAJECTORY_FIELDS = (
    "dropout",
    "carry_reset",
    "steps",
    "batch_size",
    "seq_len",
    "optimizer",
    "learning_rate",
    "schedule",
    "warmup_steps",
    "final_lr_fraction",
    "clip_norm",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Everything that defines a language-model run (saved with each checkpoint).

    Text: the last `valid_fraction` of the tokens is the validation split; the vocabulary is built on the
    training split only. Model: `rnnjax.models.language_model` over `cells.make(cell, hidden_size)`.
    Streams: each row's carry is passed from batch to batch (truncated BPTT), all rows restart from zero
    carries at each new pass over the text, and each row also restarts with probability `carry_reset` at
    every step, so the model learns to read a prompt from the zero state that sampling starts from.
    Optimisation: `steps` updates on batches of `batch_size` rows x `seq_len` tokens; the learning rate
    warms up linearly over `warmup_steps`, then follows `schedule` down to `final_lr_fraction` x
    `learning_rate` at `steps`. Bookkeeping: validation every `eval_every` steps, checkpoints every
    `save_every` steps and at the end (the last `keep_last` and the best kept), a training record in
    `metrics.jsonl` every `log_every` steps.
    """

    level: Literal[LEVELS] = "char"  # tokens: characters, or words and punctuation marks
    lowercase: bool = False  # lowercase the text (rnnjax.data.text.normalize)
    strip_punctuation: bool = False  # delete punctuation (rnnjax.data.text.normalize)
    min_count: int = 1  # keep tokens seen at least this often in the training split (others: <unk>)
    max_vocab: int | None = None  # at most this many vocabulary entries, <unk> included
    valid_fraction: float = 0.1  # the last fraction of the tokens, as one block, for validation
    cell: Literal[tuple(cells.KINDS)] = "lstm"  # the recurrent cell (rnnjax.cells.KINDS)
    activation: str = "tanh"  # the simple cell's activation: "tanh", "relu" or "linear"
    hidden_size: int = 256  # units per recurrent layer
    num_layers: int = 2  # stacked recurrent layers
    embed_size: int | None = 64  # token embedding width; None: one-hot inputs
    dropout: float = 0.0  # between layers and before the readout, during training
    carry_reset: float = 0.05  # per row and step, the chance of restarting from zero carries
    steps: int = 3000  # optimiser updates
    batch_size: int = 64  # rows, a multiple of the devices
    seq_len: int = 100  # tokens per row per step (the truncation of BPTT)
    optimizer: Literal[tuple(OPTIMIZERS)] = "adam"
    learning_rate: float = 3e-3  # the peak learning rate
    schedule: Literal[SCHEDULES] = "cosine"  # after warm-up: constant, or cosine / linear decay
    warmup_steps: int = 0  # linear warm-up from 0
    final_lr_fraction: float = 0.1  # the decayed rate at `steps`, as a fraction of learning_rate
    clip_norm: float | None = 5.0  # clip gradients to this global norm; None: no clipping
    seed: int = 0  # initial parameters, dropout and carry resets
    eval_every: int = 100  # steps between validations
    save_every: int = 200  # steps between checkpoints
    keep_last: int = 3  # checkpoints kept besides the best one
    log_every: int = 10  # steps per training record in metrics.jsonl
    devices: int | None = None  # devices the batch is split across (parallel.run_mesh); None: all

    def __post_init__(self):
        def need(cond: bool, name: str, expected: str):
            if not cond:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

        def is_int(v) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        def in_range(name: str, low: float, high: float, closed_low: bool, closed_high: bool, what: str):
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
            ok = ok and (low <= v if closed_low else low < v) and (v <= high if closed_high else v < high)
            interval = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
            need(ok, name, f"{what} in {interval}")

        need(self.level in LEVELS, "level", f"one of {LEVELS}")
        need(self.cell in cells.KINDS, "cell", f"one of {tuple(cells.KINDS)}")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {sorted(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}")
        need(isinstance(self.activation, str), "activation", "a name such as 'tanh'")
        for name in ("lowercase", "strip_punctuation"):
            need(isinstance(getattr(self, name), bool), name, "True or False")
        for name in ("hidden_size", "num_layers", "steps", "batch_size", "seq_len", "min_count"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        for name in ("eval_every", "save_every", "keep_last", "log_every"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        need(is_int(self.seed) and self.seed >= 0, "seed", "an int >= 0")
        need(
            is_int(self.warmup_steps) and 0 <= self.warmup_steps < self.steps,
            "warmup_steps",
            "an int in [0, steps)",
        )
        for name, low, expected in (
            ("embed_size", 1, "None (one-hot) or an int >= 1"),
            ("max_vocab", 2, "None or an int >= 2"),
            ("devices", 1, "None or an int >= 1"),
        ):
            value = getattr(self, name)
            need(value is None or (is_int(value) and value >= low), name, expected)
        in_range("dropout", 0.0, 1.0, True, False, "a rate")
        in_range("carry_reset", 0.0, 1.0, True, True, "a probability")
        in_range("valid_fraction", 0.0, 1.0, False, False, "a number")
        in_range("final_lr_fraction", 0.0, 1.0, True, True, "a number")
        check_positive("learning_rate", self.learning_rate)
        check_positive("clip_norm", self.clip_norm, allow_none=True)
        cell = self.make_cell()  # the cell checks its own options (e.g. the activation)
        parallel.check_recurrent_size(
            "hidden_size",
            self.hidden_size,
            gates=len(cell.gates),
            input_size=self.embed_size or 0,  # one-hot inputs: the vocabulary is not known yet
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
        )

    @classmethod
    def for_level(cls, level: str, **overrides) -> LMConfig:
        """The defaults of `level` ("char" or "word", see `LEVEL_DEFAULTS`) with `overrides` on top."""
        if level not in LEVEL_DEFAULTS:
            raise ValueError(f"level: expected one of {tuple(LEVEL_DEFAULTS)}, got {level!r}")
        return cls(**{**LEVEL_DEFAULTS[level], "level": level, **overrides})

    def make_cell(self) -> cells.Cell:
        """The recurrent cell of every layer: `cells.make(cell, hidden_size)` (with the activation for the
        simple cell)."""
        options = {"activation": self.activation} if self.cell == "simple" else {}
        return cells.make(self.cell, self.hidden_size, **options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LMConfig:
        """The config of `to_dict` (unknown keys, e.g. from older versions, are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def learning_rate_schedule(config: LMConfig) -> optax.Schedule:
    """Linear warm-up over `warmup_steps`, then constant, cosine or linear decay to
    `final_lr_fraction * learning_rate` at `steps`."""
    lr, end = config.learning_rate, config.learning_rate * config.final_lr_fraction
    decay_steps = config.steps - config.warmup_steps
    if config.schedule == "constant":
        after = optax.constant_schedule(lr)
    elif config.schedule == "cosine":
        after = optax.cosine_decay_schedule(lr, decay_steps, alpha=config.final_lr_fraction)
    else:
        after = optax.linear_schedule(lr, end, decay_steps)
    if config.warmup_steps == 0:
        return after
    warm = optax.linear_schedule(0.0, lr, config.warmup_steps)
    return optax.join_schedules([warm, after], [config.warmup_steps])


def optimizer(config: LMConfig) -> optax.GradientTransformation:
    """`make_optimizer(config.optimizer, learning_rate_schedule(config), config.clip_norm)`."""
    return make_optimizer(config.optimizer, learning_rate_schedule(config), config.clip_norm)
