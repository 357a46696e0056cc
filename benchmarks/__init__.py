"""minigrad benchmarks: ``python -m benchmarks.bench_overhead`` and the workloads."""
