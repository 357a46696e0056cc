"""W6 (benchmarks/bench_llm.py) runs in quick mode on a tiny random Llama, each side in a fresh
process, and reports every row (PyTorch's column empty without transformers); the sides must
agree before anything is compared. Nothing is timed for a claim here."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks/

bench_llm = pytest.importorskip("benchmarks.bench_llm")


def test_w6_quick_runs_and_reports():
    result = bench_llm.run("cpu", quick=True)
    assert result["quick"] and result["prompt"] == 16 and result["new_tokens"] == 8
    assert result["rounds"] == 1 and len(result["raw"]["minigrad"]) == 1
    for key in ("prefill_ms", "decode_tok_s", "lora_step_ms"):
        ours, theirs = result[key]
        assert ours > 0 and (theirs is None or theirs > 0)
    if result["prefill_ms"][1] is not None:  # both sides ran: they were checked equal
        assert result["check"]["tokens_equal"] == bench_llm.CHECK_STEPS
        assert result["check"]["logits_rel_diff"] < bench_llm.LOGITS_RTOL
        assert result["weights_mb"][0] == pytest.approx(result["weights_mb"][1])
    rows = bench_llm.rows(result)
    assert len(rows) == 6 and all(len(r) == len(bench_llm.HEADERS) for r in rows)
    with pytest.raises(NotImplementedError):
        bench_llm.run("cuda", quick=True)


def test_w6_check_refuses_sides_that_disagree(tmp_path):
    logits = np.linspace(-3, 3, 50, dtype=np.float32)
    np.save(os.path.join(tmp_path, "logits_minigrad.npy"), logits)
    np.save(os.path.join(tmp_path, "logits_torch.npy"), logits)
    same = {"minigrad": {"tokens": [1, 2, 3, 4, 5]}, "torch": {"tokens": [1, 2, 3, 4, 9]}}
    assert bench_llm._check(str(tmp_path), same)["tokens_equal"] == bench_llm.CHECK_STEPS
    other = {"minigrad": {"tokens": [1, 2, 3, 4]}, "torch": {"tokens": [1, 2, 7, 4]}}
    with pytest.raises(RuntimeError, match="disagree"):
        bench_llm._check(str(tmp_path), other)
    np.save(os.path.join(tmp_path, "logits_torch.npy"), logits + 0.01)
    with pytest.raises(RuntimeError, match="disagree"):
        bench_llm._check(str(tmp_path), same)
