"""The char-LM training run as library code (minigrad/models/charlm_train.py); the command
around it is tested in tests/test_cli_lm.py."""

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad.models.charlm_train import (
    CharLMError,
    CharLMRun,
    OptionsError,
    RandomBlocks,
    get_batch,
    list_checkpoints,
    load_lm,
    resolve_options,
    sample_text,
)

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 6


def test_random_blocks_are_get_batch_drawn_lazily():
    data = np.arange(200) % 11
    mg.manual_seed(3)
    expected = [get_batch(data, 8, 2, "cpu") for _ in range(3)]
    mg.manual_seed(3)
    blocks = RandomBlocks(data, 8, 2, "cpu", steps=3)
    assert len(blocks) == 3
    for (x, y), (ex, ey) in zip(blocks, expected):
        assert x.tolist() == ex.tolist() and y.tolist() == ey.tolist()


def test_run_trains_quietly_and_checkpoints(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    given = dict(text=corpus, model="gru", hidden=8, layers=1, block_size=8, batch_size=2,
                 iters=6, warmup=1, eval_interval=3, eval_iters=1, out=tmp_path / "run")
    options, checkpoint = resolve_options(given)
    assert checkpoint is None and options["checkpoint_every"] == 3 and options["min_lr"] == 1e-4
    run = CharLMRun(options, None, mg.backend.CPU)
    result = run.train(verbose=False)
    assert capsys.readouterr().out == ""
    assert result["step"] == 6 and result["val_loss"] > 0 and result["train_loss"] > 0
    assert [step for step, _ in list_checkpoints(run.out)] == [3, 6]
    log = [json.loads(line) for line in (run.out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in log if "val_loss" in e] == [0, 3, 6]
    summary = json.loads((run.out / "summary.json").read_text())
    assert summary["final_val_loss"] == result["val_loss"]

    model, tokenizer, info = load_lm(run.out, mg.backend.CPU)
    assert info["step"] == 6 and model.config == run.model.config
    mg.manual_seed(0)
    text = sample_text(model, tokenizer, 20, start="To")
    assert text.startswith("To") and len(text) == 22 and set(text) <= set(TEXT)

    with pytest.raises(OptionsError, match="pass --resume"):
        resolve_options(given)
    again, checkpoint = resolve_options({"out": run.out, "iters": None}, resume=True)
    assert checkpoint["step"] == 6 and again["hidden"] == 8
    with pytest.raises(CharLMError, match="checkpoint not found"):
        load_lm(tmp_path / "none.safetensors", mg.backend.CPU)
