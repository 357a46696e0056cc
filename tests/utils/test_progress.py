"""Tests for minigrad.utils.progress: the Keras-style Progbar and the tqdm-style progress."""

import doctest
import io
import sys

import pytest

from minigrad.utils import progress as progress_module
from minigrad.utils.progress import (
    Progbar,
    ProgressBar,
    format_clock,
    format_eta,
    format_size,
    progress,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress_module, "_clock", fake)
    return fake


def test_docstring_examples():
    failures, _ = doctest.testmod(progress_module)
    assert failures == 0


# ------------------------------------------------------------------------------------------
# formatting helpers
# ------------------------------------------------------------------------------------------


def test_format_helpers():
    assert [format_eta(s) for s in (0, 59.4, 60, 3599, 3600, 7384)] == [
        "0s",
        "59s",
        "1:00",
        "59:59",
        "1:00:00",
        "2:03:04",
    ]
    assert [format_clock(s) for s in (0, 61, 3661)] == ["00:00", "01:01", "1:01:01"]
    assert [format_size(n) for n in (0, 999, 1000, 1_500_000, 2.5e9, 7e12)] == [
        "0B",
        "999B",
        "1.0kB",
        "1.5MB",
        "2.5GB",
        "7.0TB",
    ]


# ------------------------------------------------------------------------------------------
# Progbar
# ------------------------------------------------------------------------------------------


def test_progbar_not_a_tty_prints_only_the_final_line(clock):
    log = io.StringIO()
    bar = Progbar(10, file=log)
    for step in range(1, 11):
        clock.tick(0.2)
        bar.update(step, values=[("loss", step / 10), ("accuracy", 0.9)])
    assert log.getvalue() == (
        "10/10 [==============================] - 2s 200ms/step - loss: 0.5500 - accuracy: 0.9000\n"
    )


def test_progbar_tty_redraws_in_place(clock):
    tty = FakeTTY()
    bar = Progbar(100, width=10, file=tty)
    clock.tick(1.0)
    bar.update(12, values=[("loss", 0.1234)])
    clock.tick(7.0)
    bar.update(100, values=[("loss", 0.1234)])
    out = tty.getvalue()
    first, final = out.split("\r")[1:]
    assert first == " 12/100 [>.........] - ETA: 7s - loss: 0.1234"
    assert final == "100/100 [==========] - 8s 80ms/step - loss: 0.1234\n"
    assert out.count("\n") == 1


def test_progbar_tty_pads_a_shorter_line(clock):
    tty = FakeTTY()
    bar = Progbar(10, width=5, file=tty, interval=0)
    clock.tick(1000)
    bar.update(1)  # ETA: 2:30:00 is long
    clock.tick(0.001)
    bar.update(2)
    lines = tty.getvalue().split("\r")[1:]
    assert len(lines[1]) == len(lines[0])
    assert lines[1].rstrip(" ") == " 2/10 [>....] - ETA: 1:06:40"


def test_progbar_tty_throttles_redraws(clock):
    tty = FakeTTY()
    bar = Progbar(50, file=tty, interval=0.05)
    for step in range(1, 51):
        clock.tick(0.001)  # 50 updates in 50 ms: only a couple are drawn
        bar.update(step)
    assert 2 <= tty.getvalue().count("\r") <= 3
    assert tty.getvalue().endswith("\n")


def test_progbar_running_average_is_weighted_by_steps(clock):
    log = io.StringIO()
    bar = Progbar(4, file=log, stateful_metrics=["lr"])
    bar.add(1, values=[("loss", 4.0), ("lr", 0.1)])
    bar.add(3, values=[("loss", 0.0), ("lr", 0.01)])
    assert bar.values == {"loss": 1.0, "lr": 0.01}
    assert log.getvalue().rstrip("\n").endswith(" - loss: 1.0000 - lr: 0.0100")


def test_progbar_small_values_use_scientific_notation(clock):
    log = io.StringIO()
    bar = Progbar(1, file=log)
    bar.update(1, values=[("loss", 2.5e-5)])
    assert "loss: 2.5000e-05" in log.getvalue()


def test_progbar_accepts_arrays_as_values(clock):
    np = pytest.importorskip("numpy")
    bar = Progbar(1, file=io.StringIO())
    bar.update(1, values=[("loss", np.array([1.0, 3.0]))])
    assert bar.values == {"loss": 2.0}


def test_progbar_verbose_0_and_2(clock):
    silent = io.StringIO()
    bar = Progbar(3, verbose=0, file=silent)
    bar.update(3, values=[("loss", 1.0)])
    assert silent.getvalue() == "" and bar.values == {"loss": 1.0}

    tty = FakeTTY()
    bar = Progbar(3, verbose=2, file=tty)
    clock.tick(3)
    bar.update(1)
    bar.update(3, values=[("loss", 1.0)])
    assert tty.getvalue() == "\r3/3 - 3s 1s/step - loss: 1.0000\n"


def test_progbar_unknown_target(clock):
    tty = FakeTTY()
    bar = Progbar(None, file=tty, unit_name="batch")
    clock.tick(0.5)
    bar.update(5)
    clock.tick(0.5)
    bar.update(10, finalize=True)
    first, final = tty.getvalue().split("\r")[1:]
    assert first.rstrip() == "      5/Unknown - 0s 100ms/batch"
    assert final == "     10/Unknown - 1s 100ms/batch\n"


def test_progbar_defaults_to_stdout(capsys, clock):
    bar = Progbar(2)
    bar.update(2)
    assert capsys.readouterr().out.startswith("2/2 [")


# ------------------------------------------------------------------------------------------
# ProgressBar / progress
# ------------------------------------------------------------------------------------------


def test_progress_not_a_tty_prints_one_final_line(clock):
    log = io.StringIO()
    items = []
    for item in progress(range(10), desc="epoch", file=log):
        clock.tick(0.5)
        items.append(item)
    assert items == list(range(10))
    assert log.getvalue() == "epoch: 100%|####################| 10/10 [00:05<00:00, 2.00it/s]\n"


def test_progress_tty_redraws(clock):
    tty = FakeTTY()
    bar = progress(range(4), file=tty, unit="batch")
    for _ in bar:
        clock.tick(1.0)
    lines = tty.getvalue().split("\r")[1:]
    assert lines[0] == " 25%|#####               | 1/4 [00:01<00:03, 1.00batch/s]"
    assert lines[-1] == "100%|####################| 4/4 [00:04<00:00, 1.00batch/s]\n"
    assert len(lines) == 5  # four updates and the final line


def test_progress_bytes_unit_uses_human_sizes(clock):
    log = io.StringIO()
    with ProgressBar(total=9_912_420, desc="train.gz", unit="B", file=log) as bar:
        for _ in range(4):
            clock.tick(0.5)
            bar.update(2_478_105)
    assert log.getvalue() == (
        "train.gz: 100%|####################| 9.9MB/9.9MB [00:02<00:00, 5.0MB/s]\n"
    )


def test_progress_unknown_total(clock):
    log = io.StringIO()
    for _ in progress(iter(range(3)), file=log):
        clock.tick(1)
    assert log.getvalue() == "3it [00:03, 1.00it/s]\n"
    log = io.StringIO()
    with ProgressBar(unit="B", file=log) as bar:
        bar.update(1500)
    assert log.getvalue() == "1.5kB [00:00, ?B/s]\n"


def test_progress_break_still_closes_once(clock):
    log = io.StringIO()
    bar = progress(range(10), file=log)
    for item in bar:
        if item == 2:
            break
    del item
    bar.close()
    assert log.getvalue().count("\n") == 1
    assert "| 2/10 " in log.getvalue()


def test_progress_len_disable_and_errors(clock):
    assert len(progress([1, 2, 3])) == 3
    with pytest.raises(TypeError):
        len(progress(iter([1])))
    with pytest.raises(TypeError):
        list(ProgressBar(total=3))
    log = FakeTTY()
    assert list(progress(range(3), file=log, disable=True)) == [0, 1, 2]
    assert log.getvalue() == ""


def test_progress_defaults_to_stderr(capsys, clock):
    list(progress(range(2)))
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err
    assert sys.stderr is not None
