"""Serialization without pickle: safetensors files, and GGUF files (llama.cpp's format)."""

from minigrad.io.gguf import (
    GGUFError,
    GGUFFile,
    GGUFWriter,
    load_gguf,
    read_gguf,
)
from minigrad.io.safetensors import (
    SafetensorsError,
    load,
    load_file,
    read_metadata,
    save,
    save_file,
)

__all__ = [
    "GGUFError",
    "GGUFFile",
    "GGUFWriter",
    "SafetensorsError",
    "load",
    "load_file",
    "load_gguf",
    "read_gguf",
    "read_metadata",
    "save",
    "save_file",
]
