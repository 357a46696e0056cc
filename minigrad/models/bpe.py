"""Byte-level BPE, the tokenizer of GPT-2, Llama 3, SmolLM2 and most decoder LLMs, written from
the algorithm (no ``tokenizers`` or ``regex`` dependency).

Text becomes token ids in four stages, as llama.cpp does for a GGUF vocabulary:

1. **Special tokens** (``<|im_start|>``, ``<|endoftext|>``...) are matched whole in the text,
   longest first, and become their ids directly.
2. **Pre-tokenization** cuts the rest into words. SmolLM2's ``smollm`` pre-tokenizer first makes
   every digit a word of its own, then applies GPT-2's pattern to what lies between::

       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

   Python's ``re`` has no ``\\p{L}`` (letter) or ``\\p{N}`` (number), so each character is
   first mapped to a stand-in of its class (found with `unicodedata`): ASCII characters stand
   for themselves, other letters become ``A``, numbers ``0``, whitespace ``\\t`` and the rest
   ``!``. The pattern, written with ASCII classes, runs on that string, whose positions are
   the text's. ``\\s`` is Unicode's White_Space property, as in llama.cpp, and the classes are
   those of llama.cpp's Unicode 15.1 tables (with Python 3.11's Unicode 14 data, the letters
   and numbers added since are listed here).
3. **Bytes to symbols**: each word's UTF-8 bytes become printable characters (GPT-2's table:
   a space is ``Ġ``, a newline ``Ċ``), so every byte sequence has a spelling.
4. **Merges**: the adjacent pair of symbols whose merge has the lowest rank is joined, again
   and again, until no pair has a merge; each symbol is then a vocabulary entry. Words repeat,
   so their ids are cached.

Decoding maps the symbols back to bytes and reads them as UTF-8, so ``decode(encode(s)) == s``
for any string whose bytes all have a symbol in the vocabulary (SmolLM2's lacks six rare
control characters, see `BPETokenizer.encode`).

Example:
    >>> tok = BPETokenizer(
    ...     tokens=["<|endoftext|>", "h", "i", "Ġ", "1", "2", "hi", "Ġhi"],
    ...     merges=["h i", "Ġ hi"],
    ...     token_types=[3, 1, 1, 1, 1, 1, 1, 1],
    ...     eos_token_id=0,
    ... )
    >>> tok.tokenize("hi hi 12")
    ['hi', 'Ġhi', 'Ġ', '1', '2']
    >>> tok.encode("hi hi 12<|endoftext|>")
    [6, 7, 3, 4, 5, 0]
    >>> tok.decode([6, 7, 3, 4, 5, 0], skip_special_tokens=True)
    'hi hi 12'
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Any, Iterable, Mapping, Sequence

from minigrad.io.gguf import read_gguf

__all__ = ["BPETokenizer", "bytes_to_unicode"]

# Token types, as GGUF stores them (llama.cpp's llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Pre-tokenizers (GGUF's tokenizer.ggml.pre) -> whether digits are split off first.
_PRE_TOKENIZERS = {"smollm": True, "gpt2": False}

# Unicode's White_Space property (llama.cpp's unicode_set_whitespace). Python's str.isspace()
# differs: it also counts U+001C..U+001F, which are not whitespace here.
_WHITESPACE = frozenset(
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F]
    + [0x3000]
    + list(range(0x2000, 0x200B))
)

# GPT-2's pattern over the class string (ASCII as is, A = letter, 0 = number, \t = whitespace,
# ! = anything else). Written without \s, \w or \d, whose Python meanings differ.
_WS = "\\t\\n\\v\\f\\r "
_GPT2_PATTERN = re.compile(
    f"'(?:[stmd]|re|ve|ll)| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+"
)
_DIGIT_OR_RUN = re.compile("[0-9]|[^0-9]+")

# Words remembered by the merge cache before it starts over (bounds its memory).
_CACHE_SIZE = 100_000


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each byte to a printable character.

    Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, ...) take the
    code points from U+0100 on, in order, so that a space is ``Ġ`` (U+0120).

    Returns:
        byte (0-255) -> a one-character string.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


# Letters ("A") and numbers ("0") new in Unicode 15.0 and 15.1, which llama.cpp's tables (15.1)
# know and the unicodedata of Python before 3.13 calls unassigned: (first, last, class).
_UNICODE_15 = (
    (0x1123F, 0x11240, "A"),
    (0x11F02, 0x11F02, "A"),
    (0x11F04, 0x11F10, "A"),
    (0x11F12, 0x11F33, "A"),
    (0x11F50, 0x11F59, "0"),
    (0x1342F, 0x1342F, "A"),
    (0x13441, 0x13446, "A"),
    (0x1B132, 0x1B132, "A"),
    (0x1B155, 0x1B155, "A"),
    (0x1D2C0, 0x1D2D3, "0"),
    (0x1DF25, 0x1DF2A, "A"),
    (0x1E030, 0x1E06D, "A"),
    (0x1E4D0, 0x1E4EB, "A"),
    (0x1E4F0, 0x1E4F9, "0"),
    (0x2B739, 0x2B739, "A"),
    (0x2EBF0, 0x2EE5D, "A"),
    (0x31350, 0x323AF, "A"),
)


class _CharClasses(dict):
    """str.translate table: code point -> the stand-in of its class, computed once each."""

    def __missing__(self, code: int) -> str:
        if code in _WHITESPACE:
            stand_in = "\t"
        else:
            category = unicodedata.category(chr(code))
            stand_in = {"L": "A", "N": "0"}.get(category[0], "!")
            if category == "Cn":
                for first, last, newer in _UNICODE_15:
                    if first <= code <= last:
                        stand_in = newer
        self[code] = stand_in
        return stand_in


_CLASSES = _CharClasses({code: chr(code) for code in range(128)})


def _pre_tokenize(text: str, split_digits: bool) -> list[str]:
    """Cut text (with no special tokens in it) into words, as llama.cpp's regex split."""
    classes = text.translate(_CLASSES)  # same length as text: positions carry over
    words = []
    if not split_digits:
        return [text[m.start() : m.end()] for m in _GPT2_PATTERN.finditer(classes)]
    for run in _DIGIT_OR_RUN.finditer(classes):
        start, end = run.span()
        if end - start == 1 and "0" <= classes[start] <= "9":
            words.append(text[start])  # a digit, on its own
            continue
        # NOTE: endpos makes the run's end the end of the string for (?!...), as llama.cpp
        # splits each piece on its own.
        for m in _GPT2_PATTERN.finditer(classes, start, end):
            words.append(text[m.start() : m.end()])
    return words


class BPETokenizer:
    """A byte-level BPE tokenizer with special tokens and a ChatML chat template.

    Args:
        tokens: the vocabulary, in id order (byte-level spellings: ``"Ġthe"``).
        merges: the merge rules, highest priority first: ``"Ġ t"`` strings or ``(a, b)``
            pairs.
        token_types: GGUF's type of each token (1 normal, 2 unknown, 3 control, 4 user
            defined, 5 unused, 6 byte); control, user-defined and unknown tokens are matched
            whole in the text, control tokens are the special ones. Default: all normal.
        pre: the pre-tokenizer, ``"smollm"`` (digits split off, then GPT-2's pattern) or
            ``"gpt2"``.
        bos_token_id, eos_token_id, pad_token_id, unk_token_id: special token ids, or None.
        add_bos_token, add_eos_token: whether `encode` adds them (with
            ``add_special_tokens=True``).
        chat_template: the model's Jinja chat template (kept as text; `apply_chat_template`
            renders ChatML and takes the default system prompt from it).
        ignore_merges: a word that is a whole vocabulary entry is taken as it is (Llama 3).
    """

    def __init__(
        self,
        tokens: Sequence[str],
        merges: Iterable[str | Sequence[str]],
        token_types: Sequence[int] | None = None,
        pre: str = "smollm",
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        unk_token_id: int | None = None,
        add_bos_token: bool = False,
        add_eos_token: bool = False,
        chat_template: str | None = None,
        ignore_merges: bool = False,
    ):
        if pre not in _PRE_TOKENIZERS:
            raise NotImplementedError(
                f"pre-tokenizer {pre!r} is not supported (supported: {sorted(_PRE_TOKENIZERS)})"
            )
        self.tokens = list(tokens)
        self.token_types = [NORMAL] * len(self.tokens) if token_types is None else list(token_types)
        if len(self.token_types) != len(self.tokens):
            raise ValueError(
                f"{len(self.tokens)} tokens but {len(self.token_types)} token types were given"
            )
        self.vocab = {}
        for index, token in enumerate(self.tokens):
            if not isinstance(token, str):
                raise TypeError(f"token {index} is not a str: {token!r}")
            self.vocab.setdefault(token, index)  # the first id wins, as in llama.cpp
        self.merge_ranks: dict[tuple[str, str], int] = {}
        for rank, merge in enumerate(merges):
            pair = tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge)
            if len(pair) != 2:
                raise ValueError(f"merge {rank} is not a pair of symbols: {merge!r}")
            self.merge_ranks.setdefault(pair, rank)
        self.pre = pre
        self.split_digits = _PRE_TOKENIZERS[pre]
        self.ignore_merges = ignore_merges
        for name, value in (
            ("bos_token_id", bos_token_id),
            ("eos_token_id", eos_token_id),
            ("pad_token_id", pad_token_id),
            ("unk_token_id", unk_token_id),
        ):
            if value is not None and not 0 <= value < len(self.tokens):
                raise ValueError(f"{name} {value} is outside the vocabulary of {len(self.tokens)}")
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.unk_token_id = unk_token_id
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.chat_template = chat_template

        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {char: byte for byte, char in self.byte_encoder.items()}
        # Tokens matched whole in text, longest first (so <|im_start|> beats a prefix of it).
        matched = {CONTROL, USER_DEFINED, UNKNOWN}
        self.added_tokens = {
            token: index
            for index, (token, kind) in enumerate(zip(self.tokens, self.token_types))
            if kind in matched and token
        }
        names = sorted(self.added_tokens, key=lambda t: (-len(t), t))
        self._added_pattern = re.compile("|".join(map(re.escape, names))) if names else None
        self.all_special_ids = [i for i, kind in enumerate(self.token_types) if kind == CONTROL]
        self._special = frozenset(self.all_special_ids)
        self._cache: dict[str, list[int]] = {}

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_gguf(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """The tokenizer stored in a GGUF file's ``tokenizer.*`` metadata.

        Args:
            path: a GGUF file whose ``tokenizer.ggml.model`` is ``"gpt2"`` (byte-level BPE).

        Raises:
            ValueError: the file has no byte-level BPE tokenizer, or its fields are malformed.
            NotImplementedError: its pre-tokenizer (``tokenizer.ggml.pre``) is not supported.
        """
        with read_gguf(path) as f:
            meta = f.metadata
        model = meta.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise ValueError(f"{path}: tokenizer.ggml.model is {model!r}; only 'gpt2' is BPE")
        tokens = meta.get("tokenizer.ggml.tokens")
        merges = meta.get("tokenizer.ggml.merges")
        if not isinstance(tokens, list) or not isinstance(merges, list):
            raise ValueError(f"{path}: tokenizer.ggml.tokens and .merges must be arrays")
        if not all(isinstance(m, str) for m in merges):
            raise ValueError(f"{path}: tokenizer.ggml.merges must be strings")
        return cls(
            tokens,
            merges,
            token_types=meta.get("tokenizer.ggml.token_type"),
            pre=meta.get("tokenizer.ggml.pre", "gpt2"),
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
            pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
            unk_token_id=meta.get("tokenizer.ggml.unknown_token_id"),
            add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
            add_eos_token=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
            chat_template=meta.get("tokenizer.chat_template"),
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """A tokenizer from a Hugging Face ``tokenizer.json`` (a byte-level BPE model).

        The special tokens, ``add_bos_token`` and the chat template come from the
        ``tokenizer_config.json`` beside it, when there is one.

        Args:
            path: the ``tokenizer.json`` file (or the folder holding it).

        Raises:
            ValueError: the file is not a BPE model.
            NotImplementedError: its pre-tokenizer is neither SmolLM2's (digits, then byte
                level) nor GPT-2's (byte level).
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec.get("model") or {}
        if model.get("type") != "BPE":
            raise ValueError(f"{path}: the model is {model.get('type')!r}, not BPE")
        added = spec.get("added_tokens") or []
        by_id = {index: token for token, index in model["vocab"].items()}
        kinds = {}
        for entry in added:
            by_id[entry["id"]] = entry["content"]
            kinds[entry["id"]] = CONTROL if entry.get("special") else USER_DEFINED
        size = max(by_id) + 1 if by_id else 0
        missing = [i for i in range(size) if i not in by_id]
        if missing:
            raise ValueError(f"{path}: the vocabulary has no token for ids {missing[:5]}...")
        tokens = [by_id[i] for i in range(size)]
        types = [kinds.get(i, NORMAL) for i in range(size)]

        config: dict[str, Any] = {}
        config_path = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)

        ids_of = {}
        for index, token in enumerate(tokens):
            ids_of.setdefault(token, index)

        def token_id(name: str) -> int | None:
            value = config.get(name)
            if isinstance(value, dict):  # an AddedToken: {"content": ..., ...}
                value = value.get("content")
            return ids_of.get(value) if isinstance(value, str) else None

        return cls(
            tokens,
            model.get("merges") or [],
            token_types=types,
            pre=_pre_tokenizer_of(spec.get("pre_tokenizer"), path),
            bos_token_id=token_id("bos_token"),
            eos_token_id=token_id("eos_token"),
            pad_token_id=token_id("pad_token"),
            unk_token_id=token_id("unk_token"),
            add_bos_token=bool(config.get("add_bos_token", False)),
            add_eos_token=bool(config.get("add_eos_token", False)),
            chat_template=config.get("chat_template"),
            ignore_merges=bool(model.get("ignore_merges", False)),
        )

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` as Hugging Face reads them.

        Args:
            folder: the folder to write into (created if needed).
        """
        os.makedirs(folder, exist_ok=True)
        byte_level = {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": True,
        }
        if self.split_digits:
            digits = {"type": "Digits", "individual_digits": True}
            pre_tokenizer = {"type": "Sequence", "pretokenizers": [digits, byte_level]}
        else:
            pre_tokenizer = byte_level
        added = [
            {
                "id": i,
                "content": self.tokens[i],
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": self.token_types[i] == CONTROL,
            }
            for i in sorted(self.added_tokens.values())
        ]
        vocab: dict[str, int] = {}
        for index, token in enumerate(self.tokens):  # added tokens too, as Hugging Face's do
            vocab.setdefault(token, index)
        merges = sorted(self.merge_ranks, key=self.merge_ranks.__getitem__)
        spec = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": dict(byte_level, trim_offsets=False),
            "decoder": dict(byte_level),
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": self.ignore_merges,
                "vocab": vocab,
                "merges": [list(pair) for pair in merges],
            },
        }
        config = {
            "tokenizer_class": "GPT2Tokenizer",
            "add_bos_token": self.add_bos_token,
            "add_eos_token": self.add_eos_token,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000_000_000_000_019_884_624_838_656,
        }
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        for name, content in (("tokenizer.json", spec), ("tokenizer_config.json", config)):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                json.dump(content, f, ensure_ascii=False, indent=1)

    # -- special tokens --------------------------------------------------------------------

    def _token_or_none(self, index: int | None) -> str | None:
        return None if index is None else self.tokens[index]

    @property
    def bos_token(self) -> str | None:
        """The beginning-of-sequence token's text."""
        return self._token_or_none(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        """The end-of-sequence token's text (SmolLM2-Instruct: ``<|im_end|>``)."""
        return self._token_or_none(self.eos_token_id)

    @property
    def pad_token(self) -> str | None:
        """The padding token's text."""
        return self._token_or_none(self.pad_token_id)

    @property
    def unk_token(self) -> str | None:
        """The unknown token's text."""
        return self._token_or_none(self.unk_token_id)

    @property
    def vocab_size(self) -> int:
        """The number of tokens."""
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merge_ranks)}, "
            f"pre={self.pre!r}, eos_token={self.eos_token!r})"
        )

    # -- encoding --------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (byte-level spellings; special tokens as written)."""
        return self.convert_ids_to_tokens(self.encode(text, add_special_tokens=False))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> token ids, as llama.cpp tokenizes with special tokens parsed.

        Args:
            text: any string (special tokens written in it are matched whole).
            add_special_tokens: add BOS and EOS where the tokenizer says to
                (``add_bos_token``, ``add_eos_token``; SmolLM2 adds neither).

        Returns:
            The ids. A byte that has no symbol in the vocabulary is left out, as llama.cpp
            leaves it out (SmolLM2's vocabulary has none for the control characters U+0004,
            U+0006, U+0013, U+0014, U+0016 and U+001D, nor for the lead bytes of the
            unassigned planes 4 to 11): such text does not survive `decode`.

        Raises:
            UnicodeEncodeError: the text holds a lone surrogate (not encodable as UTF-8).
        """
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode takes a str, got {type(text).__name__}")
        ids: list[int] = []
        if add_special_tokens and self.add_bos_token and self.bos_token_id is not None:
            ids.append(self.bos_token_id)
        position = 0
        if self._added_pattern is not None:
            for match in self._added_pattern.finditer(text):
                self._encode_ordinary(text[position : match.start()], ids)
                ids.append(self.added_tokens[match.group()])
                position = match.end()
        self._encode_ordinary(text[position:], ids)
        if add_special_tokens and self.add_eos_token and self.eos_token_id is not None:
            ids.append(self.eos_token_id)
        return ids

    def _encode_ordinary(self, text: str, ids: list[int]) -> None:
        """Append the ids of text that holds no special token."""
        if not text:
            return
        cache = self._cache
        for word in _pre_tokenize(text, self.split_digits):
            word_ids = cache.get(word)
            if word_ids is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                word_ids = cache[word] = self._bpe(word)
            ids.extend(word_ids)

    def _bpe(self, word: str) -> list[int]:
        """The ids of one pre-tokenized word: its bytes' symbols, merged by rank."""
        symbols = "".join(self.byte_encoder[b] for b in word.encode("utf-8"))
        if self.ignore_merges and symbols in self.vocab:
            return [self.vocab[symbols]]
        parts = list(symbols)
        ranks = self.merge_ranks
        while len(parts) > 1:
            # The lowest-ranked adjacent pair, leftmost on ties.
            best_rank, best = None, None
            for i in range(len(parts) - 1):
                rank = ranks.get((parts[i], parts[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best = rank, (parts[i], parts[i + 1])
            if best is None:
                break
            # Merge every occurrence, left to right (a merged pair cannot overlap the next).
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = []
        for part in parts:
            index = self.vocab.get(part)
            if index is not None:
                ids.append(index)
                continue
            # NOTE: a symbol the vocabulary lacks (SmolLM2's has no symbol for 21 bytes, such as
            # U+001D's) is dropped, as llama.cpp and Hugging Face drop it; like llama.cpp, an
            # ASCII byte of it is kept where the vocabulary spells that byte as itself.
            for byte in part.encode("utf-8"):
                index = self.vocab.get(chr(byte)) if byte < 0x80 else None
                if index is not None:
                    ids.append(index)
        return ids

    # -- decoding --------------------------------------------------------------------------

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids -> token strings."""
        return [self.tokens[int(i)] for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token strings -> ids (a single string gives a single id)."""
        if isinstance(tokens, str):
            return self.vocab[tokens]
        return [self.vocab[t] for t in tokens]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids -> text. Byte sequences that are not valid UTF-8 (a token cut mid-character)
        become U+FFFD, as in Hugging Face's decoder.

        Args:
            ids: token ids (a list, an array or a 1-D tensor's ``.tolist()``).
            skip_special_tokens: leave out control tokens (``<|im_end|>``...).
        """
        out = bytearray()
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.tokens):
                raise IndexError(f"token id {index} is outside the vocabulary of {len(self)}")
            if index in self._special and skip_special_tokens:
                continue
            out += self._token_bytes(index)
        return out.decode("utf-8", errors="replace")

    def _token_bytes(self, index: int) -> bytes:
        """A token's bytes: added tokens are plain text, the others byte-level symbols."""
        token = self.tokens[index]
        if token in self.added_tokens:
            return token.encode("utf-8")
        decoder = self.byte_decoder
        if all(char in decoder for char in token):
            return bytes(decoder[char] for char in token)
        return token.encode("utf-8")  # not a byte-level spelling: take it as text

    # -- chat ------------------------------------------------------------------------------

    @property
    def default_system_prompt(self) -> str | None:
        """The system message the chat template adds when a conversation has none (SmolLM2:
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face")."""
        if not self.chat_template:
            return None
        found = re.search(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", self.chat_template, re.S)
        return found.group(1) if found else None

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, str]],
        add_generation_prompt: bool = False,
        tokenize: bool = False,
    ) -> str | list[int]:
        """Format a conversation in ChatML, the template of SmolLM2 (and Qwen, ...)::

            <|im_start|>system
            You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
            <|im_start|>user
            Hi!<|im_end|>
            <|im_start|>assistant

        The default system message (`default_system_prompt`) comes first when the first
        message is not a system one, as the model's template does.

        Args:
            messages: ``{"role": ..., "content": ...}`` dicts, in order.
            add_generation_prompt: end with ``<|im_start|>assistant\\n`` for the model to go on.
            tokenize: return ids (`encode` without BOS/EOS, as ``transformers`` does) instead
                of the text.

        Raises:
            NotImplementedError: the model's chat template is not ChatML.
        """
        if self.chat_template and "<|im_start|>" not in self.chat_template:
            raise NotImplementedError("only ChatML chat templates (<|im_start|>...) are supported")
        parts = []
        system = self.default_system_prompt
        if messages and messages[0]["role"] != "system" and system is not None:
            parts.append(f"<|im_start|>system\n{system}<|im_end|>\n")
        for message in messages:
            parts.append(f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        text = "".join(parts)
        return self.encode(text, add_special_tokens=False) if tokenize else text


def _pre_tokenizer_of(spec: Any, path: str) -> str:
    """Our pre-tokenizer name for a tokenizer.json ``pre_tokenizer`` entry."""
    if isinstance(spec, dict) and spec.get("type") == "ByteLevel" and spec.get("use_regex", True):
        return "gpt2"
    if isinstance(spec, dict) and spec.get("type") == "Sequence":
        steps = spec.get("pretokenizers") or []
        kinds = [step.get("type") for step in steps]
        if (
            kinds == ["Digits", "ByteLevel"]
            and steps[0].get("individual_digits")
            and steps[1].get("use_regex", True)
        ):
            return "smollm"
    raise NotImplementedError(
        f"{path}: pre-tokenizer {json.dumps(spec)[:200]} is not supported (byte-level BPE "
        f"with GPT-2's pattern, optionally after splitting digits, is)"
    )
