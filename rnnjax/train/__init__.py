"""Training: one loop (`fit`) and one pure `train_step` per problem.

- `rnnjax.train.loop`: `fit(train_step, state, batches, ...)`, which owns the progress bar, `metrics.jsonl`,
  evaluation, time limit, divergence stop, orbax checkpoints and exact resume.
- `rnnjax.train.synthetic`: a cell plus dense readout on the synthetic `rnnjax.tasks` problems.
- `rnnjax.train.lm`: language models on text (truncated BPTT over contiguous streams, data parallel).
- `rnnjax.train.classify`: many-to-one classifiers on labelled text.
- `rnnjax.train.optimizers`, `rnnjax.train.checkpoint`, `rnnjax.train.parallel`: the update rule, the
  checkpoint store and the device mesh.
"""

from rnnjax.train.loop import FitResult, fit
from rnnjax.train.optimizers import OPTIMIZERS, make_optimizer

__all__ = ["OPTIMIZERS", "FitResult", "fit", "make_optimizer"]
