"""Train a word- or character-level recurrent language model on a book or a WhatsApp chat, then sample text.

    python -m experiments.text_generation train --corpus alice               # word-level LSTM
    python -m experiments.text_generation train --corpus tinyshakespeare --level char --minutes 19
    python -m experiments.text_generation train --corpus chat.txt --whatsapp --dayfirst --level char
    python -m experiments.text_generation train --run RUN --resume           # continue a stopped run
    python -m experiments.text_generation train --run RUN --resume --steps 1200   # ... to a new target
    python -m experiments.text_generation train --quick --run smoke          # a smoke run of seconds
    python -m experiments.text_generation sample --run RUN --prompt "alice was" --length 100 --temperature 0.8
    python -m experiments.text_generation sample --run RUN --greedy          # argmax decoding
    python -m experiments.text_generation train --level char --help          # the options, char defaults
    python -m experiments.text_generation train --coordinator HOST:PORT --num-processes 2 --process-id K
                                                  # one of 2 processes of a data-parallel run (K = 0, 1)

`train` tokenises the corpus (`--level word|char`), holds out its last `--valid-fraction` as one
contiguous block (for Alice: the end of chapter XI and chapter XII), builds the vocabulary on the rest,
and trains a language model with truncated BPTT (`rnnjax.train.lm.fit`): validation loss, perplexity and
bits per token in `metrics.jsonl`, checkpoints (last 3 and best) under `checkpoints/`. The model and
training options are the fields of `rnnjax.train.lm_config.LMConfig`, with the defaults of the level
(`LMConfig.for_level`). At the end it reports the add-k bigram baseline on the same positions
(`rnnjax.data.ngram`), prints samples and writes `summary.md`, `samples.txt`, `final.json` and
`loss.png`. `--minutes` caps the wall time (the run stops early, checkpointed, and `--resume` continues
it). `sample` continues a prompt from a trained run's best checkpoint.

Several processes (GPU nodes, hosts): start the same `train` command in each with `--coordinator
HOST:PORT --num-processes N --process-id K` (or the environment variables `JAX_COORDINATOR_ADDRESS`,
`JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`, or under Slurm / Open MPI none of them); the batch is split over the
devices of every process, process 0 writes the run folder and prints, and the processes check that they
were given the same settings and text. docs/distributed.md has the commands.

`--resume` starts from the run's saved settings (`command.json`: the corpus, its reading options and the
`LMConfig`), so `train --run RUN --resume` alone continues the run to its saved number of steps; only
`--steps`, `--minutes`, the evaluation, logging and checkpoint cadence (`RESUMABLE_FIELDS`), the sample
length and the progress bar may change, and other flags that differ from the saved run are refused with
the list of differences. A new run refuses an existing `--run` unless `--overwrite` is given.

Prompts (the report's samples and `sample`'s default): the book's own for `alice` and
`tinyshakespeare`, the most frequent author's name prefix (`"NAME: "`) for a WhatsApp chat, and the
text's first word for another file. A WhatsApp corpus also prints its parse summary (messages, authors,
lines left out, unparsed lines with their numbers), which `summary.md` repeats.

Outputs in `results/text_generation/<run>/`. Expected: the word model on Alice reaches a validation
perplexity below the bigram baseline's (measured runs and times: the README's text section).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Annotated, Literal, NamedTuple, Union

import matplotlib
import tyro

from rnnjax import results
from rnnjax.command import cli as _cli
from rnnjax.command import plots as _plots
from rnnjax.command import runs
from rnnjax.data import corpora, ngram, whatsapp
from rnnjax.data import text as text_lib
from rnnjax.train import distributed, lm, parallel
from rnnjax.train.lm_config import LEVEL_DEFAULTS, RESUMABLE_FIELDS, LMConfig
from rnnjax.train.loop import MetricsLog

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPERIMENT = "text_generation"  # outputs in results/<EXPERIMENT>/<run>/
DEFAULT_LEVEL = "word"
COMMAND_FILE = "command.json"  # a run's `Train` settings (the effective LMConfig and the corpus options)
# The books' own prompts (tokenised as in training, so lowercased for a word model).
PROMPTS = {"alice": ("Alice was", "The Queen said"), "tinyshakespeare": ("ROMEO:", "The ")}
FALLBACK_PROMPT = "The "  # `sample` of a run saved before prompts were recorded
# Train fields a resumed run may change (with the LMConfig's RESUMABLE_FIELDS).
RESUMABLE_OPTIONS = ("minutes", "resume", "overwrite", "sample_length", "run", "progress", "coordinator",
                     "num_processes", "process_id", "coordinator_timeout")  # fmt: skip
# How a run is spread over processes: given afresh to each command, never saved with the run.
PROCESS_OPTIONS = {"coordinator": None, "num_processes": None, "process_id": None}
LEAKAGE_PERPLEXITY = 20.0  # a word-level validation perplexity below this on a book is suspicious
# --quick: a tiny model for a few steps on the start of the text.
QUICK = dict(hidden_size=32, num_layers=1, batch_size=16, seq_len=32, steps=60)
QUICK_CHARS = 60_000
QUICK_LENGTH = 20  # tokens per sample


@dataclasses.dataclass(frozen=True)
class Train:
    """Train a language model. Defaults shown are those of the --level given (word if none); with --resume
    --run RUN, those of the saved run. Expected run time on a 2-core CPU: word level on Alice (600 steps)
    about 2-3 min; char level (3000 steps) about 35-40 min (--minutes caps it); --quick about 10 s."""

    lm: LMConfig = LMConfig.for_level(DEFAULT_LEVEL)
    corpus: str = "alice"  # "alice", "tinyshakespeare" or the path of a UTF-8 text file
    whatsapp: bool = False  # the corpus is a WhatsApp "Export chat" .txt: train on the message texts
    authors: tuple[str, ...] = ()  # WhatsApp: keep only these authors (none given: everyone)
    dayfirst: bool | None = None  # WhatsApp: date order when every date fits both (e.g. 03/04/2024)
    decode_errors: Literal["strict", "replace"] = "strict"  # undecodable bytes: refuse, or use U+FFFD
    minutes: float | None = None  # stop (checkpointed) after this much training wall time
    resume: bool = False  # continue the run's latest checkpoint, with the run's saved settings
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    sample_length: int | None = None  # tokens per reported sample; None: 300 chars or 60 words
    run: str | None = None  # results/text_generation/<run>; None: a timestamp
    quick: bool = False  # a smoke run of seconds: a 1 x 32 model, 60 steps, the first 60k characters
    progress: bool = True  # show the training progress bar
    coordinator: str | None = None  # several processes: HOST:PORT of process 0 (docs/distributed.md)
    num_processes: int | None = None  # several processes: how many (each one runs this command)
    process_id: int | None = None  # several processes: this one's id, 0 .. num_processes - 1 (0 writes)
    coordinator_timeout: int = distributed.DEFAULT_TIMEOUT_S  # several processes: seconds to wait for all

    def __post_init__(self):
        distributed.settings(self.coordinator, self.num_processes, self.process_id)  # refuses bad values
        _cli.check_ints(self, "coordinator_timeout")
        m = self.minutes
        if m is not None and not (
            isinstance(m, int | float) and not isinstance(m, bool) and 0 < m < math.inf
        ):
            raise ValueError(f"minutes: expected None or a finite number of minutes > 0, got {m!r}")
        n = self.sample_length
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"sample_length: expected None or an int >= 1, got {n!r}")
        if self.resume and self.run is None:
            raise ValueError("resume: expected the --run to continue, got no --run")


@dataclasses.dataclass(frozen=True)
class Sample:
    """Generate text from a trained run (about 5 s)."""

    run: str  # the trained run: results/text_generation/<run>
    prompt: str = ""  # default: the run's first prompt (its book's, its chat's most frequent author, ...)
    length: int = 200  # tokens to generate (characters or words)
    temperature: float = 0.8  # sampling temperature (ignored with --greedy)
    top_k: int | None = None  # sample among the k most likely tokens (ignored with --greedy)
    top_p: float | None = None  # nucleus: the most likely tokens of total probability p (not --greedy)
    greedy: bool = False  # argmax decoding (the sampling options are then ignored)
    allow_unk: bool = False  # let the model generate the unknown token <unk> (left out by default)
    step: str = "best"  # "best", "latest" or a step number
    num_samples: int = 1
    seed: int = 0
    quick: bool = False  # a smoke run of seconds: one sample of 20 tokens
    progress: bool = True  # accepted as by every command (sampling is one compiled call, with no bar)

    def __post_init__(self):
        results.check_run_name(self.run)
        for name in ("length", "num_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if self.step not in ("best", "latest") and not self.step.isdigit():
            raise ValueError(f"step: expected 'best', 'latest' or a step number, got {self.step!r}")


class Source(NamedTuple):
    """The training text of a `Train` and what goes with it."""

    text: str
    prompts: tuple[str, ...]  # the report's prompts (the first is `sample`'s default)
    notes: str  # shown before training and in summary.md (a WhatsApp export's parse summary), or ""


def command(argv: list[str]):
    """The command-line type: subcommands `train` and `sample`. `train`'s defaults are
    `LMConfig.for_level(level)` for the `--level` in `argv`, so `--help` shows that level's defaults; with
    `--resume --run RUN`, the settings saved by that run, so only the flags given change them."""
    defaults = None
    if argv[:1] == ["train"]:  # refuses a resumed run without its command.json, or with an edited one
        defaults = _cli.saved_config(
            argv, EXPERIMENT, COMMAND_FILE, keys=("lm",), build=train_from_json, required=True
        )
    if defaults is None:
        level = _cli.flag_value(argv, "--level")
        defaults = Train(lm=LMConfig.for_level(level if level in LEVEL_DEFAULTS else DEFAULT_LEVEL))
    subcommands = Union[  # noqa: UP007 (tyro reads the Annotated members of a typing.Union)
        Annotated[Train, tyro.conf.subcommand("train", default=defaults)],
        Annotated[Sample, tyro.conf.subcommand("sample")],
    ]
    return Annotated[subcommands, tyro.conf.OmitArgPrefixes]


def parse(argv: list[str]) -> Train | Sample:
    """The command line `argv` (without the program name) as a `Train` or `Sample`."""
    return _cli.parse(command, argv)


def train_from_json(saved: dict) -> Train:
    """The `Train` of a run's `command.json` (its "prompts" entry and unknown keys are ignored); a value of
    another type than its field's is refused (TypeError, ValueError naming the field)."""
    if not isinstance(saved.get("lm"), dict):
        raise TypeError(f"lm: expected a JSON object of the model's settings, got {saved.get('lm')!r}")
    names = {f.name for f in dataclasses.fields(Train)} - {"lm"}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names}
    return Train(lm=LMConfig.from_dict(saved["lm"]), **values)


def read_corpus(args: Train) -> Source:
    """The training text: a registered corpus or file, or the messages of a WhatsApp export (with its parse
    summary and its most frequent author's name prefix as the prompt)."""
    if args.whatsapp:
        with _cli.named("corpus", "name_or_path", "path"):
            path = corpora.path(args.corpus)
        chat = whatsapp.read(
            path,
            dayfirst=args.dayfirst,
            authors=list(args.authors) or None,
            drop_system=True,
            drop_media=True,
            drop_deleted=True,
            errors=args.decode_errors,
        )
        text = whatsapp.to_text(chat.messages, separator="\n", with_authors=True)
        return Source(text, (whatsapp.default_prompt(chat.messages),), whatsapp.describe(chat))
    with _cli.named("corpus", "name_or_path", "path"):
        text = corpora.load(args.corpus, errors=args.decode_errors)
    first = text.split(maxsplit=1)[:1] or [FALLBACK_PROMPT]
    return Source(text, PROMPTS.get(args.corpus, (first[0],)), "")


def check_resume(args: Train) -> None:
    """Refuse a resumed command line whose settings differ from the run's saved ones other than in
    `RESUMABLE_FIELDS` and `RESUMABLE_OPTIONS`, listing every difference."""
    path = runs.open_run(EXPERIMENT, args.run, resume=True) / COMMAND_FILE
    if not path.exists():
        raise ValueError(
            f"resume: run {args.run!r} has no {COMMAND_FILE} ({str(path)!r}: the settings it was trained "
            f"with), so it cannot be continued with its own settings; start a new --run"
        )
    saved = runs.read_json(path, ("lm",), what=f"the {COMMAND_FILE} of a {EXPERIMENT} run")
    with runs.from_file(path):
        saved = train_from_json(saved)
    pairs = [(f"lm.{k}", getattr(saved.lm, k), getattr(args.lm, k)) for k in LMConfig.__dataclass_fields__]
    pairs += [(k, getattr(saved, k), getattr(args, k)) for k in Train.__dataclass_fields__ if k != "lm"]
    safe = {*RESUMABLE_OPTIONS, *(f"lm.{k}" for k in RESUMABLE_FIELDS)}
    changed = [
        f"{k.removeprefix('lm.')}: saved {a!r}, given {b!r}" for k, a, b in pairs if k not in safe and a != b
    ]
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in (*RESUMABLE_FIELDS, "minutes", "sample_length"))
        raise ValueError(
            f"resume: run {args.run!r} was trained with other settings ({'; '.join(changed)}); a resumed run "
            f"may change only {flags} and --no-progress; drop the other flags, or start a new --run"
        )


def bigram_baseline(corpus: lm.Corpus, config: LMConfig) -> dict:
    """Add-k bigram perplexity on exactly the validation positions `lm.evaluate` scores."""
    k, scores = ngram.choose_k(corpus.train, len(corpus.vocab))
    model = ngram.fit(corpus.train, len(corpus.vocab), k)
    rows = text_lib.stream_rows(corpus.valid, config.batch_size)
    ppl = ngram.perplexity(model, rows[:, :-1], rows[:, 1:])
    return {"k": k, "perplexity": ppl, "loss": math.log(ppl), "k_search": scores, "tokens": rows[:, 1:].size}


def plot(run: Path) -> None:
    """loss.png: training and validation loss against the step, from `metrics.jsonl`."""
    records = MetricsLog(run / "metrics.jsonl").read()
    tr = [r for r in records if r["split"] == "train" and r.get("loss") is not None]
    va = [r for r in records if r["split"] == "valid"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in tr], [r["loss"] for r in tr], label="train (mean over log window)", lw=1)
    ax.plot([r["step"] for r in va], [r["loss"] for r in va], "o-", label="validation", ms=3)
    ax.set_xlabel("step (optimiser updates)")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title("How far the model has learnt the text: loss per step")
    ax.grid(alpha=0.3)
    ax.legend()
    _plots.save(fig, run / "loss.png")


def train(args: Train):
    if distributed.settings(args.coordinator, args.num_processes, args.process_id) is not None:
        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, timeout=args.coordinator_timeout
        )
    main = distributed.is_main()  # process 0 writes and prints; in one process, always
    if args.resume:
        distributed.on_main(lambda: check_resume(args), "checking the resumed run")
    level_defaults = LMConfig.for_level(args.lm.level)
    config = _cli.quick(args.lm, QUICK, level_defaults) if args.quick and not args.resume else args.lm

    def read() -> tuple[Source, lm.Corpus]:  # every process reads its own copy of the text
        parallel.check_batch_size(parallel.run_mesh(config.devices), config.batch_size)  # before any output
        source = read_corpus(args)
        return source, lm.prepare(source.text[: QUICK_CHARS if args.quick else None], config)

    source, corpus = distributed.together(read, "reading the corpus")  # fit() checks a resumed run's
    distributed.check_same(  # vocabulary against it
        {"settings": config.to_dict(), "text": _digest(corpus)}, "settings and text (--corpus, lm flags)"
    )
    if source.notes and main:
        print(source.notes)

    def open_run() -> str:
        run = _cli.run_folder(EXPERIMENT, args, resume=args.resume)
        if args.resume:  # every check before anything is written: a refused resume changes nothing
            lm.check_resumable(config, corpus, run)
        kept = dataclasses.replace(args, lm=config, resume=False, overwrite=False, **PROCESS_OPTIONS)
        results.write_json(run / COMMAND_FILE, dict(results.to_jsonable(kept), prompts=source.prompts))
        return str(run)

    run = Path(distributed.on_main(open_run, "creating the run folder"))
    if main:
        print(
            f"{args.corpus}: {config.level}-level, {corpus.train.size:,} training and {corpus.valid.size:,} "
            f"validation tokens, vocabulary {len(corpus.vocab):,}; run folder {run}"
        )
        if distributed.process_count() > 1:
            print(distributed.describe())
    start = time.perf_counter()
    time_limit = None if args.minutes is None else args.minutes * 60
    result = lm.fit(config, corpus, run, resume=args.resume, time_limit=time_limit, progress=args.progress)
    if main:
        print(result.message)
    if result.status == "diverged":
        raise _cli.RunFailed(result.message)
    if main:
        report(args, config, corpus, source, result.message, run, time.perf_counter() - start)
    return result


def _digest(corpus: lm.Corpus) -> str:
    """SHA-256 of the token streams and the vocabulary (processes of one run must hold the same)."""
    h = hashlib.sha256()
    for part in (corpus.train.tobytes(), corpus.valid.tobytes(), "\n".join(corpus.vocab.tokens).encode()):
        h.update(part)
    return h.hexdigest()


def report(
    args: Train, config: LMConfig, corpus: lm.Corpus, source: Source, message: str, run: Path, wall: float
) -> None:
    """summary.md, samples.txt, final.json and loss.png of a finished (or stopped) run."""
    plot(run)
    model, params, vocab, _, step = lm.load(run, "best")
    valid = lm.evaluate(model, params, corpus.valid, batch_size=config.batch_size, seq_len=config.seq_len)
    base = bigram_baseline(corpus, config)
    length = args.sample_length or (QUICK_LENGTH if args.quick else 300 if config.level == "char" else 60)
    texts = [
        (f"{prompt!r}, {name}", lm.sample_text(model, params, vocab, config, prompt, length, seed=0, **opts))
        for prompt in source.prompts
        for name, opts in (("greedy", dict(greedy=True)), ("T=0.8", dict(temperature=0.8)))
    ]
    lines = [
        f"# text_generation {run.name}",
        "",
        f"- corpus: {args.corpus} ({config.level}-level), {corpus.train.size:,} train / "
        f"{corpus.valid.size:,} validation tokens (last {config.valid_fraction:.0%}), "
        f"vocabulary {len(vocab):,}",
        f"- model: {config.cell}, {config.num_layers} x {config.hidden_size}, embedding {config.embed_size}, "
        f"dropout {config.dropout}; {config.optimizer} lr {config.learning_rate} ({config.schedule}), clip "
        f"{config.clip_norm}, batch {config.batch_size} x {config.seq_len}",
        f"- {message}; wall time this invocation {wall / 60:.1f} min",
        f"- best checkpoint: step {step}: validation loss {valid['loss']:.4f} nats/token, perplexity "
        f"{valid['perplexity']:.2f}, {valid['bits_per_token']:.3f} bits/token ({valid['tokens']:,} tokens)",
        f"- add-k bigram baseline on the same positions (k = {base['k']:g}, chosen on the training tail): "
        f"loss {base['loss']:.4f}, perplexity {base['perplexity']:.2f}",
    ]
    if config.level == "word" and valid["perplexity"] < LEAKAGE_PERPLEXITY:
        lines.append(
            f"- WARNING: validation perplexity {valid['perplexity']:.2f} < {LEAKAGE_PERPLEXITY:g} is "
            f"suspiciously low for a word model on one book: check for leakage between the splits"
        )
    if source.notes:
        lines += ["", "## Corpus", "", source.notes]
    lines += ["", "## Samples", ""]
    for name, text in texts:
        lines += [f"### {name}", "", "```", text, "```", ""]
    summary = "\n".join(lines)
    results.atomic_write_text(run / "summary.md", summary + "\n")
    results.atomic_write_text(run / "samples.txt", "\n\n".join(f"[{n}]\n{t}" for n, t in texts) + "\n")
    results.write_json(
        run / "final.json", {"valid": valid, "best_step": step, "bigram": base, "wall_seconds": wall}
    )
    print(summary)


def saved_prompts(folder: Path) -> list[str]:
    """The prompts a run recorded in its command.json (`FALLBACK_PROMPT` for a run saved before them)."""
    path = folder / COMMAND_FILE
    if not path.exists():
        return [FALLBACK_PROMPT]
    prompts = runs.read_json(path, what=f"the {COMMAND_FILE} of a {EXPERIMENT} run").get("prompts")
    if prompts is None:
        return [FALLBACK_PROMPT]
    if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) for p in prompts)):
        with runs.from_file(path):
            raise ValueError(f"prompts: expected a list of one or more texts, got {prompts!r}")
    return prompts


def sample(args: Sample) -> list[str]:
    which: str | int = int(args.step) if args.step.isdigit() else args.step
    folder = _cli.trained_run(EXPERIMENT, args.run, holds=("checkpoints",))
    prompt = args.prompt or saved_prompts(folder)[0]
    model, params, vocab, config, step = lm.load(folder, which)  # warns if it skips a corrupt step
    options = (  # greedy decoding takes no sampling options
        dict(greedy=True, allow_unk=args.allow_unk)
        if args.greedy
        else dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, allow_unk=args.allow_unk)
    )
    out = []
    for i in range(1 if args.quick else args.num_samples):
        length = QUICK_LENGTH if args.quick else args.length
        out.append(
            lm.sample_text(model, params, vocab, config, prompt, length, seed=args.seed + i, **options)
        )
        print(f"--- sample {i + 1} (step {step}) ---\n{out[-1]}")
    return out


def main(args: Train | Sample):
    return train(args) if isinstance(args, Train) else sample(args)


if __name__ == "__main__":
    _cli.run(command, main)
