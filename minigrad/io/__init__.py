"""Serialization: the safetensors format, on NumPy arrays (no pickle anywhere)."""

from minigrad.io.safetensors import (
    SafetensorsError,
    load,
    load_file,
    read_metadata,
    save,
    save_file,
)

__all__ = ["SafetensorsError", "load", "load_file", "read_metadata", "save", "save_file"]
