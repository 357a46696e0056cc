"""BERT's WordPiece tokenizer, written from the algorithm (no ``tokenizers`` dependency).

Text becomes token ids in two stages, as in the original BERT:

1. :class:`BasicTokenizer` cleans and splits the text into words: drop control characters,
   turn every kind of whitespace into a space, put spaces around CJK ideographs, lower-case,
   strip accents (NFD, then drop the combining marks), and split off every punctuation
   character as a word of its own.
2. :class:`WordPieceTokenizer` splits each word into vocabulary pieces, greedily, longest match
   first: ``"unaffable" -> ["un", "##aff", "##able"]``. A piece that continues a word carries the
   ``##`` prefix. A word with no split (or longer than 100 characters) becomes ``[UNK]``.

:class:`BertTokenizer` puts the two together with the vocabulary file (``vocab.txt``: one token a
line, the id is the line number) and builds model inputs the way Hugging Face does:
``[CLS] a [SEP]`` (or ``[CLS] a [SEP] b [SEP]`` for a pair), ``attention_mask`` 1 on real tokens,
``token_type_ids`` 0 for the first segment and 1 for the second.

Example:
    >>> import os, tempfile
    >>> from minigrad.models.tokenizer import BertTokenizer
    >>> folder = tempfile.mkdtemp()
    >>> words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "!"]
    >>> with open(os.path.join(folder, "vocab.txt"), "w") as f:
    ...     _ = f.write("\\n".join(words) + "\\n")
    >>> tok = BertTokenizer.from_pretrained(folder)
    >>> tok.tokenize("Unaffáble!")
    ['un', '##aff', '##able', '!']
    >>> tok.encode("Unaffáble!")
    [2, 5, 6, 7, 8, 3]
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from minigrad.models.bpe import BPETokenizer  # noqa: F401  (byte-level BPE, its own module)
from minigrad.tensor import tensor

__all__ = ["BasicTokenizer", "WordPieceTokenizer", "BertTokenizer", "BPETokenizer", "load_vocab"]

TextInput = Union[str, Sequence[str]]


# ---------------------------------------------------------------------------- characters


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or a Unicode space separator (category Zs)."""
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """A Unicode control/format/private-use character (category C*), except tab and newlines,
    which count as whitespace."""
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    """BERT's punctuation: every non-alphanumeric printable ASCII character (so ``$``, ``^``,
    ``` ` ```, ``+`` count, though Unicode calls them symbols) plus Unicode category P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# The CJK Unified Ideographs blocks (and their extensions and compatibility blocks). Hangul,
# Hiragana and Katakana are not in them: those scripts separate words with spaces.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(char: str) -> bool:
    """A CJK ideograph: each one becomes a word of its own."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _whitespace_split(text: str) -> List[str]:
    """Split on runs of whitespace (``str.split()``), dropping empty pieces."""
    return text.split()


# ---------------------------------------------------------------------------- basic tokenizer


class BasicTokenizer:
    """Split raw text into words: cleanup, CJK and punctuation splitting, lower-casing, accents.

    Args:
        do_lower_case: lower-case the text (and strip accents, unless ``strip_accents=False``).
        never_split: words kept whole, neither lower-cased nor split (e.g. ``"[MASK]"``); only
            matched as whole whitespace-separated words.
        tokenize_chinese_chars: put spaces around every CJK ideograph.
        strip_accents: strip accents; ``None`` means "as ``do_lower_case``" (original BERT).

    Example:
        >>> from minigrad.models.tokenizer import BasicTokenizer
        >>> BasicTokenizer().tokenize(" Héllo,\\tWORLD!! 中文 ")
        ['hello', ',', 'world', '!', '!', '中', '文']
    """

    def __init__(self, do_lower_case: bool = True, never_split: Optional[Iterable[str]] = None,
                 tokenize_chinese_chars: bool = True, strip_accents: Optional[bool] = None):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def tokenize(self, text: str) -> List[str]:
        """The words of ``text``, in order."""
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._space_cjk(text)
        # NOTE: NFC first, so "e" + combining acute and the precomposed "é" give the same word
        text = unicodedata.normalize("NFC", text)
        words = []
        for word in _whitespace_split(text):
            if word in self.never_split:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
                if self.strip_accents is not False:
                    word = self._strip_accents(word)
            elif self.strip_accents:
                word = self._strip_accents(word)
            words.extend(self._split_on_punctuation(word))
        # stripping accents can leave an empty word (a lone combining mark): drop it
        return [w for w in words if w]

    @staticmethod
    def _clean_text(text: str) -> str:
        """Drop NUL, U+FFFD and control characters; turn every whitespace into a space."""
        out = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    @staticmethod
    def _space_cjk(text: str) -> str:
        """Surround every CJK ideograph with spaces, so each is a word."""
        return "".join(f" {c} " if _is_cjk(c) else c for c in text)

    @staticmethod
    def _strip_accents(text: str) -> str:
        """Decompose (NFD) and drop the combining marks (category Mn): "é" -> "e"."""
        return "".join(c for c in unicodedata.normalize("NFD", text)
                       if unicodedata.category(c) != "Mn")

    @staticmethod
    def _split_on_punctuation(word: str) -> List[str]:
        """``"hi!!there" -> ["hi", "!", "!", "there"]``: each punctuation mark alone."""
        pieces: List[str] = []
        current: List[str] = []
        for char in word:
            if _is_punctuation(char):
                if current:
                    pieces.append("".join(current))
                    current = []
                pieces.append(char)
            else:
                current.append(char)
        if current:
            pieces.append("".join(current))
        return pieces


# ---------------------------------------------------------------------------- WordPiece


class WordPieceTokenizer:
    """Split words into vocabulary pieces, greedy longest-match-first.

    For each word, take the longest prefix that is in the vocabulary, then the longest
    ``##``-prefixed continuation of the rest, and so on. If at some point no piece matches, the
    whole word becomes ``unk_token`` (never a partial split).

    Args:
        vocab: the vocabulary (anything supporting ``in``).
        unk_token: the token for words that cannot be split.
        max_input_chars_per_word: longer words become ``unk_token`` without trying.

    Example:
        >>> from minigrad.models.tokenizer import WordPieceTokenizer
        >>> wp = WordPieceTokenizer({"un", "##aff", "##able", "[UNK]"})
        >>> wp.tokenize("unaffable unknown")
        ['un', '##aff', '##able', '[UNK]']
    """

    def __init__(self, vocab, unk_token: str = "[UNK]", max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str) -> List[str]:
        """The pieces of every whitespace-separated word of ``text``."""
        out: List[str] = []
        for word in _whitespace_split(text):
            out.extend(self.tokenize_word(word))
        return out

    def tokenize_word(self, word: str) -> List[str]:
        """The pieces of one word, or ``[unk_token]``."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            piece = None
            while start < end:  # shrink from the right until a vocabulary piece matches
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    piece = candidate
                    break
                end -= 1
            if piece is None:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# ---------------------------------------------------------------------------- BERT tokenizer


def _read_tokens(vocab_file: Union[str, "os.PathLike[str]"]) -> List[str]:
    """The lines of ``vocab.txt``, without their newline: token ``i`` is line ``i``."""
    with open(vocab_file, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_vocab(vocab_file: Union[str, "os.PathLike[str]"]) -> "OrderedDict[str, int]":
    """``vocab.txt`` as ``{token: id}``: one token a line, the id is the line number (a token
    listed twice keeps its last line, as Hugging Face's loader does)."""
    return OrderedDict((token, index) for index, token in enumerate(_read_tokens(vocab_file)))


_SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# the words that `decode` glues back to their neighbour (Hugging Face's cleanup)
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


class BertTokenizer:
    """BERT's tokenizer: :class:`BasicTokenizer` + :class:`WordPieceTokenizer` over ``vocab.txt``,
    producing the model inputs of Hugging Face's ``BertTokenizer``.

    Special tokens written in the text (``"[MASK]"``, ``"[SEP]"``...) are kept as one token.

    Args:
        vocab_file: path of ``vocab.txt``.
        do_lower_case: lower-case (and strip accents from) the text: True for "uncased" models.
        never_split: more words for :class:`BasicTokenizer` to keep whole.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens.
        tokenize_chinese_chars: split CJK ideographs into single characters.
        strip_accents: see :class:`BasicTokenizer`.
        model_max_length: the most tokens the model takes (its ``max_position_embeddings``);
            ``truncation=True`` without a ``max_length`` truncates to it.

    Example:
        >>> import os, tempfile
        >>> from minigrad.models.tokenizer import BertTokenizer
        >>> path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hi", "!"]))
        >>> tok = BertTokenizer(path)
        >>> batch = tok(["hi", "hi hi!"])
        >>> batch["input_ids"]
        array([[2, 4, 3, 0, 0],
               [2, 4, 4, 5, 3]])
        >>> batch["attention_mask"]
        array([[1, 1, 1, 0, 0],
               [1, 1, 1, 1, 1]])
        >>> tok.decode(batch["input_ids"][1], skip_special_tokens=True)
        'hi hi!'
    """

    def __init__(self, vocab_file: Union[str, "os.PathLike[str]"], do_lower_case: bool = True,
                 never_split: Optional[Iterable[str]] = None, unk_token: str = "[UNK]",
                 sep_token: str = "[SEP]", pad_token: str = "[PAD]", cls_token: str = "[CLS]",
                 mask_token: str = "[MASK]", tokenize_chinese_chars: bool = True,
                 strip_accents: Optional[bool] = None, model_max_length: int = 512):
        if not os.path.isfile(vocab_file):
            raise FileNotFoundError(
                f"BertTokenizer: no vocabulary file at {os.fspath(vocab_file)!r} (a BERT folder "
                "holds vocab.txt, one token a line)"
            )
        tokens = _read_tokens(vocab_file)
        self.vocab = OrderedDict((token, index) for index, token in enumerate(tokens))
        self.ids_to_tokens = dict(enumerate(tokens))
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        missing = [t for t in (unk_token, sep_token, pad_token, cls_token) if t not in self.vocab]
        if missing:
            raise ValueError(
                f"BertTokenizer: the vocabulary {os.fspath(vocab_file)!r} lacks the special "
                f"token(s) {missing}"
            )
        self.do_lower_case = do_lower_case
        self.model_max_length = model_max_length
        self.all_special_tokens = [t for t in (cls_token, sep_token, pad_token, unk_token,
                                               mask_token) if t in self.vocab]
        self.basic_tokenizer = BasicTokenizer(
            do_lower_case=do_lower_case,
            never_split=set(never_split or ()) | set(self.all_special_tokens),
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
        )
        self.wordpiece_tokenizer = WordPieceTokenizer(self.vocab, unk_token=unk_token)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, folder: Union[str, "os.PathLike[str]"], **kwargs) -> "BertTokenizer":
        """The tokenizer of a Hugging Face-format folder: ``vocab.txt`` and, when present,
        the options of ``tokenizer_config.json`` (``do_lower_case``, special tokens,
        ``model_max_length``...). Keyword arguments override the file."""
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"BertTokenizer.from_pretrained: no folder {folder!r}")
        options: Dict[str, Any] = {}
        config_path = os.path.join(folder, "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            for key in ("do_lower_case", "tokenize_chinese_chars", "strip_accents",
                        "never_split", *_SPECIAL_NAMES):
                if config.get(key) is not None:
                    options[key] = config[key]
            # a huge model_max_length is Hugging Face's "no limit" placeholder: keep ours
            if isinstance(config.get("model_max_length"), int) and \
                    config["model_max_length"] < 1_000_000:
                options["model_max_length"] = config["model_max_length"]
        options.update(kwargs)
        return cls(os.path.join(folder, "vocab.txt"), **options)

    def save_pretrained(self, folder: Union[str, "os.PathLike[str]"]) -> None:
        """Write ``vocab.txt`` (tokens in id order) and ``tokenizer_config.json``."""
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            for index in range(len(self.ids_to_tokens)):
                f.write(self.ids_to_tokens[index] + "\n")
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "tokenize_chinese_chars": self.basic_tokenizer.tokenize_chinese_chars,
            "strip_accents": self.basic_tokenizer.strip_accents,
            "model_max_length": self.model_max_length,
            **{name: getattr(self, name) for name in _SPECIAL_NAMES},
        }
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
            f.write("\n")

    # ------------------------------------------------------------------ text -> tokens -> ids
    @property
    def vocab_size(self) -> int:
        """The number of tokens in the vocabulary."""
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def _token_id(self, name: str) -> int:
        return self.vocab[getattr(self, name)]

    @property
    def pad_token_id(self) -> int:
        """The id of the padding token (``[PAD]`` by default)."""
        return self._token_id("pad_token")

    @property
    def cls_token_id(self) -> int:
        """The id of the classification token (``[CLS]`` by default)."""
        return self._token_id("cls_token")

    @property
    def sep_token_id(self) -> int:
        """The id of the separator token (``[SEP]`` by default)."""
        return self._token_id("sep_token")

    @property
    def unk_token_id(self) -> int:
        """The id of the unknown-word token (``[UNK]`` by default)."""
        return self._token_id("unk_token")

    def tokenize(self, text: str) -> List[str]:
        """``text`` as WordPiece tokens (no ``[CLS]``/``[SEP]`` added).

        Example:
            >>> from minigrad.models.tokenizer import BertTokenizer
            >>> import os, tempfile
            >>> path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
            >>> with open(path, "w") as f:
            ...     _ = f.write("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nplay\\n##ing\\n.")
            >>> BertTokenizer(path).tokenize("Playing [MASK].")
            ['play', '##ing', '[MASK]', '.']
        """
        tokens: List[str] = []
        for chunk, special in self._split_special(text):
            if special:
                tokens.append(chunk)
                continue
            for word in self.basic_tokenizer.tokenize(chunk):
                if word in self.basic_tokenizer.never_split:
                    tokens.append(word)
                else:
                    tokens.extend(self.wordpiece_tokenizer.tokenize_word(word))
        return tokens

    def _split_special(self, text: str) -> List[tuple]:
        """``text`` cut around the special tokens it contains: ``[(chunk, is_special)]``."""
        pieces = [(text, False)]
        for special in self.all_special_tokens:
            cut = []
            for chunk, is_special in pieces:
                if is_special or special not in chunk:
                    cut.append((chunk, is_special))
                    continue
                parts = chunk.split(special)
                for i, part in enumerate(parts):
                    if i:
                        cut.append((special, True))
                    cut.append((part, False))
            pieces = cut
        return [(c, s) for c, s in pieces if s or c]

    def convert_tokens_to_ids(self, tokens: Union[str, Sequence[str]]):
        """A token's id (a list of ids for a list); unknown tokens give the ``[UNK]`` id."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self.vocab.get(tokens, unk)
        return [self.vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """The tokens of ids (one token for one int)."""
        if isinstance(ids, (int, np.integer)):
            return self.ids_to_tokens.get(int(ids), self.unk_token)
        special = set(self.all_special_tokens)
        tokens = [self.ids_to_tokens.get(int(i), self.unk_token) for i in _as_id_list(ids)]
        return [t for t in tokens if not (skip_special_tokens and t in special)]

    # ------------------------------------------------------------------ model inputs
    def build_inputs_with_special_tokens(self, ids: List[int],
                                         pair_ids: Optional[List[int]] = None) -> List[int]:
        """``[CLS] ids [SEP]``, or ``[CLS] ids [SEP] pair_ids [SEP]``."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if pair_ids is None:
            return cls + ids + sep
        return cls + ids + sep + pair_ids + sep

    def _encode_one(self, text: str, text_pair: Optional[str], add_special_tokens: bool,
                    max_length: Optional[int]) -> Dict[str, List[int]]:
        """input_ids and token_type_ids of one example, truncated to ``max_length`` if given."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        pair = None if text_pair is None else self.convert_tokens_to_ids(self.tokenize(text_pair))
        if max_length is not None:
            n_special = (0 if not add_special_tokens else 2 if pair is None else 3)
            budget = max_length - n_special
            if budget < 0:
                raise ValueError(f"max_length={max_length} leaves no room for the "
                                 f"{n_special} special tokens")
            ids, pair = _truncate_longest_first(ids, pair, budget)
        if add_special_tokens:
            input_ids = self.build_inputs_with_special_tokens(ids, pair)
            types = [0] * (len(ids) + 2) + ([] if pair is None else [1] * (len(pair) + 1))
        else:
            input_ids = ids + (pair or [])
            types = [0] * len(ids) + [1] * len(pair or [])
        return {"input_ids": input_ids, "token_type_ids": types,
                "attention_mask": [1] * len(input_ids)}

    def _truncation_length(self, truncation: bool, max_length: Optional[int]) -> Optional[int]:
        if not truncation:
            return None
        return self.model_max_length if max_length is None else max_length

    def encode(self, text: str, text_pair: Optional[str] = None, add_special_tokens: bool = True,
               max_length: Optional[int] = None, truncation: Optional[bool] = None) -> List[int]:
        """The token ids of ``text`` (and ``text_pair``), with ``[CLS]``/``[SEP]`` by default.

        Args:
            text: the text.
            text_pair: an optional second segment.
            add_special_tokens: add ``[CLS]`` and ``[SEP]``.
            max_length: truncate to this many ids, special tokens included.
            truncation: truncate (to ``max_length``, else ``model_max_length``); by default
                only when ``max_length`` is given. Pairs lose tokens from the longer segment
                first (Hugging Face's ``"longest_first"``, see ``_truncate_longest_first``).

        Returns:
            A list of ints.
        """
        if truncation is None:
            truncation = max_length is not None
        limit = self._truncation_length(truncation, max_length)
        return self._encode_one(text, text_pair, add_special_tokens, limit)["input_ids"]

    def __call__(self, texts: TextInput, text_pair: Optional[TextInput] = None,
                 padding: Union[bool, str] = True, truncation: bool = True,
                 max_length: Optional[int] = None, add_special_tokens: bool = True,
                 return_tensors: Optional[str] = "np", device=None) -> Dict[str, Any]:
        """Tokenize a batch into model inputs, as Hugging Face's tokenizers do.

        Args:
            texts: a string or a list of strings.
            text_pair: second segments (same count as ``texts``), or None.
            padding: ``True``/``"longest"``: pad to the longest in the batch;
                ``"max_length"``: pad to ``max_length``; ``False``: no padding.
            truncation: truncate each example to ``max_length`` (default ``model_max_length``).
            max_length: see ``truncation`` and ``padding``.
            add_special_tokens: add ``[CLS]`` and ``[SEP]``.
            return_tensors: ``"np"`` (int64 arrays), ``"mg"`` (int64 minigrad tensors, on
                ``device``), or None (lists; a single string gives flat lists).
            device: where ``"mg"`` tensors go (default: the default device).

        Returns:
            A dict with ``input_ids``, ``token_type_ids`` and ``attention_mask``, each
            ``(batch, length)``; padding sits on the right, with mask 0 and type 0.
        """
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        pairs: List[Optional[str]]
        if text_pair is None:
            pairs = [None] * len(batch)
        else:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(batch):
                raise ValueError(f"got {len(batch)} texts but {len(pairs)} text pairs")
        for t in batch + [p for p in pairs if p is not None]:
            if not isinstance(t, str):
                raise TypeError(f"BertTokenizer: texts must be strings, got {type(t).__name__}")
        limit = self._truncation_length(truncation, max_length)
        rows = [self._encode_one(t, p, add_special_tokens, limit) for t, p in zip(batch, pairs)]

        if padding is True or padding == "longest":
            width = max((len(r["input_ids"]) for r in rows), default=0)
        elif padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length")
            width = max_length
        elif padding is False or padding == "do_not_pad":
            width = None
        else:
            raise ValueError(f"padding must be True, False, 'longest' or 'max_length', "
                             f"got {padding!r}")
        if width is not None:
            fill = {"input_ids": self.pad_token_id, "token_type_ids": 0, "attention_mask": 0}
            for r in rows:
                for key, value in fill.items():
                    r[key] = r[key] + [value] * (width - len(r[key]))

        keys = ("input_ids", "token_type_ids", "attention_mask")
        if return_tensors is None:
            out = {k: [r[k] for r in rows] for k in keys}
            return {k: v[0] for k, v in out.items()} if single else out
        if return_tensors not in ("np", "mg"):
            raise ValueError(f"return_tensors must be 'np', 'mg' or None, got {return_tensors!r}")
        lengths = {len(r["input_ids"]) for r in rows}
        if len(lengths) > 1:
            raise ValueError("sequences of different lengths cannot form one array: "
                             "pass padding=True (or return_tensors=None)")
        length = lengths.pop() if lengths else 0
        arrays = {k: np.array([r[k] for r in rows], dtype=np.int64).reshape(len(rows), length)
                  for k in keys}
        if return_tensors == "np":
            return arrays
        return {k: tensor(v, device=device) for k, v in arrays.items()}

    # ------------------------------------------------------------------ ids -> text
    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens with spaces and glue ``##`` continuations to their word."""
        return " ".join(tokens).replace(" ##", "").strip()

    def decode(self, ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool = True) -> str:
        """Token ids back to text (lower-cased and accent-free if the tokenizer was).

        Args:
            ids: a list, NumPy array or Tensor of ids (one sequence).
            skip_special_tokens: drop ``[CLS]``, ``[SEP]``, ``[PAD]``...
            clean_up_tokenization_spaces: remove the space before ``. , ! ?`` and in
                contractions (``do n't`` -> ``don't``), as Hugging Face does.
        """
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens))
        if clean_up_tokenization_spaces:
            for before, after in _CLEANUP:
                text = text.replace(before, after)
        return text


def _truncate_longest_first(ids: List[int], pair: Optional[List[int]], budget: int):
    """Cut ``ids`` (and ``pair``) from the end to ``budget`` tokens in all (Hugging Face's
    ``"longest_first"``, as its Rust tokenizers do it).

    A pair keeps its shorter segment whole when that leaves the longer one at least as long;
    otherwise both get half the budget, the longer one the odd token.
    """
    if pair is None:
        return ids[:budget], None
    if len(ids) + len(pair) <= budget:
        return ids, pair
    short = min(len(ids), len(pair))
    if short <= budget - short:
        keep_short, keep_long = short, budget - short
    else:
        keep_short, keep_long = budget // 2, budget - budget // 2
    if len(ids) > len(pair):
        return ids[:keep_long], pair[:keep_short]
    return ids[:keep_short], pair[:keep_long]


def _as_id_list(ids) -> List[int]:
    """A flat list of ints from a list, NumPy array or minigrad Tensor."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    return [int(i) for i in ids]
