"""MNIST-1D: a restricted unpickler (NumPy arrays and plain containers only), tiny pickles."""

import hashlib
import os
import pickle

import numpy as np
import pytest

from minigrad.data import DatasetError, mnist1d
from minigrad.data.safe_pickle import MNIST1D_FILENAME, SafeUnpickler, load_array_pickle


def _tiny(n_train=8, n_test=4, length=40):
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((n_train, length)), "y": rng.integers(0, 10, n_train),
            "x_test": rng.standard_normal((n_test, length)), "y_test": rng.integers(0, 10, n_test),
            "t": np.linspace(0, 1, length), "templates": {"x": np.zeros((10, 12)), "y": [1, 2]}}


def _write(folder, content, protocol=pickle.HIGHEST_PROTOCOL):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MNIST1D_FILENAME
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_a_tiny_pickle_from_a_path_or_folder(tmp_path, protocol):
    content = _tiny()
    path = _write(tmp_path / "m", content, protocol)
    for source in (path, tmp_path / "m"):
        (x_train, y_train), (x_test, y_test) = mnist1d(source, sha256=None)
        assert x_train.dtype == np.float32 and y_train.dtype == np.int64
        np.testing.assert_allclose(x_train, content["x"].astype(np.float32))
        np.testing.assert_array_equal(y_test, content["y_test"])
        assert x_test.shape == (4, 40)


def test_default_location_is_minigrad_data(monkeypatch, tmp_path):
    _write(tmp_path / "mnist1d", _tiny())
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    (x_train, _), _ = mnist1d(sha256=None)
    assert x_train.shape == (8, 40)
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="MNIST-1D not found: .*empty/mnist1d/mnist1d_data"):
        mnist1d()


def test_sha256_is_checked(tmp_path):
    path = _write(tmp_path, _tiny())
    with pytest.raises(DatasetError, match="sha256 is .* expected"):
        mnist1d(path)
    assert mnist1d(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _Custom:
    pass


@pytest.mark.parametrize("payload,refused", [
    (_RunsACommand(), "refusing to load .*system"),  # would call os.system
    ({"x": _RunsACommand()}, "refusing to load .*system"),
    (_Custom(), "refusing to load .*_Custom"),
    ({"x": np.array([1, None], dtype=object)}, "dtype object is not allowed"),
    ({"x": np.array([1, _Custom()], dtype=object)}, "refusing to load .*_Custom"),
    (print, "refusing to load builtins.print"),
    (slice(1, 2), "refusing to load builtins.slice"),
])
def test_refuses_anything_but_arrays_and_containers(tmp_path, monkeypatch, payload, refused):
    path = tmp_path / MNIST1D_FILENAME
    path.write_bytes(pickle.dumps(payload))
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(DatasetError, match=refused):
        mnist1d(path, sha256=None)
    assert calls == []  # nothing was run


def test_refuses_object_arrays_built_from_allowed_names(tmp_path):
    # an object dtype can be named with numpy.dtype alone; the content check still refuses it
    array = np.empty(2, dtype=object)
    data = pickle.dumps(array)
    with pytest.raises(DatasetError):
        load_array_pickle(data)


def test_structure_errors(tmp_path):
    content = _tiny()
    del content["y_test"]
    with pytest.raises(DatasetError, match="'x_test' and 'y_test' are missing"):
        mnist1d(_write(tmp_path / "a", content), sha256=None)
    content = _tiny()
    content["y"] = content["y"][:-1]
    with pytest.raises(DatasetError, match="expected \\(N, L\\) and \\(N,\\)"):
        mnist1d(_write(tmp_path / "b", content), sha256=None)
    content = _tiny()
    content["y"] = content["y"] + 10
    with pytest.raises(DatasetError, match="labels 0..9"):
        mnist1d(_write(tmp_path / "c", content), sha256=None)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / MNIST1D_FILENAME).write_bytes(b"\x80\x04truncated")
    with pytest.raises(DatasetError, match="mnist1d_data.pkl"):
        mnist1d(tmp_path / "d", sha256=None)


def test_safe_unpickler_is_a_pickle_unpickler():
    assert issubclass(SafeUnpickler, pickle.Unpickler)


@pytest.mark.skipif(not os.path.isfile("/work/shared/data/mnist1d/" + MNIST1D_FILENAME),
                    reason="the shared MNIST-1D file is not on this machine")
def test_the_official_file():
    (x_train, y_train), (x_test, y_test) = mnist1d("/work/shared/data/mnist1d")
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert sorted(set(y_train.tolist())) == list(range(10))
