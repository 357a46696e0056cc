"""Devices and backends: parsing, CUDA absence, mixing devices, the default device, lazy CuPy."""

import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


def test_device_parsing():
    assert str(mg.Device("cpu")) == "cpu"
    assert mg.Device("cuda") == mg.Device("cuda:0") == "cuda:0"
    assert repr(mg.Device("cuda:1")) == "device(type='cuda', index=1)"
    for bad in ("tpu", "cuda:x", "cpu:3"):
        with pytest.raises(ValueError):
            mg.Device(bad)


def test_import_does_not_import_cupy():
    code = "import sys, minigrad as mg; mg.ones(2).sum(); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(mg.cuda.is_available(), reason="a GPU is present")
def test_asking_for_cuda_without_it_says_what_to_install():
    assert mg.cuda.is_available() is False and mg.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match=r"cuda12|no NVIDIA GPU"):
        mg.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"cuda12|no NVIDIA GPU"):
        mg.ones(2).to("cuda")


def test_minigrad_device_environment_variable():
    env = dict(os.environ, MINIGRAD_DEVICE="cpu")
    code = "import minigrad as mg; print(mg.ones(1).device, mg.get_default_device())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.split() == ["cpu", "cpu"]
    if not mg.cuda.is_available():
        env["MINIGRAD_DEVICE"] = "cuda"
        bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert bad.returncode != 0
        assert "cuda12" in bad.stderr or "no NVIDIA GPU" in bad.stderr


def test_set_default_device_applies_to_creation_only():
    mg.set_default_device("cpu")
    assert mg.zeros(1).device == "cpu"
    with pytest.raises(ValueError):
        mg.set_default_device("gpu")


class _OtherDeviceArray(np.ndarray):
    """A NumPy array that claims to live on cuda:0 (to test the mixed-device check anywhere)."""


def test_mixing_devices_names_both(monkeypatch):
    real = backend.device_of
    monkeypatch.setattr(
        backend, "device_of",
        lambda a: mg.Device("cuda:0") if isinstance(a, _OtherDeviceArray) else real(a),
    )
    monkeypatch.setattr(backend, "xp_for", lambda d: np)
    a = mg.ones(2)
    b = mg.Tensor._make(np.ones(2, dtype=np.float32).view(_OtherDeviceArray))
    with pytest.raises(RuntimeError, match=r"same device.*cpu and cuda:0"):
        a + b


def test_cli_info_prints_versions_and_devices():
    out = subprocess.run([sys.executable, "-m", "minigrad", "info"], capture_output=True,
                         text=True, check=True).stdout
    assert f"minigrad {mg.__version__}" in out and "NumPy" in out and "devices: cpu" in out


@pytest.mark.gpu
def test_cuda_roundtrip_and_mixing(device):
    if device != "cuda":
        pytest.skip("GPU only")
    x = mg.randn(3, 4, requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0"
    (y * 2).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [[2.0] * 4] * 3
    with pytest.raises(RuntimeError, match="cpu and cuda:0|cuda:0 and cpu"):
        x + y
