"""Corpus registry: the shared data files match the registered checksums (hashed here, independently of the
library), and the download path is exercised end to end against a local HTTP server on 127.0.0.1."""

import hashlib
import http.server
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rnnjax.data import corpora
from rnnjax.data.corpora import Source

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TINYSHAKESPEARE_CHARS = 1_115_394
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

# A small Gutenberg-style file: BOM, CRLF line endings, licence header and footer around the book.
BODY = (
    "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning to get very tired \u2014 \u2019twas so.\n\n"
    "THE END"
)
GUTENBERG_RAW = (
    "\ufeffThe Project Gutenberg eBook of Toy Book\r\n\r\n"
    "This eBook is for the use of anyone anywhere.\r\n\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK TOY BOOK ***\r\n\r\n\r\n"
    + BODY.replace("\n", "\r\n")
    + "\r\n\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK TOY BOOK ***\r\n\r\nSection 1. General Terms.\r\n"
).encode("utf-8")


def sha256_file(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def no_network(*args, **kwargs):
    raise AssertionError("urlopen must not be called")


@pytest.fixture
def shared_data(monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    monkeypatch.setenv("RNNJAX_DATA", str(SHARED_DATA))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return SHARED_DATA


@pytest.fixture
def server(monkeypatch):
    """HTTP server on 127.0.0.1 (free port) serving `files` {url path: bytes}; counts requests per path."""
    for var in PROXY_VARS:  # a proxy from the environment must not intercept 127.0.0.1
        monkeypatch.delenv(var, raising=False)
    files, hits = {}, {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, files, hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def register(monkeypatch, *, sha256, url="http://127.0.0.1:9/unused.txt", gutenberg=True):
    """A temporary registry entry `toy`, removed again by monkeypatch."""
    corpus = Source("toy", "toy.txt", url, sha256, gutenberg, "test corpus")
    monkeypatch.setitem(corpora.REGISTRY, "toy", corpus)
    return corpus


# --- the shared files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "tinyshakespeare"])
def test_shared_files_match_registry(shared_data, name):
    p = corpora.path(name)
    assert p == shared_data / corpora.REGISTRY[name].filename
    assert sha256_file(p) == corpora.REGISTRY[name].sha256


def test_load_tinyshakespeare(shared_data):
    text = corpora.load("tinyshakespeare")
    assert len(text) == TINYSHAKESPEARE_CHARS
    assert text.isascii()
    assert text == (shared_data / "tinyshakespeare.txt").read_bytes().decode("ascii")


def test_load_alice_is_stripped(shared_data):
    text = corpora.load("alice")
    assert "PROJECT GUTENBERG" not in text.upper()
    assert text.startswith("[Illustration]") and text.endswith("THE END")


def test_data_dir_default(monkeypatch):
    monkeypatch.delenv("RNNJAX_DATA", raising=False)
    assert corpora.data_dir() == Path("~/.cache/rnnjax").expanduser()


# --- download path --------------------------------------------------------------------------------------


def test_download_strips_verifies_and_caches(server, tmp_path, monkeypatch):
    base, files, hits = server
    files["/toy.txt"] = GUTENBERG_RAW
    expected = BODY.encode("utf-8")
    register(monkeypatch, sha256=hashlib.sha256(expected).hexdigest(), url=base + "/toy.txt")
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path / "cache"))

    p = corpora.path("toy")
    assert p == tmp_path / "cache" / "toy.txt"
    assert p.read_bytes() == expected
    assert hits == {"/toy.txt": 1}
    assert sorted(f.name for f in p.parent.iterdir()) == ["toy.txt"]  # no temp file left

    # Second call: served from the cache, no request (the server count and a failing urlopen both say so).
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert corpora.path("toy") == p
    assert corpora.load("toy") == BODY
    assert hits == {"/toy.txt": 1}


def test_url_override_and_plain_corpus(server, tmp_path, monkeypatch):
    base, files, hits = server
    raw = b"First Citizen:\r\nBefore we proceed any further, hear me speak.\r\n"
    files["/plain.txt"] = raw
    register(monkeypatch, sha256=hashlib.sha256(raw).hexdigest(), gutenberg=False)  # registry url unused
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    p = corpora.path("toy", url=base + "/plain.txt")
    assert p.read_bytes() == raw  # no stripping, bytes kept exactly
    assert hits == {"/plain.txt": 1}


def test_wrong_checksum_raises_and_writes_nothing(server, tmp_path, monkeypatch):
    base, files, _ = server
    files["/toy.txt"] = GUTENBERG_RAW
    register(monkeypatch, sha256="0" * 64)
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    url = base + "/toy.txt"
    with pytest.raises(corpora.CorpusChecksumError) as info:
        corpora.path("toy", url=url)
    msg = str(info.value)
    assert "0" * 64 in msg and hashlib.sha256(BODY.encode()).hexdigest() in msg and url in msg
    assert list(tmp_path.iterdir()) == []


def test_not_gutenberg_file_raises_and_writes_nothing(server, tmp_path, monkeypatch):
    base, files, _ = server
    files["/toy.txt"] = b"no markers here\n"
    register(monkeypatch, sha256="0" * 64)
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    with pytest.raises(corpora.CorpusChecksumError, match="Gutenberg"):
        corpora.path("toy", url=base + "/toy.txt")
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_unavailable(server, tmp_path, monkeypatch):
    base, _, hits = server
    register(monkeypatch, sha256="0" * 64)
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    with pytest.raises(corpora.CorpusUnavailableError, match="404"):
        corpora.path("toy", url=base + "/missing.txt")
    assert hits == {"/missing.txt": 1}
    assert list(tmp_path.iterdir()) == []


# --- no network, no cache -------------------------------------------------------------------------------


def test_no_network_no_cache(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(corpora.CorpusUnavailableError) as info:
        corpora.path("tinyshakespeare")
    msg = str(info.value)
    assert str(tmp_path / "tinyshakespeare.txt") in msg
    assert "RNNJAX_DATA" in msg and corpora.REGISTRY["tinyshakespeare"].url in msg
    assert isinstance(info.value, RuntimeError)


def test_download_false_does_not_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_DATA", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(corpora.CorpusUnavailableError, match="download=False") as info:
        corpora.load("alice", download=False)
    assert str(tmp_path / "alice_in_wonderland.txt") in str(info.value)


# --- local paths and bad input --------------------------------------------------------------------------


def test_local_file_passes_through(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    f = tmp_path / "mine.txt"
    f.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    assert corpora.path(f) == f
    assert corpora.path(str(f)) == f
    assert corpora.load(f) == "hello\nworld\n"  # BOM stripped, newlines kept


def test_missing_path_lists_registered_names(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        corpora.path(tmp_path / "nope.txt")
    msg = str(info.value)
    assert "name_or_path" in msg and "nope.txt" in msg
    assert all(name in msg for name in corpora.REGISTRY)


def test_url_for_unregistered_name_is_rejected(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="url"):
        corpora.path(f, url="http://127.0.0.1:9/x")


def test_strip_gutenberg():
    assert corpora.strip_gutenberg(GUTENBERG_RAW.decode("utf-8")) == BODY
    with pytest.raises(ValueError, match="end marker missing"):
        corpora.strip_gutenberg("*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody\n")


def test_load_rejects_empty_binary_and_undecodable_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n\n")
    with pytest.raises(ValueError, match=r"empty.txt'.*empty"):
        corpora.load(empty)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(ValueError, match=r"model.bin'.*binary data \(a NUL byte at byte offset 4\)"):
        corpora.load(binary)
    latin1 = tmp_path / "latin1.txt"
    data = "café au lait\n".encode("latin-1")  # é is the single byte 0xe9, at offset 3
    latin1.write_bytes(data)
    with pytest.raises(ValueError, match=r"latin1.txt'.*undecodable byte 0xe9 at byte offset 3"):
        corpora.load(latin1)
    assert corpora.load(latin1, errors="replace") == "caf\ufffd au lait\n"
    with pytest.raises(ValueError, match=r"errors: expected 'strict' or 'replace', got 'ignore'"):
        corpora.load(latin1, errors="ignore")


def test_load_reports_offsets_after_a_bom(tmp_path):
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfab\xffc")  # the bad byte is the 6th of the file: offset 5
    with pytest.raises(ValueError, match=r"undecodable byte 0xff at byte offset 5"):
        corpora.load(f)


def test_decode_is_loads_check_for_any_reader(tmp_path):
    assert corpora.decode("€ ok\r\n".encode(), "x") == "€ ok\r\n"  # line endings left as stored
    assert corpora.decode(b"\xef\xbb\xbfa\xffb", "x", errors="replace") == "a\ufffdb"
    bad = (
        r"^my file: expected UTF-8 text, got an undecodable byte 0xff at byte offset 4 \(invalid start byte\)"
    )
    with pytest.raises(ValueError, match=bad):  # the offset counts the BOM: it is the offset in the file
        corpora.decode(b"\xef\xbb\xbfa\xffb", "my file")
    binary = r"^my file: expected a text file, got binary data \(a NUL byte at byte offset 1\)"
    with pytest.raises(ValueError, match=binary):
        corpora.decode(b"a\x00", "my file")
    with pytest.raises(ValueError, match=r"errors: expected 'strict' or 'replace', got 'ignore'"):
        corpora.decode(b"a", "my file", errors="ignore")


def test_read_file_names_missing_files_and_folders(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"abc")
    assert corpora.read_file(tmp_path / "a.txt", expected="expected text") == b"abc"
    with pytest.raises(FileNotFoundError, match=r"path: no such file '.*b.txt'; expected text"):
        corpora.read_file(tmp_path / "b.txt", expected="expected text")
    with pytest.raises(ValueError, match=r"path: '.*' is a folder; expected text"):
        corpora.read_file(tmp_path, expected="expected text")
