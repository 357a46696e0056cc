"""Read and write GGUF files (llama.cpp's model format), without the ``gguf`` package.

A GGUF file (v2 and v3, little-endian) is, byte for byte::

    "GGUF"                      magic, 4 bytes
    uint32                      version (2 or 3; v1 is obsolete)
    uint64  tensor_count        number of tensors
    uint64  kv_count            number of metadata entries
    kv_count x  (string key, uint32 value_type, value)
    tensor_count x (string name, uint32 n_dims, uint64 dims[n_dims], uint32 ggml_type,
                    uint64 offset)
    padding to the alignment    (``general.alignment``, a power of two, default 32)
    tensor data                 each tensor at its offset from here, padded to the alignment

A string is a uint64 byte length and UTF-8 bytes. A value is a scalar (UINT8 INT8 UINT16 INT16
UINT32 INT32 UINT64 INT64 FLOAT32 FLOAT64 BOOL), a STRING, or an ARRAY: a uint32 element
type, a uint64 count and the elements (arrays of arrays included). ``dims`` are ggml's order,
the fastest-varying first, so a NumPy shape is ``dims`` reversed: ``token_embd.weight`` with
dims ``[576, 49152]`` is a (49152, 576) matrix. Quantised types pack the elements of each row
in blocks (Q4_1: 32 elements in 20 bytes, a float16 scale ``d``, a float16 minimum ``m`` and 16
bytes of 4-bit codes ``q``, element ``d * q + m``), so the row length is a multiple of the
block size. The layouts follow ggml's ``ggml-common.h``; `dequantize` gives the same float32
bits as llama.cpp's gguf-py.

Reading never executes anything from the file and never trusts it. Each count and length is
checked against the bytes that remain before anything is allocated, tensors must follow each
other in order at aligned offsets inside the file (llama.cpp's rule), and a damaged or hostile
file raises `GGUFError` (a `ValueError`) naming the file and the problem. The tensor data is
memory-mapped: opening a file reads only its header, and `GGUFFile.get_tensor` reads and
dequantises one tensor when asked.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from minigrad.io.gguf import GGUFWriter, read_gguf
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.gguf")
    >>> writer = GGUFWriter()
    >>> writer.add_metadata("general.architecture", "llama")
    >>> writer.add_metadata("llama.block_count", 2, "UINT32")
    >>> writer.add_tensor("w", np.arange(64, dtype=np.float32).reshape(2, 32), "Q8_0")
    >>> writer.write(path)
    >>> with read_gguf(path) as f:
    ...     print(f.metadata["llama.block_count"], f.tensors["w"].shape, f.tensors["w"].ggml_type)
    ...     print(f.get_tensor("w")[1, -3:])  # 8-bit codes: within half a step of 61, 62, 63
    2 (2, 32) Q8_0
    [61.01953  62.01172  63.003906]
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import os
import struct
from typing import IO, Any, NamedTuple

import numpy as np

from minigrad.io.safetensors import _create_temp_file, _fsync_directory

__all__ = [
    "GGML_TYPES",
    "GGUFError",
    "GGUFFile",
    "GGUFTensorInfo",
    "GGUFWriter",
    "dequantize",
    "load_gguf",
    "quantize",
    "read_gguf",
]

Array = Any  # a NumPy or CuPy array

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
QK_K = 256  # the super-block size of the k-quants

# llama.cpp's limits: ggml tensors have at most 4 dimensions and names below 64 bytes.
MAX_DIMS = 4
MAX_NAME_BYTES = 63
# Our own bounds, far above any real model (a 256k vocabulary and its merges hold under a
# million strings; the largest mixtures of experts have tens of thousands of tensors). They
# keep the Python objects a hostile file can make proportional to what real files need.
MAX_TENSORS = 1 << 20
MAX_METADATA_ENTRIES = 1 << 20
MAX_METADATA_ELEMENTS = 1 << 24  # all array elements of all entries together
MAX_ARRAY_DEPTH = 8

# Metadata value types: id -> (name, struct format of a scalar or None).
_VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("UINT8", "<B"),
    1: ("INT8", "<b"),
    2: ("UINT16", "<H"),
    3: ("INT16", "<h"),
    4: ("UINT32", "<I"),
    5: ("INT32", "<i"),
    6: ("FLOAT32", "<f"),
    7: ("BOOL", "<B"),
    8: ("STRING", None),
    9: ("ARRAY", None),
    10: ("UINT64", "<Q"),
    11: ("INT64", "<q"),
    12: ("FLOAT64", "<d"),
}
_VALUE_TYPE_IDS = {name: type_id for type_id, (name, _) in _VALUE_TYPES.items()}
_INT_RANGES = {
    "UINT8": (0, 2**8 - 1),
    "INT8": (-(2**7), 2**7 - 1),
    "UINT16": (0, 2**16 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "UINT32": (0, 2**32 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}
# The fewest bytes one element of each type takes (a string: its length; an array: its
# element type and count), to refuse impossible counts before allocating anything.
_MIN_VALUE_BYTES = {"STRING": 8, "ARRAY": 12, "BOOL": 1}
for _name, _fmt in _VALUE_TYPES.values():
    if _fmt is not None:
        _MIN_VALUE_BYTES[_name] = struct.calcsize(_fmt)


class _GGMLType(NamedTuple):
    """A tensor type: its id in the file, elements per block and bytes per block."""

    type_id: int
    block_size: int
    type_size: int


# name -> (id, block size, bytes per block), as gguf-py's GGML_QUANT_SIZES. Ids 4, 5, 31-33
# and 36-38 belonged to types llama.cpp has removed; a file using them is refused.
GGML_TYPES: dict[str, _GGMLType] = {
    "F32": _GGMLType(0, 1, 4),
    "F16": _GGMLType(1, 1, 2),
    "Q4_0": _GGMLType(2, 32, 2 + 16),
    "Q4_1": _GGMLType(3, 32, 2 + 2 + 16),
    "Q5_0": _GGMLType(6, 32, 2 + 4 + 16),
    "Q5_1": _GGMLType(7, 32, 2 + 2 + 4 + 16),
    "Q8_0": _GGMLType(8, 32, 2 + 32),
    "Q8_1": _GGMLType(9, 32, 4 + 4 + 32),
    "Q2_K": _GGMLType(10, QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    "Q3_K": _GGMLType(11, QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    "Q4_K": _GGMLType(12, QK_K, 2 + 2 + QK_K // 2 + 12),
    "Q5_K": _GGMLType(13, QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    "Q6_K": _GGMLType(14, QK_K, QK_K // 2 + QK_K // 4 + QK_K // 16 + 2),
    "Q8_K": _GGMLType(15, QK_K, 4 + QK_K + QK_K // 8),
    "IQ2_XXS": _GGMLType(16, QK_K, 2 + QK_K // 4),
    "IQ2_XS": _GGMLType(17, QK_K, 2 + QK_K // 4 + QK_K // 32),
    "IQ3_XXS": _GGMLType(18, QK_K, 2 + QK_K // 4 + QK_K // 8),
    "IQ1_S": _GGMLType(19, QK_K, 2 + QK_K // 8 + QK_K // 16),
    "IQ4_NL": _GGMLType(20, 32, 2 + 16),
    "IQ3_S": _GGMLType(21, QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    "IQ2_S": _GGMLType(22, QK_K, 2 + QK_K // 4 + QK_K // 16),
    "IQ4_XS": _GGMLType(23, QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    "I8": _GGMLType(24, 1, 1),
    "I16": _GGMLType(25, 1, 2),
    "I32": _GGMLType(26, 1, 4),
    "I64": _GGMLType(27, 1, 8),
    "F64": _GGMLType(28, 1, 8),
    "IQ1_M": _GGMLType(29, QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    "BF16": _GGMLType(30, 1, 2),
    "TQ1_0": _GGMLType(34, QK_K, 2 + 4 * 13),
    "TQ2_0": _GGMLType(35, QK_K, 2 + 64),
    "MXFP4": _GGMLType(39, 32, 1 + 16),
}
_GGML_TYPE_NAMES = {info.type_id: name for name, info in GGML_TYPES.items()}

# Types stored as plain little-endian elements, and the NumPy dtype of each.
_PLAIN_DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


class GGUFError(ValueError):
    """A GGUF file is damaged, hostile or unsupported."""


class GGUFTensorInfo(NamedTuple):
    """One tensor as the file describes it, after validation.

    Attributes:
        name: the tensor's name.
        shape: NumPy order (the file's ``dims`` reversed).
        ggml_type: the storage type's name, e.g. ``'F32'`` or ``'Q4_1'``.
        offset: where its bytes start, from the start of the file.
        nbytes: how many bytes it takes (without the padding after it).
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    offset: int
    nbytes: int


# --------------------------------------------------------------------------------------------
# Dequantisation (array-module generic: xp is numpy or cupy)
# --------------------------------------------------------------------------------------------
# Each function takes (n_blocks, type_size) uint8 and returns (n_blocks, block_size) float32,
# doing the float32 arithmetic in gguf-py's order so the bits are the same.


def _f16(xp, field: Array) -> Array:
    """Little-endian float16 fields (n, 2k bytes) as float32 (n, k), exactly."""
    return xp.ascontiguousarray(field).view(xp.float16).astype(xp.float32)


def _nibbles(xp, qs: Array, group: int) -> Array:
    """Split bytes into 4-bit codes: in each group of ``group`` bytes, the low nibbles come
    first, then the high ones (ggml's order). (n, b) uint8 -> (n, 2b) uint8."""
    n = qs.shape[0]
    shifts = xp.asarray([0, 4], dtype=xp.uint8).reshape(1, 1, 2, 1)
    codes = (qs.reshape(n, -1, 1, group) >> shifts) & xp.uint8(0x0F)  # (n, b/group, 2, group)
    return codes.reshape(n, -1)


def _high_bits(xp, qh: Array, group: int, bits: int) -> Array:
    """The ``bits``-wide fields of each byte, lowest first, in groups of ``group`` bytes:
    (n, b) uint8 -> (n, b * 8 / bits) uint8."""
    n = qh.shape[0]
    shifts = xp.asarray(list(range(0, 8, bits)), dtype=xp.uint8).reshape(1, 1, -1, 1)
    mask = xp.uint8((1 << bits) - 1)
    return ((qh.reshape(n, -1, 1, group) >> shifts) & mask).reshape(n, -1)


def _dequantize_q4_0(xp, blocks: Array) -> Array:
    """Q4_0: d (f16), 16 bytes of codes; x = d * (q - 8)."""
    d = _f16(xp, blocks[:, :2])
    q = _nibbles(xp, blocks[:, 2:], 16).astype(xp.int8) - xp.int8(8)
    return d * q.astype(xp.float32)


def _dequantize_q4_1(xp, blocks: Array) -> Array:
    """Q4_1: d (f16), m (f16), 16 bytes of codes; x = d * q + m. Element j < 16 is the low
    nibble of byte j, element j >= 16 the high nibble of byte j - 16."""
    d = _f16(xp, blocks[:, :2])
    m = _f16(xp, blocks[:, 2:4])
    q = _nibbles(xp, blocks[:, 4:], 16).astype(xp.float32)
    return d * q + m


def _dequantize_q5_0(xp, blocks: Array) -> Array:
    """Q5_0: d (f16), 32 high bits (4 bytes), 16 bytes of low nibbles; x = d * (q - 16)."""
    d = _f16(xp, blocks[:, :2])
    qh = xp.ascontiguousarray(blocks[:, 2:6]).view(np.dtype("<u4"))  # (n, 1)
    shifts = xp.arange(32, dtype=xp.uint32).reshape(1, 32)
    high = ((qh >> shifts) & xp.uint32(1)).astype(xp.uint8)  # bit j of qh is element j's
    q = (_nibbles(xp, blocks[:, 6:], 16) | (high << xp.uint8(4))).astype(xp.int8) - xp.int8(16)
    return d * q.astype(xp.float32)


def _dequantize_q5_1(xp, blocks: Array) -> Array:
    """Q5_1: d (f16), m (f16), 32 high bits, 16 bytes of low nibbles; x = d * q + m."""
    d = _f16(xp, blocks[:, :2])
    m = _f16(xp, blocks[:, 2:4])
    qh = xp.ascontiguousarray(blocks[:, 4:8]).view(np.dtype("<u4"))  # (n, 1)
    shifts = xp.arange(32, dtype=xp.uint32).reshape(1, 32)
    high = ((qh >> shifts) & xp.uint32(1)).astype(xp.uint8)
    q = (_nibbles(xp, blocks[:, 8:], 16) | (high << xp.uint8(4))).astype(xp.float32)
    return d * q + m


def _dequantize_q8_0(xp, blocks: Array) -> Array:
    """Q8_0: d (f16), 32 int8 codes; x = q * d."""
    d = _f16(xp, blocks[:, :2])
    q = xp.ascontiguousarray(blocks[:, 2:]).view(xp.int8).astype(xp.float32)
    return q * d


def _k_scales(xp, scales: Array) -> tuple[Array, Array]:
    """The 8 six-bit scales and 8 six-bit minimums packed in 12 bytes (Q4_K, Q5_K).

    Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 minimums 0-3; bytes 8-11 hold
    the low 4 bits of scales 4-7 (low nibble) and minimums 4-7 (high nibble), whose top two
    bits are the top bits of bytes 0-3 and 4-7.
    """
    n = scales.shape[0]
    s = scales.reshape(n, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = xp.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = xp.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(xp.float32), mn.astype(xp.float32)  # (n, 8) each


def _k_scale_shift(xp, blocks: Array) -> tuple:
    """Q4_K and Q5_K's per-sub-block ``d * sc`` and ``dmin * mn``, (n, 8, 1) each, from the
    header: d, dmin (f16), then 12 bytes of 6-bit scales and minimums."""
    n = blocks.shape[0]
    d = _f16(xp, blocks[:, :2])
    dmin = _f16(xp, blocks[:, 2:4])
    sc, mn = _k_scales(xp, blocks[:, 4:16])
    return (d * sc).reshape(n, 8, 1), (dmin * mn).reshape(n, 8, 1)


def _dequantize_q4_k(xp, blocks: Array) -> Array:
    """Q4_K: 256 elements in 8 sub-blocks of 32: d, dmin (f16), 12 bytes of 6-bit scales
    and minimums, 128 bytes of codes; x = (d * sc) * q - dmin * mn."""
    n = blocks.shape[0]
    scale, shift = _k_scale_shift(xp, blocks)
    q = _nibbles(xp, blocks[:, 16:], 32).reshape(n, 8, 32).astype(xp.float32)
    return (scale * q - shift).reshape(n, QK_K)


def _dequantize_q5_k(xp, blocks: Array) -> Array:
    """Q5_K: as Q4_K with a fifth bit per element from 32 bytes of high bits."""
    n = blocks.shape[0]
    scale, shift = _k_scale_shift(xp, blocks)
    high = _high_bits(xp, blocks[:, 16:48], 32, 1).reshape(n, 8, 32)
    low = _nibbles(xp, blocks[:, 48:], 32).reshape(n, 8, 32)
    q = (low | (high << xp.uint8(4))).astype(xp.float32)
    return (scale * q - shift).reshape(n, QK_K)


def _dequantize_q6_k(xp, blocks: Array) -> Array:
    """Q6_K: 256 elements in 16 groups of 16: 128 bytes of low nibbles, 64 bytes of 2-bit
    high parts, 16 int8 scales, d (f16); x = (d * scale) * (q - 32)."""
    n = blocks.shape[0]
    low = _nibbles(xp, blocks[:, :128], 64).reshape(n, 8, 32)
    high = _high_bits(xp, blocks[:, 128:192], 32, 2).reshape(n, 8, 32)
    scales = xp.ascontiguousarray(blocks[:, 192:208]).view(xp.int8).astype(xp.float32)
    d = _f16(xp, blocks[:, 208:210])
    scale = (d * scales).reshape(n, 16, 1)
    q = (low | (high << xp.uint8(4))).astype(xp.int8) - xp.int8(32)
    return (scale * q.reshape(n, 16, 16).astype(xp.float32)).reshape(n, QK_K)


def _dequantize_bf16(xp, blocks: Array) -> Array:
    """BF16: the high half of a float32, so widening is exact."""
    bits = xp.ascontiguousarray(blocks).view(np.dtype("<u2")).astype(xp.uint32) << xp.uint32(16)
    return bits.view(xp.float32)


_DEQUANTIZERS = {
    "Q4_0": _dequantize_q4_0,
    "Q4_1": _dequantize_q4_1,
    "Q5_0": _dequantize_q5_0,
    "Q5_1": _dequantize_q5_1,
    "Q8_0": _dequantize_q8_0,
    "Q4_K": _dequantize_q4_k,
    "Q5_K": _dequantize_q5_k,
    "Q6_K": _dequantize_q6_k,
    "BF16": _dequantize_bf16,
}
# Blocks dequantised per step, so the temporaries stay a few MB whatever the tensor's size.
_CHUNK_BLOCKS = 1 << 15


def dequantize(data: Array, ggml_type: str, xp: Any = np) -> Array:
    """Turn stored tensor data into float32, bit for bit as llama.cpp's gguf-py.

    Args:
        data: the tensor as stored (`GGUFFile.raw_tensor`): elements of the type's dtype for
            F32, F16, F64 and the integer types; for block types (and BF16) uint8 whose last
            axis holds each row's bytes.
        ggml_type: the type's name: F32, F16, BF16, F64, I8, I16, I32, I64, Q4_0, Q4_1,
            Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K.
        xp: the array module of ``data`` (numpy, or cupy for data on a GPU).

    Returns:
        A new float32 array; a block type's last axis becomes its row length in elements.

    Raises:
        GGUFError: the type cannot be dequantised, or ``data`` does not fit its layout.

    Example:
        >>> import numpy as np
        >>> block = np.zeros(20, np.uint8)
        >>> block[:4] = np.array([0.5, 1.0], np.float16).view(np.uint8)  # d, m
        >>> block[4] = 0x21  # element 0 holds 1, element 16 holds 2
        >>> dequantize(block, "Q4_1")[[0, 1, 16]]
        array([1.5, 1. , 2. ], dtype=float32)
    """
    if ggml_type in _PLAIN_DTYPES:
        return xp.asarray(data).astype(xp.float32)
    if ggml_type not in _DEQUANTIZERS:
        supported = ", ".join(sorted([*_PLAIN_DTYPES, *_DEQUANTIZERS]))
        raise GGUFError(f"cannot dequantise {ggml_type} tensors; supported: {supported}")
    block_size, type_size = GGML_TYPES[ggml_type][1:]
    data = xp.ascontiguousarray(data).view(xp.uint8)
    if data.ndim == 0 or data.shape[-1] % type_size:
        raise GGUFError(
            f"{ggml_type} rows are whole {type_size}-byte blocks, got data of shape {data.shape}"
        )
    shape = (*data.shape[:-1], data.shape[-1] // type_size * block_size)
    blocks = data.reshape(-1, type_size)
    out = xp.empty((blocks.shape[0], block_size), dtype=xp.float32)
    convert = _DEQUANTIZERS[ggml_type]
    for start in range(0, blocks.shape[0], _CHUNK_BLOCKS):
        stop = start + _CHUNK_BLOCKS
        out[start:stop] = convert(xp, blocks[start:stop])
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# Quantisation (NumPy; for writing files)
# --------------------------------------------------------------------------------------------


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C's roundf), as gguf-py's np_roundf."""
    a = np.abs(x)
    floored = np.floor(a)
    return np.sign(x) * (floored + np.floor(2 * (a - floored)))


def _quantize_q8_0(blocks: np.ndarray) -> np.ndarray:
    """(n, 32) float32 -> (n, 34) uint8, as ggml's quantize_row_q8_0_ref."""
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = _round_half_away(blocks * inv).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """(n, 32) codes 0..15 -> (n, 16) bytes: element j low nibble, element j + 16 high."""
    return q[:, :16] | (q[:, 16:] << np.uint8(4))


def _quantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """(n, 32) float32 -> (n, 18) uint8, as ggml's quantize_row_q4_0_ref."""
    index = np.abs(blocks).argmax(axis=-1)[:, None]
    d = np.take_along_axis(blocks, index, axis=-1) / np.float32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = np.trunc(blocks * inv + np.float32(8.5)).astype(np.uint8).clip(0, 15)
    return np.concatenate([d.astype(np.float16).view(np.uint8), _pack_nibbles(q)], axis=1)


def _quantize_q4_1(blocks: np.ndarray) -> np.ndarray:
    """(n, 32) float32 -> (n, 20) uint8, as ggml's quantize_row_q4_1_ref."""
    low = blocks.min(axis=-1, keepdims=True)
    d = (blocks.max(axis=-1, keepdims=True) - low) / np.float32(15)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = np.trunc((blocks - low) * inv + np.float32(0.5)).astype(np.uint8).clip(0, 15)
    head = [d.astype(np.float16).view(np.uint8), low.astype(np.float16).view(np.uint8)]
    return np.concatenate([*head, _pack_nibbles(q)], axis=1)


def _quantize_bf16(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint8 pairs): round to nearest even, NaNs kept quiet."""
    bits = values.view(np.uint32).astype(np.uint64)
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    quiet = ((bits & 0xFFFF0000) | (64 << 16)) >> 16
    return np.where(nan, quiet, rounded).astype("<u2").view(np.uint8)


_QUANTIZERS = {"Q8_0": _quantize_q8_0, "Q4_0": _quantize_q4_0, "Q4_1": _quantize_q4_1}


def quantize(array: np.ndarray, ggml_type: str) -> np.ndarray:
    """Convert an array to a GGUF storage type, as ggml's reference quantisers (gguf-py).

    Args:
        array: a NumPy array (the last axis is the row; its length must be a multiple of the
            type's block size).
        ggml_type: F32, F16, F64, BF16, I8, I16, I32, I64, Q8_0, Q4_0 or Q4_1.

    Returns:
        The stored form: the type's dtype for the plain types, uint8 rows of blocks (the
        shape's last axis in bytes) for BF16 and the block types.

    Raises:
        ValueError: the type cannot be written from an array here (the k-quants need
            llama.cpp's quantiser; write their bytes with `GGUFWriter.add_raw_tensor`), or the
            row length is not a multiple of the block size.

    Example:
        >>> import numpy as np
        >>> quantize(np.linspace(-1, 1, 32, dtype=np.float32), "Q8_0").shape
        (34,)
    """
    array = np.asarray(array)
    if ggml_type in _PLAIN_DTYPES:
        return np.ascontiguousarray(array.astype(_PLAIN_DTYPES[ggml_type]))
    if ggml_type == "BF16":
        bits = _quantize_bf16(np.ascontiguousarray(array, dtype=np.float32).reshape(-1))
        return bits.reshape(*array.shape[:-1], 2 * array.shape[-1]) if array.ndim else bits
    if ggml_type not in _QUANTIZERS:
        raise ValueError(
            f"cannot quantise to {ggml_type} here (supported: F32 F16 F64 BF16 I8 I16 I32 I64 "
            f"Q8_0 Q4_0 Q4_1); write pre-quantised bytes with GGUFWriter.add_raw_tensor"
        )
    block_size, type_size = GGML_TYPES[ggml_type][1:]
    if array.ndim == 0 or array.shape[-1] % block_size:
        raise ValueError(
            f"{ggml_type} needs rows that are a multiple of {block_size} elements, "
            f"got shape {array.shape}"
        )
    blocks = np.ascontiguousarray(array, dtype=np.float32).reshape(-1, block_size)
    packed = _QUANTIZERS[ggml_type](blocks)
    return packed.reshape(*array.shape[:-1], array.shape[-1] // block_size * type_size)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _Cursor:
    """Reads fields from the mapped file, refusing to run past its end."""

    def __init__(self, buffer: Any, size: int, source: str):
        self.buffer = buffer
        self.size = size
        self.source = source
        self.pos = 0
        self.elements = 0  # metadata array elements read so far, against MAX_METADATA_ELEMENTS

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, nbytes: int, what: str) -> None:
        if nbytes > self.size - self.pos:
            raise GGUFError(
                f"{self.source}: file ends inside {what} (needs {nbytes} bytes at offset "
                f"{self.pos}, {self.size - self.pos} remain); the file is truncated or damaged"
            )

    def scalar(self, fmt: str, what: str) -> Any:
        nbytes = struct.calcsize(fmt)
        self.need(nbytes, what)
        (value,) = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += nbytes
        return value

    def string(self, what: str) -> str:
        length = self.scalar("<Q", f"the length of {what}")
        self.need(length, what)
        raw = bytes(self.buffer[self.pos : self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFError(f"{self.source}: {what} is not valid UTF-8 ({exc})") from None


class GGUFFile:
    """An open GGUF file: its metadata, its tensors' descriptions, and their data, mapped.

    Use `read_gguf` to open one. The file stays mapped until `close` (or the end of a
    ``with`` block); arrays from `get_tensor` are independent copies and outlive it.

    Attributes:
        path: the file's path.
        version: the GGUF version (2 or 3).
        metadata: key -> value (int, float, bool, str, or a list of them), in file order.
        metadata_types: key -> the value's GGUF type, e.g. ``'UINT32'``,
            ``'ARRAY[STRING]'`` or ``'ARRAY[ARRAY[INT32]]'`` (what `GGUFWriter.add_metadata`
            takes to write it back the same).
        tensors: name -> `GGUFTensorInfo`, in file order.
        alignment: the data alignment in bytes.
        data_offset: where the tensor data section starts.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fsdecode(os.fspath(path))
        self.metadata: dict[str, Any] = {}
        self.metadata_types: dict[str, str] = {}
        self.tensors: dict[str, GGUFTensorInfo] = {}
        self._mmap: mmap.mmap | None = None
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise GGUFError(
                    f"{self.path}: file is {size} bytes, shorter than a GGUF header (24 bytes)"
                )
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._size = size
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- parsing ---------------------------------------------------------------------------

    def _parse(self) -> None:
        cur = _Cursor(self._mmap, self._size, self.path)
        magic = bytes(self._mmap[:4])
        if magic != GGUF_MAGIC:
            raise GGUFError(f"{self.path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
        cur.pos = 4
        version = cur.scalar("<I", "the version")
        if version & 0xFFFF == 0 and struct.unpack("<I", struct.pack(">I", version))[0] < 16:
            raise GGUFError(f"{self.path}: a big-endian GGUF file, which is not supported")
        if version == 1:
            raise GGUFError(f"{self.path}: GGUF v1 is obsolete and not supported (v2 and v3 are)")
        if version not in (2, 3):
            raise GGUFError(f"{self.path}: unsupported GGUF version {version} (2 and 3 are)")
        self.version = version
        tensor_count = cur.scalar("<Q", "the tensor count")
        kv_count = cur.scalar("<Q", "the metadata count")
        # Each metadata entry takes at least 12 bytes (key length, type), each tensor 24
        # (name length, n_dims, type, offset): a larger count cannot fit in the file.
        _check_count(cur, kv_count, 12, MAX_METADATA_ENTRIES, "metadata entries")
        _check_count(cur, tensor_count, 24, MAX_TENSORS, "tensors")

        for index in range(kv_count):
            key = cur.string(f"the key of metadata entry {index}")
            if not key:
                raise GGUFError(f"{self.path}: metadata entry {index} has an empty key")
            if key in self.metadata:
                raise GGUFError(f"{self.path}: duplicate metadata key {key!r}")
            type_id = cur.scalar("<I", f"the type of {key!r}")
            value, type_name = _read_value(cur, type_id, f"metadata {key!r}", depth=0)
            self.metadata[key] = value
            self.metadata_types[key] = type_name

        self.alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.metadata:
            alignment = self.metadata["general.alignment"]
            if self.metadata_types["general.alignment"] != "UINT32":
                raise GGUFError(
                    f"{self.path}: general.alignment must be UINT32, "
                    f"got {self.metadata_types['general.alignment']}"
                )
            if alignment <= 0 or alignment & (alignment - 1):
                raise GGUFError(f"{self.path}: alignment {alignment} is not a power of 2")
            self.alignment = alignment

        infos = [_read_tensor_info(cur, index) for index in range(tensor_count)]
        self.data_offset = _align(cur.pos, self.alignment)
        expected = 0
        for name, shape, ggml_type, offset, nbytes in infos:
            where = f"{self.path}: tensor {name!r}"
            if name in self.tensors:
                raise GGUFError(f"{self.path}: duplicate tensor name {name!r}")
            if offset % self.alignment:
                raise GGUFError(
                    f"{where} has offset {offset}, not a multiple of the alignment "
                    f"({self.alignment})"
                )
            if offset != expected:
                raise GGUFError(
                    f"{where} has offset {offset}, expected {expected}: tensors must follow "
                    f"each other in order, each padded to the alignment"
                )
            start = self.data_offset + offset
            if nbytes and start + nbytes > self._size:
                raise GGUFError(
                    f"{where} needs bytes [{start}, {start + nbytes}) but the file has "
                    f"{self._size}; it is truncated or the offsets are wrong"
                )
            self.tensors[name] = GGUFTensorInfo(name, shape, ggml_type, start, nbytes)
            expected = offset + _align(nbytes, self.alignment)

    # -- access ----------------------------------------------------------------------------

    def raw_tensor(self, name: str) -> np.ndarray:
        """A tensor's stored data, as a read-only view of the mapped file (nothing copied).

        Args:
            name: the tensor's name.

        Returns:
            For F32, F16, F64 and the integer types, the elements in their dtype and the
            tensor's shape; for BF16 and the block types, uint8 with the tensor's shape but
            the last axis in bytes (what `dequantize` takes).
        """
        info = self._info(name)
        ggml_type = info.ggml_type
        if ggml_type in _PLAIN_DTYPES:
            dtype, shape = _PLAIN_DTYPES[ggml_type], info.shape
        else:
            block_size, type_size = GGML_TYPES[ggml_type][1:]
            row = info.shape[-1] if info.shape else 1
            dtype, shape = np.dtype(np.uint8), (*info.shape[:-1], row // block_size * type_size)
        if info.nbytes == 0:
            return np.empty(shape, dtype=dtype)
        count = info.nbytes // dtype.itemsize
        return np.frombuffer(self._mmap, dtype=dtype, count=count, offset=info.offset).reshape(
            shape
        )

    def get_tensor(self, name: str) -> np.ndarray:
        """A tensor as a new float32 NumPy array, dequantised (read from disk only now).

        Args:
            name: the tensor's name.

        Returns:
            A writable float32 array of the tensor's shape (NumPy order).

        Raises:
            KeyError: no tensor has that name.
            GGUFError: its type cannot be dequantised (see `dequantize`).
        """
        info = self._info(name)
        data = self.raw_tensor(name)
        if info.ggml_type in _PLAIN_DTYPES:
            return data.astype(np.float32)  # a copy, native-endian
        return dequantize(data, info.ggml_type).reshape(info.shape)

    def _info(self, name: str) -> GGUFTensorInfo:
        if self._mmap is None:
            raise ValueError(f"{self.path}: the file is closed")
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{self.path} has no tensor {name!r}") from None

    def close(self) -> None:
        """Unmap the file. Views from `raw_tensor` keep it mapped until they are gone."""
        if self._mmap is not None:
            mapped, self._mmap = self._mmap, None
            with contextlib.suppress(BufferError):  # a raw_tensor view still uses it
                mapped.close()

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"GGUFFile({self.path!r}, version={self.version}, "
            f"{len(self.metadata)} metadata entries, {len(self.tensors)} tensors)"
        )


def _check_count(cur: _Cursor, count: int, min_bytes: int, limit: int, what: str) -> None:
    """Refuse a count whose items cannot fit in what remains of the file, or above a bound."""
    if count > limit:
        raise GGUFError(f"{cur.source}: {count} {what} exceed the limit of {limit}")
    if count * min_bytes > cur.remaining():
        raise GGUFError(
            f"{cur.source}: {count} {what} need at least {count * min_bytes} bytes but "
            f"{cur.remaining()} remain; the file is truncated or damaged"
        )


def _read_value(cur: _Cursor, type_id: int, what: str, depth: int) -> tuple[Any, str]:
    """Read one metadata value of the given type; return it and its type's name."""
    if type_id not in _VALUE_TYPES:
        raise GGUFError(f"{cur.source}: {what} has an unknown value type {type_id}")
    type_name, fmt = _VALUE_TYPES[type_id]
    if type_name == "STRING":
        return cur.string(what), type_name
    if type_name == "BOOL":
        byte = cur.scalar("<B", what)
        if byte > 1:
            raise GGUFError(f"{cur.source}: {what} is a BOOL but holds the byte {byte}")
        return bool(byte), type_name
    if fmt is not None:
        return cur.scalar(fmt, what), type_name

    # An array: element type, count, elements.
    if depth >= MAX_ARRAY_DEPTH:
        raise GGUFError(f"{cur.source}: {what} nests arrays deeper than {MAX_ARRAY_DEPTH}")
    element_id = cur.scalar("<I", f"the element type of {what}")
    if element_id not in _VALUE_TYPES:
        raise GGUFError(f"{cur.source}: {what} has an unknown element type {element_id}")
    element_name, element_fmt = _VALUE_TYPES[element_id]
    count = cur.scalar("<Q", f"the length of {what}")
    cur.elements += count
    if cur.elements > MAX_METADATA_ELEMENTS:
        raise GGUFError(
            f"{cur.source}: metadata arrays hold more than {MAX_METADATA_ELEMENTS} elements "
            f"in all (at {what}, of {count})"
        )
    _check_count(cur, count, _MIN_VALUE_BYTES[element_name], MAX_METADATA_ELEMENTS, what)
    if element_fmt is not None:  # numbers and bools: one vectorised read
        dtype = np.dtype(element_fmt)
        values = np.frombuffer(cur.buffer, dtype=dtype, count=count, offset=cur.pos)
        cur.pos += count * dtype.itemsize
        if element_name == "BOOL":
            if count and values.max() > 1:
                raise GGUFError(f"{cur.source}: {what} is an array of BOOL holding bytes not 0/1")
            values = values.astype(bool)
        items = values.tolist()
        del values  # release the view of the mapping
        return items, f"ARRAY[{element_name}]"
    items = []
    inner_name = element_name
    for index in range(count):
        value, inner_name = _read_value(cur, element_id, f"{what}[{index}]", depth + 1)
        items.append(value)
    if element_name == "ARRAY" and not items:
        inner_name = "ARRAY[UINT8]"  # an empty array of arrays: any inner type reads the same
    return items, f"ARRAY[{inner_name}]"


def _read_tensor_info(cur: _Cursor, index: int) -> tuple[str, tuple[int, ...], str, int, int]:
    """One tensor's name, NumPy shape, type name, offset (in the data section) and size."""
    name = cur.string(f"the name of tensor {index}")
    where = f"{cur.source}: tensor {name!r}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise GGUFError(f"{where}: the name is longer than {MAX_NAME_BYTES} bytes")
    n_dims = cur.scalar("<I", f"the dimension count of tensor {name!r}")
    if n_dims > MAX_DIMS:
        raise GGUFError(f"{where} has {n_dims} dimensions; ggml allows at most {MAX_DIMS}")
    dims = [cur.scalar("<Q", f"the dimensions of tensor {name!r}") for _ in range(n_dims)]
    # NOTE: Python integers cannot overflow: the exact element count is compared to int64.
    if any(d > np.iinfo(np.int64).max for d in dims) or math.prod(dims) > np.iinfo(np.int64).max:
        raise GGUFError(f"{where}: shape {dims} overflows 64-bit element counts")
    type_id = cur.scalar("<I", f"the type of tensor {name!r}")
    if type_id not in _GGML_TYPE_NAMES:
        raise GGUFError(f"{where} has an unknown ggml type id {type_id}")
    ggml_type = _GGML_TYPE_NAMES[type_id]
    block_size, type_size = GGML_TYPES[ggml_type][1:]
    row = dims[0] if dims else 1
    if row % block_size:
        raise GGUFError(
            f"{where}: rows of {row} elements are not a multiple of the {ggml_type} block "
            f"size ({block_size})"
        )
    nbytes = math.prod(dims) // block_size * type_size
    offset = cur.scalar("<Q", f"the offset of tensor {name!r}")
    if nbytes > cur.size:
        raise GGUFError(
            f"{where}: shape {dims} of {ggml_type} needs {nbytes} bytes, more than the whole "
            f"file ({cur.size})"
        )
    return name, tuple(reversed(dims)), ggml_type, offset, nbytes


def _align(offset: int, alignment: int) -> int:
    """The first multiple of ``alignment`` at or after ``offset``."""
    return -(-offset // alignment) * alignment


def read_gguf(path: str | os.PathLike[str]) -> GGUFFile:
    """Open a GGUF file: parse and check its header, map its tensor data.

    Args:
        path: the file.

    Returns:
        A `GGUFFile` (usable as a context manager, which closes it).

    Raises:
        GGUFError: the file is not a valid GGUF v2/v3 file.
        OSError: the file cannot be opened.
    """
    return GGUFFile(path)


def load_gguf(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every tensor of a GGUF file as float32.

    Args:
        path: the file.

    Returns:
        name -> float32 array (NumPy order), in file order.

    Raises:
        GGUFError: the file is invalid, or holds a type that cannot be dequantised.
    """
    with read_gguf(path) as f:
        return {name: f.get_tensor(name) for name in f.tensors}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _pack_value(value: Any, type_name: str, key: str) -> bytes:
    """The bytes of one metadata value, without its type id."""
    if type_name == "STRING":
        if not isinstance(value, str):
            raise TypeError(f"metadata {key!r}: expected a str for STRING, got {value!r}")
        raw = value.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw
    if type_name == "BOOL":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"metadata {key!r}: expected a bool for BOOL, got {value!r}")
        return struct.pack("<B", int(value))
    fmt = _VALUE_TYPES[_VALUE_TYPE_IDS[type_name]][1]
    if type_name in _INT_RANGES:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"metadata {key!r}: expected an int for {type_name}, got {value!r}")
        low, high = _INT_RANGES[type_name]
        if not low <= value <= high:
            raise ValueError(f"metadata {key!r}: {value} is out of range for {type_name}")
        return struct.pack(fmt, int(value))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"metadata {key!r}: expected a number for {type_name}, got {value!r}")
    if type_name == "FLOAT32":
        value = np.float32(value)  # rounds, as the reader will see it; overflow gives inf
    return struct.pack(fmt, float(value))


def _encode(value: Any, value_type: str, key: str, depth: int) -> tuple[int, bytes]:
    """(type id, bytes) of a metadata value.

    ``value_type`` is either ``ARRAY[...]``, which fixes the nesting (an empty array of
    arrays included), or a scalar type's name, which for (nested) lists is the type of the
    scalars inside them.
    """
    is_array = value_type.startswith("ARRAY[") and value_type.endswith("]")
    if not is_array and not isinstance(value, (list, tuple)):
        return _scalar_id(value_type), _pack_value(value, value_type, key)
    if depth >= MAX_ARRAY_DEPTH:  # the reader's limit
        raise ValueError(f"metadata {key!r} nests arrays deeper than {MAX_ARRAY_DEPTH}")
    if is_array:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"metadata {key!r}: {value_type} needs a list, got {value!r}")
        inner = value_type[len("ARRAY[") : -1]
        element_id = _VALUE_TYPE_IDS["ARRAY"] if inner.startswith("ARRAY[") else _scalar_id(inner)
        parts = [_encode(item, inner, key, depth + 1) for item in value]
    else:
        element_id = _scalar_id(value_type)
        parts = [_encode(item, value_type, key, depth + 1) for item in value]
        if parts:
            element_id = parts[0][0]  # the scalar type, or ARRAY for a list of lists
    if any(type_id != element_id for type_id, _ in parts):
        raise ValueError(f"metadata {key!r}: an array mixes arrays and scalars")
    head = struct.pack("<IQ", element_id, len(value))
    return _VALUE_TYPE_IDS["ARRAY"], head + b"".join(raw for _, raw in parts)


def _scalar_id(type_name: str) -> int:
    """The id of a scalar value type (any type but ARRAY), or a ValueError."""
    if type_name == "ARRAY" or type_name not in _VALUE_TYPE_IDS:
        raise ValueError(f"unknown metadata value type {type_name!r}")
    return _VALUE_TYPE_IDS[type_name]


def _infer_type(value: Any, key: str) -> str:
    """The GGUF type of a Python scalar, or of the scalars inside nested lists."""
    leaves = list(_leaves(value))
    if not leaves:
        raise ValueError(f"metadata {key!r}: give the value_type of an empty array")
    if all(isinstance(v, (bool, np.bool_)) for v in leaves):
        return "BOOL"
    if all(isinstance(v, str) for v in leaves):
        return "STRING"
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in leaves):
        if all(_INT_RANGES["INT32"][0] <= v <= _INT_RANGES["INT32"][1] for v in leaves):
            return "INT32"
        if all(_INT_RANGES["INT64"][0] <= v <= _INT_RANGES["INT64"][1] for v in leaves):
            return "INT64"
        return "UINT64"
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in leaves):
        return "FLOAT32"
    raise TypeError(f"metadata {key!r}: cannot infer a GGUF type for {value!r}")


def _leaves(value: Any):
    """The scalars of a value, through nested lists and tuples."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class GGUFWriter:
    """Build a GGUF file: metadata entries and tensors, written in the order they are added.

    Args:
        version: the GGUF version to write, 2 or 3 (their layouts are the same).
        alignment: the data alignment, a power of two; any value but 32 is written as the
            ``general.alignment`` entry, first.

    Example:
        >>> import numpy as np
        >>> writer = GGUFWriter()
        >>> writer.add_metadata("tokenizer.ggml.tokens", ["a", "b"])
        >>> writer.add_tensor("x", np.ones((2, 32), np.float32), "F16")
        >>> len(writer.to_bytes())
        256
    """

    def __init__(self, version: int = 3, alignment: int = DEFAULT_ALIGNMENT):
        if version not in (2, 3):
            raise ValueError(f"GGUF version must be 2 or 3, got {version}")
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"alignment must be a power of 2, got {alignment!r}")
        self.version = version
        self.alignment = alignment
        self._metadata: dict[str, tuple[int, bytes]] = {}  # key -> (type id, value bytes)
        self._tensors: dict[str, tuple[tuple[int, ...], str, np.ndarray]] = {}
        if alignment != DEFAULT_ALIGNMENT:
            self.add_metadata("general.alignment", alignment, "UINT32")

    def add_metadata(self, key: str, value: Any, value_type: str | None = None) -> None:
        """Add one metadata entry.

        Args:
            key: a new, non-empty key.
            value: an int, float, bool, str, or a (nested) list of them.
            value_type: the GGUF type: a scalar type's name (``'UINT32'``), which for a
                (nested) list is the type of the scalars in it, or the full form that
                `GGUFFile.metadata_types` gives (``'ARRAY[ARRAY[UINT32]]'``). Default: bool ->
                BOOL, str -> STRING, int -> INT32 (INT64 or UINT64 when it does not fit),
                float -> FLOAT32.

        Raises:
            TypeError, ValueError: the key is taken or empty, the value does not match the
                type, or an integer is out of the type's range.
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"a metadata key must be a non-empty str, got {key!r}")
        if key in self._metadata:
            raise ValueError(f"duplicate metadata key {key!r}")
        if value_type is None:
            value_type = _infer_type(value, key)
        if key == "general.alignment" and (value_type != "UINT32" or value != self.alignment):
            raise ValueError("set general.alignment through GGUFWriter(alignment=...)")
        self._metadata[key] = _encode(value, value_type, key, depth=0)

    def add_tensor(self, name: str, array: np.ndarray, ggml_type: str | None = None) -> None:
        """Add a tensor from an array, converted (quantised) to ``ggml_type`` by `quantize`.

        Args:
            name: a new name of at most 63 UTF-8 bytes.
            array: a NumPy array of at most 4 dimensions.
            ggml_type: the storage type (default: F32 for float32 and other floats, F16 for
                float16, F64 for float64, I32/I64/I16/I8 for integers of that size).
        """
        array = np.asarray(array)
        if ggml_type is None:
            ggml_type = _default_type(array.dtype)
        stored = quantize(array, ggml_type)
        self._add(name, tuple(array.shape), ggml_type, stored)

    def add_raw_tensor(
        self, name: str, data: bytes | np.ndarray, shape: tuple[int, ...], ggml_type: str
    ) -> None:
        """Add a tensor from its stored bytes (e.g. pre-quantised blocks, or `raw_tensor`).

        Args:
            name: a new name of at most 63 UTF-8 bytes.
            data: the bytes in ggml's layout for ``ggml_type``.
            shape: the tensor's shape in NumPy order.
            ggml_type: the storage type's name (any of `GGML_TYPES`).
        """
        if ggml_type not in GGML_TYPES:
            raise ValueError(f"unknown ggml type {ggml_type!r}")
        if isinstance(data, np.ndarray):
            raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        else:
            raw = np.frombuffer(bytes(data), dtype=np.uint8)
        self._add(name, tuple(int(d) for d in shape), ggml_type, raw)

    def _add(self, name: str, shape: tuple[int, ...], ggml_type: str, stored: np.ndarray) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a tensor name must be a non-empty str, got {name!r}")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ValueError(f"tensor name {name!r} is longer than {MAX_NAME_BYTES} bytes")
        if name in self._tensors:
            raise ValueError(f"duplicate tensor name {name!r}")
        if len(shape) > MAX_DIMS:
            raise ValueError(f"tensor {name!r} has {len(shape)} dimensions; at most {MAX_DIMS}")
        block_size, type_size = GGML_TYPES[ggml_type][1:]
        row = shape[-1] if shape else 1
        if row % block_size:
            raise ValueError(
                f"tensor {name!r}: rows of {row} elements are not a multiple of the "
                f"{ggml_type} block size ({block_size})"
            )
        nbytes = math.prod(shape) // block_size * type_size
        if stored.nbytes != nbytes:
            raise ValueError(
                f"tensor {name!r}: shape {shape} of {ggml_type} takes {nbytes} bytes, "
                f"got {stored.nbytes}"
            )
        self._tensors[name] = (shape, ggml_type, stored)

    def _write_to(self, f: IO[bytes]) -> None:
        """Header, metadata, tensor infos, padding, then each tensor padded to the alignment."""
        head = io.BytesIO()
        head.write(GGUF_MAGIC)
        head.write(struct.pack("<IQQ", self.version, len(self._tensors), len(self._metadata)))
        for key, (type_id, raw) in self._metadata.items():
            head.write(_pack_value(key, "STRING", key))
            head.write(struct.pack("<I", type_id))
            head.write(raw)
        offset = 0
        for name, (shape, ggml_type, stored) in self._tensors.items():
            head.write(_pack_value(name, "STRING", name))
            head.write(struct.pack("<I", len(shape)))
            head.write(struct.pack(f"<{len(shape)}Q", *reversed(shape)))
            head.write(struct.pack("<IQ", GGML_TYPES[ggml_type].type_id, offset))
            offset += _align(stored.nbytes, self.alignment)
        header = head.getvalue()
        f.write(header)
        f.write(b"\0" * (_align(len(header), self.alignment) - len(header)))
        for _, _, stored in self._tensors.values():
            if stored.nbytes:
                f.write(stored.reshape(-1).view(np.uint8))
            f.write(b"\0" * (_align(stored.nbytes, self.alignment) - stored.nbytes))

    def to_bytes(self) -> bytes:
        """The whole file as bytes."""
        out = io.BytesIO()
        self._write_to(out)
        return out.getvalue()

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically (a temporary file renamed over ``path``, as
        `minigrad.io.safetensors.save_file` does).

        Raises:
            OSError: the file could not be written.
        """
        path = os.fsdecode(os.fspath(path))
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp_path = _create_temp_file(directory, os.path.basename(path))
        try:
            with os.fdopen(fd, "wb") as f:
                self._write_to(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            raise
        _fsync_directory(directory)


def _default_type(dtype: np.dtype) -> str:
    """The storage type an array of this dtype gets when none is named."""
    if dtype.kind == "i":
        return {1: "I8", 2: "I16", 4: "I32", 8: "I64"}[dtype.itemsize]
    if dtype == np.float16:
        return "F16"
    if dtype == np.float64:
        return "F64"
    if dtype.kind == "f":
        return "F32"
    raise TypeError(f"no GGUF type for dtype {dtype}; name one (ggml_type='F32', 'I32', ...)")
