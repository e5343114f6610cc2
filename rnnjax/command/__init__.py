"""The machinery every command shares (experiments and benchmarks alike): `cli` parses a command's config
and reports its failures in one line; `plots` is the one figure style and its legibility check. Commands
import these modules; the library proper (cells, diagnostics, training) never does."""
