"""Lesson 12: minigrad's fused GELU kernel, its CUDA C source, run on the CPU simulator.

No GPU needed. From the minigrad checkout::

    python docs/course/gelu_on_the_simulator.py

The simulator (tests/fake_cuda) stands in for CuPy: arrays on "cuda" live in host memory, and
each kernel launch runs the CUDA C of kernels/gelu.cu, thread by thread, after checking its
arguments against the kernel's signature, as minigrad's own GPU tests do without a GPU.
"""

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(CHECKOUT / "tests"), str(CHECKOUT)]  # the simulator lives in the tests

import fake_cuda  # noqa: E402

fake_cuda.install()  # before minigrad first imports CuPy: `import cupy` is now the simulator

import numpy as np  # noqa: E402
from fake_cuda import _kernels  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402

x = mg.randn(3, 5, device="cuda", requires_grad=True)
y = F.gelu(x)  # FusedGeluFn: gelu_fwd of kernels/gelu.cu
y.sum().backward()  # gelu_bwd
print("node:", type(y.grad_fn).__name__, "on", y.device)
print("kernels launched:", ", ".join(_kernels.LAUNCHES))

x_cpu = x.detach().cpu().requires_grad_()
with mg.use_fused(False):  # the composite reference, differentiated by autograd
    y_ref = F.gelu(x_cpu)
y_ref.sum().backward()
same_y = np.allclose(y.detach().cpu().numpy(), y_ref.detach().numpy(), atol=1e-6)
same_g = np.allclose(x.grad.cpu().numpy(), x_cpu.grad.numpy(), atol=1e-6)
print("forward equals the reference:", same_y)
print("gradient equals the reference:", same_g)
sys.exit(0 if same_y and same_g else 1)
