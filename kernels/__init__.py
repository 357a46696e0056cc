"""Hand-written fused kernels (installed as ``minigrad.kernels``)."""
