"""Bad input to every public function of `rnnjax.data` is refused at once, by a message that names the
argument, what was given and what was expected (issue 12): one row of `BAD_INPUTS` per input.

Each row is (id, call, exception type, pattern the message must match). `call` takes the `files` fixture
(paths of small files written here) so that file readers get the same treatment. The rows include inputs
that used to be accepted silently (a truthy "no" acting as True, `seq_len=0` giving empty batches, NUL
bytes read as CSV text) and inputs that used to fail deep inside NumPy or json with no argument named.
"""

import re

import numpy as np
import pytest

from rnnjax.data import corpora, labelled, ngram, text, whatsapp
from rnnjax.data.vocabulary import Vocabulary

LABELS = '{"format": "rnnjax.data.labelled.LabelSet"'  # start of a LabelSet file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    paths = {
        "chat": ("chat.txt", b"31/12/2020, 21:15 - Alice: hi\n01/01/2021, 00:05 - Bob: yes\n"),
        "nul_csv": ("nul.csv", b"text,label\n\x00\x01,1\n"),
        "csv": ("ok.csv", b"text,label\nfine,1\n"),
    }
    out = {"folder": folder}
    for key, (name, data) in paths.items():
        out[key] = folder / name
        out[key].write_bytes(data)
    return out


ROWS = text.stream_rows(np.arange(40), 2)  # <int32>[2, 20]
XS, YS = np.zeros((4, 2), np.int32), np.zeros(4, np.int32)
V = Vocabulary.build("abc")
MODEL = ngram.fit(np.arange(10) % 3, 3, 0.1)
IDS = np.arange(100) % 3

BAD_INPUTS = [
    # ---- text: booleans accept only booleans
    ("normalize lowercase='yes'", lambda f: text.normalize("Ab", lowercase="yes"), TypeError,
     r"lowercase must be True or False, got 'yes' \(str\)"),
    ("normalize strip_punctuation=1", lambda f: text.normalize("A,b", strip_punctuation=1), TypeError,
     r"strip_punctuation must be True or False, got 1 \(int\)"),
    ("normalize collapse_whitespace='no'", lambda f: text.normalize("A  b", collapse_whitespace="no"),
     TypeError, r"collapse_whitespace must be True or False, got 'no' \(str\)"),
    ("tokenize lowercase=None", lambda f: text.tokenize("Ab", "char", lowercase=None), TypeError,
     r"lowercase must be True or False, got None \(NoneType\)"),
    ("normalize text=None", lambda f: text.normalize(None), TypeError, r"text must be a str, got NoneType"),
    ("tokenize level=None", lambda f: text.tokenize("ab", None), ValueError,
     r"level: expected one of \('char', 'word'\), got None"),
    # ---- text: split sizes
    ("split_sizes n=-1", lambda f: text.split_sizes(-1), ValueError,
     r"n must be an int >= 0 \(a number of tokens\), got -1"),
    ("split_sizes n='10'", lambda f: text.split_sizes("10"), ValueError, r"n must be an int >= 0 .*got '10'"),
    ("split_sizes n=2.5", lambda f: text.split_sizes(2.5), ValueError, r"n must be an int >= 0 .*got 2.5"),
    ("split_sizes n=True", lambda f: text.split_sizes(True), ValueError, r"n must be an int >= 0 .*got True"),
    ("split valid_fraction=nan", lambda f: text.split(np.arange(10), valid_fraction=float("nan")), ValueError,
     r"valid_fraction must be a number in \[0, 1\), got nan"),
    ("split ids floats", lambda f: text.split(np.ones(10)), TypeError,
     r"ids must be integers, got dtype float64"),
    # ---- text: window batches
    ("window_batches shuffle='no'", lambda f: text.window_batches(XS, YS, 2, shuffle="no", seed=0), TypeError,
     r"shuffle must be True or False, got 'no' \(str\)"),
    ("window_batches drop_last='no'", lambda f: text.window_batches(XS, YS, 3, shuffle=False, drop_last="no"),
     TypeError, r"drop_last must be True or False, got 'no' \(str\)"),
    ("window_batches seed='x'", lambda f: text.window_batches(XS, YS, 2, seed="x"), TypeError,
     r"seed must be None or an int >= 0, got 'x' \(str\)"),
    ("window_batches seed=1.5", lambda f: text.window_batches(XS, YS, 2, seed=1.5), TypeError,
     r"seed must be None or an int >= 0, got 1.5 \(float\)"),
    ("window_batches seed=-1", lambda f: text.window_batches(XS, YS, 2, seed=-1), ValueError,
     r"seed must be None or an int >= 0, got -1"),
    ("window_batches batch_size=0", lambda f: text.window_batches(XS, YS, 0, seed=0), ValueError,
     r"batch_size must be an int >= 1, got 0"),
    ("sliding_windows seq_len='3'", lambda f: text.sliding_windows(np.arange(10), "3"), ValueError,
     r"seq_len must be an int >= 1, got '3'"),
    # ---- text: stream batches
    ("stream_batch seq_len=0", lambda f: text.stream_batch(ROWS, 0, 0), ValueError,
     r"seq_len must be an int >= 1, got 0"),
    ("stream_batch k=1.5", lambda f: text.stream_batch(ROWS, 1.5, 3), TypeError,
     r"k must be an int \(a batch index\), got 1.5 \(float\)"),
    ("stream_batch k=True", lambda f: text.stream_batch(ROWS, True, 3), TypeError,
     r"k must be an int \(a batch index\), got True \(bool\)"),
    ("stream_batch k=-1", lambda f: text.stream_batch(ROWS, -1, 3), ValueError,
     r"k: expected 0 <= k \* seq_len < row_len - 1 = 19, got k=-1"),
    ("stream_batch rows 1-D", lambda f: text.stream_batch(np.arange(10), 0, 3), ValueError,
     r"rows must be <int>\[B, row_len\] from stream_rows, got shape \(10,\) dtype int64"),
    ("stream_batch rows floats", lambda f: text.stream_batch(np.zeros((2, 10)), 0, 3), ValueError,
     r"rows must be <int>\[B, row_len\] from stream_rows, got shape \(2, 10\) dtype float64"),
    ("num_stream_batches ids=True", lambda f: text.num_stream_batches(True, 1, 1), ValueError,
     r"ids must be 1-D <int>\[n\], got shape \(\)"),
    # ---- vocabulary (Vocabulary.load's files: tests/data/test_vocabulary.py)
    ("Vocabulary.encode 5", lambda f: V.encode(5), TypeError,
     r"tokens must be an iterable of str, got int 5"),
    ("Vocabulary.decode floats", lambda f: V.decode([0.5]), TypeError,
     r"ids must be integers, got dtype float64"),
    ("Vocabulary.build min_count=0", lambda f: Vocabulary.build("ab", min_count=0), ValueError,
     r"min_count must be an int >= 1, got 0"),
    # ---- labelled
    ("labelled.tokenize lowercase='yes'", lambda f: labelled.tokenize(["Ab"], lowercase="yes"), TypeError,
     r"lowercase must be True or False, got 'yes' \(str\)"),
    ("labelled.tokenize texts=None", lambda f: labelled.tokenize(None), TypeError,
     r"texts must be a sequence of str \(one per example\), got NoneType None"),
    ("split_indices shuffle='no'", lambda f: labelled.split_indices(10, shuffle="no"), TypeError,
     r"shuffle must be True or False, got 'no' \(str\)"),
    ("split_indices seed='x'", lambda f: labelled.split_indices(10, seed="x"), TypeError,
     r"seed must be None or an int >= 0, got 'x' \(str\)"),
    ("split_indices n=2.5", lambda f: labelled.split_indices(2.5), ValueError,
     r"n: expected an int >= 2 \(one training example and one per held-out part\), got 2.5"),
    ("split_rows held_out=0.1", lambda f: labelled.split_rows(10, 0.1), TypeError,
     r"held_out must be a sequence of fractions, e.g. \(0.1,\), got float 0.1"),
    ("split_rows held_out=None", lambda f: labelled.split_rows(10, None), TypeError,
     r"held_out must be a sequence of fractions, e.g. \(0.1,\), got NoneType None"),
    ("split_rows shuffle=1", lambda f: labelled.split_rows(10, (0.1,), shuffle=1), TypeError,
     r"shuffle must be True or False, got 1 \(int\)"),
    ("synthetic_sentiment seed='x'", lambda f: labelled.synthetic_sentiment(10, seed="x"), TypeError,
     r"seed must be None or an int >= 0, got 'x' \(str\)"),
    ("synthetic_sentiment seed=-1", lambda f: labelled.synthetic_sentiment(10, seed=-1), ValueError,
     r"seed must be None or an int >= 0, got -1"),
    ("pad_sequences None", lambda f: labelled.pad_sequences(None), TypeError,
     r"sequences must be a list of 1-D id sequences, got NoneType None"),
    ("LabelSet(None)", lambda f: labelled.LabelSet(None), TypeError,
     r"labels must be a sequence of str, got NoneType None"),
    ("LabelSet.build(None)", lambda f: labelled.LabelSet.build(None), TypeError,
     r"labels must be a sequence of str \(one per example\), got NoneType None"),
    ("LabelSet.encode(None)", lambda f: labelled.LabelSet(["a", "b"]).encode(None), TypeError,
     r"labels must be a sequence of str \(one per example\), got NoneType None"),
    ("LabelSet.from_json(None)", lambda f: labelled.LabelSet.from_json(None), TypeError,
     r"data must be JSON text \(a str\) written by LabelSet.to_json, got NoneType"),
    ("LabelSet.from_json without labels", lambda f: labelled.LabelSet.from_json(LABELS + "}"), ValueError,
     r"data\['labels'\]: expected a list of str, got NoneType"),
    ("LabelSet.from_json labels=3", lambda f: labelled.LabelSet.from_json(LABELS + ', "labels": 3}'),
     ValueError, r"data\['labels'\]: expected a list of str, got int"),
    ("read_csv encoding=3", lambda f: labelled.read_csv(f["csv"], text_column="text", label_column="label",
                                                         encoding=3),
     TypeError, r"encoding: expected a codec name such as 'utf-8', got int"),
    ("read_csv path=None", lambda f: labelled.read_csv(None, text_column="text", label_column="label"),
     TypeError, r"path: expected a str or os.PathLike to a CSV file, got NoneType"),
    ("read_csv NUL bytes",
     lambda f: labelled.read_csv(f["nul_csv"], text_column="text", label_column="label"), ValueError,
     r"path: '.*nul.csv': expected a CSV text file, got binary data \(a NUL character at character 11 of "
     r"the decoded text\)"),
    # ---- ngram
    ("ngram.fit ids 2-D", lambda f: ngram.fit([[0, 1], [1, 2]], 3, 0.1), ValueError,
     r"ids: expected a 1-D integer array of token ids, got shape \(2, 2\) dtype int64"),
    ("ngram.fit k=nan", lambda f: ngram.fit([0, 1, 2], 3, float("nan")), ValueError,
     r"k: expected a finite number > 0, got nan"),
    ("ngram.fit vocab_size=0", lambda f: ngram.fit([0, 1, 2], 0, 0.1), ValueError,
     r"vocab_size: expected an int >= 1, got 0"),
    ("ngram.log_probs model='x'", lambda f: ngram.log_probs("x", [0], [1]), TypeError,
     r"model: expected an ngram.Bigram \(from ngram.fit\), got str"),
    ("ngram.log_probs lengths", lambda f: ngram.log_probs(MODEL, [0, 1], [1]), ValueError,
     r"prev, nxt: expected the same length, got 2 and 1"),
    ("ngram.choose_k ks=[]", lambda f: ngram.choose_k(IDS, 3, ks=[]), ValueError,
     r"ks: expected a non-empty list or tuple of finite numbers > 0, got \(\)"),
    ("ngram.choose_k ks=[-1.0]", lambda f: ngram.choose_k(IDS, 3, ks=[-1.0]), ValueError,
     r"ks: expected a non-empty list or tuple of finite numbers > 0, got \(-1.0,\)"),
    ("ngram.choose_k ks=0.1", lambda f: ngram.choose_k(IDS, 3, ks=0.1), ValueError,
     r"ks: expected a non-empty list or tuple of finite numbers > 0, got 0.1"),
    ("ngram.choose_k holdout_fraction='0.1'", lambda f: ngram.choose_k(IDS, 3, holdout_fraction="0.1"),
     ValueError, r"holdout_fraction: expected a number in \(0, 1\), got '0.1'"),
    ("ngram.choose_k holdout_fraction=nan", lambda f: ngram.choose_k(IDS, 3, holdout_fraction=float("nan")),
     ValueError, r"holdout_fraction: expected a number in \(0, 1\), got nan"),
    ("ngram.choose_k vocab_size='3'", lambda f: ngram.choose_k(IDS, "3"), ValueError,
     r"vocab_size: expected an int >= 1, got '3'"),
    # ---- corpora
    ("corpora.path None", lambda f: corpora.path(None), TypeError,
     r"name_or_path: expected a registered corpus name or a file path \(a str or os.PathLike\), got "
     r"NoneType None"),
    ("corpora.path download='no'", lambda f: corpora.path("alice", download="no"), TypeError,
     r"download: expected True or False, got 'no' \(str\)"),
    ("corpora.path url=3", lambda f: corpora.path("alice", url=3), TypeError,
     r"url: expected None or a str, got int 3"),
    ("corpora.load errors=None", lambda f: corpora.load(f["chat"], errors=None), ValueError,
     r"errors: expected 'strict' or 'replace', got None"),
    ("corpora.strip_gutenberg(3)", lambda f: corpora.strip_gutenberg(3), TypeError,
     r"text: expected the decoded file \(a str\), got int"),
    # ---- whatsapp (the export files themselves: tests/data/test_whatsapp.py)
    ("whatsapp.read errors=None", lambda f: whatsapp.read(f["chat"], errors=None), ValueError,
     r"errors: expected 'strict' or 'replace', got None"),
    ("whatsapp.read drop_system='yes'", lambda f: whatsapp.read(f["chat"], drop_system="yes"), TypeError,
     r"drop_system must be True or False, got 'yes' \(str\)"),
    ("whatsapp.read folder", lambda f: whatsapp.read(f["folder"]), ValueError,
     r"path: '.*' is a folder; expected a WhatsApp export .txt"),
    ("whatsapp.to_text None", lambda f: whatsapp.to_text(None), TypeError,
     r"messages must be an iterable of whatsapp.Message, got NoneType"),
    ("whatsapp.to_text with_authors='no'", lambda f: whatsapp.to_text([], with_authors="no"), TypeError,
     r"with_authors must be True or False, got 'no' \(str\)"),
    ("whatsapp.describe list", lambda f: whatsapp.describe([]), TypeError,
     r"chat must be a whatsapp.Chat \(from whatsapp.read\), got list"),
    ("whatsapp.describe max_unparsed=-1", lambda f: whatsapp.describe(whatsapp.read(f["chat"], dayfirst=True),
                                                                      max_unparsed=-1),
     ValueError, r"max_unparsed: expected None or an int >= 0, got -1"),
    ("whatsapp.default_prompt None", lambda f: whatsapp.default_prompt(None), TypeError,
     r"messages must be an iterable of whatsapp.Message, got NoneType"),
    ("whatsapp.author_counts strs", lambda f: whatsapp.author_counts(["Alice: hi"]), TypeError,
     r"messages\[0\] must be a whatsapp.Message, got str"),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, pattern", [row[1:] for row in BAD_INPUTS], ids=[r[0] for r in BAD_INPUTS]
)
def test_bad_input_is_refused_with_a_clear_message(files, call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call(files)
    assert "\n" not in str(info.value)  # one line, for a command's `error: ...`


def test_the_table_has_one_row_per_input():
    names = [row[0] for row in BAD_INPUTS]
    assert len(names) == len(set(names)) == 74


# ---- values that the checks must still accept (each compared with the plain form of the same value)


def test_a_csv_field_longer_than_the_csv_modules_default_limit_is_read_whole(tmp_path):
    """A 5 MB text (over the csv module's 128 KiB field limit) is valid CSV: it is read whole, the same
    as its short neighbours, and the module's limit is left as it was."""
    import csv

    long_text = "word " * 1_000_000  # 5,000,000 characters
    path = tmp_path / "long.csv"
    path.write_text(f'text,label\n"{long_text}",1\nshort,0\n', encoding="utf-8")
    before = csv.field_size_limit()
    texts, labels = labelled.read_csv(path, text_column="text", label_column="label")
    assert texts == [long_text, "short"] and labels == ["1", "0"]
    assert len(texts[0]) == 5_000_000 > before
    assert csv.field_size_limit() == before


def test_numpy_integers_and_lists_are_accepted_where_ints_and_arrays_are():
    a = ngram.fit(IDS, np.int64(3), 0.1)
    b = ngram.fit(IDS, 3, 0.1)
    assert a.vocab_size == b.vocab_size == 3 and np.array_equal(a.counts, b.counts)
    x_list, y_list = text.stream_batch(ROWS.tolist(), np.int64(1), 3)
    x_arr, y_arr = text.stream_batch(ROWS, 1, 3)
    assert np.array_equal(x_list, x_arr) and np.array_equal(y_list, y_arr)
    assert x_arr.tolist() == [[3, 4, 5], [23, 24, 25]]
    assert (
        text.split_sizes(np.int64(10), valid_fraction=0.2)
        == text.split_sizes(10, valid_fraction=0.2)
        == (8, 2, 0)
    )
    rows = labelled.split_indices(10, seed=np.int64(3))
    assert all(np.array_equal(p, q) for p, q in zip(rows, labelled.split_indices(10, seed=3), strict=True))
    assert labelled.synthetic_sentiment(4, seq_len=6, seed=None)[1].count("positive") == 2
    assert text.normalize("Ab", lowercase=np.bool_(True)) == text.normalize("Ab", lowercase=True) == "ab"
    assert re.fullmatch(r"\d+\.\d+(e-\d+)?", repr(ngram.choose_k(IDS, 3, ks=(0.1, 1))[0]))
