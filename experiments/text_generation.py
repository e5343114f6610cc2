"""Train a word- or character-level recurrent language model on a book or a WhatsApp chat, then sample text.

    python -m experiments.text_generation train --corpus alice               # word-level LSTM; ~5 min
    python -m experiments.text_generation train --corpus tinyshakespeare --level char --minutes 18
    python -m experiments.text_generation train --corpus chat.txt --whatsapp --level char
    python -m experiments.text_generation train --run RUN --resume           # continue a stopped run
    python -m experiments.text_generation sample --checkpoint results/text_generation/RUN \\
        --prompt "alice was" --length 100 --temperature 0.8

`train` tokenises the corpus (`--level word|char`), holds out its last `--valid-fraction` as one
contiguous block (for Alice: the end of chapter XI and chapter XII), builds the vocabulary on the rest,
and trains `rnnjax.models.LanguageModel` with truncated BPTT (`rnnjax.train.lm.fit`): validation loss,
perplexity and bits per token in `metrics.jsonl`, checkpoints (last 3 and best) under `checkpoints/`.
At the end it reports the add-k bigram baseline on the same split (`rnnjax.data.ngram`), prints samples
and writes `summary.md`, `samples.txt` and `loss.png`. `--minutes` caps the wall time (the run then stops
early, checkpointed, and `--resume` continues it).

Outputs in `results/text_generation/<run>/`. Expected (2-core CPU): `train --corpus alice` reaches a
validation perplexity below the bigram baseline; a char-level LSTM on tinyshakespeare reaches ≈ 1.5-1.6
nats/char in 20 minutes (see the README for measured numbers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Literal

import matplotlib
import tyro

from rnnjax import generate, results
from rnnjax.data import corpora, ngram, whatsapp
from rnnjax.train import lm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Defaults that depend on the level (used for every option left unset).
LEVEL_DEFAULTS = {
    "char": dict(
        lowercase=False,
        min_count=1,
        hidden_size=256,
        num_layers=2,
        embed_size=64,
        dropout=0.0,
        batch_size=64,
        seq_len=100,
        learning_rate=3e-3,
        steps=3000,
    ),
    "word": dict(
        lowercase=True,
        min_count=2,
        hidden_size=256,
        num_layers=1,
        embed_size=128,
        dropout=0.5,
        batch_size=32,
        seq_len=35,
        learning_rate=3e-3,
        steps=600,
    ),
}
PROMPTS = {"char": ("ROMEO:", "The "), "word": ("alice was", "the queen said")}
LEAKAGE_PERPLEXITY = 20.0  # a word-level validation perplexity below this on a book is suspicious


@dataclasses.dataclass(frozen=True)
class Train:
    """Train a language model."""

    corpus: str = "alice"  # "alice", "tinyshakespeare" or the path of a UTF-8 text file
    whatsapp: bool = False  # the corpus is a WhatsApp "Export chat" .txt: train on the message texts
    authors: tuple[str, ...] = ()  # WhatsApp: keep only these authors (default: everyone)
    dayfirst: bool | None = None  # WhatsApp: date order when every date fits both (e.g. 03/04/2024)
    decode_errors: Literal["strict", "replace"] = "strict"
    level: Literal["char", "word"] = "word"
    lowercase: bool | None = None
    strip_punctuation: bool = False
    min_count: int | None = None
    max_vocab: int | None = None
    valid_fraction: float = 0.1
    cell: Literal["simple", "lstm", "gru"] = "lstm"
    activation: Literal["tanh", "relu", "linear"] = "tanh"  # of the simple cell
    hidden_size: int | None = None
    num_layers: int | None = None
    embed_size: int | None = None  # 0 for one-hot inputs
    dropout: float | None = None
    carry_reset: float = 0.05  # per row and step, the chance of restarting from zero carries
    steps: int | None = None
    batch_size: int | None = None
    seq_len: int | None = None
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    learning_rate: float | None = None
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup_steps: int = 0
    clip_norm: float | None = 5.0
    seed: int = 0
    eval_every: int = 100
    checkpoint_every: int = 200
    keep_last: int = 3
    devices: int | None = None  # local devices to split the batch across (default: all)
    minutes: float | None = None  # stop (checkpointed) after this much training wall time
    resume: bool = False
    run: str | None = None  # results/text_generation/<run>; default: a timestamp
    sample_length: int | None = None  # tokens per printed sample (default: 300 chars or 60 words)
    quick: bool = False  # a seconds-long smoke run on the first 60k characters

    def config(self) -> lm.LMConfig:
        d = dict(LEVEL_DEFAULTS[self.level])
        for name in d:
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        if d["embed_size"] == 0:
            d["embed_size"] = None
        if self.quick:
            d.update(hidden_size=32, num_layers=1, batch_size=16, seq_len=32, steps=60)
        every = min(self.eval_every, d["steps"]), min(self.checkpoint_every, d["steps"])
        return lm.LMConfig(
            level=self.level,
            strip_punctuation=self.strip_punctuation,
            max_vocab=self.max_vocab,
            valid_fraction=self.valid_fraction,
            cell=self.cell,
            activation=self.activation,
            carry_reset=self.carry_reset,
            optimizer=self.optimizer,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            clip_norm=self.clip_norm,
            seed=self.seed,
            eval_every=every[0],
            checkpoint_every=every[1],
            keep_last=self.keep_last,
            devices=self.devices,
            **d,
        )


@dataclasses.dataclass(frozen=True)
class Sample:
    """Generate text from a trained run."""

    checkpoint: Path  # a run folder written by `train` (or its checkpoints/ folder)
    prompt: str = ""  # default: a level-appropriate prompt
    length: int = 200  # tokens to generate (characters or words)
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    step: str = "best"  # "best", "latest" or a step number
    num_samples: int = 1
    seed: int = 0


def read_corpus(args: Train) -> str:
    """The training text: a registered corpus or file, or the messages of a WhatsApp export."""
    if args.whatsapp:
        messages = whatsapp.parse(
            corpora.path(args.corpus),
            dayfirst=args.dayfirst,
            authors=list(args.authors) or None,
            drop_system=True,
            drop_media=True,
            drop_deleted=True,
        )
        return whatsapp.to_text(messages, separator="\n", with_authors=True)
    return corpora.load(args.corpus, errors=args.decode_errors)


def bigram_baseline(corpus: lm.Corpus, config: lm.LMConfig) -> dict:
    """Add-k bigram perplexity on exactly the validation positions `lm.evaluate` scores."""
    k, scores = ngram.choose_k(corpus.train, len(corpus.vocab))
    model = ngram.fit(corpus.train, len(corpus.vocab), k)
    rows = corpus.valid[: (corpus.valid.size // config.batch_size) * config.batch_size]
    rows = rows.reshape(config.batch_size, -1)
    ppl = ngram.perplexity(model, rows[:, :-1], rows[:, 1:])
    return {"k": k, "perplexity": ppl, "loss": math.log(ppl), "k_search": scores, "tokens": rows[:, 1:].size}


def plot(run: Path) -> None:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    tr = [r for r in records if r["split"] == "train" and r.get("loss") is not None]
    va = [r for r in records if r["split"] == "valid"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in tr], [r["loss"] for r in tr], label="train (mean over log window)", lw=1)
    ax.plot([r["step"] for r in va], [r["loss"] for r in va], "o-", label="validation", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend()
    results.save_figure(fig, run / "loss.png")
    plt.close(fig)


def samples(model, params, vocab, config: lm.LMConfig, length: int, seed: int = 0) -> list[tuple[str, str]]:
    out = []
    for prompt in PROMPTS[config.level]:
        for name, opts in (("greedy", dict(greedy=True)), ("T=0.8", dict(temperature=0.8))):
            text = generate.sample_text(
                model,
                params,
                vocab,
                prompt,
                length,
                level=config.level,
                lowercase=config.lowercase,
                strip_punctuation=config.strip_punctuation,
                seed=seed,
                include_prompt=True,
                **opts,
            )
            out.append((f"{prompt!r}, {name}", text))
    return out


def train(args: Train) -> lm.FitResult:
    config = args.config()
    text = read_corpus(args)
    if args.quick:
        text = text[:60_000]
    run = Path("results") / "text_generation" / (args.run or time.strftime("%Y%m%d-%H%M%S"))
    corpus = lm.prepare(text, config)  # fit() checks a resumed run's saved vocabulary against it
    print(
        f"{args.corpus}: {config.level}-level, {corpus.train.size:,} training and {corpus.valid.size:,} "
        f"validation tokens, vocabulary {len(corpus.vocab):,}; run folder {run}"
    )
    start = time.perf_counter()
    time_limit = None if args.minutes is None else args.minutes * 60
    result = lm.fit(config, corpus, run, resume=args.resume, time_limit=time_limit)
    wall = time.perf_counter() - start
    print(result.message)
    if result.status == "diverged":
        print(f"error: {result.message}", file=sys.stderr)
        sys.exit(1)
    report(args, config, corpus, result, wall)
    return result


def report(args: Train, config: lm.LMConfig, corpus: lm.Corpus, result: lm.FitResult, wall: float) -> None:
    run = result.run
    plot(run)
    model, params, vocab, _, step = lm.load(run, "best")
    valid = lm.evaluate(model, params, corpus.valid, batch_size=config.batch_size, seq_len=config.seq_len)
    base = bigram_baseline(corpus, config)
    length = args.sample_length or (300 if config.level == "char" else 60)
    texts = samples(model, params, vocab, config, length)
    lines = [
        f"# text_generation {run.name}",
        "",
        f"- corpus: {args.corpus} ({config.level}-level), {corpus.train.size:,} train / "
        f"{corpus.valid.size:,} "
        f"validation tokens (last {config.valid_fraction:.0%}), vocabulary {len(vocab):,}",
        f"- model: {config.cell}, {config.num_layers} x {config.hidden_size}, embedding {config.embed_size}, "
        f"dropout {config.dropout}; {config.optimizer} lr {config.learning_rate} ({config.schedule}), clip "
        f"{config.clip_norm}, batch {config.batch_size} x {config.seq_len}",
        f"- {result.message}; wall time this invocation {wall / 60:.1f} min",
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


def sample(args: Sample) -> list[str]:
    which: str | int = int(args.step) if args.step.isdigit() else args.step
    model, params, vocab, config, step = lm.load(args.checkpoint, which)
    if not isinstance(args.num_samples, int) or args.num_samples < 1:
        raise ValueError(f"num_samples: expected an int >= 1, got {args.num_samples!r}")
    prompt = args.prompt or PROMPTS[config.level][0]
    out = []
    for i in range(args.num_samples):
        text = generate.sample_text(
            model,
            params,
            vocab,
            prompt,
            args.length,
            level=config.level,
            lowercase=config.lowercase,
            strip_punctuation=config.strip_punctuation,
            seed=args.seed + i,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            greedy=args.greedy,
            include_prompt=True,
        )
        out.append(text)
        print(f"--- sample {i + 1} (step {step}) ---\n{text}")
    return out


def main(argv: list[str] | None = None):
    args = tyro.extras.subcommand_cli_from_dict({"train": Train, "sample": Sample}, args=argv)
    return train(args) if isinstance(args, Train) else sample(args)


if __name__ == "__main__":
    main()
