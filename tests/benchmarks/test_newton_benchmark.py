"""`benchmarks.newton` on a tiny grid: it runs end to end, writes its record, each method's outputs agree
with the sequential scan's, a configuration over the memory limit is skipped and said to be. Timings are
never asserted."""

import json

from benchmarks import newton as bench

TOL_F32 = 1e-5  # float32 outputs at full matmul precision against the sequential scan


def test_the_benchmark_writes_its_record_and_the_methods_agree(tmp_path):
    cfg = bench.Config(lengths=(16,), hidden_sizes=(3, 40), methods=("deer", "quasi-deer"), repeats=1,
                       memory_gib=0.0005, out=str(tmp_path))  # fmt: skip
    bench.main(cfg)
    record = json.loads((tmp_path / "newton.json").read_text())
    assert {"machine", "config", "rows", "crossover_T"} <= set(record)
    small, large = record["rows"]
    assert small["hidden_size"] == 3 and small["skipped_for_memory"] == []
    assert set(small["max_abs_difference"]) == {"deer", "quasi-deer"}
    assert max(small["max_abs_difference"].values()) <= TOL_F32
    assert all(isinstance(k, int) and 1 <= k <= 16 for k in small["iterations"].values())
    assert set(small["sequential_over"]) == {"sequential", "deer", "quasi-deer"}
    # H = 40: a GRU's dense Jacobians (16 steps x 4 sequences x 40² floats) exceed 0.0005 GiB / 16.
    assert large["skipped_for_memory"] == ["deer"] and "quasi-deer" in large["iterations"]
    assert set(record["crossover_T"]) == {"deer", "quasi-deer"}
