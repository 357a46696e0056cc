"""Collectives on 2 and 3 MPI ranks: every op on every dtype against NumPy."""

import numpy as np
import pytest
from dist_helpers import DTYPES, OPS, mpirun, needs_mpi, rank_input

pytestmark = needs_mpi


@pytest.fixture(scope="module", params=[2, 3], ids=lambda n: f"{n}ranks")
def run(request, tmp_path_factory):
    n = request.param
    return mpirun("collectives", n, tmp_path_factory.mktemp(f"collectives{n}"))


def _reduce(stack: np.ndarray, op: str, dtype: str) -> np.ndarray:
    n = len(stack)
    if dtype == "bool":
        return {"SUM": stack.any(0), "PRODUCT": stack.all(0), "MIN": stack.all(0),
                "MAX": stack.any(0)}[op]
    if op == "AVG":
        total = stack.sum(0, dtype=np.float64) / n
        return (np.trunc(total) if np.dtype(dtype).kind in "iu" else total).astype(dtype)
    fn = {"SUM": np.sum, "PRODUCT": np.prod, "MIN": np.min, "MAX": np.max}[op]
    return fn(stack, axis=0).astype(dtype)


def _inputs(n: int, dtype: str, shift: int = 0) -> np.ndarray:
    return np.stack([rank_input(k + shift, dtype) for k in range(n)])


def _cases(ops):
    # AVG is undefined on bool: an error, tested in test_group_and_errors
    return [(d, o) for d in DTYPES for o in ops if not (d == "bool" and o == "AVG")]


@pytest.mark.parametrize("dtype, op", _cases(OPS))
def test_all_reduce(run, dtype, op):
    expected = _reduce(_inputs(run.n, dtype), op, dtype)
    for r in range(run.n):
        got = run.arrays(r)[f"all_reduce/{dtype}/{op}"]
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, expected, err_msg=f"rank {r}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_and_all_gather(run, dtype):
    for r in range(run.n):
        arrays = run.arrays(r)
        np.testing.assert_array_equal(arrays[f"broadcast/{dtype}"],
                                      rank_input(run.n - 1, dtype))
        np.testing.assert_array_equal(arrays[f"all_gather/{dtype}"], _inputs(run.n, dtype))
        assert arrays[f"all_gather/{dtype}"].dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype, op", _cases(["SUM", "MAX", "AVG"]))
def test_reduce_scatter(run, dtype, op):
    for r in range(run.n):
        # rank k's input_list[r] is rank_input(k + 7 r); rank r receives their reduction
        expected = _reduce(_inputs(run.n, dtype, shift=7 * r), op, dtype)
        np.testing.assert_array_equal(run.arrays(r)[f"reduce_scatter/{dtype}/{op}"], expected)


def test_special_tensors(run):
    n = run.n
    for r in range(n):
        arrays = run.arrays(r)
        np.testing.assert_array_equal(arrays["all_reduce/transposed"],
                                      _inputs(n, "float32").sum(0).T)
        assert arrays["all_reduce/scalar"].shape == ()
        assert arrays["all_reduce/scalar"] == np.prod(np.arange(1, n + 1))
        assert arrays["all_reduce/empty"].shape == (0,)
        np.testing.assert_array_equal(arrays["all_reduce/async"], _inputs(n, "float64").sum(0))
        assert arrays["found_inf"].tolist() == [1.0]  # found on the last rank only


def test_persistent_all_reduce_sums_each_start(run):
    n = run.n
    for r in range(n):
        values, arrays = run.values(r), run.arrays(r)
        assert values["persistent_made"]  # this MPICH has MPI-4's persistent collectives
        for k in range(3):  # set up once, new contents each time
            np.testing.assert_allclose(arrays[f"persistent/{k}"],
                                       _inputs(n, "float32", shift=k).sum(0), rtol=1e-6)
        assert values["persistent_declined"] == {"avg": True, "bool": True, "strided": True,
                                                 "float32": True}


def test_group_and_errors(run):
    for r in range(run.n):
        values = run.values(r)
        assert (values["rank"], values["size"], values["backend"]) == (r, run.n, "mpi")
        errors = values["errors"]
        assert "src=" in errors["bad_src"] and "not a rank" in errors["bad_src"]
        assert f"for a world of {run.n}" in errors["bad_list"]
        assert errors["bad_op"].startswith("TypeError") and "ReduceOp" in errors["bad_op"]
        assert "bool" in errors["bool_avg"]
