"""The Free Spoken Digit Dataset (FSDD): 3,000 recordings of the spoken digits 0-9.

Six speakers say each digit 50 times; the files are mono 8 kHz 16-bit PCM ``.wav`` named
``{digit}_{speaker}_{index}.wav``. The dataset's official split puts indices 0-4 in the test
set (300 recordings) and 5-49 in the training set (2,700).

`fsdd` reads the recordings with `tarfile` and `wave` (no audio package), from a folder of
``.wav`` files, a ``.tar.gz`` archive of them, or a folder holding such an archive (the
repository's ``recordings.tar.gz``, or the archive of the whole repository that
``download=True`` fetches). Nothing is extracted to disk, and only members named like a
recording are read. The set of recordings is verified by `FSDD_SHA256`, a digest of its
content (see `recordings_sha256`), so any faithful copy is accepted whatever its packing.

The dataset is by Zohar Jackson, César Souza, Jason Flaks, Yuxin Pan, Hereman Nicolas and
Adhish Thite (Zenodo, https://doi.org/10.5281/zenodo.1342401), licensed under CC BY-SA 4.0.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from minigrad.audio import load_wav
from minigrad.data import datasets
from minigrad.data.datasets import DatasetError, data_root

__all__ = ["FSDD_SHA256", "FSDD_URL", "fsdd", "read_fsdd", "recordings_sha256"]

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = ("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
            f"{FSDD_COMMIT}.tar.gz")
# recordings_sha256 of the 3,000 recordings at FSDD_COMMIT.
FSDD_SHA256 = "dbd573d7cafe79c4b49f65718115e1304e24e067fa39eff18a660dc6cb9c360f"
FSDD_SAMPLE_RATE = 8000
FSDD_TEST_INDICES = range(5)  # the official split: recordings 0-4 of each speaker and digit

_NAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")
_MAX_MEMBER_BYTES = 4 << 20  # the longest FSDD recording is about 37 kB


def _recordings_in_archive(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not _NAME.match(name):
                    continue
                if member.size > _MAX_MEMBER_BYTES:
                    raise DatasetError(f"{path}: member {member.name} has {member.size:,} "
                                       f"bytes, too large for a recording")
                yield name, archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the archive ({exc})") from exc


def _recordings(source: Path) -> dict[str, bytes]:
    """Base name -> bytes of every recording in a folder, an archive, or a folder's archive."""
    if source.is_file():
        files = dict(_recordings_in_archive(source))
    elif source.is_dir():
        wavs = [p for p in sorted(source.glob("*.wav")) if _NAME.match(p.name)]
        if not wavs and (source / "recordings").is_dir():
            wavs = [p for p in sorted((source / "recordings").glob("*.wav"))
                    if _NAME.match(p.name)]
        if wavs:
            files = {p.name: p.read_bytes() for p in wavs}
        else:
            archives = sorted(source.glob("*.tar.gz")) + sorted(source.glob("*.tgz"))
            if not archives:
                raise DatasetError(_missing_message(source))
            files = dict(_recordings_in_archive(archives[0]))
    else:
        raise DatasetError(_missing_message(source))
    if not files:
        raise DatasetError(f"{source}: no recordings named like 7_george_12.wav found")
    return files


def _missing_message(source: Path) -> str:
    return (f"FSDD not found: {source} holds no recordings (*.wav) and no .tar.gz archive of "
            "them.\nPass root= a folder of recordings or an archive (e.g. the repository's "
            "recordings.tar.gz), set MINIGRAD_DATA, or call fsdd(download=True) to fetch "
            f"{FSDD_URL}.")


def recordings_sha256(files: dict[str, bytes]) -> str:
    """The content digest of a set of recordings, independent of how they are packed.

    The sha256 of the lines ``"<base name> <sha256 of the file>\\n"``, sorted by name.

    Example:
        >>> recordings_sha256({"0_a_0.wav": b""})[:16]
        '61558daf9703461f'
    """
    manifest = "".join(f"{name} {hashlib.sha256(files[name]).hexdigest()}\n"
                       for name in sorted(files))
    return hashlib.sha256(manifest.encode()).hexdigest()


def read_fsdd(source: str | os.PathLike) -> list[tuple[str, int, str, int, np.ndarray]]:
    """Every recording in a folder or archive, sorted by name, without any check.

    Returns:
        A list of ``(name, digit, speaker, index, waveform)``; waveform is float32 in [-1, 1),
        shape (samples,).

    Raises:
        DatasetError: nothing found, an unreadable archive, or a recording that is not mono
            8 kHz PCM (the message names it).
    """
    source = Path(source).expanduser()
    return _parse(_recordings(source), source)


def _parse(files: dict[str, bytes], source: Path) -> list:
    result = []
    for name, raw in sorted(files.items()):
        digit, speaker, index = _NAME.match(name).groups()
        buffer = io.BytesIO(raw)
        buffer.name = name  # load_wav names the file in its messages
        try:
            waveform, rate = load_wav(buffer)
        except ValueError as exc:
            raise DatasetError(f"{source}: {exc}") from exc
        if rate != FSDD_SAMPLE_RATE or waveform.shape[0] != 1:
            raise DatasetError(f"{source}: {name} is {waveform.shape[0]} channel(s) at {rate} "
                               f"Hz, expected mono at {FSDD_SAMPLE_RATE} Hz")
        result.append((name, int(digit), speaker, int(index), waveform[0]))
    return result


def _download(folder: Path, sha256: str | None, verbose: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"free-spoken-digit-dataset-{FSDD_COMMIT[:7]}.tar.gz"
    datasets._say(f"Downloading {FSDD_URL}", verbose)
    try:
        tmp = datasets._fetch(FSDD_URL, folder, filename, verbose)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DatasetError(f"could not download {FSDD_URL}: {exc}") from exc
    try:
        files = dict(_recordings_in_archive(tmp))
        _verify(files, sha256, tmp)
    except DatasetError:
        tmp.unlink(missing_ok=True)
        raise
    target = folder / filename
    os.replace(tmp, target)
    datasets._say(f"FSDD is cached in {target}", verbose)
    return target


def _verify(files: dict[str, bytes], sha256: str | None, source: Path) -> None:
    if sha256 is None:
        return
    digest = recordings_sha256(files)
    if digest != sha256.lower():
        what = (f" (the 3,000 recordings of FSDD at commit {FSDD_COMMIT[:7]})"
                if sha256.lower() == FSDD_SHA256 else "")
        raise DatasetError(
            f"{source}: the {len(files)} recordings have content sha256 {digest}, expected "
            f"{sha256}{what}; the copy is incomplete or different. Pass sha256=None to read "
            "it anyway.")


def fsdd(
    root: str | os.PathLike | None = None,
    download: bool = False,
    verbose: bool = True,
    sha256: str | None = FSDD_SHA256,
) -> tuple[tuple[list, np.ndarray], tuple[list, np.ndarray]]:
    """The Free Spoken Digit Dataset, split as its README says (recordings 0-4 are the test set).

    Args:
        root: a folder of recordings, a ``.tar.gz`` of them, or a folder holding such an
            archive. Defaults to ``$MINIGRAD_DATA/fsdd``, else ``~/.cache/minigrad/fsdd``.
        download: when nothing is found, fetch the repository's archive (`FSDD_URL`), verify
            it and keep it in that folder. Nothing is downloaded otherwise.
        verbose: print what is downloaded and a progress bar (to standard error).
        sha256: the expected `recordings_sha256` (default: FSDD's 3,000 recordings); None
            skips the check.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: lists of float32 waveforms at 8 kHz (their
        lengths differ) and int64 digit labels. Both are sorted by file name.

    Raises:
        DatasetError: the recordings are missing, damaged, or not FSDD's (sha256).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = fsdd()  # doctest: +SKIP
        >>> len(x_train), len(x_test), x_train[0].dtype  # doctest: +SKIP
        (2700, 300, dtype('float32'))
    """
    source = data_root("fsdd", root)
    try:
        files = _recordings(source)
    except DatasetError:
        if not download:
            raise
        source = _download(source if not source.suffix else source.parent, sha256, verbose)
        files = _recordings(source)
    _verify(files, sha256, source)
    train_x, train_y, test_x, test_y = [], [], [], []
    for _name, digit, _speaker, index, waveform in _parse(files, source):
        xs, ys = (test_x, test_y) if index in FSDD_TEST_INDICES else (train_x, train_y)
        xs.append(waveform)
        ys.append(digit)
    return ((train_x, np.array(train_y, dtype=np.int64)),
            (test_x, np.array(test_y, dtype=np.int64)))
