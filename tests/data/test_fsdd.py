"""FSDD (spoken digits): folders, archives, the official split, the content sha256, download.

The tests make their own tiny recordings; no network (downloads come from file:// URLs).
"""

import io
import os
import tarfile
import wave

import numpy as np
import pytest

from minigrad.data import DatasetError, datasets, fsdd, read_fsdd, recordings_sha256
from minigrad.data import spoken_digits


def _wav(samples, rate=8000, channels=1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def _recordings(speakers=("ann", "bob"), indices=range(7)):
    """{name: bytes}: every digit for every speaker and index; sample 0 encodes the digit."""
    files = {}
    for digit in range(10):
        for speaker in speakers:
            for index in indices:
                samples = [1000 * digit, index, -index] + [0] * (50 + index)
                files[f"{digit}_{speaker}_{index}.wav"] = _wav(samples)
    return files


def _tar(path, files, prefix="recordings/"):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        readme = b"not a recording"
        info = tarfile.TarInfo("README.md")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    real = datasets._urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"a test tried to open a network URL: {url}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(datasets, "_urlopen", guarded)
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)


def _check_split(result, files):
    (x_train, y_train), (x_test, y_test) = result
    assert len(x_train) == 10 * 2 * 2 and len(x_test) == 10 * 2 * 5  # indices 5, 6 | 0-4
    assert y_train.dtype == np.int64 and x_train[0].dtype == np.float32
    for xs, ys in ((x_train, y_train), (x_test, y_test)):
        np.testing.assert_array_equal([round(x[0] * 32768 / 1000) for x in xs], ys)
    test_indices = {round(x[1] * 32768) for x in x_test}
    assert test_indices == {0, 1, 2, 3, 4}
    assert {round(x[1] * 32768) for x in x_train} == {5, 6}


def test_folder_of_wavs_archive_and_folder_with_archive(tmp_path):
    files = _recordings()
    digest = recordings_sha256(files)
    folder = tmp_path / "wavs"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (tmp_path / "packed").mkdir()
    archive = _tar(tmp_path / "packed" / "recordings.tar.gz", files)
    for source in (folder, archive, archive.parent, tmp_path / "packed"):
        _check_split(fsdd(source, sha256=digest), files)


def test_default_root_is_minigrad_data(monkeypatch, tmp_path):
    files = _recordings()
    (tmp_path / "fsdd").mkdir()
    _tar(tmp_path / "fsdd" / "recordings.tar.gz", files)
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    _check_split(fsdd(sha256=recordings_sha256(files)), files)


def test_content_sha256_is_checked_and_independent_of_packing(tmp_path):
    files = _recordings()
    a = _tar(tmp_path / "a.tar.gz", files)
    b = _tar(tmp_path / "b.tar.gz", dict(reversed(list(files.items()))), prefix="x/y/")
    digest = recordings_sha256(files)
    assert fsdd(a, sha256=digest) and fsdd(b, sha256=digest)
    with pytest.raises(DatasetError, match="content sha256 .* expected .*sha256=None"):
        fsdd(a)  # the default: FSDD's own 3,000 recordings
    del files["3_bob_2.wav"]
    with pytest.raises(DatasetError, match="the 139 recordings"):
        fsdd(_tar(tmp_path / "c.tar.gz", files), sha256=digest)


def test_missing_and_bad_data(tmp_path):
    with pytest.raises(DatasetError, match="(?s)FSDD not found.*download=True"):
        fsdd(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="FSDD not found"):
        fsdd(tmp_path / "empty")
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DatasetError, match="cannot read the archive"):
        fsdd(tmp_path / "broken.tar.gz", sha256=None)
    (tmp_path / "stereo").mkdir()
    (tmp_path / "stereo" / "1_ann_0.wav").write_bytes(_wav([[1, 2]], channels=2))
    with pytest.raises(DatasetError, match="1_ann_0.wav is 2 channel"):
        fsdd(tmp_path / "stereo", sha256=None)
    (tmp_path / "notwav").mkdir()
    (tmp_path / "notwav" / "1_ann_0.wav").write_bytes(b"RIFF....")
    with pytest.raises(DatasetError, match="1_ann_0.wav: not a PCM WAV"):
        fsdd(tmp_path / "notwav", sha256=None)


def test_read_fsdd_lists_every_recording_with_its_fields(tmp_path):
    files = _recordings(speakers=("ann",), indices=range(2))
    records = read_fsdd(_tar(tmp_path / "r.tar.gz", files))
    assert [r[0] for r in records] == sorted(files)
    name, digit, speaker, index, waveform = records[-1]
    assert (name, digit, speaker, index) == ("9_ann_1.wav", 9, "ann", 1)
    assert waveform.shape == (54,)


def test_download_fetches_the_repository_archive_and_verifies_it(monkeypatch, tmp_path, capsys):
    files = _recordings()
    remote = _tar(tmp_path / "remote.tar.gz", files,
                  prefix=f"free-spoken-digit-dataset-{spoken_digits.FSDD_COMMIT}/recordings/")
    monkeypatch.setattr(spoken_digits, "FSDD_URL", remote.as_uri())
    cache = tmp_path / "cache"
    result = fsdd(cache, download=True, sha256=recordings_sha256(files), verbose=False)
    _check_split(result, files)
    assert [p.name for p in cache.iterdir()] == ["free-spoken-digit-dataset-26eb9aa.tar.gz"]
    assert capsys.readouterr().err == ""
    # now cached: no second download
    monkeypatch.setattr(spoken_digits, "FSDD_URL", (tmp_path / "gone.tar.gz").as_uri())
    _check_split(fsdd(cache, download=True, sha256=recordings_sha256(files)), files)


def test_download_with_a_wrong_hash_leaves_nothing(monkeypatch, tmp_path):
    remote = _tar(tmp_path / "remote.tar.gz", _recordings())
    monkeypatch.setattr(spoken_digits, "FSDD_URL", remote.as_uri())
    with pytest.raises(DatasetError, match="content sha256"):
        fsdd(tmp_path / "cache", download=True, verbose=False)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(spoken_digits, "FSDD_URL", (tmp_path / "absent.tar.gz").as_uri())
    with pytest.raises(DatasetError, match="could not download"):
        fsdd(tmp_path / "cache", download=True, verbose=False)


@pytest.mark.skipif(not os.path.isfile("/work/shared/data/fsdd/recordings.tar.gz"),
                    reason="the shared FSDD archive is not on this machine")
def test_the_real_archive():
    (x_train, y_train), (x_test, y_test) = fsdd("/work/shared/data/fsdd", verbose=False)
    assert len(x_train) == 2700 and len(x_test) == 300
    assert np.bincount(y_test).tolist() == [30] * 10
