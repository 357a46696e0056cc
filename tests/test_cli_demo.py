"""Tests for ``minigrad demo`` (minigrad/cli/demo.py) and minigrad.plot."""

import doctest
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minigrad import cli, plot
from minigrad.cli import demo

REPO = Path(__file__).resolve().parents[1]


def run_demo(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "minigrad", "demo", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd or REPO,
    )


def test_demo_trains_reports_and_saves(tmp_path):
    out = tmp_path / "out"
    result = run_demo("--epochs", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Epoch 2/2" in text and "Total params: 9,610" in text  # 64*128+128 + 128*10+10
    match = re.search(r"Test accuracy: (\d+\.\d\d)%", text)
    assert match and 50.0 < float(match.group(1)) <= 100.0
    assert re.search(r"Training time: \d+\.\d s", text)
    model_dir = out / "digits-model"
    assert json.loads((model_dir / "config.json").read_text())["format"] == "minigrad.keras"
    assert (model_dir / "model.safetensors").stat().st_size > 9610 * 4
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert 'pip install ".[plot]"' in text
    else:
        assert (out / "digits-training-curves.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_help_lists_options():
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--help"])
    args = parser.parse_args(["demo"])
    assert (args.dataset, args.device, args.out, args.epochs) == ("digits", "cpu",
                                                                   "minigrad-demo", None)
    assert demo.DEMO_DEFAULTS["mnist"] == {"epochs": 10, "batch_size": 32}


def test_demo_mnist_missing_files_says_where(tmp_path, capsys):
    code = cli.main(["demo", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                     "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "minigrad demo:" in err and "none" in err


def test_demo_rejects_bad_arguments(tmp_path, capsys):
    assert cli.main(["demo", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_training_curves(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8],
               "val_accuracy": [0.4, 0.7]}
    pytest.importorskip("matplotlib")
    path = plot.training_curves(history, tmp_path / "sub" / "curves.png", title="t")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no per-epoch values"):
        plot.training_curves({}, tmp_path / "x.png")


def test_training_curves_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r'pip install "\.\[plot\]"'):
        plot.training_curves({"loss": [1.0]}, tmp_path / "x.png")


def test_plot_doctest():
    assert doctest.testmod(plot).failed == 0
