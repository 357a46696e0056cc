"""Tests for minigrad.io.safetensors: round trips, hostile files, atomic writes, interop."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad.io import safetensors as sf
from minigrad.io.safetensors import (
    SafetensorsError,
    load,
    load_file,
    read_metadata,
    save,
    save_file,
)

try:  # the reference implementation, for cross-checks where it is installed
    import safetensors.numpy as ref_numpy
except ImportError:
    ref_numpy = None

DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "C64": np.complex64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U64": np.uint64,
    "U32": np.uint32,
    "U16": np.uint16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
SHAPES = [(), (0,), (3, 0, 2), (5,), (2, 3), (2, 1, 4, 3)]


def every_dtype_and_shape(rng: np.random.Generator, sep: str) -> dict:
    """A random array of every dtype in every shape, named ``<dtype><sep><shape index>``."""
    return {
        f"{k}{sep}{i}": random_array(dt, s, rng)
        for k, dt in DTYPES.items()
        for i, s in enumerate(SHAPES)
    }


def random_array(dtype, shape, rng: np.random.Generator) -> np.ndarray:
    """Arbitrary bit patterns (NaNs, infinities, subnormals included); bools are 0/1."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    size = int(np.prod(shape)) * dtype.itemsize
    return np.frombuffer(rng.bytes(size), dtype=dtype).reshape(shape).copy()


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype (native), shape and bits."""
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype.newbyteorder("=")
    assert actual.dtype.isnative
    assert actual.shape == expected.shape
    expected = expected.astype(expected.dtype.newbyteorder("="))
    assert actual.tobytes() == expected.tobytes()


def raw_file(header, data: bytes = b"", size: int | None = None) -> bytes:
    """A file from a header (dict, str or bytes) and a data buffer; `size` overrides N."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if size is None else size
    return struct.pack("<Q", n) + header + data


def header_of(blob: bytes) -> dict:
    """The parsed JSON header of a file."""
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n])


def entry(dtype: str, shape, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DTYPES))
def test_roundtrip_every_dtype_and_shape(name, tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t{i}": random_array(DTYPES[name], shape, rng) for i, shape in enumerate(SHAPES)}
    path = tmp_path / "model.safetensors"
    save_file(tensors, path)
    for loaded in (load(save(tensors)), load_file(path)):
        assert set(loaded) == set(tensors)
        for key, array in tensors.items():
            assert_same(loaded[key], array)
    assert all(info["dtype"] == name for info in header_of(save(tensors)).values())


def test_roundtrip_mixed_dtypes_in_one_file():
    rng = np.random.default_rng(1)
    tensors = {
        f"{name.lower()}": random_array(dtype, (3, 2), rng) for name, dtype in DTYPES.items()
    }
    loaded = load(save(tensors))
    for key, array in tensors.items():
        assert_same(loaded[key], array)


def test_noncontiguous_and_big_endian_inputs():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    tensors = {
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "reversed": base[::-1, ::-1],
        "big_f4": np.arange(5, dtype=">f4") * 1.5,
        "big_i8": np.arange(-3, 3, dtype=">i8").reshape(2, 3),
        "big_c8": (np.arange(4) + 1j).astype(">c8"),
        "big_strided": np.arange(12, dtype=">u2").reshape(3, 4)[:, ::2],
        "scalar": np.float32(2.5),
    }
    loaded = load(save(tensors))
    for key, array in tensors.items():
        np.testing.assert_array_equal(loaded[key], array)
        assert loaded[key].dtype == np.asarray(array).dtype.newbyteorder("=")
        assert loaded[key].dtype.isnative


def test_loaded_arrays_are_owned_and_writable(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"a": np.ones((2, 3), np.float32), "b": np.zeros(4, np.bool_)}, path)
    loaded = load_file(path)
    os.remove(path)  # nothing may still point into the file
    for array in loaded.values():
        assert array.flags.owndata and array.flags.writeable and array.flags.c_contiguous
        array[...] = 1
    np.testing.assert_array_equal(loaded["a"], np.ones((2, 3)))


def test_header_layout_matches_the_reference_rules():
    tensors = {
        "b": np.zeros(3, np.uint8),
        "a": np.zeros(3, np.uint8),
        "w": np.zeros(1, np.float64),
        "h": np.zeros(1, np.float16),
        "f": np.zeros(1, np.float32),
        "q": np.zeros(1, np.int64),
    }
    blob = save(tensors, metadata={"z": "1", "a": "2"})
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    text = blob[8 : 8 + n].decode()
    assert text.rstrip(" ").endswith("}") and len(text) - len(text.rstrip(" ")) < 8
    assert ", " not in text and ": " not in text  # compact, like serde_json
    header = json.loads(text)
    # __metadata__ first with sorted keys, then the widest dtypes first, then names.
    assert list(header) == ["__metadata__", "q", "w", "f", "h", "a", "b"]
    assert list(header["__metadata__"]) == ["a", "z"]
    for key, info in header.items():
        if key != "__metadata__":
            begin, _ = info["data_offsets"]
            assert (8 + n + begin) % tensors[key].itemsize == 0  # aligned in the file


def test_empty_file_and_exact_bytes():
    assert save({}) == struct.pack("<Q", 8) + b"{}      "
    assert load(save({})) == {}
    expected = (
        struct.pack("<Q", 64)
        + (b'{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}')
        + np.arange(6, dtype="<f4").tobytes()
    )
    assert save({"attn.0": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}) == expected


def test_metadata_roundtrip(tmp_path):
    path = tmp_path / "m.safetensors"
    metadata = {"format": "np", "epoch": "3", "note": 'quotes " and \\ and \n and é 中'}
    save_file({"x": np.arange(3)}, path, metadata=metadata)
    assert read_metadata(path) == metadata
    save_file({"x": np.arange(3)}, path)
    assert read_metadata(path) is None
    save_file({}, path, metadata={})
    assert read_metadata(path) == {}


def test_metadata_null_is_accepted_as_absent():
    # The reference reader accepts null (its metadata is an Option).
    assert load(raw_file('{"__metadata__":null}')) == {}


def test_bf16_is_read_as_exact_float32():
    values = np.array([1.0, -2.5, 3.140625, np.inf, -0.0, 1e-40], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    nan_bits = np.array([0x7FC0], dtype="<u2")
    data = bits.tobytes() + nan_bits.tobytes()
    header = {"b": entry("BF16", [7], 0, 14)}
    out = load(raw_file(header, data))["b"]
    assert out.dtype == np.float32 and out.flags.owndata
    expected = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(out[:6], expected)
    assert out[0] == 1.0 and out[1] == -2.5 and np.isnan(out[6])


@pytest.mark.parametrize(
    "tensors, metadata, error",
    [
        ({1: np.zeros(1)}, None, TypeError),
        ({"a": [1.0, 2.0]}, None, TypeError),
        ({"a": np.array(["x"])}, None, TypeError),
        ({"a": np.array([object()])}, None, TypeError),
        ({"a": np.zeros(1, np.complex128)}, None, TypeError),
        ({"a": np.zeros(1, [("x", "f4")])}, None, TypeError),
        ({"__metadata__": np.zeros(1)}, None, ValueError),
        ({"\ud800": np.zeros(1)}, None, ValueError),
        ({"a": np.zeros(1)}, {"k": 1}, TypeError),
        ({"a": np.zeros(1)}, ["k"], TypeError),
    ],
)
def test_save_rejects_bad_input_without_touching_the_disk(tensors, metadata, error, tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(error):
        save_file(tensors, path, metadata=metadata)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.safetensors"]


# --------------------------------------------------------------------------------------------
# Damaged and hostile files
# --------------------------------------------------------------------------------------------

U8 = entry("U8", [4], 0, 4)
HOSTILE = {
    "empty file": (b"", "shorter than the 8-byte"),
    "7 bytes": (b"\x08\x00\x00\x00\x00\x00\x00", "shorter than the 8-byte"),
    "header size 2**64-1": (raw_file("{}", size=2**64 - 1), "exceeds the 100000000-byte limit"),
    "header size past eof": (raw_file("{}", size=1000), "runs past the end of the file"),
    "header not utf-8": (raw_file(b'{"\xff\xfe":1}'), "not valid UTF-8"),
    "header not json": (raw_file("{"), "not valid JSON"),
    "header padded with nul": (raw_file(b"{}\x00"), "not valid JSON"),
    "NaN constant": (raw_file('{"x":NaN}'), "not valid JSON"),
    "deep nesting": (raw_file("[" * 200_000 + "]" * 200_000), "not valid JSON"),
    "5000-digit int": (raw_file('{"a":{"x":' + "9" * 5000 + "}}"), "not valid JSON"),
    "header is a list": (raw_file("[]"), "must be a JSON object, got list"),
    "header is a string": (raw_file('"x"'), "must be a JSON object, got str"),
    "entry not object": (raw_file({"a": [1, 2]}), "expected an object"),
    "missing dtype": (raw_file({"a": {"shape": [1], "data_offsets": [0, 1]}}, b"x"), "'dtype'"),
    "missing shape": (raw_file({"a": {"dtype": "U8", "data_offsets": [0, 1]}}, b"x"), "'shape'"),
    "missing offsets": (raw_file({"a": {"dtype": "U8", "shape": [1]}}, b"x"), "'data_offsets'"),
    "dtype not str": (raw_file({"a": entry(8, [4], 0, 4)}, b"1234"), "dtype must be a string"),
    "unknown dtype": (raw_file({"a": entry("F128", [4], 0, 4)}, b"1234"), "unknown dtype 'F128'"),
    "float8 dtype": (raw_file({"a": entry("F8_E4M3", [4], 0, 4)}, b"1234"), "not supported"),
    "negative dim": (raw_file({"a": entry("U8", [-4], 0, 4)}, b"1234"), "non-negative integers"),
    "float dim": (raw_file({"a": entry("U8", [4.0], 0, 4)}, b"1234"), "non-negative integers"),
    "minus zero dim": (
        raw_file('{"a":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}}'),
        "non-negative integers",
    ),
    "bool dim": (raw_file({"a": entry("U8", [True], 0, 1)}, b"1"), "non-negative integers"),
    "shape not list": (raw_file({"a": {**U8, "shape": 4}}, b"1234"), "non-negative integers"),
    "65 dims": (raw_file({"a": entry("U8", [1] * 65, 0, 1)}, b"1"), "at most 64"),
    "3 offsets": (raw_file({"a": {**U8, "data_offsets": [0, 2, 4]}}, b"1234"), "[begin, end]"),
    "offsets str": (raw_file({"a": {**U8, "data_offsets": "0:4"}}, b"1234"), "[begin, end]"),
    "negative offset": (raw_file({"a": entry("U8", [4], -1, 3)}, b"1234"), "[begin, end]"),
    "reversed offsets": (raw_file({"a": entry("U8", [0], 4, 0)}, b"1234"), "reversed"),
    "end past buffer": (raw_file({"a": entry("U8", [8], 0, 8)}, b"1234"), "beyond the end"),
    "too few bytes": (raw_file({"a": entry("F32", [3], 0, 8)}, b"12345678"), "needs 12 bytes"),
    "too many bytes": (raw_file({"a": entry("F32", [1], 0, 8)}, b"12345678"), "needs 4 bytes"),
    "lying huge shape": (
        raw_file({"a": entry("F64", [2**40, 2**40], 0, 8)}, b"12345678"),
        "needs 9671406556917033397649408 bytes",
    ),
    "lying consistent huge": (
        raw_file({"a": entry("F64", [2**20, 2**20], 0, 2**43)}, b"12345678"),
        "beyond the end",
    ),
    "absurd empty shape": (raw_file({"a": entry("U8", [0, 2**62, 2**62], 0, 0)}), "too large"),
    "overlap": (
        raw_file({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, b"123456"),
        "overlapping tensor 'a'",
    ),
    "duplicate region": (
        raw_file({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 0, 4)}, b"1234"),
        "overlapping",
    ),
    "gap": (
        raw_file({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 4, 6)}, b"123456"),
        "gap of 2 bytes",
    ),
    "not starting at 0": (raw_file({"a": entry("U8", [2], 2, 4)}, b"1234"), "gap of 2 bytes"),
    "trailing bytes": (raw_file({"a": U8}, b"123456"), "2 trailing bytes"),
    "data without tensors": (raw_file("{}", b"1"), "trailing bytes"),
    "metadata list": (raw_file({"__metadata__": ["a"]}), "__metadata__ must be an object"),
    "metadata int value": (raw_file({"__metadata__": {"a": 1}}), "must be a string, got int"),
    "duplicate tensor": (raw_file('{"a":{},"a":{}}'), "duplicate key 'a'"),
    "duplicate metadata key": (raw_file('{"__metadata__":{"k":"1","k":"2"}}'), "duplicate key"),
    "duplicate field": (
        raw_file('{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}', b"x"),
        "duplicate key 'dtype'",
    ),
    "lone surrogate name": (raw_file('{"\\ud800":{}}'), "surrogate"),
    "lone surrogate metadata": (raw_file('{"__metadata__":{"k":"\\udfff"}}'), "surrogate"),
    "bool byte 2": (raw_file({"a": entry("BOOL", [2], 0, 2)}, b"\x01\x02"), "not 0/1"),
}


@pytest.mark.parametrize("blob, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bytes_raise_safetensors_error(blob, message):
    with pytest.raises(SafetensorsError, match="^<bytes>: ") as info:
        load(blob)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("blob, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_files_name_the_file(blob, message, tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(SafetensorsError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_read_metadata_validates_the_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw_file({"__metadata__": {"a": "b"}, "x": U8}, b"12"))
    with pytest.raises(SafetensorsError, match="beyond the end"):
        read_metadata(path)


def test_lying_header_allocates_nothing_big(tmp_path):
    # Claims a 64 GiB tensor but the file is 8 bytes of data: refused before any allocation.
    path = tmp_path / "liar.safetensors"
    path.write_bytes(raw_file({"a": entry("F64", [2**33], 0, 2**36)}, b"12345678"))
    tracemalloc.start()
    try:
        with pytest.raises(SafetensorsError):
            load_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_file_shrinking_while_read_is_an_error():
    class Shrunk:
        """A file that stops delivering bytes before its declared size."""

        def __init__(self, data):
            self.data = memoryview(data)

        def readinto(self, view):
            count = min(len(view), len(self.data))
            view[:count] = self.data[:count]
            self.data = self.data[count:]
            return count

    blob = save({"a": np.arange(10.0)})
    with pytest.raises(SafetensorsError, match="ended early"):
        sf._read(Shrunk(blob[:-8]), len(blob), "<stream>")


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6).filter(
    lambda name: name != "__metadata__"
)


@st.composite
def tensor_dicts(draw) -> dict[str, np.ndarray]:
    specs = draw(
        st.dictionaries(
            NAMES,
            st.tuples(st.sampled_from(list(DTYPES)), st.lists(st.integers(0, 3), max_size=3)),
            max_size=4,
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        name: random_array(DTYPES[dt], tuple(shape), rng) for name, (dt, shape) in specs.items()
    }


@settings(max_examples=150, deadline=None)
@given(tensors=tensor_dicts(), metadata=st.none() | st.dictionaries(NAMES, NAMES, max_size=3))
def test_property_roundtrip(tensors, metadata):
    blob = save(tensors, metadata)
    loaded = load(blob)
    assert list(loaded) == sorted(
        tensors, key=lambda k: (-sf._WRITE_RANK[sf._dtype_name(k, tensors[k].dtype)], k)
    )
    for key, array in tensors.items():
        assert_same(loaded[key], array)
    if ref_numpy is not None:
        # Older references keep metadata in a HashMap (any order); 0.8 writes invalid JSON for
        # empty metadata without tensors.
        if (metadata is None or len(metadata) == 1) or (metadata == {} and tensors):
            assert blob == ref_numpy.save(tensors, metadata=metadata)
        for key, array in ref_numpy.load(blob).items():
            assert_same(array, tensors[key])


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 2**70)
    | st.sampled_from([0, 1, 2, 4, 8, 16, 24])
    | st.floats(allow_nan=False)
    | st.sampled_from(list(DTYPES) + ["BF16", "F8_E4M3", "bogus", "__metadata__"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=6,
)


@st.composite
def damaged_files(draw) -> bytes:
    """A valid file, then one mutation: flipped bytes, truncation, extension or header edits."""
    tensors = draw(tensor_dicts())
    blob = bytearray(save(tensors, draw(st.none() | st.just({"k": "v"}))))
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "header", "header"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(blob) - 1))
            blob[position] = draw(st.integers(0, 255))
    elif kind == "truncate":
        del blob[draw(st.integers(0, len(blob) - 1)) :]
    elif kind == "extend":
        blob += draw(st.binary(min_size=1, max_size=16))
    else:
        (n,) = struct.unpack("<Q", blob[:8])
        header, data = json.loads(blob[8 : 8 + n]), bytes(blob[8 + n :])
        keys = sorted(header)
        key = draw(st.sampled_from(keys)) if keys else "t"
        action = draw(st.sampled_from(["set", "reshape", "delete", "replace", "add"]))
        target = header.get(key)
        if action == "reshape" and isinstance(target, dict):
            target["shape"] = draw(st.lists(st.integers(0, 4), max_size=3))
        elif action == "set" and isinstance(target, dict):
            target[draw(st.sampled_from(["dtype", "shape", "data_offsets", "x"]))] = draw(
                JSON_VALUES
            )
        elif action == "delete" and isinstance(target, dict) and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif action == "replace":
            header[key] = draw(JSON_VALUES)
        else:
            header[draw(NAMES)] = {
                "dtype": draw(st.sampled_from(list(DTYPES) + ["BF16"])),
                "shape": draw(st.lists(st.integers(0, 3), max_size=2)),
                "data_offsets": draw(st.lists(st.integers(0, 64), min_size=2, max_size=2)),
            }
        text = json.dumps(header).encode()
        text += b" " * draw(st.integers(0, 7))
        data += draw(st.binary(max_size=8))
        blob = bytearray(raw_file(text, data))
    return bytes(blob)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=damaged_files())
def test_property_damaged_files_raise_or_load_consistently(blob):
    try:
        loaded = load(blob)
    except SafetensorsError:
        return
    # It loaded: the header must describe exactly these arrays, tiling the whole buffer.
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    metadata = header.pop("__metadata__", None)
    assert metadata is None or all(isinstance(v, str) for v in metadata.values())
    assert set(loaded) == set(header)
    covered = 0
    for key, array in loaded.items():
        info = header[key]
        assert isinstance(array, np.ndarray) and array.flags.owndata and array.flags.writeable
        assert array.shape == tuple(info["shape"])
        itemsize = 2 if info["dtype"] == "BF16" else array.itemsize
        begin, end = info["data_offsets"]
        assert end - begin == array.size * itemsize
        if info["dtype"] != "BF16":
            assert array.dtype == DTYPES[info["dtype"]]
            assert array.tobytes() == blob[8 + n + begin : 8 + n + end]
        covered += end - begin
    assert covered == len(blob) - 8 - n
    # The reference must accept whatever we accept, with the same bits.
    if ref_numpy is not None and all(info["dtype"] != "BF16" for info in header.values()):
        for key, array in ref_numpy.load(blob).items():
            assert_same(loaded[key], array)


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from minigrad.io import safetensors as sf

    original = sf._write_payload

    class Stalling:
        # Passes writes through, but stalls forever after the first tensor's bytes.
        def __init__(self, f):
            self.f, self.calls = f, 0

        def write(self, data):
            self.f.write(data)
            self.calls += 1
            if self.calls == 3:  # size prefix, header, first tensor
                self.f.flush()
                print("stalled", flush=True)
                time.sleep(60)

    sf._write_payload = lambda f, header, arrays: original(Stalling(f), header, arrays)
    sf.save_file({"a": np.full(100_000, 7.0), "b": np.zeros(100_000)}, sys.argv[1])
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_killed_writer_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"old": np.arange(10, dtype=np.int32)}, path)
    old_bytes = path.read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "stalled"
        temps = [p for p in tmp_path.iterdir() if p.name != path.name]
        assert len(temps) == 1 and temps[0].name.startswith(".model.safetensors.")
        assert temps[0].stat().st_size > 800_000  # the new data was really being written
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == old_bytes
    np.testing.assert_array_equal(load_file(path)["old"], np.arange(10))


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_removes_the_temp_file(error, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_file({"old": np.arange(3)}, path)
    old_bytes = path.read_bytes()
    original = sf._write_payload

    def failing(f, header, arrays):
        original(f, header, arrays)
        raise error

    monkeypatch.setattr(sf, "_write_payload", failing)
    with pytest.raises(type(error)):
        save_file({"new": np.ones(1000)}, path)
    assert os.listdir(tmp_path) == [path.name]
    assert path.read_bytes() == old_bytes


def test_failed_rename_removes_the_temp_file(tmp_path):
    target = tmp_path / "is_a_directory"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        save_file({"a": np.ones(3)}, target)
    assert sorted(os.listdir(tmp_path)) == ["is_a_directory"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_file_respects_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_file({"a": np.ones(1)}, tmp_path / "a.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["a.safetensors"]


# --------------------------------------------------------------------------------------------
# Interop with the reference library
# --------------------------------------------------------------------------------------------


def test_reference_reads_our_files(tmp_path):
    ref = pytest.importorskip("safetensors.numpy")
    tensors = every_dtype_and_shape(np.random.default_rng(2), sep=".")
    path = tmp_path / "ours.safetensors"
    save_file(tensors, path, metadata={"framework": "minigrad"})
    loaded = ref.load_file(str(path))
    for key, array in tensors.items():
        assert_same(loaded[key], array)
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"framework": "minigrad"}


def test_we_read_reference_files(tmp_path):
    ref = pytest.importorskip("safetensors.numpy")
    tensors = every_dtype_and_shape(np.random.default_rng(3), sep="/")
    path = tmp_path / "ref.safetensors"
    ref.save_file(tensors, str(path), metadata={"a": "1", "b": "2"})
    loaded = load_file(path)
    for key, array in tensors.items():
        assert_same(loaded[key], array)
    assert read_metadata(path) == {"a": "1", "b": "2"}


def test_byte_identical_to_the_reference():
    ref = pytest.importorskip("safetensors.numpy")
    names = ["a", "B", "é", "中文", 'q"uote', "back\\slash", "new\nline", "\x01ctl", "\x7f", ""]
    rng = np.random.default_rng(4)
    dtypes = list(DTYPES.values())
    tensors = {
        name: random_array(dtypes[i % len(dtypes)], (i % 3, 2), rng) for i, name in enumerate(names)
    }
    for metadata in (None, {"format": "pt \u2028 é"}):
        assert save(tensors, metadata) == ref.save(tensors, metadata=metadata)


@pytest.mark.torch
def test_torch_interop(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file as torch_load_file
    from safetensors.torch import save_file as torch_save_file

    generator = torch.Generator().manual_seed(0)
    theirs = {
        "f32": torch.randn(3, 4, generator=generator),
        "f64": torch.randn(2, dtype=torch.float64, generator=generator),
        "f16": torch.randn(5, generator=generator).half(),
        "bf16": torch.randn(2, 3, generator=generator).bfloat16(),
        "i64": torch.arange(-3, 3),
        "i32": torch.arange(4, dtype=torch.int32).reshape(2, 2),
        "i16": torch.tensor([-7, 7], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "c64": torch.randn(2, dtype=torch.complex64, generator=generator),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),
        "view": torch.randn(4, 4, generator=generator).t().contiguous(),
    }
    path = tmp_path / "torch.safetensors"
    torch_save_file(theirs, str(path), metadata={"format": "pt"})
    loaded = load_file(path)
    assert read_metadata(path) == {"format": "pt"}
    for key, tensor in theirs.items():
        if tensor.dtype == torch.bfloat16:
            expected = tensor.float().numpy()  # BF16 widens exactly to float32
        else:
            expected = tensor.numpy()
        assert_same(loaded[key], expected)

    ours = {key: array for key, array in loaded.items()}
    ours["strided"] = np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2]
    path2 = tmp_path / "ours.safetensors"
    save_file(ours, path2)
    back = torch_load_file(str(path2))
    for key, array in ours.items():
        assert torch.equal(back[key], torch.from_numpy(array.copy(order="C")))
