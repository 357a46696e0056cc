"""minigrad benchmarks: ``python -m benchmarks [--quick] [--device cpu|cuda]`` runs every fused
kernel (``bench_<kernel>.py``: fused vs composite vs PyTorch) and the standard workloads
(``workloads.py``), and writes markdown, JSON and a chart under ``benchmarks/results/``;
``bench_overhead.py`` measures per-op framework overhead; ``gpu_check.sh`` is the one-shot GPU
check."""
