"""Vocabulary: orders, encodings and files checked against hand-written examples or a plain Python loop
written independently of rnnjax.data.vocabulary (counting and sorting done token by token)."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnjax.data import text
from rnnjax.data.vocabulary import Vocabulary

# ----------------------------------------------------------------------------------------- vocabulary


def loop_vocab_order(tokens, min_count=1, max_size=None, unk="<unk>"):
    """Reference ordering: explicit count and first-position dicts, then a sort on (-count, first)."""
    count, first = {}, {}
    for pos, tok in enumerate(tokens):
        if tok == unk:
            continue
        count[tok] = count.get(tok, 0) + 1
        first.setdefault(tok, pos)
    kept = sorted((t for t in count if count[t] >= min_count), key=lambda t: (-count[t], first[t]))
    head = [] if unk is None else [unk]
    if max_size is not None:
        kept = kept[: max_size - len(head)]
    return head + kept


def test_vocabulary_order_hand_example():
    words = "b a c a b a d x d".split()  # a:3  b:2  d:2 (after b)  c:1  x:1 (after c)
    vocab = Vocabulary.build(words)
    assert vocab.tokens == ("<unk>", "a", "b", "d", "c", "x")
    assert len(vocab) == 6 and vocab.unk_id == 0
    # Ties by first occurrence, not alphabetically.
    assert Vocabulary.build("zyyz").tokens == ("<unk>", "z", "y")
    assert Vocabulary.build("yzzy").tokens == ("<unk>", "y", "z")


def test_vocabulary_min_count_max_size_unk():
    words = "b a c a b a d x d".split()
    assert Vocabulary.build(words, min_count=2).tokens == ("<unk>", "a", "b", "d")
    assert Vocabulary.build(words, max_size=3).tokens == ("<unk>", "a", "b")  # unk counts towards max_size
    assert Vocabulary.build(words, max_size=1).tokens == ("<unk>",)
    assert Vocabulary.build(words, min_count=3, unk=None).tokens == ("a",)
    assert Vocabulary.build(words, max_size=2, unk=None).tokens == ("a", "b")
    assert Vocabulary.build(words, unk="?").tokens[0] == "?"
    # The unk string inside the data is not counted as a regular token.
    assert Vocabulary.build(["<unk>", "q", "<unk>", "q", "r"]).tokens == ("<unk>", "q", "r")


@given(
    st.lists(st.sampled_from("abcdefg"), max_size=80),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(1, 8)),
    st.sampled_from(["<unk>", None]),
)
def test_vocabulary_order_matches_loop(tokens, min_count, max_size, unk):
    vocab = Vocabulary.build(tokens, min_count=min_count, max_size=max_size, unk=unk)
    assert list(vocab.tokens) == loop_vocab_order(tokens, min_count, max_size, unk)


def test_encode_unknown_maps_to_zero():
    vocab = Vocabulary.build("the cat the hat".split())  # <unk> the cat hat
    ids = vocab.encode("the dog hat the".split())
    assert ids.dtype == np.int32 and ids.shape == (4,)
    assert ids.tolist() == [1, 0, 3, 1]
    assert vocab.decode(ids) == ["the", "<unk>", "hat", "the"]
    assert vocab.encode([]).shape == (0,) and vocab.encode([]).dtype == np.int32


def test_encode_without_unk_names_the_unknown_char():
    vocab = Vocabulary.build("abc", unk=None)
    assert vocab.unk_id is None and vocab.encode("cab").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"tokens\[2\] = 'z'.*unk=None"):
        vocab.encode("abzc")


@given(st.text(min_size=1, max_size=80))
def test_char_round_trip(s):
    vocab = Vocabulary.build(text.char_tokens(s), unk=None)
    ids = vocab.encode(text.char_tokens(s))
    assert "".join(vocab.decode(ids)) == s
    # Independent: each id indexes the token list to the same character.
    assert [vocab.tokens[i] for i in ids.tolist()] == list(s)


@given(st.text(alphabet="abcdef", max_size=40), st.text(alphabet="abcxyz", max_size=40))
def test_char_encode_with_unk_matches_loop(train, other):
    vocab = Vocabulary.build(train)
    position = {tok: i for i, tok in enumerate(vocab.tokens)}
    expected = []
    for ch in other:
        expected.append(position[ch] if ch in position else 0)
    assert vocab.encode(other).tolist() == expected
    assert vocab.decode(vocab.encode(other)) == [ch if ch in position else "<unk>" for ch in other]


def test_decode_errors():
    vocab = Vocabulary.build("abc")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\), got 4"):
        vocab.decode([0, 4])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\), got -1"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="ids must be 1-D"):
        vocab.decode([[0]])
    with pytest.raises(TypeError, match="ids must be integers"):
        vocab.decode([0.5])


def test_build_and_constructor_errors():
    with pytest.raises(ValueError, match="min_count must be an int >= 1, got 0"):
        Vocabulary.build("ab", min_count=0)
    with pytest.raises(ValueError, match="max_size must be None or an int >= 1, got 0"):
        Vocabulary.build("ab", max_size=0)
    with pytest.raises(TypeError, match=r"tokens\[1\] must be a str, got int"):
        Vocabulary.build(["a", 3])
    with pytest.raises(ValueError, match="tokens must be unique"):
        Vocabulary(["<unk>", "a", "a"])
    with pytest.raises(ValueError, match=r"tokens\[0\] must be the unknown token unk='<unk>', got 'a'"):
        Vocabulary(["a", "<unk>"])


# -------------------------------------------------------------------------------------- persistence


def test_json_round_trip_is_plain_json():
    vocab = Vocabulary.build("héllo wörld ✓".split() + ["<pad>"], unk="<unk>")
    payload = json.loads(vocab.to_json())
    assert payload["tokens"] == list(vocab.tokens) and payload["unk"] == "<unk>"
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    closed = Vocabulary.build("abc", unk=None)
    back = Vocabulary.from_json(closed.to_json())
    assert back == closed and back.unk is None and back != Vocabulary.build("abc")


def test_from_json_errors():
    with pytest.raises(ValueError, match="invalid JSON"):
        Vocabulary.from_json("{nope")
    with pytest.raises(ValueError, match="data must have format"):
        Vocabulary.from_json(json.dumps({"tokens": ["a"]}))
    good = json.loads(Vocabulary.build("ab").to_json())
    with pytest.raises(ValueError, match="data must have version 1, got 99"):
        Vocabulary.from_json(json.dumps(dict(good, version=99)))


def test_save_load_round_trip_leaves_no_temp_files(tmp_path):
    path = tmp_path / "vocab.json"
    vocab = Vocabulary.build(text.word_tokens("To be, or not to be: that is the question."))
    vocab.save(path)
    assert os.listdir(tmp_path) == ["vocab.json"]
    assert Vocabulary.load(path) == vocab
    assert Vocabulary.load(str(path)).encode(["be", "zzz"]).tolist() == vocab.encode(["be", "zzz"]).tolist()
    # Overwriting replaces the file in place, still with no leftovers.
    other = Vocabulary.build("xyz", unk=None)
    other.save(str(path))
    assert os.listdir(tmp_path) == ["vocab.json"]
    assert Vocabulary.load(path) == other


def test_save_failure_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "vocab.json"
    old = Vocabulary.build("abc")
    old.save(path)

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        Vocabulary.build("xyz").save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["vocab.json"]
    assert Vocabulary.load(path) == old


def test_text_reexports_the_class_and_files_keep_their_format_tag():
    assert text.Vocabulary is Vocabulary
    assert json.loads(Vocabulary.build("ab").to_json())["format"] == "rnnjax.data.text.Vocabulary"
    old = '{"format": "rnnjax.data.text.Vocabulary", "version": 1, "unk": null, "tokens": ["a", "b"]}'
    assert Vocabulary.from_json(old) == Vocabulary(["a", "b"], unk=None)


@pytest.mark.parametrize(
    "name, content, error, pattern",
    [
        ("model.bin", b"\x89PNG\r\n\x1a\n\x00\x00", ValueError,
         r"model.bin' holds binary data \(a NUL byte at byte offset 8\); expected a vocabulary written by "
         r"Vocabulary.save"),
        ("latin1.json", '{"tokens": ["café"]}'.encode("latin-1"), ValueError,
         r"latin1.json' is not UTF-8 text \(byte 0xe9 at byte offset 16\); expected a vocabulary"),
        ("notes.txt", b"just some words", ValueError, r"notes.txt': data must be JSON text written by "
         r"Vocabulary.to_json, got invalid JSON"),
        ("labels.json", b'{"format": "rnnjax.data.labelled.LabelSet", "labels": ["a", "b"]}', ValueError,
         r"labels.json': data must have format 'rnnjax.data.text.Vocabulary', got "
         r"'rnnjax.data.labelled.LabelSet'"),
        ("bad_unk.json", b'{"format": "rnnjax.data.text.Vocabulary", "version": 1, "unk": 3, "tokens": []}',
         ValueError, r"bad_unk.json': data\['unk'\] must be a str or null, got int 3"),
        ("bad_token.json", b'{"format": "rnnjax.data.text.Vocabulary", "version": 1, "unk": null, '
         b'"tokens": ["a", 7]}', TypeError, r"bad_token.json': tokens\[1\] must be a str, got int 7"),
    ],
)  # fmt: skip
def test_load_names_the_file_and_what_was_expected(tmp_path, name, content, error, pattern):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=pattern):
        Vocabulary.load(path)


def test_load_missing_file_folder_and_bad_path_type(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path: no such file '.*nope.json'; expected a vocabulary"):
        Vocabulary.load(tmp_path / "nope.json")
    with pytest.raises(ValueError, match=r"path: '.*' is a folder; expected a vocabulary"):
        Vocabulary.load(tmp_path)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got NoneType None"):
        Vocabulary.load(None)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: Vocabulary(None), TypeError, r"tokens must be an iterable of str, got NoneType None"),
        (lambda: Vocabulary(["a"], unk=0), TypeError, r"unk must be a str or None, got int 0"),
        (lambda: Vocabulary.build(42), TypeError, r"tokens must be an iterable of str, got int 42"),
        (lambda: Vocabulary.build("ab").encode(None), TypeError, r"tokens must be an iterable of str, got "
         r"NoneType"),
        (lambda: Vocabulary.from_json(None), TypeError, r"data must be JSON text \(a str\) written by "
         r"Vocabulary.to_json, got NoneType"),
    ],
)  # fmt: skip
def test_bad_arguments_are_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
