"""Data sets as plain NumPy arrays: digits (bundled), MNIST, Fashion-MNIST and text.

Every loader returns NumPy arrays, like ``keras.datasets.mnist.load_data()``; wrap them in a
`Dataset`/`DataLoader` or pass them to ``keras.Model.fit``.

- `digits`: the UCI ML hand-written digits, 1797 images of 8x8 pixels, shipped inside
  minigrad (46 kB), so it always loads offline.
- `mnist` and `fashion_mnist`: the official IDX files, read from a folder (`root`, else
  ``$MINIGRAD_DATA/<name>``, else ``~/.cache/minigrad/<name>``). Nothing is downloaded unless
  you pass ``download=True``; every file is checked against the sha256 of its decompressed
  content, so any faithful mirror or re-compressed copy is accepted and nothing else is.
- `read_idx`: the IDX reader behind them, for any IDX file of unsigned bytes.
- `text` and `CharTokenizer`: a UTF-8 corpus and a character-level vocabulary for char-RNNs.
- `read_sms_spam`: the SMS Spam Collection (``label<TAB>text`` lines), read from
  ``$MINIGRAD_DATA/sms_spam/SMSSpamCollection`` or a path; `train_test_indices` splits it.

Attribution:
    The bundled digits are the "Optical Recognition of Handwritten Digits" data set by
    E. Alpaydin and C. Kaynak (1998), from the UCI Machine Learning Repository
    (https://doi.org/10.24432/C50P49), licensed under CC BY 4.0
    (https://creativecommons.org/licenses/by/4.0/), as distributed by scikit-learn's
    ``load_digits``. minigrad stores the pixels as uint8 and adds a fixed train/test split; see
    ``DIGITS_LICENSE.txt`` beside this module. MNIST is by Y. LeCun, C. Cortes and C. J. C.
    Burges (CC BY-SA 3.0); Fashion-MNIST is by Zalando SE (H. Xiao, K. Rasul, R. Vollgraf,
    2017; MIT license). Those two are not shipped with minigrad.

Example:
    >>> (x_train, y_train), (x_test, y_test) = digits()
    >>> x_train.shape, x_train.dtype, y_train.dtype, x_test.shape
    ((1437, 64), dtype('float32'), dtype('int64'), (360, 64))
    >>> tok = CharTokenizer("hello")
    >>> tok.encode("hole"), tok.decode([3, 2, 0])
    (array([1, 3, 2, 0]), 'ole')
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.utils.progress import ProgressBar

__all__ = [
    "FASHION_MNIST_CLASSES",
    "CharTokenizer",
    "DatasetError",
    "data_root",
    "digits",
    "digits_raw",
    "fashion_mnist",
    "mnist",
    "read_idx",
    "read_sms_spam",
    "sms_spam_path",
    "text",
    "train_test_indices",
]

Array = Any
Split = tuple[np.ndarray, np.ndarray]


class DatasetError(ValueError):
    """A data set file is missing, damaged, or not the file it claims to be."""


# ------------------------------------------------------------------------------------------
# UCI digits (bundled)
# ------------------------------------------------------------------------------------------

_DIGITS_PATH = Path(__file__).with_name("digits.npz")
# sha256 over the bytes of `images`, `labels` and `is_test`, in that order.
_DIGITS_SHA256 = "960399c1d99b7959995deebbcab2d8ce9e9c1f0eb48ef2882b028c4ace3bfb22"


def digits_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundled UCI digits exactly as stored, in their original order.

    Returns:
        ``(images, labels, is_test)``: images uint8 of shape (1797, 8, 8) with values 0..16
        (each pixel counts the "on" pixels of a 4x4 block of a 32x32 bitmap), labels uint8
        in 0..9, and the boolean mask of the test images used by `digits`.

    Example:
        >>> images, labels, is_test = digits_raw()
        >>> images.shape, images.dtype, int(images.max()), int(is_test.sum())
        ((1797, 8, 8), dtype('uint8'), 16, 360)
    """
    try:
        with np.load(_DIGITS_PATH, allow_pickle=False) as archive:
            images, labels, is_test = archive["images"], archive["labels"], archive["is_test"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"{_DIGITS_PATH}: cannot read the bundled digits ({exc}); reinstall minigrad"
        ) from exc
    digest = hashlib.sha256()
    for array in (images, labels, is_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    if digest.hexdigest() != _DIGITS_SHA256:
        raise DatasetError(f"{_DIGITS_PATH}: the bundled digits are damaged; reinstall minigrad")
    return images, labels, is_test


def digits(flatten: bool = True) -> tuple[Split, Split]:
    """The UCI ML hand-written digits: 1437 training and 360 test images of 8x8 pixels.

    The split is fixed and stratified: with ``perm = np.random.default_rng(0).permutation(1797)``,
    the first 36 images of each digit in `perm` order are the test set (360 images, exactly 36
    per class); the other 1437 are the training set. Both keep the original order of the data.
    The split is stored in the package, so it never changes with the NumPy version.

    Args:
        flatten: return images as vectors of 64 pixels (True) or as 8x8 arrays (False).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``. Images are float32 in [0, 1] (the 17 gray
        levels 0..16 divided by 16); labels are int64 digits 0..9.

    Shape:
        x: (N, 64), or (N, 8, 8) with ``flatten=False``; y: (N,).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = digits(flatten=False)
        >>> x_train.shape, x_test.shape, float(x_train.max())
        ((1437, 8, 8), (360, 8, 8), 1.0)
        >>> np.bincount(y_test).tolist() == [36] * 10
        True
    """
    images, labels, is_test = digits_raw()
    x = images.astype(np.float32) / np.float32(16.0)  # (1797, 8, 8), exact in float32
    if flatten:
        x = x.reshape(len(x), 64)
    y = labels.astype(np.int64)
    return (x[~is_test], y[~is_test]), (x[is_test], y[is_test])


# ------------------------------------------------------------------------------------------
# IDX files
# ------------------------------------------------------------------------------------------

# IDX element types (the third byte of the magic number). minigrad reads unsigned bytes only.
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32"}
_IDX_TYPES.update({0x0D: "float32", 0x0E: "float64"})
_IDX_UBYTE = 0x08


def _decompress_if_gzip(raw: bytes, name: str) -> bytes:
    """The file's content, gunzipped when it starts with the gzip signature."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise DatasetError(f"{name}: truncated gzip data ({exc}); the file is incomplete") from exc
    except (OSError, zlib.error) as exc:
        raise DatasetError(f"{name}: damaged gzip data ({exc})") from exc


def _parse_idx(data: bytes, name: str, ndim: int | None = None) -> np.ndarray:
    """Parses the bytes of an uncompressed IDX file of unsigned bytes."""
    if len(data) < 4:
        raise DatasetError(f"{name}: {len(data)} bytes, too short for an IDX header (4 bytes)")
    zero, dtype_code, file_ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or dtype_code not in _IDX_TYPES or file_ndim == 0:
        hint = " (this looks like an HTML page, not a data file)" if data[:1] == b"<" else ""
        raise DatasetError(
            f"{name}: bad magic number 0x{magic:08X}{hint}; an IDX file starts with "
            "0x00000801 (labels) or 0x00000803 (images)"
        )
    if dtype_code != _IDX_UBYTE:
        raise DatasetError(
            f"{name}: IDX element type 0x{dtype_code:02X} ({_IDX_TYPES[dtype_code]}) is not "
            "supported; minigrad reads unsigned bytes (0x08) only"
        )
    if ndim is not None and file_ndim != ndim:
        raise DatasetError(
            f"{name}: magic number 0x{magic:08X} declares {file_ndim} dimensions, expected "
            f"{ndim} (0x{0x800 + ndim:08X})"
        )
    header = 4 + 4 * file_ndim
    if len(data) < header:
        raise DatasetError(
            f"{name}: truncated header: {file_ndim} dimensions need {header} bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(file_ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header
    if actual < expected:
        raise DatasetError(
            f"{name}: truncated: the header declares shape {shape} ({expected:,} bytes of data) "
            f"but only {actual:,} bytes follow"
        )
    if actual > expected:
        raise DatasetError(
            f"{name}: {actual - expected:,} trailing bytes after the {expected:,} bytes of data "
            f"declared by the header (shape {shape})"
        )
    # .copy(): np.frombuffer over bytes is read-only; users expect writable arrays.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(
    path: str | os.PathLike, ndim: int | None = None, sha256: str | None = None
) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (the MNIST format), gzip-compressed or not.

    An IDX file is a big-endian header, then the data in C order: the magic number
    ``0x0000TTDD`` (``TT`` the element type, ``0x08`` for unsigned bytes; ``DD`` the number of
    dimensions), one 32-bit size per dimension, then exactly ``prod(sizes)`` bytes.
    Compression is detected from the content, not from the file name.

    Args:
        path: the file to read.
        ndim: if given, the number of dimensions the file must have (1 for labels, 3 for
            images).
        sha256: if given, the hex sha256 that the *decompressed* content must have.

    Returns:
        A writable uint8 array of the shape declared in the header.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetError: bad gzip data, bad magic number, unsupported element type, wrong number
            of dimensions, truncated data, trailing bytes, or a sha256 mismatch. The message
            names the file and the problem.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path, ndim=1)
        array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    data = _decompress_if_gzip(path.read_bytes(), str(path))
    array = _parse_idx(data, str(path), ndim)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise DatasetError(
                f"{path}: sha256 of the decompressed content is {digest}, expected {sha256}; "
                "the file is damaged or is not the official one"
            )
    return array


# ------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# ------------------------------------------------------------------------------------------

# sha256 of the *decompressed* official files. Mirrors re-compress the .gz files (so their
# bytes and md5s differ), but the IDX content inside is identical everywhere.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

# Computed from the files of the official README (gzip md5s 8d4fb7e6..., 25c81989...,
# bef4ecab..., bb300cfd...) as repackaged by Debian (dataset-fashion-mnist); the same values are
# published by other projects.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
]
# Where Debian's package dataset-fashion-mnist installs the official files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The URL opener used for downloads; tests replace it to serve local bytes.
_urlopen = urllib.request.urlopen
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 16


def data_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder where the data set `name` is read from and downloaded to.

    `root` when given; otherwise ``$MINIGRAD_DATA/<name>`` when that environment variable is
    set; otherwise ``~/.cache/minigrad/<name>``.

    Example:
        >>> data_root("mnist", root="/data/mnist").as_posix()
        '/data/mnist'
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MINIGRAD_DATA")
    if env:
        return Path(env).expanduser() / name
    return Path.home() / ".cache" / "minigrad" / name


def _find_file(folder: Path, stem: str) -> Path | None:
    """``<stem>.gz`` if present, else the already-decompressed ``<stem>``, else None."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _say(message: str, verbose: bool) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def _fetch(url: str, folder: Path, filename: str, verbose: bool) -> Path:
    """Downloads `url` into a temporary file in `folder`, with a progress bar."""
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out, _urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length and length.isdigit() else None
            with ProgressBar(total=total, desc=filename, unit="B", disable=not verbose) as bar:
                while True:
                    chunk = response.read(_CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _download(
    stem: str, sha256: str, ndim: int, mirrors: Sequence[str], folder: Path, verbose: bool
) -> np.ndarray:
    """Fetches ``<stem>.gz`` from the first mirror that serves a verified copy.

    The file is written to a temporary name, verified, then renamed into place (atomic), so a
    failed or interrupted download never leaves a file that looks complete.
    """
    filename = f"{stem}.gz"
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        _say(f"Downloading {url}", verbose)
        try:
            tmp = _fetch(url, folder, filename, verbose)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
            failures.append(f"{url}: {exc}")
            continue
        try:
            array = read_idx(tmp, ndim=ndim, sha256=sha256)
        except DatasetError as exc:
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: {exc}")
            continue
        os.replace(tmp, folder / filename)
        return array
    raise DatasetError(
        f"could not download a verified copy of {filename}:\n  " + "\n  ".join(failures)
    )


def _load_idx_dataset(
    name: str,
    title: str,
    hashes: dict,
    mirrors: Sequence[str],
    root: str | os.PathLike | None,
    download: bool,
    verbose: bool,
    hint: str = "",
) -> tuple[Split, Split]:
    folder = data_root(name, root)
    stems = list(hashes)
    files = {stem: _find_file(folder, stem) for stem in stems}
    missing = [stem for stem, path in files.items() if path is None]
    if missing and not download:
        raise DatasetError(
            f"{title} not found: {folder} lacks "
            + ", ".join(f"{stem}.gz" for stem in missing)
            + f".\n{'Three' if hint else 'Two'} ways to fix it:\n"
            f"  - put the official files (gzip-compressed or not) in a folder named {name}/ and "
            f"set MINIGRAD_DATA to the folder holding {name}/ (the files are then read from "
            f"$MINIGRAD_DATA/{name}/), or pass root= the {name}/ folder itself;\n"
            f"  - or call {name}(download=True) to download them into {folder}.{hint}"
        )
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        _say(f"{title}: downloading {len(missing)} file(s) into {folder}", verbose)

    arrays = {}
    for stem in stems:
        ndim = 3 if "images" in stem else 1
        path = files[stem]
        if path is None:
            arrays[stem] = _download(stem, hashes[stem], ndim, mirrors, folder, verbose)
            continue
        try:
            arrays[stem] = read_idx(path, ndim=ndim, sha256=hashes[stem])
        except DatasetError as exc:
            if not download:
                raise DatasetError(
                    f"{exc}.\nDelete it, or call {name}(download=True) to download it again."
                ) from exc
            _say(f"{exc}; downloading it again", verbose)
            arrays[stem] = _download(stem, hashes[stem], ndim, mirrors, folder, verbose)
    if missing:
        _say(f"{title} is cached in {folder}", verbose)

    result = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if len(images) != len(labels):
            raise DatasetError(
                f"{title} in {folder}: {len(images)} {split} images but {len(labels)} labels"
            )
        if images.shape[1:] != (28, 28):
            raise DatasetError(
                f"{title} in {folder}: {split} images are {images.shape[1:]}, expected (28, 28)"
            )
        if labels.size and labels.max() > 9:
            raise DatasetError(
                f"{title} in {folder}: {split} label {labels.max()} is not a class in 0..9"
            )
        result.append((images, labels.astype(np.int64)))
    return result[0], result[1]


def mnist(
    root: str | os.PathLike | None = None, download: bool = False, verbose: bool = True
) -> tuple[Split, Split]:
    """The MNIST hand-written digits: 60,000 training and 10,000 test images of 28x28 pixels.

    Reads the four official IDX files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``, each gzip-compressed or already decompressed) from the
    folder given by `data_root`, and checks the sha256 of each file's decompressed content.

    Args:
        root: the folder that holds the files. Defaults to ``$MINIGRAD_DATA/mnist``, else
            ``~/.cache/minigrad/mnist``.
        download: fetch missing (or damaged) files from the official mirrors (about 11 MB),
            verify them, and keep them in that folder. Nothing is downloaded otherwise.
        verbose: print what is downloaded, where, and a progress bar (to standard error).

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` as in ``keras.datasets.mnist.load_data()``:
        uint8 images with values 0..255, int64 labels 0..9.

    Shape:
        x_train: (60000, 28, 28), y_train: (60000,), x_test: (10000, 28, 28), y_test: (10000,).

    Raises:
        DatasetError: files are missing (the message says which, and where to put them), or a
            file is damaged or not the official one.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = mnist()  # doctest: +SKIP
        >>> x_train.shape, y_train[:5]  # doctest: +SKIP
        ((60000, 28, 28), array([5, 0, 4, 1, 9]))

    MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, CC BY-SA 3.0.
    """
    return _load_idx_dataset("mnist", "MNIST", MNIST_SHA256, MNIST_MIRRORS, root, download, verbose)


def fashion_mnist(
    root: str | os.PathLike | None = None, download: bool = False, verbose: bool = True
) -> tuple[Split, Split]:
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 images of 10 kinds of clothing.

    A drop-in replacement for `mnist` with the same file names and format; the class names
    are in ``FASHION_MNIST_CLASSES``. Files are checked against the sha256 of their
    decompressed content.

    Args:
        root: the folder that holds the files. Defaults to ``$MINIGRAD_DATA/fashion_mnist``;
            without MINIGRAD_DATA, ``/usr/share/datasets/fashion-mnist`` (where Debian's
            package ``dataset-fashion-mnist`` installs them: ``apt-get install
            dataset-fashion-mnist``) when it holds the four files, else
            ``~/.cache/minigrad/fashion_mnist``.
        download: fetch missing (or damaged) files from the official mirror (about 30 MB),
            verify them, and keep them in that folder. Nothing is downloaded otherwise.
        verbose: print what is downloaded, where, and a progress bar (to standard error).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images, int64 labels 0..9.

    Example:
        >>> (x_train, y_train), _ = fashion_mnist(download=True)  # doctest: +SKIP
        >>> FASHION_MNIST_CLASSES[y_train[0]]  # doctest: +SKIP
        'Ankle boot'

    Fashion-MNIST is by Zalando SE (Han Xiao, Kashif Rasul, Roland Vollgraf), MIT license.
    """
    system = FASHION_MNIST_SYSTEM_DIR
    if root is None and not os.environ.get("MINIGRAD_DATA"):
        if all(_find_file(system, stem) for stem in FASHION_MNIST_SHA256):
            root = system
    return _load_idx_dataset(
        "fashion_mnist",
        "Fashion-MNIST",
        FASHION_MNIST_SHA256,
        FASHION_MNIST_MIRRORS,
        root,
        download,
        verbose,
        hint=f"\n  - or, on Debian or Ubuntu, `apt-get install {FASHION_MNIST_PACKAGE}`: it "
        f"installs them in {system}, where fashion_mnist() finds them.",
    )


# ------------------------------------------------------------------------------------------
# SMS Spam Collection
# ------------------------------------------------------------------------------------------

SMS_SPAM_URL = "https://archive.ics.uci.edu/dataset/228/sms+spam+collection"
_SMS_LABELS = {"ham": 0, "spam": 1}


def sms_spam_path(root: str | os.PathLike | None = None) -> Path:
    """Where `read_sms_spam` looks by default: ``SMSSpamCollection`` in ``data_root("sms_spam")``.

    Example:
        >>> sms_spam_path("/data/sms").as_posix()
        '/data/sms/SMSSpamCollection'
    """
    return data_root("sms_spam", root) / "SMSSpamCollection"


def read_sms_spam(path: str | os.PathLike | None = None) -> tuple[list[str], np.ndarray]:
    """The SMS Spam Collection (5,574 messages, 13.4% spam) as ``(texts, labels)``.

    The file has one ``label<TAB>text`` line per message, label ``ham`` (0) or ``spam`` (1). A
    first line that is a header (``Label<TAB>SMS``) is dropped; empty lines are skipped.

    Args:
        path: the file (default `sms_spam_path()`: ``$MINIGRAD_DATA/sms_spam/SMSSpamCollection``,
            else ``~/.cache/minigrad/sms_spam/SMSSpamCollection``).

    Returns:
        The messages (a list of str) and their labels (an int64 array).

    Raises:
        DatasetError: the file is missing (the message says where it looked and how to get
            it), or a line has no tab or an unknown label.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "sms.tsv")
        >>> _ = open(path, "w").write("Label\\tSMS\\nham\\thi there\\nspam\\tWIN cash now\\n")
        >>> read_sms_spam(path)
        (['hi there', 'WIN cash now'], array([0, 1]))
    """
    path = sms_spam_path() if path is None else Path(path)
    if not path.is_file():
        raise DatasetError(
            f"SMS Spam Collection not found at {str(path)!r}. Get the file SMSSpamCollection "
            f"(tab-separated label/text lines) from {SMS_SPAM_URL}, then put it there, set "
            "MINIGRAD_DATA to the folder holding sms_spam/SMSSpamCollection, or pass its path "
            "(minigrad finetune --data PATH)"
        )
    texts, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, tab, message = line.partition("\t")
            label = label.strip().lower()
            if number == 1 and label not in _SMS_LABELS:
                continue  # a header such as "Label\tSMS"
            if not tab or label not in _SMS_LABELS:
                raise DatasetError(f"{path}:{number}: expected 'ham<TAB>text' or "
                                   f"'spam<TAB>text', got {line[:60]!r}")
            texts.append(message)
            labels.append(_SMS_LABELS[label])
    if not texts:
        raise DatasetError(f"{path}: no messages")
    return texts, np.array(labels, dtype=np.int64)


def train_test_indices(n: int, seed: int, test_fraction: float = 0.2) -> Split:
    """Index arrays ``(train, test)`` of `n` examples: a seeded permutation, the last
    `test_fraction` of it tested; each array sorted.

    Example:
        >>> train, test = train_test_indices(10, seed=0)
        >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
        (8, 2, True)
    """
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[: n - n_test]), np.sort(perm[n - n_test :])


# ------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------


def text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """Reads a whole text file, exactly (line endings are kept as they are in the file).

    Args:
        path: the file, e.g. ``tinyshakespeare/input.txt``.
        encoding: its encoding.

    Returns:
        The file's content as one string.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetError: the bytes are not valid in `encoding` (the message gives the offset).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "corpus.txt"
        >>> _ = path.write_bytes("To be, or not to be\\n".encode())
        >>> text(path)
        'To be, or not to be\\n'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"text file not found: {path} (resolved to {path.expanduser().resolve()})"
        )
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not valid {encoding}: byte {raw[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start} ({exc.reason}); pass encoding= the file's encoding"
        ) from exc


class CharTokenizer:
    """A character-level tokenizer: each distinct character of a text is one token id.

    The vocabulary is the sorted set of characters seen by `fit` (or the constructor), so the
    same text always gives the same ids. `to_dict`/`from_dict` save and restore it as JSON.

    Args:
        text: text to build the vocabulary from (may be empty; call `fit` later).

    Attributes:
        itos: list of characters; ``itos[i]`` is the character of id ``i``.
        stoi: dict from character to id.

    Example:
        >>> import json
        >>> tok = CharTokenizer("hello world")
        >>> tok.vocab_size, tok.itos[:3]
        (8, [' ', 'd', 'e'])
        >>> ids = tok.encode("hello")
        >>> ids, ids.dtype
        (array([3, 2, 4, 4, 5]), dtype('int64'))
        >>> tok.decode(ids)
        'hello'
        >>> CharTokenizer.from_dict(json.loads(json.dumps(tok.to_dict()))).decode(ids)
        'hello'
    """

    def __init__(self, text: str = "") -> None:
        self.fit(text)

    def fit(self, text: str) -> CharTokenizer:
        """Sets the vocabulary to the sorted distinct characters of `text`; returns self."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.fit expects a str, got {type(text).__name__}")
        self._set_vocabulary(sorted(set(text)))
        return self

    def _set_vocabulary(self, itos: list) -> None:
        self.itos = list(itos)
        self.stoi = {ch: i for i, ch in enumerate(self.itos)}
        # Code points of the vocabulary, and a sorted copy for vectorized lookups.
        self._codes = np.array([ord(ch) for ch in self.itos], dtype=np.uint32)
        self._order = np.argsort(self._codes, kind="stable")
        self._sorted_codes = self._codes[self._order]

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters (token ids are ``0 .. vocab_size - 1``)."""
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    @staticmethod
    def _code_points(text: str) -> np.ndarray:
        # (T,) uint32 code points; "surrogatepass" so even lone surrogates round-trip.
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")

    def encode(self, text: str) -> np.ndarray:
        """Maps each character of `text` to its id.

        Returns:
            An int64 array of shape (len(text),).

        Raises:
            ValueError: `text` holds a character outside the vocabulary (the message names
                the first one and its position).
        """
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode expects a str, got {type(text).__name__}")
        codes = self._code_points(text)
        if codes.size == 0:
            return np.zeros(0, dtype=np.int64)
        if self.vocab_size == 0:
            raise ValueError("CharTokenizer has an empty vocabulary; call fit(text) first")
        pos = np.searchsorted(self._sorted_codes, codes).clip(max=self.vocab_size - 1)
        unknown = self._sorted_codes[pos] != codes
        if unknown.any():
            first = int(np.argmax(unknown))
            distinct = len(np.unique(codes[unknown]))
            raise ValueError(
                f"character {text[first]!r} (U+{ord(text[first]):04X}) at position {first} is "
                f"not in the vocabulary of {self.vocab_size} characters ({distinct} distinct "
                "unknown character(s) in this text); fit the tokenizer on a text that has it"
            )
        return self._order[pos].astype(np.int64)

    def decode(self, ids: Iterable[int] | Array) -> str:
        """Maps token ids back to a string (a list, a 1-D integer array, or a tensor).

        Raises:
            ValueError: an id is outside ``0 .. vocab_size - 1``, or `ids` is not 1-D.
        """
        if not hasattr(ids, "__array__") and not isinstance(ids, (list, tuple, range)):
            ids = list(ids)  # a generator or another iterable
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.ndim != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"token id {int(ids[first])} at position {first} is outside the vocabulary "
                f"(ids 0..{self.vocab_size - 1})"
            )
        return self._codes[ids].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def to_dict(self) -> dict:
        """A JSON-serializable description: ``{"type": "CharTokenizer", "itos": [...]}``."""
        return {"type": "CharTokenizer", "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, state: dict) -> CharTokenizer:
        """Rebuilds a tokenizer saved with `to_dict` (ids are kept exactly)."""
        if not isinstance(state, dict):
            raise TypeError(f"CharTokenizer.from_dict expects a dict, got {type(state).__name__}")
        if not isinstance(state.get("itos"), list):
            raise TypeError("CharTokenizer.from_dict expects a dict with an 'itos' list")
        if state.get("type", "CharTokenizer") != "CharTokenizer":
            raise ValueError(f"not a CharTokenizer state (type {state.get('type')!r})")
        itos = state["itos"]
        for i, ch in enumerate(itos):
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"itos[{i}] = {ch!r} is not a single character")
        if len(set(itos)) != len(itos):
            raise ValueError("itos lists a character more than once")
        tok = cls()
        tok._set_vocabulary(itos)
        return tok
