"""Fashion-MNIST: found in Debian's dataset-fashion-mnist folder by default, sha256-checked.

The tests write tiny IDX files of their own; the real data never enters the repository.
"""

import gzip
import hashlib

import numpy as np
import pytest

from minigrad.data import DatasetError, datasets

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A tiny Fashion-MNIST in a stand-in for /usr/share/datasets/fashion-mnist."""
    rng = np.random.default_rng(0)
    arrays = {STEMS[0]: rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              STEMS[1]: rng.integers(0, 10, 5, dtype=np.uint8),
              STEMS[2]: rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              STEMS[3]: rng.integers(0, 10, 3, dtype=np.uint8)}
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    hashes = {}
    for stem, array in arrays.items():
        data = _idx(array)
        hashes[stem] = hashlib.sha256(data).hexdigest()
        (system / f"{stem}.gz").write_bytes(gzip.compress(data))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", system)
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", hashes)
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return system, arrays


def test_found_in_the_debian_folder_by_default(tiny):
    _, arrays = tiny
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist(verbose=False)
    np.testing.assert_array_equal(x_train, arrays[STEMS[0]])
    np.testing.assert_array_equal(y_train, arrays[STEMS[1]])
    np.testing.assert_array_equal(x_test, arrays[STEMS[2]])
    assert y_test.dtype == np.int64 and x_test.shape == (3, 28, 28)


def test_minigrad_data_and_root_take_precedence(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetError, match="elsewhere/fashion_mnist lacks"):
        datasets.fashion_mnist()
    monkeypatch.delenv("MINIGRAD_DATA")
    with pytest.raises(DatasetError, match="nothing lacks"):
        datasets.fashion_mnist(root=tmp_path / "nothing")


def test_sha256_is_checked(tiny):
    system, _ = tiny
    data = bytearray(gzip.decompress((system / f"{STEMS[1]}.gz").read_bytes()))
    data[-1] = (data[-1] + 1) % 10
    (system / f"{STEMS[1]}.gz").write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DatasetError, match="sha256 of the decompressed content"):
        datasets.fashion_mnist()


def test_missing_files_name_the_debian_package(tiny, tmp_path):
    system, _ = tiny
    (system / f"{STEMS[0]}.gz").unlink()  # incomplete: the default folder is not used
    with pytest.raises(DatasetError) as info:
        datasets.fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(system) in message and "Three ways" in message
    assert str(tmp_path / "home") in message  # the cache folder it looked in


def test_the_real_hashes_are_the_official_files():
    assert datasets.FASHION_MNIST_SYSTEM_DIR.as_posix() == "/usr/share/datasets/fashion-mnist"
    assert datasets.FASHION_MNIST_PACKAGE == "dataset-fashion-mnist"
    assert datasets.FASHION_MNIST_SHA256["t10k-labels-idx1-ubyte"].startswith("0402a96d")


@pytest.mark.skipif(not datasets.FASHION_MNIST_SYSTEM_DIR.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_installed_package_loads_and_verifies(monkeypatch):
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist(verbose=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == [1000] * 10
