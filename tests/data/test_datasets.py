"""Tests for minigrad.data.datasets: digits, the IDX reader, MNIST-style loaders, text.

No test touches the network: downloads are served from local ``file://`` mirrors or a fake URL
opener, and an autouse fixture refuses any other URL.
"""

import doctest
import gzip
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import datasets
from minigrad.data.datasets import CharTokenizer, DatasetError, read_idx

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


# ------------------------------------------------------------------------------------------
# helpers and fixtures
# ------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file of unsigned bytes holding `array`."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def make_tiny_set(seed=0, n_train=6, n_test=4):
    """Tiny MNIST-shaped arrays: {stem: array}."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_set(folder: Path, arrays: dict, compress: bool = True) -> dict:
    """Writes the IDX files into `folder`; returns {stem: sha256 of the decompressed bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for stem, array in arrays.items():
        data = idx_bytes(array)
        hashes[stem] = hashlib.sha256(data).hexdigest()
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return hashes


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Only file:// URLs may be opened; anything else fails the test loudly."""
    real_urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"a test tried to open a network URL: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(datasets, "_urlopen", guarded)
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)


@pytest.fixture
def fake_mnist(monkeypatch, tmp_path):
    """A tiny MNIST on a local file:// mirror, with the hash table pointing at it."""
    arrays = make_tiny_set()
    mirror = tmp_path / "mirror"
    hashes = write_set(mirror, arrays)
    for stem, digest in hashes.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, stem, digest)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [mirror.as_uri() + "/"])
    return arrays, mirror


def assert_matches(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x_test, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64


def test_docstring_examples():
    failures, _ = doctest.testmod(datasets, optionflags=doctest.ELLIPSIS)
    assert failures == 0


# ------------------------------------------------------------------------------------------
# digits
# ------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range():
    (x_train, y_train), (x_test, y_test) = datasets.digits()
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # 17 gray levels: every pixel is k/16 exactly
    np.testing.assert_array_equal(x_train * 16, np.round(x_train * 16))
    assert np.bincount(y_test).tolist() == [36] * 10
    assert np.bincount(y_train, minlength=10).sum() == 1437


def test_digits_unflattened_matches_flat():
    (x_flat, y_flat), (xt_flat, _) = datasets.digits()
    (x_img, y_img), (xt_img, _) = datasets.digits(flatten=False)
    assert x_img.shape == (1437, 8, 8) and xt_img.shape == (360, 8, 8)
    np.testing.assert_array_equal(x_img.reshape(-1, 64), x_flat)
    np.testing.assert_array_equal(xt_img.reshape(-1, 64), xt_flat)
    np.testing.assert_array_equal(y_img, y_flat)


def test_digits_split_is_a_partition_of_the_raw_data():
    images, labels, is_test = datasets.digits_raw()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    assert labels.dtype == np.uint8 and np.bincount(labels).sum() == 1797
    (x_train, y_train), (x_test, y_test) = datasets.digits(flatten=False)
    np.testing.assert_array_equal(x_test * 16, images[is_test])
    np.testing.assert_array_equal(x_train * 16, images[~is_test])
    np.testing.assert_array_equal(y_test, labels[is_test])
    np.testing.assert_array_equal(y_train, labels[~is_test])


def test_digits_split_follows_the_documented_recipe():
    _, labels, is_test = datasets.digits_raw()
    perm = np.random.default_rng(0).permutation(len(labels))
    expected = np.zeros(len(labels), bool)
    for digit in range(10):
        expected[perm[labels[perm] == digit][:36]] = True
    np.testing.assert_array_equal(is_test, expected)


def test_digits_detects_a_damaged_bundle(monkeypatch, tmp_path):
    images, labels, is_test = datasets.digits_raw()
    images = images.copy()
    images[0, 0, 0] ^= 1
    bad = tmp_path / "digits.npz"
    np.savez_compressed(bad, images=images, labels=labels, is_test=is_test)
    monkeypatch.setattr(datasets, "_DIGITS_PATH", bad)
    with pytest.raises(DatasetError, match="damaged"):
        datasets.digits()
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    monkeypatch.setattr(datasets, "_DIGITS_PATH", tmp_path / "garbage.npz")
    with pytest.raises(DatasetError, match="cannot read the bundled digits"):
        datasets.digits()


def test_digits_bundle_is_plain_arrays_and_licensed():
    folder = Path(datasets.__file__).parent
    with np.load(folder / "digits.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "is_test", "labels"]
    license_text = (folder / "DIGITS_LICENSE.txt").read_text(encoding="utf-8")
    assert "CC BY 4.0" in license_text and "Alpaydin" in license_text


# ------------------------------------------------------------------------------------------
# read_idx
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("shape", [(5,), (3, 4, 2), (2, 28, 28)])
def test_read_idx_round_trip(tmp_path, compress, shape):
    array = np.arange(np.prod(shape), dtype=np.int64).reshape(shape).astype(np.uint8)
    data = idx_bytes(array)
    path = tmp_path / "file-idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path, ndim=len(shape), sha256=hashlib.sha256(data).hexdigest())
    np.testing.assert_array_equal(out, array)
    assert out.dtype == np.uint8 and out.flags.writeable


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    data = idx_bytes(np.array([1, 2, 3]))
    (tmp_path / "plain.gz").write_bytes(data)  # not compressed despite its name
    (tmp_path / "packed").write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), [1, 2, 3])
    np.testing.assert_array_equal(read_idx(tmp_path / "packed"), [1, 2, 3])


GOOD_LABELS = idx_bytes(np.arange(10))
GOOD_IMAGES = idx_bytes(np.zeros((2, 3, 3)))
CORRUPT_CASES = {
    "empty": (b"", "too short for an IDX header"),
    "short": (b"\x00\x00", "too short for an IDX header"),
    "bad-magic": (b"\x12\x34\x56\x78" + GOOD_LABELS[4:], "bad magic number 0x12345678"),
    "zero-dims": (b"\x00\x00\x08\x00", "bad magic number 0x00000800"),
    "html": (b"<!DOCTYPE html><html>Not Found</html>", "HTML page"),
    "float-type": (b"\x00\x00\x0d\x01" + GOOD_LABELS[4:], "0x0D (float32) is not supported"),
    "truncated-header": (GOOD_IMAGES[:10], "truncated header"),
    "truncated-data": (GOOD_IMAGES[:-1], "truncated: the header declares shape (2, 3, 3)"),
    "trailing-bytes": (GOOD_LABELS + b"\x00\x00", "2 trailing bytes"),
    "truncated-gzip": (gzip.compress(GOOD_IMAGES)[:-12], "truncated gzip data"),
    "bad-gzip": (gzip.compress(GOOD_IMAGES)[:10] + b"\xff" * 20, "damaged gzip data"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_CASES))
def test_read_idx_corrupt_files(tmp_path, case):
    content, message = CORRUPT_CASES[case]
    path = tmp_path / f"{case}-idx-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_read_idx_bad_crc_is_reported(tmp_path):
    packed = bytearray(gzip.compress(GOOD_IMAGES))
    packed[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DatasetError, match="damaged gzip data"):
        read_idx(path)


def test_read_idx_checks_ndim_and_sha256(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(GOOD_LABELS)
    with pytest.raises(DatasetError, match="declares 1 dimensions, expected 3"):
        read_idx(path, ndim=3)
    with pytest.raises(DatasetError, match="sha256 of the decompressed content"):
        read_idx(path, sha256="0" * 64)
    assert read_idx(path, sha256=hashlib.sha256(GOOD_LABELS).hexdigest().upper()).size == 10


def test_read_idx_is_a_value_error_and_missing_file_is_file_not_found(tmp_path):
    assert issubclass(DatasetError, ValueError)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# ------------------------------------------------------------------------------------------
# mnist / fashion_mnist: local files
# ------------------------------------------------------------------------------------------


def test_mnist_missing_files_say_what_to_put_where(tmp_path):
    folder = tmp_path / "empty"
    with pytest.raises(DatasetError) as info:
        datasets.mnist(root=folder)
    message = str(info.value)
    assert str(folder) in message
    for stem in STEMS:
        assert f"{stem}.gz" in message
    assert "download=True" in message and "MINIGRAD_DATA" in message
    assert not folder.exists()  # nothing is created without download=True


def test_mnist_names_only_the_missing_file(tmp_path):
    write_set(tmp_path, make_tiny_set())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as info:
        datasets.mnist(root=tmp_path)
    assert "lacks t10k-labels-idx1-ubyte.gz." in str(info.value)
    assert "train-images-idx3-ubyte.gz" not in str(info.value)


def test_mnist_reads_local_files_gzip_or_not(monkeypatch, tmp_path):
    arrays = make_tiny_set()
    hashes = write_set(tmp_path, {k: v for k, v in arrays.items() if "train" in k})
    hashes.update(write_set(tmp_path, {k: v for k, v in arrays.items() if "t10k" in k}, False))
    for stem, digest in hashes.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, stem, digest)
    assert_matches(datasets.mnist(root=tmp_path), arrays)


def test_mnist_rejects_a_file_with_the_wrong_hash(monkeypatch, tmp_path):
    hashes = write_set(tmp_path, make_tiny_set())
    for stem, digest in hashes.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, stem, digest)
    write_set(tmp_path, {"t10k-labels-idx1-ubyte": np.zeros(4)})  # valid IDX, other content
    with pytest.raises(DatasetError) as info:
        datasets.mnist(root=tmp_path)
    assert "t10k-labels-idx1-ubyte.gz: sha256" in str(info.value)
    assert "download=True" in str(info.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"t10k-labels-idx1-ubyte": np.zeros(3)}, "4 t10k images but 3 labels"),
        ({"train-labels-idx1-ubyte": np.full(6, 10)}, "train label 10 is not a class"),
        ({"t10k-images-idx3-ubyte": np.zeros((4, 8, 8))}, "expected (28, 28)"),
    ],
)
def test_mnist_checks_structure(monkeypatch, tmp_path, change, message):
    arrays = make_tiny_set()
    arrays.update(change)
    for stem, digest in write_set(tmp_path, arrays).items():
        monkeypatch.setitem(datasets.MNIST_SHA256, stem, digest)
    with pytest.raises(DatasetError) as info:
        datasets.mnist(root=tmp_path)
    assert message in str(info.value)


def test_data_root_defaults(monkeypatch, tmp_path):
    assert datasets.data_root("mnist", tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.data_root("mnist") == tmp_path / "home" / ".cache" / "minigrad" / "mnist"
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "data"))
    assert datasets.data_root("fashion_mnist") == tmp_path / "data" / "fashion_mnist"


def test_mnist_reads_from_minigrad_data(monkeypatch, tmp_path):
    arrays = make_tiny_set()
    for stem, digest in write_set(tmp_path / "mnist", arrays).items():
        monkeypatch.setitem(datasets.MNIST_SHA256, stem, digest)
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert_matches(datasets.mnist(), arrays)


# ------------------------------------------------------------------------------------------
# mnist / fashion_mnist: downloads (from local mirrors only)
# ------------------------------------------------------------------------------------------


def test_mnist_download_from_file_mirror(fake_mnist, tmp_path, capsys):
    arrays, mirror = fake_mnist
    cache = tmp_path / "cache" / "mnist"
    assert_matches(datasets.mnist(root=cache, download=True), arrays)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    err = capsys.readouterr().err
    assert f"downloading 4 file(s) into {cache}" in err
    assert f"cached in {cache}" in err
    assert "train-images-idx3-ubyte.gz: 100%|" in err
    # Cached now: loads with the mirror gone and without download=True.
    for path in mirror.iterdir():
        path.unlink()
    assert_matches(datasets.mnist(root=cache), arrays)


def test_mnist_download_is_quiet_with_verbose_false(fake_mnist, tmp_path, capsys):
    datasets.mnist(root=tmp_path / "cache", download=True, verbose=False)
    assert capsys.readouterr() == ("", "")


def test_mnist_download_fetches_only_missing_files(fake_mnist, tmp_path, monkeypatch):
    arrays, _ = fake_mnist
    cache = tmp_path / "cache"
    write_set(cache, {k: v for k, v in arrays.items() if "train" in k})
    opened = []
    real = datasets._urlopen
    monkeypatch.setattr(
        datasets, "_urlopen", lambda url, **kw: opened.append(url) or real(url, **kw)
    )
    assert_matches(datasets.mnist(root=cache, download=True, verbose=False), arrays)
    assert sorted(url.rsplit("/", 1)[1] for url in opened) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


class FakeResponse(io.BytesIO):
    """What urlopen returns: readable bytes with headers (a context manager via BytesIO)."""

    def __init__(self, data: bytes, length: bool = True):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))} if length else {}


def test_mnist_download_falls_back_to_the_next_mirror(fake_mnist, tmp_path, monkeypatch):
    arrays, mirror = fake_mnist
    served = {p.name: p.read_bytes() for p in mirror.iterdir()}
    calls = []

    def opener(url, timeout=None):
        calls.append(url)
        if url.startswith("https://dead.example/"):
            raise urllib.error.URLError("connection refused")
        name = url.rsplit("/", 1)[1]
        if url.startswith("https://corrupt.example/"):
            return FakeResponse(served[name][:-30])  # a truncated download
        return FakeResponse(served[name], length=False)

    monkeypatch.setattr(datasets, "_urlopen", opener)
    monkeypatch.setattr(
        datasets,
        "MNIST_MIRRORS",
        ["https://dead.example/", "https://corrupt.example/", "https://good.example/"],
    )
    cache = tmp_path / "cache"
    assert_matches(datasets.mnist(root=cache, download=True, verbose=False), arrays)
    assert len(calls) == 12  # three mirrors tried for each of the four files
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in STEMS)


def test_mnist_download_all_mirrors_fail(fake_mnist, tmp_path, monkeypatch):
    def opener(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(datasets, "_urlopen", opener)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ["https://a.example/", "https://b.example/"])
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as info:
        datasets.mnist(root=cache, download=True, verbose=False)
    message = str(info.value)
    assert "could not download a verified copy of train-images-idx3-ubyte.gz" in message
    assert "https://a.example/train-images-idx3-ubyte.gz" in message
    assert "https://b.example/train-images-idx3-ubyte.gz" in message
    assert list(cache.iterdir()) == []  # no partial or temporary file left behind


def test_mnist_interrupted_download_leaves_no_file(fake_mnist, tmp_path, monkeypatch):
    class Interrupted(FakeResponse):
        def read(self, size=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(10)

    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout=None: Interrupted(b"x" * 100))
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        datasets.mnist(root=cache, download=True, verbose=False)
    assert list(cache.iterdir()) == []


def test_mnist_download_repairs_a_damaged_cached_file(fake_mnist, tmp_path):
    arrays, _ = fake_mnist
    cache = tmp_path / "cache"
    write_set(cache, arrays)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="damaged gzip data"):
        datasets.mnist(root=cache)
    assert_matches(datasets.mnist(root=cache, download=True, verbose=False), arrays)


def test_fashion_mnist_download_and_classes(monkeypatch, tmp_path):
    arrays = make_tiny_set(seed=1)
    mirror = tmp_path / "mirror"
    for stem, digest in write_set(mirror, arrays).items():
        monkeypatch.setitem(datasets.FASHION_MNIST_SHA256, stem, digest)
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [mirror.as_uri() + "/"])
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "data"))
    assert_matches(datasets.fashion_mnist(download=True, verbose=False), arrays)
    assert (tmp_path / "data" / "fashion_mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
    with pytest.raises(DatasetError, match="fashion_mnist\\(download=True\\)"):
        datasets.fashion_mnist(root=tmp_path / "nothing")


def test_official_hash_tables_and_mirrors_are_well_formed():
    for table in (datasets.MNIST_SHA256, datasets.FASHION_MNIST_SHA256):
        assert sorted(table) == sorted(STEMS)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    for mirrors in (datasets.MNIST_MIRRORS, datasets.FASHION_MNIST_MIRRORS):
        assert mirrors and all(m.startswith("http") and m.endswith("/") for m in mirrors)


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="shared/data/mnist not present")
def test_real_mnist_from_shared_data():
    (x_train, y_train), (x_test, y_test) = datasets.mnist(root=SHARED_DATA / "mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949
    ]  # fmt: skip
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert x_train.max() == 255 and x_train.min() == 0


# ------------------------------------------------------------------------------------------
# text and CharTokenizer
# ------------------------------------------------------------------------------------------


def test_text_reads_utf8_exactly(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("héllo\r\nwörld ✓\n".encode())
    assert datasets.text(path) == "héllo\r\nwörld ✓\n"
    assert datasets.text(str(path)) == "héllo\r\nwörld ✓\n"


def test_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="text file not found: .*missing.txt"):
        datasets.text(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("abc é".encode("latin-1"))
    with pytest.raises(DatasetError, match="not valid utf-8: byte b'\\\\xe9' at offset 4"):
        datasets.text(bad)
    assert datasets.text(bad, encoding="latin-1") == "abc é"


def test_char_tokenizer_round_trip():
    tok = CharTokenizer("hello world")
    assert tok.vocab_size == len(tok) == 8
    assert tok.itos == sorted(set("hello world"))
    assert tok.stoi == {ch: i for i, ch in enumerate(tok.itos)}
    ids = tok.encode("low hello")
    assert ids.dtype == np.int64 and ids.shape == (9,)
    assert ids.tolist() == [tok.stoi[c] for c in "low hello"]
    assert tok.decode(ids) == "low hello"
    assert tok.decode(ids.tolist()) == "low hello"
    assert tok.decode(iter(ids.tolist())) == "low hello"
    assert tok.decode(ids.astype(np.int32)) == "low hello"
    assert tok.encode("").shape == (0,) and tok.decode([]) == ""
    assert repr(tok) == "CharTokenizer(vocab_size=8)"


def test_char_tokenizer_non_ascii_and_astral_characters():
    sample = "naïve 🙂 café — 漢字"
    tok = CharTokenizer(sample)
    assert tok.decode(tok.encode(sample)) == sample
    assert "🙂" in tok.stoi


def test_char_tokenizer_errors():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="character 'z' \\(U\\+007A\\) at position 2"):
        tok.encode("abzzy")
    with pytest.raises(ValueError, match="2 distinct unknown"):
        tok.encode("abzzy")
    with pytest.raises(ValueError, match="token id 3 at position 1 is outside"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="token id -1"):
        tok.decode(np.array([-1]))
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="integer ids"):
        tok.decode([0.5])
    with pytest.raises(TypeError):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match="empty vocabulary"):
        CharTokenizer().encode("a")


def test_char_tokenizer_fit_replaces_vocabulary():
    tok = CharTokenizer("abc")
    assert tok.fit("xyz") is tok
    assert tok.itos == ["x", "y", "z"]
    with pytest.raises(ValueError):
        tok.encode("a")


def test_char_tokenizer_json_round_trip_keeps_ids():
    tok = CharTokenizer.from_dict({"type": "CharTokenizer", "itos": ["z", "a", "\n", "é"]})
    assert tok.encode("a\nz").tolist() == [1, 2, 0]  # custom order is kept, not re-sorted
    again = CharTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.itos == tok.itos
    assert again.decode([3, 1]) == "éa"


@pytest.mark.parametrize(
    "state, error",
    [
        ([], TypeError),
        ({"chars": "abc"}, TypeError),
        ({"type": "WordPiece", "itos": ["a"]}, ValueError),
        ({"itos": ["a", "bc"]}, ValueError),
        ({"itos": ["a", "a"]}, ValueError),
    ],
)
def test_char_tokenizer_from_dict_validates(state, error):
    with pytest.raises(error):
        CharTokenizer.from_dict(state)


@pytest.mark.skipif(
    not (SHARED_DATA / "tinyshakespeare" / "input.txt").is_file(),
    reason="shared/data/tinyshakespeare not present",
)
def test_tiny_shakespeare_round_trip():
    corpus = datasets.text(SHARED_DATA / "tinyshakespeare" / "input.txt")
    assert len(corpus) == 1_115_394
    tok = CharTokenizer(corpus)
    assert tok.vocab_size == 65
    ids = tok.encode(corpus)
    assert ids.shape == (len(corpus),) and int(ids.max()) == 64
    assert tok.decode(ids) == corpus


def test_module_needs_no_environment_variable():
    assert "MINIGRAD_DATA" not in os.environ  # the autouse fixture keeps tests hermetic


# ------------------------------------------------------------------------------------------
# SMS Spam Collection
# ------------------------------------------------------------------------------------------


def test_read_sms_spam_and_split(tmp_path, monkeypatch):
    path = tmp_path / "x.tsv"
    path.write_text("ham\tone\n\nspam\ttwo\tthree\n", encoding="utf-8")
    texts, labels = datasets.read_sms_spam(str(path))
    assert texts == ["one", "two\tthree"] and labels.tolist() == [0, 1]
    path.write_text("ham\tone\nmaybe\ttwo\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=":2: expected"):
        datasets.read_sms_spam(str(path))
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert datasets.sms_spam_path() == tmp_path / "sms_spam" / "SMSSpamCollection"
    a, b = datasets.train_test_indices(5574, seed=0)
    assert (len(a), len(b)) == (4459, 1115)
    assert np.array_equal(datasets.train_test_indices(5574, seed=0)[1], b)


def test_read_sms_spam_missing_file_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    with pytest.raises(DatasetError) as info:
        datasets.read_sms_spam()  # the default path, under $MINIGRAD_DATA
    message = str(info.value)
    assert "SMS Spam Collection not found" in message
    assert str(tmp_path / "sms_spam" / "SMSSpamCollection") in message
    assert "MINIGRAD_DATA" in message and "--data PATH" in message
    assert datasets.SMS_SPAM_URL in message
    monkeypatch.delenv("MINIGRAD_DATA")
    default = Path.home() / ".cache" / "minigrad" / "sms_spam" / "SMSSpamCollection"
    assert datasets.sms_spam_path() == default  # never a path outside the data root
