"""Tests for ``minigrad train-lm`` and ``minigrad sample`` (minigrad/cli/train_lm.py,
minigrad/cli/sample.py), run as the user runs them: in a subprocess."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg
from minigrad import cli
from minigrad.finetune import save_checkpoint
from minigrad.models import charlm_train

REPO = Path(__file__).resolve().parents[1]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 8
# tiny dims: a run of 30 steps takes about a second
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--hidden", "16", "--layers", "1",
        "--block-size", "16", "--batch-size", "4", "--iters", "30", "--warmup", "5",
        "--eval-interval", "10", "--eval-iters", "2", "--sample-chars", "40"]


def minigrad(*args, cwd=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "minigrad", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd or REPO, env=env)


def read_log(folder):
    """The losses of a run's log.jsonl (times left out: they differ between runs)."""
    lines = (json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines())
    return [{k: v for k, v in entry.items() if k != "time"} for entry in lines]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A finished tiny transformer run (with dropout, so resume must restore the RNG too)."""
    out = tmp_path_factory.mktemp("runs") / "full"
    result = minigrad("train-lm", "--text", corpus, "--model", "transformer", "--dropout", "0.1",
                      *TINY, "--out", out)
    return out, result


def test_train_lm_reports_checkpoints_and_logs(trained):
    out, result = trained
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "transformer 1 layers x 2 heads x 16 dims, block 16" in text
    for step in (0, 10, 20, 30):
        assert re.search(rf"^step {step}: train loss \d\.\d{{4}}, val loss \d\.\d{{4}}", text,
                         re.M)
    assert re.search(r"^final val loss \d\.\d{4} \(train \d\.\d{4}\) after 30 steps; wall time",
                     text, re.M)
    assert "10/10 [" in text  # a progress bar per evaluation interval
    sample = text.split("--- sample (40 characters) ---\n")[1]
    assert len(sample.rstrip("\n")) >= 30 and set(sample) <= set(TEXT)
    # checkpoints every --eval-interval steps, the last 3 kept
    assert sorted(p.name for p in out.glob("ckpt-*")) == [
        "ckpt-000010.safetensors", "ckpt-000020.safetensors", "ckpt-000030.safetensors"]
    log = read_log(out)
    assert [e["step"] for e in log if "loss" in e] == list(range(1, 31))
    assert [e["step"] for e in log if "val_loss" in e] == [0, 10, 20, 30]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iters"] == 30 and summary["model_config"]["n_embd"] == 16
    assert summary["final_val_loss"] == log[-1]["val_loss"] < log[0]["val_loss"]
    info = charlm_train.read_lm_checkpoint(out)
    assert info["step"] == 30 and info["tokenizer"]["itos"] == sorted(set(TEXT))


def test_resume_reproduces_the_uninterrupted_run_bitwise(trained, corpus, tmp_path):
    full, _ = trained
    out = tmp_path / "split"
    args = ["--text", corpus, "--model", "transformer", "--dropout", "0.1", *TINY, "--out", out]
    first = minigrad("train-lm", *args, "--checkpoint-every", "7", "--stop-at", "17")
    assert first.returncode == 0, first.stderr
    assert "stopped at step 17 of 30" in first.stdout and "--resume" in first.stdout
    assert (out / "ckpt-000017.safetensors").exists()
    # resume needs only --out: the run's options come from the checkpoint
    second = minigrad("train-lm", "--out", out, "--resume", "--sample-chars", "0")
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stdout and "step 17" in second.stdout
    assert read_log(out) == read_log(full)  # every train and val loss, bitwise


def test_resume_gru_bitwise(corpus, tmp_path):
    args = ["--text", corpus, "--model", "gru", "--dropout", "0.2", *TINY, "--layers", "2",
            "--iters", "12", "--eval-interval", "5", "--sample-chars", "0"]
    full = minigrad("train-lm", *args, "--out", tmp_path / "a")
    part = minigrad("train-lm", *args, "--out", tmp_path / "b", "--stop-at", "7")
    rest = minigrad("train-lm", "--out", tmp_path / "b", "--resume")
    assert full.returncode == part.returncode == rest.returncode == 0, rest.stderr
    assert read_log(tmp_path / "a") == read_log(tmp_path / "b")


def run_in_process(capsys, *args):
    """``minigrad ARGS`` in this process (fast, for error paths): (status, stdout, stderr)."""
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sample_prints_text(trained, capsys):
    out, _ = trained
    result = minigrad("sample", "--checkpoint", out / "ckpt-000030.safetensors", "--start",
                      "First", "--chars", "50", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("First") and len(result.stdout) == len("First") + 51

    def sample(seed):  # in this process, from the folder's latest checkpoint
        return run_in_process(capsys, "sample", "--checkpoint", out, "--start", "First",
                              "--chars", "50", "--seed", seed, "--top-k", "5",
                              "--temperature", "0.8")

    assert sample(3) == sample(3) != sample(4)  # seeded
    status, text, _ = sample(3)
    assert status == 0 and text.startswith("First") and len(text) == len("First") + 51


def test_train_lm_errors(trained, corpus, tmp_path, capsys):
    out, _ = trained
    status, _, err = run_in_process(capsys, "train-lm", "--out", out, "--resume", "--lr", "0.01")
    assert status == 2 and "--lr 0.01 (the run has 0.001)" in err
    status, _, err = run_in_process(capsys, "train-lm", "--text", corpus, "--model", "lstm",
                                    "--out", out)
    assert status == 2 and "pass --resume to continue it" in err
    status, _, err = run_in_process(capsys, "train-lm", "--text", tmp_path / "nope.txt",
                                    "--model", "gru", "--out", tmp_path / "o1")
    assert status == 1 and "text file not found" in err
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be: that is the question.\n" * 3)
    status, _, err = run_in_process(capsys, "train-lm", "--text", short, "--model", "gru",
                                    "--out", tmp_path / "o2")
    assert status == 1 and "too short for --block-size 64" in err
    assert "or a smaller --block-size" in err
    status, _, err = run_in_process(capsys, "train-lm", "--text", corpus, "--out", tmp_path)
    assert status == 2 and "--model required" in err
    status, _, err = run_in_process(capsys, "train-lm", "--out", tmp_path / "o4", "--resume")
    assert status == 2 and "no checkpoint" in err
    status, _, err = run_in_process(capsys, "train-lm", "--text", corpus, "--model",
                                    "transformer", "--n-embd", "10", "--out", tmp_path)
    assert status == 2 and "divisible by --n-head" in err
    if not mg.cuda.is_available():
        status, _, err = run_in_process(capsys, "train-lm", "--text", corpus, "--model", "gru",
                                        "--device", "cuda", "--out", tmp_path)
        assert status == 2 and "needs CuPy and an NVIDIA GPU" in err


def test_sample_errors(trained, tmp_path, capsys):
    out, _ = trained
    status, _, err = run_in_process(capsys, "sample", "--checkpoint", out, "--start", "Zebra")
    assert status == 2
    assert "--start: character 'Z'" in err and "the model knows only" in err
    status, _, err = run_in_process(capsys, "sample", "--checkpoint",
                                    tmp_path / "none.safetensors")
    assert status == 1 and "checkpoint not found" in err
    status, _, err = run_in_process(capsys, "sample", "--checkpoint", tmp_path)
    assert status == 1 and "no train-lm checkpoint" in err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    status, _, err = run_in_process(capsys, "sample", "--checkpoint", junk)
    assert status == 1 and "is not a train-lm checkpoint" in err
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, model=mg.nn.Linear(2, 2), step=1)
    status, _, err = run_in_process(capsys, "sample", "--checkpoint", other)
    assert status == 1 and "not a language model written by" in err

