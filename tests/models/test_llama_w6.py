"""W6 (benchmarks/bench_llm.py) runs in quick mode on a tiny random Llama and reports every row
(PyTorch's column empty without transformers). Nothing is timed for a claim here."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks/

bench_llm = pytest.importorskip("benchmarks.bench_llm")


def test_w6_quick_runs_and_reports():
    result = bench_llm.run("cpu", quick=True)
    assert result["quick"] and result["prompt"] == 16 and result["new_tokens"] == 8
    for key in ("prefill_ms", "decode_tok_s", "lora_step_ms"):
        ours, theirs = result[key]
        assert ours > 0 and (theirs is None or theirs > 0)
    rows = bench_llm.rows(result)
    assert len(rows) == 4 and all(len(r) == len(bench_llm.HEADERS) for r in rows)
    with pytest.raises(NotImplementedError):
        bench_llm.run("cuda", quick=True)
