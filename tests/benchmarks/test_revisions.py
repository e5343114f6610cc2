"""`benchmarks.revisions`: the jaxpr comparison between two checkouts, and its bad inputs."""

import pytest

from benchmarks import revisions


def test_this_revision_against_itself_traces_identical_jaxprs():
    """Two worker processes in two checkouts of the same commit (the working tree and a fresh worktree of
    HEAD) trace the same programs. Each worker must import rnnjax from its own checkout, which `compare`
    checks (it raises otherwise); a traced change to this package left uncommitted would show here as
    a difference."""
    cfg = revisions.check(revisions.Config(against="HEAD", cells=("lstm",), shape=(2, 5, 3, 4), time=False))
    rows = revisions.compare(cfg)
    assert set(rows) == {"lstm|fwd", "lstm|fwd+bwd"}
    assert all(row["identical_jaxpr"] for row in rows.values()), rows


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(against="nonexistent-x"), r"against: expected a git revision of this repository, got 'non"),
        (dict(against="--all"), r"against: expected a git revision, got '--all'"),
        (dict(cells=("rnn",)), r"cells: expected names from \['gru', 'lstm', 'simple'\], got 'rnn'"),
        (dict(shape=(1, 2, 3)), r"shape: expected four positive ints B T I H, got \(1, 2, 3\)"),
        (dict(shape=(1, 0, 3, 4)), r"shape: expected four positive ints B T I H, got \(1, 0, 3, 4\)"),
        (dict(rounds=0), r"rounds: expected an int >= 1, got 0"),
    ],
)
def test_bad_options_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        revisions.check(revisions.Config(**options))
