"""``ParameterList`` and ``ParameterDict``: parameters held in a list or a dict, registered so
that ``parameters()`` and ``state_dict()`` see them under PyTorch's keys (``"0"``, ``"1"``, ...
or the dict's keys)."""

from __future__ import annotations

from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor

__all__ = ["ParameterDict", "ParameterList"]


def _as_parameter(value) -> Parameter:
    """A Parameter as it is; a plain tensor wrapped in one (PyTorch does the same)."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"cannot register a '{type(value).__name__}' as a parameter")


class ParameterList(Module):
    """A list of parameters (state-dict keys ``"0"``, ``"1"``, ...).

    Example:
        >>> import minigrad as mg
        >>> ps = mg.nn.ParameterList([mg.nn.Parameter(mg.zeros(2)) for _ in range(2)])
        >>> list(ps.state_dict())
        ['0', '1']
    """

    def __init__(self, values=None):
        super().__init__()
        for v in values or []:
            self.append(v)

    def append(self, value) -> "ParameterList":
        """Add ``value`` (a Parameter, or a Tensor made one) at the end; returns the list."""
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values) -> "ParameterList":
        """Add each of ``values`` at the end; returns the list."""
        for v in values:
            self.append(v)
        return self

    def __getitem__(self, idx):
        params = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(params[idx])
        return params[idx]

    def __setitem__(self, idx: int, value) -> None:
        self.register_parameter(str(idx % len(self)), _as_parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def extra_repr(self) -> str:
        """One line per parameter: its index and shape."""
        return "\n".join(f"({k}): Parameter containing: {tuple(p.shape)}"
                         for k, p in self._parameters.items())


class ParameterDict(Module):
    """A dict of parameters registered under their keys (insertion order kept).

    Example:
        >>> import minigrad as mg
        >>> pd = mg.nn.ParameterDict({"scale": mg.nn.Parameter(mg.ones(1))})
        >>> list(pd.state_dict())
        ['scale']
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]

    def __contains__(self, key: str) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def keys(self):
        """The keys, in insertion order."""
        return self._parameters.keys()

    def values(self):
        """The parameters, in insertion order."""
        return self._parameters.values()

    def items(self):
        """``(key, parameter)`` pairs, in insertion order."""
        return self._parameters.items()

    def update(self, parameters) -> None:
        """Add the (key, parameter) pairs of a dict or of an iterable of pairs."""
        pairs = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in pairs:
            self[k] = v

    def pop(self, key: str) -> Parameter:
        """Remove the parameter under ``key`` and return it."""
        return self._parameters.pop(key)

    def extra_repr(self) -> str:
        """One line per parameter: its key and shape."""
        return "\n".join(f"({k}): Parameter containing: {tuple(p.shape)}"
                         for k, p in self._parameters.items())
