"""Read and write NumPy arrays in the safetensors format, without pickle.

The format (https://github.com/huggingface/safetensors) is, byte for byte::

    [8 bytes]  N: the header size, an unsigned 64-bit little-endian integer
    [N bytes]  the header: a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes
                 {"__metadata__": {"format": "pt"},                     (optional, str -> str)
                  "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                  ...}
    [the rest] the byte buffer: each tensor's elements, little-endian, in C order

``data_offsets`` are ``[begin, end)`` byte offsets relative to the start of the buffer. The
tensors tile the buffer exactly: sorted by offset, each begins where the previous one ends,
the first at 0 and the last at the end of the file, with no gaps, overlaps or trailing bytes.

Reading never executes anything from the file and never trusts it: every field of the header
is checked against the real size of the file before any array is allocated, so a damaged or
hostile file raises `SafetensorsError` (a `ValueError`) that names the file and the problem.
Arrays come back as owned, writable, native-endian copies.

Writing follows the reference library, so files are byte-identical to the ones it writes:
tensors sorted by dtype (widest first) and then by name, the metadata first with its keys
sorted, compact JSON, and the header padded to 8 bytes so that every tensor is aligned.
`save_file` is atomic: a crash mid-write leaves the previous file intact.

NumPy has no bfloat16, so ``BF16`` tensors are read as float32 (exactly: a bfloat16 is the top
half of a float32). Arrays whose dtype is named ``bfloat16`` (from the ``ml_dtypes`` package)
are written as ``BF16``. The float8 and sub-byte dtypes cannot be read.

Example:
    >>> import numpy as np
    >>> from minigrad.io.safetensors import load, save
    >>> blob = save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"step": "10"})
    >>> load(blob)["w"]
    array([[0., 1., 2.],
           [3., 4., 5.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import secrets
import struct
import sys
from collections.abc import Mapping
from typing import IO, Any, NamedTuple

import numpy as np

__all__ = [
    "SafetensorsError", "load", "load_file", "load_with_metadata", "read_metadata", "save",
    "save_file",
]

# The reference library refuses headers above 100 MB; so do we, before reading them.
MAX_HEADER_SIZE = 100_000_000

# NumPy's ndarray supports at most 64 dimensions.
_MAX_NDIM = 64

# The dtypes NumPy can hold, as stored in the file (little-endian).
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "C64": np.dtype("<c8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

# Valid in the format but without a NumPy dtype. BF16 alone is read, widened to float32.
_FOREIGN_DTYPES = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}

_ITEMSIZE: dict[str, int] = {name: dtype.itemsize for name, dtype in _NUMPY_DTYPES.items()}
_ITEMSIZE["BF16"] = 2

# The reference writer orders tensors by this rank, highest first, then by name. It is the
# declaration order of its `Dtype` enum, which follows alignment.
_WRITE_RANK = {
    name: rank
    for rank, name in enumerate(
        ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64"]
        + ["I64", "U64"]
    )
}

# (kind, itemsize) of a NumPy dtype -> its safetensors name.
_NAME_OF_KIND = {
    ("f", 8): "F64",
    ("f", 4): "F32",
    ("f", 2): "F16",
    ("c", 8): "C64",
    ("i", 8): "I64",
    ("i", 4): "I32",
    ("i", 2): "I16",
    ("i", 1): "I8",
    ("u", 8): "U64",
    ("u", 4): "U32",
    ("u", 2): "U16",
    ("u", 1): "U8",
    ("b", 1): "BOOL",
}


class SafetensorsError(ValueError):
    """A safetensors file (or byte string) is damaged, hostile or unsupported."""


class _Entry(NamedTuple):
    """One tensor as the header describes it, after validation."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


class _DuplicateKeyError(ValueError):
    """Raised from the JSON parser hook; turned into a `SafetensorsError` by the caller."""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def save(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialize arrays to safetensors bytes.

    Args:
        tensors: name -> array. Any layout and byte order; they are stored contiguous,
            little-endian, in C order.
        metadata: optional free-form text, stored as the header's ``__metadata__``.

    Returns:
        The whole file as bytes.

    Raises:
        TypeError: a name or metadata entry is not a string, a value is not a NumPy array, or
            its dtype has no safetensors equivalent (object, float128, structured, ...).
        ValueError: a name is ``"__metadata__"`` or a string is not valid Unicode.

    Example:
        >>> import numpy as np
        >>> len(save({"x": np.zeros(2, dtype=np.float32)}))
        72
    """
    header, arrays = _prepare(tensors, metadata)
    out = io.BytesIO()
    _write_payload(out, header, arrays)
    return out.getvalue()


def save_file(
    tensors: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write arrays to a safetensors file, atomically.

    The data goes to a temporary file in the same directory, which is flushed, fsynced and
    then renamed over ``path`` (`os.replace`, atomic on POSIX and Windows). If anything fails,
    or the process dies, before the rename, the previous file at ``path`` is left untouched;
    on an exception the temporary file is removed.

    Args:
        tensors: name -> array, as for `save`.
        path: the file to create or replace.
        metadata: optional free-form text, as for `save`.

    Raises:
        TypeError, ValueError: as for `save`, before anything is written.
        OSError: the file could not be written.
    """
    # Validate and build the header first: a bad input never touches the disk.
    header, arrays = _prepare(tensors, metadata)
    path = os.fsdecode(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = _create_temp_file(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            _write_payload(f, header, arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)  # make the rename itself durable


def _prepare(
    tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[np.ndarray]]:
    """Check the inputs; return the padded header and the arrays in file order."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of str to numpy arrays, got {type(tensors)}")

    items = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot name a tensor")
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"tensor {name!r} must be a numpy array, got {type(value)}")
        items.append((name, _dtype_name(name, value.dtype), _little_endian_c(value)))

    # Widest dtype first, then by name: the reference order, which keeps every tensor aligned
    # to its item size (the header is padded to 8 bytes).
    items.sort(key=lambda item: (-_WRITE_RANK[item[1]], item[0]))

    header: dict[str, Any] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping of str to str, got {type(metadata)}")
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for name, dtype, array in items:
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes

    # Compact JSON with raw UTF-8, exactly as serde_json writes it.
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"))
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a tensor name or metadata string is not valid Unicode: {exc}") from None
    raw += b" " * (-len(raw) % 8)
    return raw, [array for _, _, array in items]


def _dtype_name(name: str, dtype: np.dtype) -> str:
    """The safetensors name of a NumPy dtype, or a TypeError."""
    if dtype.name == "bfloat16" and dtype.itemsize == 2:  # ml_dtypes.bfloat16
        return "BF16"
    st_name = _NAME_OF_KIND.get((dtype.kind, dtype.itemsize))
    if st_name is None:
        raise TypeError(f"tensor {name!r} has dtype {dtype}, which safetensors cannot store")
    return st_name


def _little_endian_c(array: np.ndarray) -> np.ndarray:
    """The array as stored: little-endian and C-contiguous (copied only when needed)."""
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        array = array.astype(array.dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    return array


def _write_payload(f: IO[bytes], header: bytes, arrays: list[np.ndarray]) -> None:
    """Write the size prefix, the header and every array's bytes, in order."""
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for array in arrays:
        if array.size:
            f.write(array.reshape(-1).view(np.uint8))  # a view: no copy of the data


def _create_temp_file(directory: str, basename: str) -> tuple[int, str]:
    """Create a new hidden file next to the target; return its descriptor and path."""
    # O_EXCL: never reuse a file someone else made. Mode 0o666 lets the umask apply, so the
    # final file gets the same permissions as a plain open() would give it.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp_path = os.path.join(directory, f".{basename}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp_path, flags, 0o666), tmp_path
        except FileExistsError:
            continue


def _fsync_directory(directory: str) -> None:
    """Flush a directory entry to disk where the platform allows it (not on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def load(data: bytes) -> dict[str, np.ndarray]:
    """Deserialize safetensors bytes.

    Args:
        data: the whole file's content.

    Returns:
        name -> array, in file order. Arrays are owned, writable and native-endian; ``BF16``
        tensors come back as float32.

    Raises:
        SafetensorsError: the bytes are not a valid safetensors file.
    """
    data = bytes(data)
    with io.BytesIO(data) as f:
        return _read(f, len(data), "<bytes>")


def load_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a safetensors file.

    The header is fully checked against the file's size before any array is allocated, so
    memory use never exceeds the size of the file itself.

    Args:
        path: the file to read.

    Returns:
        name -> array, in file order, as for `load`.

    Raises:
        SafetensorsError: the file is not a valid safetensors file.
        OSError: the file cannot be opened or read.
    """
    with open(path, "rb") as f:
        return _read(f, os.fstat(f.fileno()).st_size, os.fsdecode(path))


def load_with_metadata(
    source: bytes | str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
    """Read the tensors and the ``__metadata__`` of a file (a path) or of bytes, in one pass.

    Args:
        source: a path, or the whole file's content as ``bytes``.

    Returns:
        name -> array (as for `load`), and the metadata (None when the file has none).

    Raises:
        SafetensorsError: not a valid safetensors file.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        with io.BytesIO(data) as f:
            return _read_all(f, len(data), "<bytes>")
    with open(source, "rb") as f:
        return _read_all(f, os.fstat(f.fileno()).st_size, os.fsdecode(source))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """Read a file's ``__metadata__`` without loading its tensors.

    The whole header is still validated against the file's size.

    Args:
        path: the file to read.

    Returns:
        The metadata, or None when the file has none.

    Raises:
        SafetensorsError: the file is not a valid safetensors file.
    """
    with open(path, "rb") as f:
        _, metadata = _read_header(f, os.fstat(f.fileno()).st_size, os.fsdecode(path))
    return metadata


def _read(f: IO[bytes], file_size: int, source: str) -> dict[str, np.ndarray]:
    """Parse and check the header, then read every tensor (f positioned at the start)."""
    entries, _ = _read_header(f, file_size, source)
    # Entries are sorted by offset and tile the buffer, which starts right after the header:
    # reading them in order is one sequential pass over the file.
    return {entry.name: _read_tensor(f, entry, source) for entry in entries}


def _read_all(
    f: IO[bytes], file_size: int, source: str
) -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
    """`_read`, also returning the metadata."""
    entries, metadata = _read_header(f, file_size, source)
    return {entry.name: _read_tensor(f, entry, source) for entry in entries}, metadata


def _read_header(
    f: IO[bytes], file_size: int, source: str
) -> tuple[list[_Entry], dict[str, str] | None]:
    """Read the size prefix and the header; leave f at the start of the byte buffer."""
    if file_size < 8:
        raise SafetensorsError(
            f"{source}: file is {file_size} bytes, shorter than the 8-byte header size"
        )
    (header_size,) = struct.unpack("<Q", _read_exactly(f, 8, source))
    if header_size > MAX_HEADER_SIZE:
        raise SafetensorsError(
            f"{source}: header size {header_size} exceeds the {MAX_HEADER_SIZE}-byte limit"
        )
    if 8 + header_size > file_size:
        raise SafetensorsError(
            f"{source}: header size {header_size} runs past the end of the file "
            f"({file_size} bytes); the file is truncated or not safetensors"
        )
    raw = _read_exactly(f, header_size, source)
    return _parse_header(raw, file_size - 8 - header_size, source)


def _parse_header(
    raw: bytes, buffer_size: int, source: str
) -> tuple[list[_Entry], dict[str, str] | None]:
    """Validate the header against a byte buffer of `buffer_size` bytes.

    Returns:
        The tensors sorted by offset, and the metadata (None if absent).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SafetensorsError(f"{source}: header is not valid UTF-8 ({exc})") from None
    try:
        header = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except _DuplicateKeyError as exc:
        raise SafetensorsError(f"{source}: header has a duplicate key {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise SafetensorsError(f"{source}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(
            f"{source}: header must be a JSON object, got {type(header).__name__}"
        )

    metadata = _check_metadata(header.pop("__metadata__", None), source)
    entries = [_check_entry(name, info, source) for name, info in header.items()]
    entries.sort(key=lambda e: (e.begin, e.end))

    # The tensors must tile the buffer exactly: no gap, no overlap, no trailing bytes.
    position = 0
    previous = None
    for entry in entries:
        where = f"{source}: tensor {entry.name!r} has data_offsets [{entry.begin}, {entry.end}]"
        if entry.end > buffer_size:
            raise SafetensorsError(
                f"{where} beyond the end of the {buffer_size}-byte data buffer "
                f"(the file is truncated or the offsets are wrong)"
            )
        if entry.begin < position:
            raise SafetensorsError(f"{where}, overlapping tensor {previous!r}")
        if entry.begin > position:
            raise SafetensorsError(
                f"{where}, leaving a gap of {entry.begin - position} bytes before it"
            )
        position = entry.end
        previous = entry.name
    if position != buffer_size:
        raise SafetensorsError(
            f"{source}: the data buffer has {buffer_size} bytes but the tensors cover only "
            f"{position}; {buffer_size - position} trailing bytes make the file invalid"
        )
    return entries, metadata


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: build a dict, refusing repeated keys (json.loads keeps the last)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(repr(key))
        result[key] = value
    return result


def _parse_int(literal: str) -> int | float:
    """JSON hook: integers, except ``-0``, which serde_json (the reference) reads as -0.0."""
    return -0.0 if literal == "-0" else int(literal)


def _reject_constant(name: str) -> None:
    """JSON hook: refuse NaN, Infinity and -Infinity, which strict JSON does not have."""
    raise ValueError(f"{name} is not valid JSON")


def _check_metadata(metadata: Any, source: str) -> dict[str, str] | None:
    """Validate ``__metadata__``: absent (or null, as the reference accepts), or str -> str."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise SafetensorsError(
            f"{source}: __metadata__ must be an object of str to str, got {type(metadata).__name__}"
        )
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise SafetensorsError(
                f"{source}: __metadata__[{key!r}] must be a string, got {type(value).__name__}"
            )
        if not (_is_unicode(key) and _is_unicode(value)):
            raise SafetensorsError(
                f"{source}: __metadata__[{key!r}] holds an unpaired surrogate escape"
            )
    return metadata


def _check_entry(name: str, info: Any, source: str) -> _Entry:
    """Validate one tensor's description, on its own (offsets are checked together later)."""
    where = f"{source}: tensor {name!r}"
    if not _is_unicode(name):
        raise SafetensorsError(f"{where}: the name holds an unpaired surrogate escape")
    if not isinstance(info, dict):
        raise SafetensorsError(
            f"{where}: expected an object with dtype, shape and data_offsets, "
            f"got {type(info).__name__}"
        )
    # Unknown extra fields are ignored, as the reference reader ignores them.
    for field in ("dtype", "shape", "data_offsets"):
        if field not in info:
            raise SafetensorsError(f"{where}: missing {field!r}")

    dtype = info["dtype"]
    if not isinstance(dtype, str):
        raise SafetensorsError(f"{where}: dtype must be a string, got {dtype!r}")
    if dtype not in _ITEMSIZE:
        if dtype in _FOREIGN_DTYPES:
            raise SafetensorsError(f"{where}: dtype {dtype} is not supported by NumPy")
        raise SafetensorsError(f"{where}: unknown dtype {dtype!r}")

    shape = info["shape"]
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise SafetensorsError(
            f"{where}: shape must be a list of non-negative integers, got {shape!r}"
        )
    if len(shape) > _MAX_NDIM:
        raise SafetensorsError(
            f"{where}: shape has {len(shape)} dimensions, NumPy supports at most {_MAX_NDIM}"
        )

    offsets = info["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise SafetensorsError(
            f"{where}: data_offsets must be [begin, end], two non-negative integers, "
            f"got {offsets!r}"
        )
    begin, end = offsets
    if end < begin:
        raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] are reversed")

    # NOTE: Python integers cannot overflow, so a lying shape is caught here, exactly.
    itemsize = _ITEMSIZE[dtype]
    if math.prod(shape) * itemsize != end - begin:
        raise SafetensorsError(
            f"{where}: shape {shape} of {dtype} needs {math.prod(shape) * itemsize} bytes "
            f"but data_offsets [{begin}, {end}] hold {end - begin}"
        )
    # An empty tensor can still declare absurd dimensions, e.g. [0, 2**62, 2**62], that NumPy
    # refuses to represent (it multiplies the non-zero ones by the item size, at most 8 here).
    if math.prod(d for d in shape if d) * 8 > np.iinfo(np.intp).max:
        raise SafetensorsError(f"{where}: shape {shape} is too large for NumPy")
    return _Entry(name, dtype, tuple(shape), begin, end)


def _is_count(value: Any) -> bool:
    """Whether a JSON value is a non-negative integer (bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_unicode(text: str) -> bool:
    """Whether a str encodes to UTF-8 (JSON escapes can smuggle in lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_tensor(f: IO[bytes], entry: _Entry, source: str) -> np.ndarray:
    """Read one tensor, at the current position of f, into a new native-endian array."""
    if entry.dtype == "BF16":
        # NOTE: a bfloat16 is the high half of a float32 with the same value, so widening is
        # exact: shift the 16 bits up into an uint32 and reinterpret.
        bits = np.empty(entry.shape, dtype="<u2")
        _fill(f, bits, source)
        out = np.empty(entry.shape, dtype=np.float32)
        out.view(np.uint32)[...] = bits.astype(np.uint32) << 16
        return out

    array = np.empty(entry.shape, dtype=_NUMPY_DTYPES[entry.dtype])
    _fill(f, array, source)
    if entry.dtype == "BOOL" and array.size and array.view(np.uint8).max() > 1:
        # Any byte but 0 or 1 is not a bool; NumPy would hold it as an odd "true".
        raise SafetensorsError(f"{source}: tensor {entry.name!r} is BOOL but holds bytes not 0/1")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _fill(f: IO[bytes], array: np.ndarray, source: str) -> None:
    """Fill a new C-contiguous array with the next array.nbytes bytes of f."""
    if array.size:
        _read_into(f, memoryview(array.reshape(-1).view(np.uint8)), source)


def _read_exactly(f: IO[bytes], size: int, source: str) -> bytes:
    """Read exactly `size` bytes (the size was checked against the file beforehand)."""
    data = bytearray(size)
    _read_into(f, memoryview(data), source)
    return bytes(data)


def _read_into(f: IO[bytes], view: memoryview, source: str) -> None:
    """Fill `view` from f; a short read means the file shrank under us."""
    while view.nbytes:
        count = f.readinto(view)
        if not count:
            raise SafetensorsError(f"{source}: file ended early (was it truncated while read?)")
        view = view[count:]
