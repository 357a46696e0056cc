"""Importing this module installs the CuPy stand-in (for child processes the tests start, e.g.
the benchmarks' fresh processes: ``BENCH_FRESH_PRELOAD=fake_cuda.autoinstall``)."""

import fake_cuda

if fake_cuda.enabled():
    fake_cuda.install()
