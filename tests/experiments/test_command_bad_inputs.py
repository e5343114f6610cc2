"""Bad command-line input to every command: one line `error: ...` on stderr naming the argument (no
traceback), exit status 2, and nothing written under `results/` (no run folder left behind, no file of an
existing run touched). One table, run in-process through `rnnjax.command.cli.run` (as `python -m` does);
a few cases also as real processes, for what only a process shows (tyro's panel, no C++ abort, --help)."""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import _synthetic
from experiments import classify as classify_command
from experiments import text_generation as tg
from rnnjax.command import cli as _cli

# The synthetic-task experiments' cell names, as their errors list them (regex-escaped).
SYN = re.escape(str(sorted(_synthetic.CELLS)))[2:-2]

ROOT = Path(__file__).resolve().parents[2]
WORDS = "the cat sat on a mat and the dog ran to the red door while a bird sang in the old tree".split()
# A tiny char-level language model run (seconds), `results/text_generation/tg`.
TG_TRAIN = [
    "train", "--level", "char", "--hidden-size", "16", "--num-layers", "1", "--embed-size", "8",
    "--batch-size", "8", "--seq-len", "16", "--steps", "4", "--eval-every", "2", "--save-every", "2",
    "--sample-length", "5", "--no-progress", "--corpus", "corpus.txt", "--run", "tg",
]  # fmt: skip
# A tiny classifier run (seconds), `results/classify/c`.
CLASSIFY_TRAIN = [
    "--csv", "data.csv", "--cell", "lstm", "--hidden-size", "8", "--embed-size", "8", "--steps", "3",
    "--batch-size", "8", "--padding-factors", "2", "--save-every", "2", "--no-progress", "--run", "c",
]  # fmt: skip
QUICK_RUNS = Path(__file__).parent / "quick_runs"  # saved metrics of quick runs of every experiment
HUGE = "1000000000"  # a hidden size whose weights fit in no machine's memory
FITS_MEMORY = "hidden_size: expected a size whose arrays fit in half of this machine's"
FLOAT32 = r"expected a positive number that float32 \(the compute dtype\) holds, at most 3\.403e\+38, got"
RUN_NAME = r"run: expected a name of one folder under results/<experiment>/"

TG, CLS = "experiments.text_generation", "experiments.classify"
QS, GN, GNT = "experiments.quickstart", "experiments.gradient_norms", "experiments.gradient_norms_training"
LR, WA = "experiments.long_range", "experiments.walkthrough_alice"
WS, WT = "experiments.walkthrough_step", "experiments.walkthrough_tiny"
BT, BM, BD = "benchmarks.throughput", "benchmarks.memory", "benchmarks.diagnostics"
BL = "benchmarks.linear_scan"
BLC = "benchmarks.linear_cells"
PIT, BN = "experiments.parallel_in_time", "benchmarks.newton"

# (command, argv, the message after "error: " (a regex, matched at the start))
CASES = [
    # quickstart
    (QS, ["--steps", "abc"], r"--steps: expected an int, got 'abc'"),
    (QS, ["--steps", "0"], r"steps: expected an int >= 1, got 0"),
    (QS, ["--seq-len", "0"], r"seq_len: expected an int >= 1, got 0"),
    (QS, ["--alphabet", "1"], r"alphabet: expected an int >= 2, got 1"),
    (QS, ["--batch-size", "-3"], r"batch_size: expected an int >= 1, got -3"),
    (QS, ["--seed", "-1"], r"seed: expected an int >= 0, got -1"),
    (QS, ["--learning-rate", "1e39"], rf"learning_rate: {FLOAT32} 1e\+39"),
    (QS, ["--learning-rate", "nan"], r"learning_rate: expected a positive number, got nan"),
    (QS, ["--learning-rate", "-1"], r"learning_rate: expected a positive number, got -1\.0"),
    (QS, ["--learning-rate", "3e-3x"], r"--learning-rate: expected a number, got '3e-3x'"),
    (QS, ["--hidden-size", HUGE], FITS_MEMORY),
    (
        QS,
        ["--cells", "rnn"],
        rf"cells: expected names from \[{SYN}\], got \['rnn'\]",
    ),
    (QS, ["--run", "../escape"], RUN_NAME),
    (QS, ["--run", "/tmp/absolute"], RUN_NAME),
    (QS, ["--run", ".hidden"], RUN_NAME),
    (QS, ["--bogus"], r"Unrecognized options: --bogus"),
    (QS, ["--quick", "yes"], r"Unrecognized options: yes"),
    # gradient_norms
    (GN, ["--classes", "0"], r"classes: expected an int >= 2, got 0"),
    (
        GN,
        ["--num-processes", "2", "--process-id", "2", "--coordinator", "localhost:1234"],
        r"process_id: expected an int in \[0, 2\) \(num_processes = 2\), got 2",
    ),
    (GN, ["--input-scales", "big"], r"input_scales: expected numbers, got \['big'\]"),
    (GN, ["--lengths", "100", "3.5"], r"lengths: expected ints, got \['100', '3.5'\]"),
    (LR, ["--seq-lens", "x"], r"seq_lens: expected ints, got \['x'\]"),
    ("benchmarks.revisions", ["--against", "nonexistent-x"], r"against: expected a git revision of this"),
    ("benchmarks.revisions", ["--shape", "1", "0", "3", "4"], r"shape: expected four positive ints"),
    ("benchmarks.gpu_check", ["--workers", "-1"], r"workers: expected an int >= 0, got -1"),
    ("benchmarks.gpu_check", ["--unrolls", "0"], r"unrolls: expected ints >= 1, got \(0,\)"),
    ("experiments.lyapunov", ["--gains", "0"], r"gains: expected a positive number, got 0\.0"),
    ("experiments.lyapunov", ["--input-scales", "a"], r"input_scales: expected numbers, got \['a'\]"),
    (GN, ["--gains", "nan"], r"gains: expected a positive number, got nan"),
    (GN, ["--gains", "inf"], rf"gains: {FLOAT32} inf"),
    (GN, ["--gains", "0.5", "-1"], r"gains: expected positive numbers, got \(0\.5, -1\.0\)"),
    (GN, ["--lengths", "1"], r"lengths: expected sequence lengths >= 2, got \(1,\)"),
    (GN, ["--seeds", "0"], r"seeds, hidden_size: expected >= 1, got 0, 64"),
    (GN, ["--input-size", "0"], r"input_size: expected an int >= 1, got 0"),
    (GN, ["--hidden-size", HUGE], FITS_MEMORY),
    (GN, ["--inits", "uniform"], r"inits: expected names from \('orthogonal', 'gaussian'\), got 'uniform'"),
    (GN, ["--cells"], r"cells: expected at least one name from"),
    (GN, ["--loss", "mse"], r"loss: expected 'linear' or 'cross_entropy', got 'mse'"),
    (
        GN,
        ["--plot-only", "nowhere"],
        r"plot_only: expected a run folder holding metrics\.json, got 'nowhere'",
    ),
    (GN, ["--float64", "maybe"], r"Unrecognized options: maybe"),
    (
        GN,
        ["--plot-only", "results/gradient_norms/notjson"],
        r"'results/gradient_norms/notjson/metrics\.json': expected the metrics\.json of a gradient_norms "
        r"run, got text that is not JSON \(Expecting value",
    ),
    (
        GN,
        ["--plot-only", "results/gradient_norms/nocurves"],
        r"'results/gradient_norms/nocurves/metrics\.json': the key 'curves' is missing \(an edited or",
    ),
    (
        GN,
        ["--plot-only", "results/lyapunov/nopoints"],
        r"plot_only: 'results/lyapunov/nopoints' is a run of lyapunov, not of gradient_norms$",
    ),
    (
        "experiments.lyapunov",
        ["--plot-only", "results/lyapunov/nopoints"],
        r"'results/lyapunov/nopoints/metrics\.json': expected the metrics\.json of a lyapunov run with the "
        r"key 'points', which is missing",
    ),
    (
        "experiments.lyapunov",
        ["--plot-only", "results/lyapunov/nolam"],
        r"'results/lyapunov/nolam/metrics\.json': the key 'lam10' is missing",
    ),
    ("experiments.lyapunov", ["--plot-only", "results/lyapunov/list"], r"'results/lyapunov/list/metrics"),
    # gradient_norms_training
    (GNT, ["--steps", "0"], r"steps: expected an int >= 1, got 0"),
    (
        GNT,
        ["--cells", "transformer"],
        rf"cells: expected names from \[{SYN}\], got 'tr",
    ),
    (GNT, ["--task", "nope"], r"task: expected one of \['adding', 'copy', 'temporal_order'\], got 'nope'"),
    (GNT, ["--seq-len", "0"], r"seq_len: adding expected an int >= 2, got 0"),
    (GNT, ["--profile-batch", "0"], r"profile_batch: expected an int >= 1, got 0"),
    (GNT, ["--learning-rate", "1e39"], rf"learning_rate: {FLOAT32} 1e\+39"),
    (GNT, ["--clip-norm", "nan"], r"clip_norm: expected None or a positive number, got nan"),
    (GNT, ["--hidden-size", HUGE], FITS_MEMORY),
    (GNT, ["--plot-only", "nowhere"], r"plot_only: expected a run folder holding metrics\.json"),
    # long_range
    (LR, ["--eval-batch-size", "0"], r"eval_batch_size: expected an int >= 1, got 0"),
    (LR, ["--tasks", "nope"], r"tasks: expected one of \['adding', 'copy', 'temporal_order'\], got 'nope'"),
    (LR, ["--tasks"], r"tasks: expected at least one value, got \(\)"),
    (LR, ["--seq-lens", "0"], r"seq_lens: adding expected an int >= 2, got 0"),
    (
        LR,
        ["--cells", "gru2"],
        rf"cells: expected names from \[{SYN}\], got 'gru2'",
    ),
    (LR, ["--clip-norm", "0"], r"clip_norm: expected a positive number, got 0\.0"),
    (LR, ["--learning-rate", "inf"], rf"learning_rate: {FLOAT32} inf"),
    (LR, ["--batch-size", "0"], r"batch_size: expected an int >= 1, got 0"),
    (LR, ["--hidden-size", HUGE], FITS_MEMORY),
    (LR, ["--replot", "nowhere"], r"replot: expected a run folder holding metrics\.json, got 'nowhere'"),
    (LR, ["--clip", "perhaps"], r".*'perhaps'"),
    (
        LR,
        ["--replot", "results/long_range/notjson"],
        r"'results/long_range/notjson/metrics\.json': expected the metrics\.json of a long_range run, got",
    ),
    (LR, ["--replot", "results/long_range/noruns"], r"'results/long_range/noruns/metrics\.json': .*'runs'"),
    (LR, ["--resume", "--run", "list"], r"'results/long_range/list/config\.json': .*got a JSON list$"),
    (
        LR,
        ["--resume", "--run", "big"],
        r"'results/long_range/big/config\.json': hidden_size: expected an int >= 1, got 'big'",
    ),
    # classify (train)
    (CLS, ["--hidden-size", "0"], r"hidden_size: expected an int >= 1, got 0"),
    (CLS, ["--hidden-size", HUGE], FITS_MEMORY),
    (CLS, ["--learning-rate", "1e39"], rf"learning_rate: {FLOAT32} 1e\+39"),
    (CLS, ["--learning-rate", "3e-3x"], r"--learning-rate: expected a number, got '3e-3x'"),
    (CLS, ["--csv", "missing.csv"], r"path: no such file 'missing\.csv'; expected a CSV file"),
    (CLS, ["--csv", "data.csv", "--text-column", "nope"], r"text_column: column 'nope' not found"),
    (CLS, ["--valid-fraction", "1.5"], r"valid_fraction: expected a number in \(0, 1\), got 1\.5"),
    (CLS, ["--dropout", "1.0"], r"dropout: expected a rate in \[0, 1\), got 1\.0"),
    (CLS, ["--cell", "transformer"], r"cell: expected names from"),
    (CLS, ["--synthetic-signal", "5", "2"], r"synthetic_signal: expected two ints lo, hi with 0 <= lo < hi"),
    (
        CLS,
        ["--synthetic-signal", "1"],
        r"Missing value for argument '--synthetic-signal'\. Expected 2 values",
    ),
    (CLS, ["--synthetic-min-len", "200"], r"synthetic_min_len: expected an int in \[synthetic_signal hi = 5"),
    (CLS, ["--padding-factors", "1"], r"padding_factors: expected ints >= 2, got \(1,\)"),
    (CLS, ["--level", "syllable"], r"invalid choice 'syllable' for argument '--level'"),
    (CLS, ["--resume", "--run", "nothing"], r"resume: there is no run 'nothing' to continue"),
    (CLS, [*CLASSIFY_TRAIN], r"run: 'results/classify/c' already holds a run; pass --overwrite"),
    (CLS, [*CLASSIFY_TRAIN, "--resume", "--overwrite"], r"overwrite, resume: expected at most one of them"),
    (CLS, ["--plot-only", "nowhere"], r"plot_only: expected a run folder holding metrics\.json"),
    (CLS, ["--run", "a/b"], RUN_NAME),
    (
        CLS,
        ["--resume", "--run", "notjson"],
        r"'results/classify/notjson/config\.json': expected the config\.json of a classify run, got text "
        r"that is not JSON",
    ),
    (CLS, ["--resume", "--run", "list"], r"'results/classify/list/config\.json': .* got a JSON list$"),
    (CLS, ["--resume", "--run", "noclassify"], r"'results/classify/noclassify/config\.json': .*'classify'"),
    (CLS, ["--resume", "--run", "noconfig"], r"resume: run 'noconfig' has no config\.json \('results/classi"),
    (
        CLS,
        ["--resume", "--run", "big"],
        r"'results/classify/big/config\.json': hidden_size: expected an int >= 1, got 'big' \(an edited",
    ),
    (
        CLS,
        ["--plot-only", "results/classify/notjson"],
        r"'results/classify/notjson/metrics\.json': expected the metrics\.json of a classify run, got text",
    ),
    (
        CLS,
        ["--plot-only", "results/classify/nodata"],
        r"'results/classify/nodata/metrics\.json': expected .* with the key 'data', which is missing",
    ),
    (
        CLS,
        ["--plot-only", "results/text_generation/tg"],
        r"plot_only: 'results/text_generation/tg' is a run of text_generation, not of classify$",
    ),
    (CLS, ["--plot-only", "results/classify/afile"], r"plot_only: expected a run folder of classify, got"),
    # classify predict
    (CLS, ["predict", "--run", "c"], r"text, csv: expected --text TEXT\.\.\. or --csv FILE \(one of them\)"),
    (CLS, ["predict", "--run", "c", "--text", "hi", "--csv", "data.csv"], r"text, csv: .*got both"),
    (CLS, ["predict", "--run", "nowhere", "--text", "hi"], r"run: there is no run 'nowhere' of classify"),
    (CLS, ["predict", "--run", "c", "--text", "hi", "--cell", "gru"], r"cell: expected a trained cell of"),
    (CLS, ["predict", "--run", "c", "--csv", "missing.csv"], r"path: no such file 'missing\.csv'"),
    (CLS, ["predict", "--run", "c", "--csv", "data.csv", "--text-column", "x"], r"text_column: column 'x'"),
    (CLS, ["predict", "--run", "c", "--text", "   "], r"texts: text\(s\) \[1\] have no tokens"),
    (CLS, ["predict", "--text", "hi"], r"Required options: .*--run STR"),
    (CLS, ["predict", "--run", "../c", "--text", "hi"], RUN_NAME),
    (
        CLS,
        ["predict", "--run", "tg", "--text", "hi"],
        r"run: 'results/classify/tg' is a run of text_generation, not of classify$",
    ),
    (
        CLS,
        ["predict", "--run", "c", "--text", "hi", "--cell", "../../text_generation/tg"],
        r"cell: expected one of the cell kinds \(.*\), got '\.\./\.\./text_generation/tg'$",
    ),
    (CLS, ["predict", "--run", "afile", "--text", "hi"], r"run: 'results/classify/afile' is a file, not a"),
    (CLS, ["predict", "--run", "notjson", "--text", "hi"], r"'results/classify/notjson/metrics\.json': exp"),
    (CLS, ["predict", "--run", "nocells", "--text", "hi"], r"'results/classify/nocells/metrics\.json': .*'"),
    (
        CLS,
        ["predict", "--run", "corrupt", "--text", "hi"],
        r"checkpoint: no intact checkpoint in '.*corrupt/lstm/checkpoints': step 2 is corrupt: .*; step 3 ",
    ),
    # text_generation train
    (TG, ["train", "--minutes", "nan"], r"minutes: expected None or a finite number of minutes > 0, got nan"),
    (TG, ["train", "--minutes", "-1"], r"minutes: expected None or a finite number of minutes > 0, got -1"),
    (TG, ["train", "--learning-rate", "1e39"], rf"learning_rate: {FLOAT32} 1e\+39"),
    (TG, ["train", "--learning-rate", "3e-3x"], r"--learning-rate: expected a number, got '3e-3x'"),
    (TG, ["train", "--hidden-size", HUGE], FITS_MEMORY),
    (TG, ["train", "--steps", "abc"], r"--steps: expected an int, got 'abc'"),
    (TG, ["train", "--corpus", "missing.txt"], r"corpus: expected a registered corpus name"),
    (TG, ["train", "--level", "syllable"], r"invalid choice 'syllable' for argument '--level'"),
    (TG, ["train", "--dropout", "1.5"], r"dropout: expected a rate in \[0, 1\), got 1\.5"),
    (TG, ["train", "--valid-fraction", "0"], r"valid_fraction: expected a number in \(0, 1\), got 0\.0"),
    (TG, ["train", "--clip-norm", "inf"], rf"clip_norm: expected None or {FLOAT32[9:]} inf"),
    (TG, ["train", "--batch-size", "0"], r"batch_size: expected an int >= 1, got 0"),
    (TG, ["train", "--warmup-steps", "5000"], r"warmup_steps: expected an int in \[0, steps\), got 5000"),
    (TG, ["train", "--sample-length", "0"], r"sample_length: expected None or an int >= 1, got 0"),
    (TG, ["train", "--resume"], r"resume: expected the --run to continue, got no --run"),
    (TG, ["train", "--resume", "--run", "nothing"], r"resume: there is no run 'nothing' to continue"),
    (
        TG,
        ["train", "--resume", "--run", "tg", "--hidden-size", "64"],
        r"resume: run 'tg' was trained with other settings \(hidden_size: saved 16, given 64\)",
    ),  # fmt: skip
    (
        TG,
        ["train", "--resume", "--run", "tg", "--corpus", "alice", "--dropout", "0.2"],
        r"resume: .*dropout: saved 0\.0, given 0\.2; corpus: saved 'corpus\.txt', given 'alice'",
    ),  # fmt: skip
    (TG, [*TG_TRAIN], r"run: 'results/text_generation/tg' already holds a run; pass --overwrite"),
    (
        TG,
        ["train", "--resume", "--run", "notjson"],
        r"'results/text_generation/notjson/command\.json': expected the command\.json of a text_generation "
        r"run, got text that is not JSON \(Expecting value: line 1 column 1 \(char 0\)\)$",
    ),
    (
        TG,
        ["train", "--resume", "--run", "list"],
        r"'results/text_generation/list/command\.json': expected .*, a JSON object, got a JSON list$",
    ),
    (TG, ["train", "--resume", "--run", "nolm"], r"'results/text_generation/nolm/command\.json': .*key 'lm'"),
    (
        TG,
        ["train", "--resume", "--run", "big"],
        r"'results/text_generation/big/command\.json': hidden_size: expected an int >= 1, got 'big' "
        r"\(an edited or foreign run file\?\)$",
    ),
    (
        TG,
        ["train", "--resume", "--run", "nocommand"],
        r"resume: run 'nocommand' has no command\.json \('results/text_generation/nocommand/command\.json'",
    ),
    (TG, ["train", "--corpus", "one.txt"], r"text: the text has 1 word token; expected at least"),
    (
        TG,
        ["train", "--resume", "--run", "othertext"],
        r"resume: the checkpoint's vocabulary \(\d+ tokens\) differs from this corpus's",
    ),  # refused before command.json is written again
    (
        TG,
        ["train", "--corpus", "chat.txt", "--whatsapp"],
        r"chat\.txt: ambiguous date order.*--dayfirst True",
    ),
    (TG, ["train", "--corpus", "notachat.txt", "--whatsapp"], r"notachat\.txt: no line matches a WhatsApp"),
    (
        TG,
        ["train", "--corpus", "chat.txt", "--whatsapp", "--dayfirst", "True", "--authors", "Zed"],
        r"authors \['Zed'\] not found",
    ),  # fmt: skip
    (TG, ["train", "--dayfirst", "maybe"], r"invalid choice 'maybe' for argument '--dayfirst'"),
    (TG, ["train", "--run", "x/../y"], RUN_NAME),
    (TG, ["generate"], r"Unrecognized options: generate"),
    # text_generation sample
    (TG, ["sample"], r"Required options: .*--run STR"),
    (
        TG,
        ["sample", "--run", "nowhere"],
        r"run: there is no run 'nowhere' of text_generation \(no folder 'results/text_generation/nowhere'\)$",
    ),
    (TG, ["sample", "--run", "afile"], r"run: 'results/text_generation/afile' is a file, not a run folder$"),
    (TG, ["sample", "--run", "c"], r"run: 'results/text_generation/c' is a run of classify, not of text_gen"),
    (TG, ["sample", "--run", "notjson"], r"'results/text_generation/notjson/command\.json': expected the "),
    (TG, ["sample", "--run", "bare"], r"run: 'results/text_generation/bare' holds no checkpoints, which a"),
    (
        TG,
        ["sample", "--run", "truncated", "--step", "4"],
        r"step: checkpoint step 4 in '.*truncated/checkpoints' is corrupt: \S+ does not match its checksum; "
        r"the intact steps are \[2\]$",
    ),
    (TG, ["sample", "--run", "tg", "--length", "0"], r"length: expected an int >= 1, got 0"),
    (TG, ["sample", "--run", "tg", "--num-samples", "0"], r"num_samples: expected an int >= 1, got 0"),
    (
        TG,
        ["sample", "--run", "tg", "--temperature", "0"],
        r"temperature: expected a finite number > 0, got 0",
    ),
    (TG, ["sample", "--run", "tg", "--top-p", "1.5"], r"top_p: expected None or a number in \(0, 1\]"),
    (TG, ["sample", "--run", "tg", "--top-k", "0"], r"top_k: expected None or an int in \[1, "),
    (
        TG,
        ["sample", "--run", "tg", "--step", "99999"],
        r"step: expected 'latest', 'best' or one of the saved",
    ),
    (TG, ["sample", "--run", "tg", "--step", "soon"], r"step: expected 'best', 'latest' or a step number"),
    (TG, ["sample", "--run", "../tg"], RUN_NAME),
    # walkthrough_alice
    (WA, ["--epochs", "0"], r"epochs: expected an int >= 1, got 0"),
    (WA, ["--valid-fraction", "1"], r"valid_fraction: expected a number in \(0, 1\), got 1\.0"),
    (WA, ["--cells", "lstm", "lstm"], r"cells: expected each cell at most once"),
    (WA, ["--learning-rate", "0"], r"learning_rate: expected a positive number, got 0\.0"),
    (WA, ["--hidden-size", HUGE], FITS_MEMORY),
    (WA, ["--path", "missing.txt"], r"path: expected a registered corpus name"),
    (WA, ["--max-words", "0"], r"max_words: expected None or an int >= 1, got 0"),
    (WA, ["--cells", "rnn"], r"invalid choice 'rnn' for argument '--cells'"),
    # walkthrough_step
    (WS, ["--matrices", '{"x": [1, 2]}'], r"w_ih: expected shape \(2, 2\)"),
    (WS, ["--matrices", "nofile.json"], r"matrices: expected inline JSON starting with '\{' or the path"),
    (WS, ["--matrices", "{bad"], r"matrices: expected a JSON object, got invalid JSON"),
    (WS, ["--run", "../x"], RUN_NAME),
    # walkthrough_tiny
    (WT, ["--window", "0"], r"window: expected an int >= 1, got 0"),
    (WT, ["--epochs", "0"], r"epochs: expected an int >= 1, got 0"),
    (WT, ["--hidden-size", "0"], r"hidden_size: expected an int >= 1, got 0"),
    (WT, ["--learning-rate", "nan"], r"learning_rate: expected a positive number, got nan"),
    (WT, ["--text", "one"], r"text: expected at least window \+ 1 = 3 words, got 1"),
    # benchmarks
    (BT, ["--out", "afile.txt"], r"out: expected a folder, got 'afile\.txt', which is a file"),
    (BT, ["--out", "nonempty"], r"out: expected an empty folder or one holding a throughput\.json"),
    (BT, ["--run", "../x"], RUN_NAME),
    (BT, ["--reps", "0"], r"reps: expected an int >= 1, got 0"),
    (BT, ["--cells", "rnn"], r"invalid choice 'rnn' for argument '--cells'"),
    (BM, ["--out", "nonempty"], r"out: expected an empty folder or one holding a memory\.json"),
    (BM, ["--cap-gb", "nan"], r"cap_gb: expected a number > 0, got nan"),
    (BM, ["--lengths", "0"], r"lengths: expected ints >= 1, got \(0,\)"),
    (BD, ["--repeats", "0"], r"repeats: expected an int >= 1, got 0"),
    (BD, ["--cells", "rnn"], r"invalid choice 'rnn' for argument '--cells'"),
    (BL, ["--lengths", "0"], r"lengths: expected ints >= 1, got \(0,\)"),
    (BL, ["--repeats", "0"], r"repeats: expected an int >= 1, got 0"),
    (BL, ["--dtypes", "float16"], r"invalid choice 'float16' for argument '--dtypes'"),
    ("experiments.which_words", ["--min-len", "10"],
     r"min_len, max_len: expected 25 <= min_len <= max_len, got 10 and 60"),
    ("experiments.which_words", ["--cells", "rnn"], r"cells: expected cell kinds from"),
    ("experiments.which_words", ["--plot-only", "nowhere"],
     r"plot_only: expected a run folder holding metrics\.json, got 'nowhere'"),
    (BLC, ["--lengths", "0"], r"lengths: expected ints >= 1, got \(0,\)"),
    (BLC, ["--hidden-size", "0"], r"hidden_size: expected an int >= 1, got 0"),
    (BLC, ["--kinds", "gru"], r"invalid choice 'gru' for argument '--kinds'"),
    (PIT, ["--timed-methods", "newton"], r"timed_methods: expected names from \('deer', "),
    (PIT, ["--lengths", "1"], r"lengths: expected ints >= 2, got 1"),
    (PIT, ["--max-iters", "0"], r"max_iters: expected an int >= 1, got 0"),
    (BN, ["--methods", "newton"], r"methods: expected names from \('deer', "),
    (BN, ["--batch", "0"], r"batch: expected an int >= 1, got 0"),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with the inputs the cases name and two trained runs: `tg` (a language model) and `c` (a
    classifier)."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    (folder / "corpus.txt").write_text(" ".join(rng.choice(WORDS, 800)) + "\n")
    rows = ["text,label"] + [
        f'"{w} film, ok",{"pos" if w == "great" else "neg"}' for w in ["great", "awful"] * 15
    ]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    chat = [f"0{d}/03/2024, 10:0{d} - {'Ana' if d % 2 else 'Ben'}: hello {d}" for d in range(1, 10)]
    (folder / "chat.txt").write_text("\n".join(chat) + "\n")  # every date fits both date orders
    (folder / "notachat.txt").write_text("just some text\n")
    (folder / "afile.txt").write_text("not a folder\n")
    (folder / "nonempty").mkdir()
    (folder / "nonempty" / "notes.txt").write_text("someone's files\n")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        tg.main(tg.parse(TG_TRAIN))
        classify_command.main(_cli.parse(classify_command.command, CLASSIFY_TRAIN))
    finally:
        os.chdir(cwd)
    (folder / "one.txt").write_text("a")
    edited_runs(folder / "results")
    return folder


def largest_file(step_folder: Path) -> Path:
    """The largest file a checkpoint step holds (its array data), not its checksum record."""
    files = [p for p in step_folder.rglob("*") if p.is_file() and p.name != "CHECKSUMS.json"]
    return max(files, key=lambda p: p.stat().st_size)


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def without(record: dict, key: str) -> str:
    """`record` as JSON, without `key`."""
    return json.dumps({k: v for k, v in record.items() if k != key})


def edited_runs(results: Path) -> None:
    """Run folders as a user may leave them: files edited, deleted or truncated, runs copied under
    another experiment, files where run folders should be (each folder with its `.lock`, as a run has)."""
    tg_run, c_run = results / "text_generation" / "tg", results / "classify" / "c"

    def copy(source: Path, experiment: str, name: str, edit: dict | None = None) -> Path:
        target = results / experiment / name
        shutil.copytree(source, target) if source.is_dir() else target.mkdir(parents=True)
        (target / ".lock").touch()
        for file, text in (edit or {}).items():
            (target / file).unlink() if text is None else (target / file).write_text(text)
        return target

    command = json.loads((tg_run / "command.json").read_text())
    big = dict(command, lm=dict(command["lm"], hidden_size="big"))
    for name, text in [("notjson", "not json\n"), ("list", "[1, 2]\n"), ("nolm", '{"corpus": "x"}\n'),
                       ("big", json.dumps(big)), ("nocommand", None)]:  # fmt: skip
        copy(tg_run, "text_generation", name, {"command.json": text})
    copy(Path("none"), "text_generation", "bare", {"config.json": "{}"})  # stopped before a checkpoint
    truncated = largest_file(copy(tg_run, "text_generation", "truncated") / "checkpoints" / "4")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    copy(c_run, "text_generation", "c")
    (results.parent / "other.txt").write_text(("ZEBRA QUILT " * 200).strip() + "\n")
    other = {"command.json": json.dumps(dict(command, corpus="other.txt"))}  # another text, same settings
    copy(tg_run, "text_generation", "othertext", other)
    copy(tg_run, "classify", "tg")
    for experiment in ("text_generation", "classify"):
        (results / experiment / "afile").write_text("not a run\n")

    config = json.loads((c_run / "config.json").read_text())
    metrics = json.loads((c_run / "metrics.json").read_text())
    copy(c_run, "classify", "notjson", {"config.json": "{\n", "metrics.json": "not json\n"})
    copy(c_run, "classify", "list", {"config.json": "[1, 2]\n"})
    copy(c_run, "classify", "noclassify", {"config.json": '{"run": "c"}\n'})
    copy(c_run, "classify", "noconfig", {"config.json": None})
    copy(c_run, "classify", "big", {"config.json": json.dumps(dict(config, classify=dict(config["classify"],
         hidden_size="big")))})  # fmt: skip
    for key in ("data", "cells"):
        copy(c_run, "classify", f"no{key}", {"metrics.json": without(metrics, key)})
    corrupt = copy(c_run, "classify", "corrupt")
    for step in (corrupt / "lstm" / "checkpoints").glob("[0-9]*"):
        flip_bytes(largest_file(step))

    saved = {name: json.loads((QUICK_RUNS / name / "metrics.json").read_text())
             for name in ("gradient_norms", "lyapunov", "long_range")}  # fmt: skip
    lr_config = (QUICK_RUNS / "long_range" / "config.json").read_text()
    gn, ly, lr = saved["gradient_norms"], saved["lyapunov"], saved["long_range"]
    no_lam = dict(ly, points=[{k: v for k, v in p.items() if k != "lam10"} for p in ly["points"]])
    for experiment, name, files in [
        ("gradient_norms", "notjson", {"metrics.json": "not json\n"}),
        ("gradient_norms", "nocurves", {"metrics.json": without(gn, "curves")}),
        ("lyapunov", "nopoints", {"metrics.json": without(ly, "points")}),
        ("lyapunov", "nolam", {"metrics.json": json.dumps(no_lam)}),
        ("lyapunov", "list", {"metrics.json": "[1, 2]\n"}),
        ("long_range", "notjson", {"config.json": lr_config, "metrics.json": "x\n"}),
        ("long_range", "noruns", {"config.json": lr_config, "metrics.json": without(lr, "runs")}),
        ("long_range", "list", {"config.json": "[1, 2]\n"}),
        ("long_range", "big", {"config.json": json.dumps(dict(json.loads(lr_config), hidden_size="big"))}),
    ]:  # fmt: skip
        files = {"config.json": "{}\n", **files}
        if experiment == "lyapunov":
            files["lyapunov_spectrum.png"] = ""  # what a run of lyapunov holds, and no other command's
        copy(Path("none"), experiment, name, files)


def command_of(module):
    """What `python -m MODULE` passes to `_cli.run`: the module's `command` function, else its Config."""
    return getattr(module, "command", None) or module.Config


def tree(folder: Path) -> dict[str, int]:
    """Every path under `folder/results` with its size and modification time, to see any change; a run
    folder's `.lock` only by its presence (it holds the PID of the last command that opened the folder,
    no run data)."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.name != ".lock" else "lock"
        for p in (folder / "results").rglob("*")
    }


@pytest.mark.parametrize(
    "name, argv, message",
    CASES,
    ids=[f"{i}-{n.split('.')[-1]}:{' '.join(a)[:50]}" for i, (n, a, _) in enumerate(CASES)],
)
def test_bad_input_is_one_error_line_and_writes_nothing(workdir, monkeypatch, capsys, name, argv, message):
    monkeypatch.chdir(workdir)
    module = importlib.import_module(name)
    before = tree(workdir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(command_of(module), module.main, [*argv, "--no-progress"] if name != WS else argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err  # exactly one line
    assert "Traceback" not in err
    assert re.match(rf"error: {message}", err), err
    assert tree(workdir) == before  # no run folder created, no file of an existing run touched


def test_the_table_covers_every_command_and_enough_inputs():
    assert len(CASES) >= 70

    def is_command(path: Path) -> bool:  # a module run with `python -m` (helpers and plots are not)
        return 'if __name__ == "__main__":' in path.read_text()

    commands = {
        f"{folder}.{p.stem}"
        for folder in ("experiments", "benchmarks")
        for p in (ROOT / folder).glob("*.py")
        if is_command(p)
    }
    assert commands - {"experiments.__init__"} <= {name for name, _, _ in CASES}


def test_a_diverged_run_fails_with_status_1_and_one_line(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    argv = [*TG_TRAIN[:-2], "--run", "diverges", "--learning-rate", "1e30", "--clip-norm", "None"]
    argv += ["--optimizer", "sgd", "--activation", "relu", "--cell", "simple"]
    with pytest.raises(SystemExit) as exit_info, pytest.warns(RuntimeWarning, match="not finite"):
        _cli.run(tg.command, tg.main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.count("\n") == 1 and re.match(
        r"error: lstm|error: simple char-level: stopped at step \d+", err
    )


def test_latest_means_the_latest_intact_checkpoint_and_says_so(workdir, monkeypatch, capsys):
    """A run whose newest checkpoint is corrupt: `sample --step latest` and `predict` use the newest
    intact one and say so in one warning line naming the corrupt step and the step used."""
    monkeypatch.chdir(workdir)
    for experiment, run, newest in (("text_generation", "tg", 4), ("classify", "c", 3)):
        target = workdir / "results" / experiment / "newest_corrupt"
        shutil.copytree(workdir / "results" / experiment / run, target)
        checkpoints = target / ("checkpoints" if experiment == "text_generation" else "lstm/checkpoints")
        flip_bytes(largest_file(checkpoints / str(newest)))
    before = tree(workdir)
    capsys.readouterr()
    _cli.run(tg.command, tg.main, ["sample", "--run", "newest_corrupt", "--step", "latest", "--quick"])
    out, err = capsys.readouterr()
    assert "--- sample 1 (step 2) ---" in out
    assert re.fullmatch(
        r"warning: checkpoint: step 4 in '.*text_generation/newest_corrupt/checkpoints' is corrupt: \S+ does "
        r"not match its checksum; using step 2, the latest intact one\n",
        err,
    ), err
    predict = ["predict", "--run", "newest_corrupt", "--text", "great film"]
    _cli.run(classify_command.command, classify_command.main, predict)
    out, err = capsys.readouterr()
    assert "cell lstm (its only cell), checkpoint step 2;" in out
    assert re.fullmatch(
        r"warning: checkpoint: step 3 in '.*classify/newest_corrupt/lstm/checkpoints' is corrupt: \S+ does "
        r"not match its checksum; using step 2, the latest intact one\n",
        err,
    ), err
    assert tree(workdir) == before  # reading a run changes nothing in it


def python(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=folder, timeout=120
    )


def test_as_processes_parse_errors_huge_sizes_help_and_debug(tmp_path):
    # tyro's own parse error (drawn in a panel) becomes one line
    done = python(tmp_path, "-m", QS, "--steps", "abc")
    assert (done.returncode, done.stderr) == (2, "error: --steps: expected an int, got 'abc'\n")
    # a hidden size that would abort in XLA's allocator is refused before anything is allocated
    done = python(tmp_path, "-m", TG, "train", "--hidden-size", HUGE)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {FITS_MEMORY}")
    # --help still works, with the level's real defaults and the expected run time
    done = python(tmp_path, "-m", TG, "train", "--level", "char", "--help")
    assert done.returncode == 0 and "usage: python -m experiments.text_generation train" in done.stdout
    assert "(default: 3000)" in done.stdout and "35-40 min" in " ".join(done.stdout.split())
    # --debug shows the traceback
    done = python(tmp_path, "-m", QS, "--steps", "0", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr
    assert not (tmp_path / "results").exists()
