"""``minigrad.linalg``: PyTorch's ``torch.linalg`` names that minigrad has (the norms).

Example:
    >>> import minigrad as mg
    >>> mg.linalg.norm(mg.tensor([[1.0, 2.0], [2.0, 4.0]]))
    tensor(5.)
"""

from minigrad.ops.norms import linalg_norm as norm
from minigrad.ops.norms import matrix_norm, vector_norm

__all__ = ["matrix_norm", "norm", "vector_norm"]
