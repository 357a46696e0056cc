"""Tests for the CLI's small things of issue 19: ``train-lm --iters N`` for any N >= 1 and
``--encoding``, ``demo --out`` checked before training, a readable one-epoch plot, and the
one-line summary of skipped tests (tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import conftest
import pytest

from minigrad import cli, plot
from minigrad.models import charlm_train

REPO = Path(__file__).resolve().parents[1]
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak. Café au lait.\n\n" * 40
TINY = ["--model", "gru", "--hidden", "16", "--layers", "1", "--block-size", "16",
        "--batch-size", "4", "--eval-iters", "1", "--sample-chars", "10"]


def minigrad(*args, cwd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "minigrad", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_default_warmup_shrinks_with_iters():
    assert charlm_train.default_warmup(2000) == charlm_train.DEFAULTS["warmup"] == 100
    assert [charlm_train.default_warmup(n) for n in (1, 19, 20, 100, 10_000)] == [0, 0, 1, 5, 100]
    options, _ = charlm_train.resolve_options({"text": "x.txt", "model": "gru", "iters": 1,
                                               "out": "/nonexistent/h7c"})
    assert options["warmup"] == 0
    with pytest.raises(charlm_train.OptionsError, match="--warmup"):  # given: still checked
        charlm_train.resolve_options({"text": "x.txt", "model": "gru", "iters": 5,
                                      "warmup": 5, "out": "/nonexistent/h7c"})


@pytest.mark.parametrize("iters", [1, 2])
def test_train_lm_runs_any_number_of_iters(tmp_path, iters):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    result = minigrad("train-lm", "--text", "c.txt", *TINY, "--iters", iters, "--out", "run",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"after {iters} steps" in result.stdout and "warm-up 0" in result.stdout
    assert (tmp_path / "run" / f"ckpt-{iters:06d}.safetensors").is_file()


def test_train_lm_encoding(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="latin-1")
    result = minigrad("train-lm", "--text", "c.txt", *TINY, "--iters", 1, "--out", "a",
                      cwd=tmp_path)
    assert result.returncode == 1 and "not valid utf-8" in result.stderr
    assert "--encoding" in result.stderr
    result = minigrad("train-lm", "--text", "c.txt", "--encoding", "nope", *TINY, "--iters", 1,
                      "--out", "b", cwd=tmp_path)
    assert result.returncode == 1 and "--encoding: unknown encoding: nope" in result.stderr
    result = minigrad("train-lm", "--text", "c.txt", "--encoding", "latin-1", *TINY,
                      "--iters", 1, "--out", "c", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # the encoding is part of the run: --resume reuses it
    result = minigrad("train-lm", "--resume", "--out", "c", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_demo_checks_out_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli.main(["demo", "--epochs", "1", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr()
    assert "--out" in err.err and "cannot write there" in err.err
    assert "Epoch" not in err.out  # nothing was trained


def test_one_epoch_plot_is_readable(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    saved = []
    original = plt.close
    plt.close = lambda fig=None: saved.append(fig)  # keep the figure to inspect it
    try:
        plot.training_curves({"loss": [0.5], "val_loss": [0.6]}, tmp_path / "one.png")
    finally:
        plt.close = original
    (ax,) = saved[0].axes
    assert list(ax.get_xticks()) == [1] and ax.get_xlim() == (0.5, 1.5)
    assert {t.get_text() for t in ax.texts} == {"0.5", "0.6"}  # the values, written out
    assert (tmp_path / "one.png").read_bytes()[:4] == b"\x89PNG"


def _report(reason):
    return SimpleNamespace(longrepr=("tests/x.py", 1, f"Skipped: {reason}"))


def test_skipped_tests_summarised_in_one_line():
    lines = []
    skipped = [_report("needs CuPy")] * 3 + [_report("no torch")]
    skipped += [_report(f"r{i}") for i in range(4)]
    reporter = SimpleNamespace(stats={"skipped": skipped}, write_line=lines.append)
    config = SimpleNamespace(option=SimpleNamespace(reportchars="fEX"))
    conftest.pytest_terminal_summary(reporter, 0, config)
    assert lines == ["skipped 8: 3 needs CuPy; 1 no torch; 1 r0; 1 r1; "
                     "2 for 2 other reasons (pytest -rs lists them)"]
    lines.clear()
    conftest.pytest_terminal_summary(reporter, 0, SimpleNamespace(
        option=SimpleNamespace(reportchars="s")))  # -rs lists them itself
    assert lines == []
