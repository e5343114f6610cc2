"""`experiments.text_generation`: a run killed by SIGKILL and resumed from the command line ends with the
parameters of an uninterrupted run; `sample` continues a prompt; `--help` shows each level's defaults;
bad input prints one line `error: ...`; WhatsApp exports become the message texts."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import text_generation as tg
from rnnjax.train import lm

ROOT = Path(__file__).resolve().parents[2]
RUNS = Path("results") / "text_generation"
WORDS = "the cat sat on a mat and the dog ran to the red door while a bird sang in the old tree".split()
# A char-level model small enough to train 30 steps in seconds; checkpoints at 10, 20 and 30.
TRAIN = [
    "train", "--level", "char", "--hidden-size", "16", "--num-layers", "1", "--embed-size", "8",
    "--batch-size", "8", "--seq-len", "16", "--steps", "30", "--eval-every", "10", "--save-every", "10",
    "--dropout", "0.1", "--sample-length", "5", "--no-progress",
]  # fmt: skip
KILL_AT = 15


def run_python(folder: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python ARGS` in `folder`, with the repository importable."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=folder, timeout=timeout
    )


def train_args(folder: Path, run: str, *extra: str) -> list[str]:
    corpus = folder / "corpus.txt"
    if not corpus.exists():
        rng = np.random.default_rng(0)
        corpus.write_text(" ".join(rng.choice(WORDS, 3000)) + "\n")
    return [*TRAIN, "--corpus", str(corpus), "--run", run, *extra]


def command_line(folder: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """`python -m experiments.text_generation ARGV` in `folder`."""
    return run_python(folder, "-m", "experiments.text_generation", *argv)


def leaves_equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)))


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The folder of an uninterrupted command-line run `results/text_generation/whole`."""
    folder = tmp_path_factory.mktemp("cli")
    done = command_line(folder, train_args(folder, "whole"))
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_a_killed_run_resumes_to_the_uninterrupted_result(whole):
    # The same command, with a fault injected after step 15 (checkpoint 10 written): SIGKILL, no clean-up.
    killed = run_python(whole, "-c", textwrap.dedent(f"""
        import os, signal
        from experiments import text_generation as tg
        from rnnjax.train import lm
        fit = lm.fit

        def kill(step, state):
            if step == {KILL_AT}:
                os.kill(os.getpid(), signal.SIGKILL)

        lm.fit = lambda *args, **kwargs: fit(*args, **kwargs, on_step=kill)
        tg.main(tg.parse({train_args(whole, "killed")!r}))
    """))  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    ckpts = whole / RUNS / "killed" / "checkpoints"
    assert sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) == [10]
    resumed = command_line(whole, train_args(whole, "killed", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, p_whole, _, _, s1 = lm.load(whole / RUNS / "whole", "latest")
    _, p_resumed, _, _, s2 = lm.load(whole / RUNS / "killed", "latest")
    assert s1 == s2 == 30
    assert leaves_equal(p_whole, p_resumed)
    assert not [p for p in ckpts.iterdir() if "tmp" in p.name]
    summary = (whole / RUNS / "killed" / "summary.md").read_text()
    assert "bigram baseline" in summary and "## Samples" in summary


def test_sample_command(whole, tmp_path, monkeypatch, capsys):
    shutil.copytree(whole / RUNS / "whole", tmp_path / RUNS / "trained")
    monkeypatch.chdir(tmp_path)
    sample = ["sample", "--run", "trained", "--prompt", "the c"]
    texts = tg.main(tg.parse([*sample, "--length", "12", "--num-samples", "2"]))
    assert len(texts) == 2 and all(t.startswith("the c") and len(t) == 17 for t in texts)
    assert "--- sample 2" in capsys.readouterr().out
    greedy = tg.main(tg.parse([*sample, "--length", "12", "--greedy", "--num-samples", "2"]))
    assert greedy[0] == greedy[1]  # argmax decoding: the seed does not matter
    quick = tg.main(tg.parse([*sample, "--quick"]))
    assert len(quick) == 1 and len(quick[0]) == len("the c") + tg.QUICK_LENGTH
    with pytest.raises(ValueError, match="length"):
        tg.main(tg.parse([*sample, "--length", "0"]))
    with pytest.raises(ValueError, match="temperature"):
        tg.main(tg.parse([*sample, "--temperature", "0"]))
    with pytest.raises(FileNotFoundError, match=r"^run: there is no run 'nowhere' of text_generation"):
        tg.main(tg.parse(["sample", "--run", "nowhere"]))


def test_bad_input_prints_one_line_error(tmp_path):
    done = command_line(tmp_path, ["sample", "--run", "nowhere", "--no-progress"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line, no traceback
    assert done.stderr.startswith("error: run: there is no run 'nowhere' of text_generation (no folder")


@pytest.mark.parametrize("level, steps, dropout", [("char", 3000, 0.0), ("word", 600, 0.5)])
def test_help_shows_the_defaults_of_the_level(level, steps, dropout, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        tg.parse(["train", "--level", level, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"--steps INT [^(]*\(default: {steps}\)", out)
    assert re.search(rf"--dropout FLOAT [^(]*\(default: {dropout}\)", out)
    assert tg.parse(["train", f"--level={level}"]).lm == lm.LMConfig.for_level(level)


def test_whatsapp_corpus_is_the_message_texts(tmp_path):
    chat = tmp_path / "chat.txt"
    chat.write_text(
        "12/03/2024, 21:14 - Messages and calls are end-to-end encrypted. Tap to learn more.\n"
        "12/03/2024, 21:15 - Ana: hello there\n"
        "12/03/2024, 21:16 - Ben: <Media omitted>\n"
        "12/03/2024, 21:17 - Ben: hi\n"
        "second line\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="ambiguous date order"):
        tg.read_corpus(tg.Train(corpus=str(chat), whatsapp=True))
    args = dict(corpus=str(chat), whatsapp=True, dayfirst=True)
    assert tg.read_corpus(tg.Train(**args)).text == "Ana: hello there\nBen: hi\nsecond line"
    assert tg.read_corpus(tg.Train(**args, authors=("Ana",))).text == "Ana: hello there"


def test_whatsapp_source_has_the_chat_prompt_and_the_parse_summary(tmp_path):
    chat = tmp_path / "chat.txt"
    chat.write_text(
        "12/03/2024, 21:15 - Ana: hello there\n"
        "12/03/2024, 21:16 - Ben: hi\n"
        "12/03/2024 21:17 Ben: a mangled timestamp\n"
        "13/03/2024, 08:00 - Ben: morning\n",
        encoding="utf-8",
    )
    source = tg.read_corpus(tg.Train(corpus=str(chat), whatsapp=True))
    assert source.text == "Ana: hello there\nBen: hi\nBen: morning"
    assert source.prompts == ("Ben: ",)  # the most frequent author
    assert "3 messages kept" in source.notes and "line 3:" in source.notes  # the unparsed line, by number
    book = tg.read_corpus(tg.Train(corpus="alice"))
    assert book.prompts == tg.PROMPTS["alice"] and book.notes == ""
