"""Training loops.

- `rnnjax.train.synthetic` (re-exported here: `train`, `Params`, `make_optimizer`, ...): a cell plus dense
  readout on a synthetic `rnnjax.tasks` task, recording the gradient norm before clipping at every step.
- `rnnjax.train.lm`: language models on text (truncated BPTT over contiguous streams), data parallel
  over all local devices, orbax checkpoints with exact resume, validation perplexity and bits per char.
- `rnnjax.train.checkpoint` and `rnnjax.train.parallel`: the checkpoint store and the device mesh.
"""

from rnnjax.train.synthetic import (
    OPTIMIZERS,
    Params,
    TrainResult,
    batch,
    evaluate,
    init_params,
    loss_fn,
    make_optimizer,
    outputs,
    train,
)

__all__ = [
    "OPTIMIZERS",
    "Params",
    "TrainResult",
    "batch",
    "evaluate",
    "init_params",
    "loss_fn",
    "make_optimizer",
    "outputs",
    "train",
]
