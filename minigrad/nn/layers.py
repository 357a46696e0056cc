"""Basic layers with PyTorch's names, arguments, parameter names, shapes, initialisation and
``repr``: ``Linear``, ``Embedding``, ``LayerNorm``, ``Dropout``, activations, ``Flatten``.

A state dict saved by PyTorch for one of these layers loads here, and the other way round.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model(mg.randn(3, 4)).shape
    (3, 2)
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from minigrad import kernels, ops
from minigrad.fused import fused_enabled
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import (FUSED_PAIRS, FUSED_TRIPLES, Module, Parameter,
                                _check_layer_inputs)
from minigrad.ops import linalg
from minigrad.tensor import Tensor, empty

__all__ = [
    "Identity", "Linear", "Dropout", "Embedding", "LayerNorm", "ReLU", "GELU", "Tanh", "Sigmoid",
    "Softmax", "LogSoftmax", "Flatten",
]


class Identity(Module):
    """Returns its input unchanged (a placeholder; any arguments are ignored).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Identity()(mg.ones(2))
        tensor([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x W^T + b.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias.
        device, dtype: where and how the parameters are created (default device, float32).

    Attributes:
        weight: ``(out_features, in_features)``, U(-k, k) with k = 1 / sqrt(in_features)
            (``kaiming_uniform_(a=sqrt(5))``).
        bias: ``(out_features,)``, U(-k, k).

    Shape:
        input ``(*, in_features)``, output ``(*, out_features)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = nn.Linear(4, 2)
        >>> layer
        Linear(in_features=4, out_features=2, bias=True)
        >>> layer(mg.randn(3, 4)).shape
        (3, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in_features), dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty((out_features,), dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias uniform in ±1/sqrt(in_features)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        self._check_features(input)
        w, b = self._weight_and_bias()
        return linalg.linear(input, w, b)  # (F.linear's body: a frame fewer)

    def _weight_and_bias(self):
        """``(self.weight, self.bias)``, read from the parameter table when that is where
        ``self.weight`` would find them: a Module attribute found there misses the instance and
        its class first, a raised AttributeError each (a microsecond or two per layer call)."""
        params, own = self._parameters, self.__dict__
        if (type(self) is Linear and "weight" in params and "bias" in params
                and "weight" not in own and "bias" not in own):
            return params["weight"], params["bias"]
        return self.weight, self.bias  # (a subclass may make them properties)

    def _check_features(self, input: Tensor) -> None:
        if input.data.shape[-1:] != (self.in_features,):
            raise RuntimeError(
                f"{self!r}: the input's last dimension must be in_features={self.in_features}, "
                f"got an input of shape {tuple(input.shape)} (PyTorch: mat1 and mat2 shapes "
                f"cannot be multiplied)"
            )

    def _then_relu(self, input: Tensor) -> Tensor:
        """``relu(self(input))`` as one LinearFn node (Sequential's Linear then ReLU)."""
        if self._checks_inputs:
            _check_layer_inputs(self, (input,))
        self._check_features(input)
        w, b = self._weight_and_bias()
        return linalg.linear(input, w, b, relu=True)

    def _then_relu_dropout(self, input: Tensor, relu, dropout: "Dropout") -> Tensor:
        """``dropout(relu(self(input)))`` as one LinearFn node (Sequential's Linear, ReLU,
        Dropout in training on the CPU: the Keras MNIST model's hidden layer), with the mask
        the Dropout would draw; otherwise the pair, then the Dropout."""
        p = dropout.p
        if not (dropout.training and 0.0 < p < 1.0 and type(input.data) is np.ndarray
                and fused_enabled("dropout", input)):
            return dropout(self._then_relu(input))
        if self._checks_inputs:
            _check_layer_inputs(self, (input,))
        self._check_features(input)
        keep = kernels.dropout._keep_mask(input.data.shape[:-1] + (self.out_features,), p)
        w, b = self._weight_and_bias()
        return linalg.linear(input, w, b, relu=True, dropout=(keep, p))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Zero elements with probability ``p`` while training, scaling the rest by 1 / (1 - p);
    the identity in ``eval()`` mode.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> drop = nn.Dropout(0.5).eval()
        >>> drop(mg.ones(2))
        tensor([1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` is the vector of index ``i``.

    Args:
        num_embeddings: number of rows.
        embedding_dim: size of each vector.
        padding_idx: a row initialised to zeros that never receives a gradient.

    Attributes:
        weight: ``(num_embeddings, embedding_dim)``, N(0, 1).

    Shape:
        input: integer indices ``(*)``; output ``(*, embedding_dim)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> emb = nn.Embedding(10, 3, padding_idx=0)
        >>> emb
        Embedding(10, 3, padding_idx=0)
        >>> emb(mg.tensor([[1, 0, 4]])).shape
        (1, 3, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Optional[Tensor] = None, _freeze: bool = False, device=None,
                 dtype=None):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported"
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"padding_idx must be within num_embeddings ({num_embeddings}), got "
                    f"{padding_idx}"
                )
            if padding_idx < 0:
                padding_idx += num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(
                empty((num_embeddings, embedding_dim), dtype=dtype, device=device),
                requires_grad=not _freeze,
            )
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """N(0, 1), with the padding row zeroed."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is (a copy of) ``embeddings``, frozen unless
        ``freeze=False``. The padding row keeps its given values.

        Example:
            >>> import minigrad as mg
            >>> from minigrad import nn
            >>> emb = nn.Embedding.from_pretrained(mg.eye(3))
            >>> emb(mg.tensor([1]))
            tensor([[0., 1., 0.]])
        """
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, _weight=embeddings.detach().clone(), _freeze=freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift.

    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias (biased variance, as PyTorch).

    Attributes:
        weight: ones of ``normalized_shape`` (if ``elementwise_affine``).
        bias: zeros of ``normalized_shape`` (if ``elementwise_affine`` and ``bias``).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> ln = nn.LayerNorm(4)
        >>> ln
        LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
        >>> ln(mg.randn(2, 4)).shape
        (2, 4)
    """

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty(self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(empty(self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight to ones and bias to zeros, as at construction (when affine)."""
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


# ---------------------------------------------------------------------------- activations


class ReLU(Module):
    """max(x, 0) elementwise.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.ReLU()(mg.tensor([-1.0, 1.0]))
        tensor([0., 1.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


FUSED_PAIRS[Linear, ReLU] = Linear._then_relu
FUSED_TRIPLES[Linear, ReLU, Dropout] = Linear._then_relu_dropout


class GELU(Module):
    """x * Phi(x) (``approximate='none'``) or its tanh approximation (``'tanh'``).

    Example:
        >>> from minigrad import nn
        >>> nn.GELU(approximate="tanh")
        GELU(approximate='tanh')
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """tanh(x) elementwise.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Tanh()(mg.zeros(1))
        tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Sigmoid()(mg.zeros(1))
        tensor([0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Softmax(Module):
    """softmax along ``dim`` (PyTorch's legacy choice of dim when None).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Softmax(dim=-1)(mg.zeros(1, 2))
        tensor([[0.5000, 0.5000]])
    """

    def __init__(self, dim: Optional[int] = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably.

    Example:
        >>> from minigrad import nn
        >>> nn.LogSoftmax(dim=1)
        LogSoftmax(dim=1)
    """

    def __init__(self, dim: Optional[int] = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Flatten(Module):
    """Flatten dimensions ``start_dim .. end_dim`` into one (the batch dim is kept by default).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Flatten()(mg.zeros(2, 3, 4)).shape
        (2, 12)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
