"""The inputs of the collective tests, shared by the ranks (mpi_worker.py) and the tests."""

import numpy as np

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool"]
OPS = ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]


def rank_input(rank: int, dtype: str) -> np.ndarray:
    """Rank `rank`'s (2, 3) input of the collective tests: small values (products of three
    stay in int8), negative ones on odd ranks where the dtype is signed."""
    base = (np.arange(6).reshape(2, 3) * (rank + 2)) % 4 + 1  # 1..4
    if dtype == "bool":
        return ((np.arange(6).reshape(2, 3) + rank) % 3 == 0)
    if rank % 2 and np.dtype(dtype).kind in "fi":
        base = -base
    return base.astype(dtype)
