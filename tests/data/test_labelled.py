"""`rnnjax.data.labelled`: the CSV reader against hand-written files, padding and label ids against plain
loops, the train/valid/test split against its definition, and the synthetic set's label against its own
words."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnjax.data import labelled
from rnnjax.data.text import Vocabulary


def write(tmp_path, content, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


# ------------------------------------------------------------------------------------------- read_csv


def test_read_csv_quoted_fields_crlf_bom_and_extra_columns(tmp_path):
    content = (
        "\ufeffid, text ,label,notes\r\n"
        '1,"Hello, world",pos,x\r\n'
        '2,"She said ""hi""\nand left",neg,\r\n'
        "\r\n"  # blank line: skipped
        '3,plain, pos ,"a,b"\r\n'
    )
    texts, labels = labelled.read_csv(write(tmp_path, content), text_column="text", label_column="label")
    assert texts == ["Hello, world", 'She said "hi"\nand left', "plain"]
    assert labels == ["pos", "neg", "pos"]


def test_read_csv_other_delimiter_and_encoding(tmp_path):
    path = write(tmp_path, "label;text\nneg;café crème\npos;ok\n", encoding="latin-1")
    texts, labels = labelled.read_csv(
        path, text_column="text", label_column="label", encoding="latin-1", delimiter=";"
    )
    assert texts == ["café crème", "ok"] and labels == ["neg", "pos"]


def test_read_csv_undecodable_bytes_strict_and_replace(tmp_path):
    path = write(tmp_path, b"text,label\nok,pos\nbad \xff byte,neg\n")
    offset = b"text,label\nok,pos\nbad ".__len__()
    with pytest.raises(ValueError, match=rf"path: .*data.csv.* not valid utf-8 .*byte offset {offset}"):
        labelled.read_csv(path, text_column="text", label_column="label")
    texts, _ = labelled.read_csv(path, text_column="text", label_column="label", errors="replace")
    assert texts == ["ok", "bad \ufffd byte"]


@pytest.mark.parametrize(
    "content, kwargs, error, pattern",
    [
        ("", {}, ValueError, r"path: .* is empty"),
        ("  \n\n", {}, ValueError, r"path: .* is empty"),
        ("text,label\n", {}, ValueError, r"path: .* no data rows"),
        (
            "body,label\nhi,pos\n",
            {},
            ValueError,
            r"text_column: column 'text' not found .*\['body', 'label'\]",
        ),
        ("text,y\nhi,pos\n", {}, ValueError, r"label_column: column 'label' not found .*\['text', 'y'\]"),
        ("text,text,label\na,b,pos\n", {}, ValueError, r"text_column: column 'text' found 2 times"),
        (
            'text,label\nfine,pos\n ,neg\nok,pos\n\n"",neg\n',
            {},
            ValueError,
            r"text_column: .* empty in 2 of 4 rows: data rows 2, 4 \(file lines 3, 6\)",
        ),
        ("text,label\nfine,\n", {}, ValueError, r"label_column: .* empty in 1 of 1 rows: data rows 1 "),
        ("text,label\nfine,pos\nshort\n", {}, ValueError, r"path: .* data row 2 \(line 3\) has 1 field"),
        ('text,label\n"unclosed,pos\n', {}, ValueError, r"path: .* malformed CSV"),
        ("text,label\na,b\n", dict(errors="ignore"), ValueError, r"errors: expected 'strict' or 'replace'"),
        (
            "text,label\na,b\n",
            dict(encoding="no-such-codec"),
            ValueError,
            r"encoding: expected a Python codec",
        ),
        ("text,label\na,b\n", dict(text_column=""), ValueError, r"text_column: expected a non-empty"),
        ("text,label\na,b\n", dict(delimiter=";;"), ValueError, r"delimiter: expected one character"),
    ],
)
def test_read_csv_bad_input_names_the_argument(tmp_path, content, kwargs, error, pattern):
    path = write(tmp_path, content)
    kwargs = dict(dict(text_column="text", label_column="label"), **kwargs)
    with pytest.raises(error, match=pattern):
        labelled.read_csv(path, **kwargs)


def test_read_csv_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path: no such file .*nope.csv"):
        labelled.read_csv(tmp_path / "nope.csv", text_column="text", label_column="label")
    with pytest.raises(ValueError, match=r"path: .* is a folder"):
        labelled.read_csv(tmp_path, text_column="text", label_column="label")


def test_read_columns_id_column_optional_and_stripped_columns(tmp_path):
    path = write(tmp_path, "id,text,label\nr7,good, pos \nr9,bad,\n")
    got = labelled.read_columns(
        path,
        dict(text_column="text", id_column="id", label_column="label", score_column="score"),
        optional=("label_column", "score_column"),
        strip=("label_column",),
    )
    # an optional column may be missing (None) or hold empty cells; the others are read as written
    want = dict(
        text_column=["good", "bad"], id_column=["r7", "r9"], label_column=["pos", ""], score_column=None
    )
    assert got == want
    with pytest.raises(ValueError, match=r"id_column: column 'key' not found .*\['id', 'text', 'label'\]"):
        labelled.read_columns(path, dict(text_column="text", id_column="key"))
    with pytest.raises(ValueError, match=r"label_column: .* empty in 1 of 2 rows: data rows 2 "):
        labelled.read_columns(path, dict(text_column="text", label_column="label"))
    with pytest.raises(ValueError, match=r"optional: expected arguments of columns \['text_column'\]"):
        labelled.read_columns(path, dict(text_column="text"), optional=("label_column",))


# ---------------------------------------------------------------------------------------- labels, pad


def test_label_set_sorted_ids_round_trip_and_json():
    labels = ["pos", "neg", "neutral", "pos", "neg"]
    ls = labelled.LabelSet.build(labels)
    assert ls.labels == ("neg", "neutral", "pos") and len(ls) == 3
    ids = ls.encode(labels)
    assert ids.dtype == np.int32 and ids.tolist() == [2, 0, 1, 2, 0]
    assert ls.decode(ids) == labels
    assert labelled.LabelSet.from_json(ls.to_json()) == ls
    # the same labels in another order give the same ids
    assert labelled.LabelSet.build(labels[::-1]) == ls
    # integer labels sort by value
    assert labelled.LabelSet.build(["10", "2", "1", "2"]).labels == ("1", "2", "10")


def test_label_set_bad_input():
    ls = labelled.LabelSet.build(["a", "b"])
    with pytest.raises(
        ValueError, match=r"labels\[1\]: 'c' is not a known class; expected one of \['a', 'b'\]"
    ):
        ls.encode(["a", "c"])
    with pytest.raises(ValueError, match=r"labels: expected at least 2 classes"):
        labelled.LabelSet.build(["a", "a"])
    with pytest.raises(TypeError, match=r"labels: expected a sequence of str"):
        labelled.LabelSet.build("ab")
    with pytest.raises(ValueError, match=r"ids: expected class ids in \[0, 2\), got values in \[0, 5\]"):
        ls.decode([0, 5])


def loop_pad(seqs, max_len, truncate):
    """Reference: element by element."""
    T = max_len if max_len is not None else max(len(s) for s in seqs)
    tokens = [[0] * T for _ in seqs]
    lengths = []
    for i, s in enumerate(seqs):
        s = list(s)
        if len(s) > T:
            s = s[len(s) - T :] if truncate == "pre" else s[:T]
        for t, v in enumerate(s):
            tokens[i][t] = v
        lengths.append(len(s))
    return tokens, lengths


@given(
    st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=12), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(1, 14)),
    st.sampled_from(["pre", "post"]),
)
def test_pad_sequences_matches_loop(seqs, max_len, truncate):
    tokens, lengths = labelled.pad_sequences(seqs, max_len, truncate=truncate)
    want_tokens, want_lengths = loop_pad(seqs, max_len, truncate)
    assert tokens.dtype == np.int32 and lengths.dtype == np.int32
    assert tokens.tolist() == want_tokens and lengths.tolist() == want_lengths


def test_pad_sequences_bad_input():
    with pytest.raises(ValueError, match=r"sequences\[1\]: expected at least one id"):
        labelled.pad_sequences([[1], []])
    with pytest.raises(ValueError, match=r"sequences: expected at least one sequence"):
        labelled.pad_sequences([])
    with pytest.raises(ValueError, match=r"sequences\[0\]: expected ids in \[0, "):
        labelled.pad_sequences([[1, -2]])
    with pytest.raises(TypeError, match=r"sequences\[0\]: expected integer ids, got dtype float"):
        labelled.pad_sequences([[1.5]])
    with pytest.raises(ValueError, match=r"max_len: expected None or an int >= 1, got 0"):
        labelled.pad_sequences([[1]], 0)
    with pytest.raises(ValueError, match=r"truncate: expected 'pre' or 'post', got 'middle'"):
        labelled.pad_sequences([[1]], truncate="middle")


def test_tokenize_levels():
    assert labelled.tokenize(["Good  movie,\n fine"]) == [["Good", "movie", ",", "fine"]]
    assert labelled.tokenize(["Ab  c"], level="char", lowercase=True) == [["a", "b", " ", "c"]]
    with pytest.raises(ValueError, match=r"level: expected one of \('char', 'word'\), got 'byte'"):
        labelled.tokenize(["x"], level="byte")


def test_unknown_counts_against_a_hand_count():
    vocab = Vocabulary.build(["a", "b", "a"])  # <unk>, a, b
    texts = ["a c b d", "c c", "a", "b e a f g"]
    token_lists = labelled.tokenize(texts)
    # T = 3 with truncate="pre" keeps the last 3 tokens: "c b d", "c c", "a", "a f g"
    tokens, lengths = labelled.pad_sequences([vocab.encode(t) for t in token_lists], 3)
    counts = labelled.unknown_counts(tokens, lengths, vocab.unk_id)
    kept = [toks[-3:] for toks in token_lists]
    by_hand = [sum(tok not in {"a", "b"} for tok in toks) for toks in kept]
    assert counts.tolist() == by_hand == [2, 2, 0, 2]
    assert (counts / lengths).tolist() == [2 / 3, 1.0, 0.0, 2 / 3]
    # the padding (id 0, the unknown id too) is not counted; a closed vocabulary has no unknown tokens
    assert labelled.unknown_counts(np.zeros((2, 4), np.int32), np.array([1, 3])).tolist() == [1, 3]
    assert labelled.unknown_counts(tokens, lengths, None).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"tokens, lengths: expected shapes \[N, T\] and \[N\]"):
        labelled.unknown_counts(tokens, lengths[:2])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, T=3\], got \[1, 4\]"):
        labelled.unknown_counts(tokens, np.array([1, 4, 1, 1]))


def test_split_indices():
    train, valid = labelled.split_indices(50, valid_fraction=0.2, seed=3)
    assert len(valid) == 10 and len(train) == 40
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(50))
    again, _ = labelled.split_indices(50, valid_fraction=0.2, seed=3)
    other, _ = labelled.split_indices(50, valid_fraction=0.2, seed=4)
    assert again.tolist() == train.tolist() and other.tolist() != train.tolist()
    train, valid = labelled.split_indices(10, valid_fraction=0.3, shuffle=False)
    assert train.tolist() == list(range(7)) and valid.tolist() == [7, 8, 9]
    assert [len(p) for p in labelled.split_indices(3, valid_fraction=0.01)] == [2, 1]  # at least one each
    with pytest.raises(ValueError, match=r"valid_fraction: expected a number in \(0, 1\), got 1.0"):
        labelled.split_indices(10, valid_fraction=1.0)
    with pytest.raises(ValueError, match=r"n: expected an int >= 2"):
        labelled.split_indices(1)


@pytest.mark.parametrize("n, held_out", [(50, (0.1, 0.2)), (1000, (0.1, 0.1)), (3, (0.3, 0.3)), (7, (0.5,))])
def test_split_rows_is_the_seeded_permutation_cut_in_order(n, held_out):
    parts = labelled.split_rows(n, held_out, seed=5)
    # by definition: train = the first rows of the permutation, then each part's round(n f) rows (>= 1)
    order = np.random.default_rng(5).permutation(n)
    sizes = [max(round(n * f), 1) for f in held_out]
    n_train = n - sum(sizes)
    want = [order[:n_train]] + [order[n_train + sum(sizes[:k]) :][: sizes[k]] for k in range(len(sizes))]
    assert [p.tolist() for p in parts] == [sorted(w.tolist()) for w in want]
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    if len(held_out) == 1:
        assert [p.tolist() for p in parts] == [
            p.tolist() for p in labelled.split_indices(n, valid_fraction=0.5, seed=5)
        ]


def test_split_rows_bad_input():
    with pytest.raises(ValueError, match=r"held_out: expected fractions in \(0, 1\) summing to less than 1"):
        labelled.split_rows(10, (0.5, 0.5))
    with pytest.raises(ValueError, match=r"held_out: expected fractions"):
        labelled.split_rows(10, ())
    with pytest.raises(
        ValueError, match=r"n: expected an int >= 3 \(one training example and one per held-out"
    ):
        labelled.split_rows(2, (0.1, 0.1))


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_sentiment_label_is_the_early_words_polarity():
    texts, labels = labelled.synthetic_sentiment(400, seq_len=60, min_len=20, seed=7, signal_position=(0, 5))
    assert set(labels) == {"negative", "positive"} and labels.count("positive") == 200
    positive, negative = set(labelled.POSITIVE_WORDS), set(labelled.NEGATIVE_WORDS)
    lengths, positions = [], []
    for text, label in zip(texts, labels):
        words = labelled.tokenize([text])[0]  # the CSV path gives back exactly the generated words
        assert words == text.split(" ")
        hits = [(t, w) for t, w in enumerate(words) if w in positive | negative]
        assert len(hits) == 1  # exactly one sentiment word; everything else is neutral filler
        (t, w), rest = hits[0], words[: hits[0][0]] + words[hits[0][0] + 1 :]
        assert all(x in labelled.NEUTRAL_WORDS for x in rest)
        assert label == ("positive" if w in positive else "negative")
        lengths.append(len(words))
        positions.append(t)
    assert 20 <= min(lengths) and max(lengths) <= 60 and len(set(lengths)) > 20
    assert set(positions) == set(range(5))
    assert labelled.synthetic_sentiment(400, seq_len=60, min_len=20, seed=7) == (texts, labels)
    assert labelled.synthetic_sentiment(400, seq_len=60, min_len=20, seed=8)[0] != texts
    fixed, _ = labelled.synthetic_sentiment(20, seq_len=10, seed=0, signal_position=3)
    assert all(labelled.tokenize([t])[0][3] in positive | negative for t in fixed)


def test_synthetic_sentiment_bad_input():
    with pytest.raises(ValueError, match=r"min_len: expected an int in \[5, seq_len=10\]"):
        labelled.synthetic_sentiment(10, seq_len=10, min_len=3)
    with pytest.raises(ValueError, match=r"signal_position: expected 0 <= lo < hi, got \(4, 2\)"):
        labelled.synthetic_sentiment(10, seq_len=10, signal_position=(4, 2))
    with pytest.raises(ValueError, match=r"signal_position: expected an int or a \(lo, hi\) pair"):
        labelled.synthetic_sentiment(10, seq_len=10, signal_position="early")
    with pytest.raises(ValueError, match=r"n: expected an int >= 2, got 1"):
        labelled.synthetic_sentiment(1)
