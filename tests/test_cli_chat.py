"""``minigrad chat`` in a pseudo-terminal (streamed reply, Ctrl-C back to the prompt, /reset,
Ctrl-D) and ``minigrad generate``, on a tiny rigged Llama whose every reply is an endless run
of the letters a and b (so a reply is only ever stopped by Ctrl-C or --max-new-tokens)."""

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad import cli
from minigrad.models.bpe import CONTROL, NORMAL, BPETokenizer, bytes_to_unicode
from minigrad.models.llama import LlamaConfig, LlamaForCausalLM

REPO = Path(__file__).resolve().parents[1]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    """A folder with a 1-layer Llama and a byte-level tokenizer (ids 3 + byte); the head only
    ever picks 'a' or 'b' (never the EOS <|im_end|>)."""
    chars = bytes_to_unicode()
    tokenizer = BPETokenizer(SPECIALS + [chars[b] for b in range(256)], [],
                             token_types=[CONTROL] * 3 + [NORMAL] * 256, pre="smollm",
                             bos_token_id=None, eos_token_id=2, pad_token_id=0)
    config = LlamaConfig(vocab_size=259, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=2)
    model = LlamaForCausalLM(config)
    norm = np.zeros(16, np.float32)
    norm[0] = 1.0
    head = np.zeros((259, 16), np.float32)
    head[3 + ord("a"), 0], head[3 + ord("b"), 0] = 1000.0, -1000.0
    model.load_state_dict({"model.norm.weight": norm, "lm_head.weight": head}, strict=False)
    model.tokenizer = tokenizer
    folder = tmp_path_factory.mktemp("tiny_chat")
    model.save_pretrained(folder)
    return folder


def test_generate_prints_the_continuation(tiny_chat_model, capsys):
    status = cli.main(["generate", "--model", str(tiny_chat_model), "--prompt", "hello",
                       "--max-new-tokens", "7"])
    out = capsys.readouterr().out
    assert status == 0 and re.fullmatch(r"[ab]{7}\n", out), out
    status = cli.main(["generate", "--model", str(tiny_chat_model), "--prompt", "hi", "--chat",
                       "--system", "Be brief.", "--max-new-tokens", "3", "--temperature",
                       "0.5", "--top-k", "2"])
    assert status == 0 and re.fullmatch(r"[ab]{3}\n", capsys.readouterr().out)


def test_generate_option_errors(tiny_chat_model, capsys):
    assert cli.main(["generate", "--prompt", "x", "--max-new-tokens", "0"]) == 2
    assert cli.main(["generate", "--prompt", "x", "--top-p", "1.5"]) == 2
    assert cli.main(["generate", "--prompt", "x", "--model", str(tiny_chat_model / "no")]) == 1
    assert "no model file or folder" in capsys.readouterr().err


class _Terminal:
    """A child process on a pseudo-terminal, read with a deadline."""

    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.chdir(REPO)
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
            os.execv(sys.executable, [sys.executable, "-m", "minigrad", *argv])
        self.seen = ""
        self.pos = 0  # the end of the last match

    def expect(self, pattern, timeout=60.0):
        """Read until ``pattern`` matches what came after the last match; return the text."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen[self.pos:])
            if found:
                start, self.pos = self.pos, self.pos + found.end()
                return self.seen[start:self.pos]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout}s; got {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the child ended before {pattern!r}: {self.seen!r}")
                self.seen += chunk.decode("utf-8", "replace")

    def send(self, data: str):
        os.write(self.fd, data.encode())

    def wait(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                os.read(self.fd, 4096)
            except OSError:
                pass
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the chat did not exit")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_chat_in_a_pseudo_terminal(tiny_chat_model):
    term = _Terminal(["chat", "--model", str(tiny_chat_model), "--max-new-tokens", "100000",
                      "--system", "You answer in letters."])
    try:
        term.expect(r"/reset starts over.*\n")
        term.expect(r">>> ")
        term.send("hello\r")
        term.expect(r"[ab]{40}")          # streamed: tokens show long before the reply ends
        term.send("\x03")                 # Ctrl-C: the reply stops, the prompt comes back
        term.expect(r"\(interrupted\)\s*\r?\n>>> ")
        term.send("/reset\r")
        term.expect(r"\(conversation reset\)\s*\r?\n>>> ")
        for attempt in range(3):          # Ctrl-C at the prompt does not quit either
            time.sleep(0.5)  # readline may swallow a ^C sent while it sets the prompt up
            term.send("\x03")
            try:
                term.expect(r"\(Ctrl-D or /exit quits\)\s*\r?\n>>> ", timeout=10)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        term.send("\x04")                 # Ctrl-D quits
        assert term.wait() == 0
    finally:
        try:
            os.kill(term.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(term.fd)
