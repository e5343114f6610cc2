"""One module per cell kind: its params and carry types, init, step, gates, what the diagnostics analyse,
and its whole-sequence kernel. `rnnjax.cells` gathers them into the registry `KINDS`."""
