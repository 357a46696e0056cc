"""Neural-network building blocks with PyTorch's names, signatures and parameter layouts."""

from minigrad.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential  # noqa: F401
