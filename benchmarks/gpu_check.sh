#!/usr/bin/env bash
# gpu_check.sh: the GPU check of minigrad's fused kernels, in one run of at most 8 minutes.
#
# On a machine with an NVIDIA GPU and CuPy already installed, and no network:
#   1. installs minigrad from this working tree without dependencies (pip -e, no build
#      isolation); if pip cannot, puts the tree on PYTHONPATH and maps the top-level kernels/
#      folder to minigrad.kernels with an import hook (what setup.py's package_dir does);
#   2. runs the gpu-marked tests: tests/kernels first, then the rest of the suite;
#   3. runs `python -m benchmarks --quick --device cuda` (kernels and W1-W4), then W1-W4 at 8x
#      the batch sizes;
# and writes every log and result to ${OUT:-./gpu-results}. Each step has its own timeout
# (20 + 50 + 15 + 15 + (100 + 10) + (80 + 10) + 120 + 60 = 480 s at most; tests/
# test_benchmarks.py adds them up), so the whole script ends within 8 minutes even when a step
# hangs. A test run that reaches its time limit gets SIGINT first (pytest then still prints
# its summary and writes its JUnit XML: the results so far), and SIGKILL 10 s later.
#
# Usage: bash benchmarks/gpu_check.sh        (from anywhere; OUT=/some/dir to choose the output)

set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-./gpu-results}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

log() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/gpu_check.log"; }
record() { echo "$*" | tee -a "$SUMMARY"; }

# ---------------------------------------------------------------- 0. the machine
log "repository: $ROOT; results: $OUT"
{ nvidia-smi || echo "nvidia-smi not available"; } > "$OUT/nvidia-smi.txt" 2>&1
timeout 20 "$PY" - > "$OUT/environment.txt" 2>&1 <<'EOF'
import platform, sys
print("python", sys.version)
import numpy
print("numpy", numpy.__version__)
import cupy
print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())
for i in range(cupy.cuda.runtime.getDeviceCount()):
    p = cupy.cuda.runtime.getDeviceProperties(i)
    print("device", i, p["name"], "SMs", p["multiProcessorCount"], "cc", p["major"], p["minor"])
EOF
record "environment: exit $? (see environment.txt)"

# ---------------------------------------------------------------- 1. install
if timeout 50 "$PY" -m pip install --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1 \
   && timeout 15 "$PY" -c "import minigrad.kernels" >> "$OUT/install.log" 2>&1; then
  record "install: pip install --no-deps --no-build-isolation -e . ok"
else
  # the fallback: the tree on PYTHONPATH, and an import hook for minigrad.kernels
  HOOK="$OUT/import-hook"
  mkdir -p "$HOOK"
  cat > "$HOOK/sitecustomize.py" <<EOF
import importlib.abc, importlib.util, os, sys

_KERNELS = os.path.join("$ROOT", "kernels")


class _KernelsFinder(importlib.abc.MetaPathFinder):
    """minigrad.kernels is the repository's top-level kernels/ folder (setup.py package_dir)."""

    def find_spec(self, name, path, target=None):
        if name != "minigrad.kernels":
            return None
        return importlib.util.spec_from_file_location(
            name, os.path.join(_KERNELS, "__init__.py"), submodule_search_locations=[_KERNELS])


sys.meta_path.insert(0, _KernelsFinder())
EOF
  export PYTHONPATH="$HOOK:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  if timeout 15 "$PY" -c "import minigrad.kernels" >> "$OUT/install.log" 2>&1; then
    record "install: pip failed; using PYTHONPATH and an import hook for minigrad.kernels"
  else
    record "install: FAILED (see install.log)"
  fi
fi

# ---------------------------------------------------------------- 2. gpu tests
timeout -s INT -k 10 100 "$PY" -m pytest tests/kernels -m gpu -q -p no:cacheprovider -rfE \
  --junitxml="$OUT/pytest-gpu-kernels.xml" > "$OUT/pytest-gpu-kernels.log" 2>&1
record "pytest -m gpu tests/kernels: exit $? -- $(tail -n 1 "$OUT/pytest-gpu-kernels.log")"

timeout -s INT -k 10 80 "$PY" -m pytest tests -m gpu -q -p no:cacheprovider -rfE --ignore=tests/kernels \
  --junitxml="$OUT/pytest-gpu-rest.xml" > "$OUT/pytest-gpu-rest.log" 2>&1
record "pytest -m gpu (rest of the suite): exit $? -- $(tail -n 1 "$OUT/pytest-gpu-rest.log")"

# ---------------------------------------------------------------- 3. benchmarks
timeout 120 "$PY" -m benchmarks --quick --device cuda > "$OUT/benchmarks.log" 2>&1
record "python -m benchmarks --quick --device cuda: exit $?"
cp benchmarks/results/benchmarks_cuda.* "$OUT/" 2>/dev/null || record "no benchmark results"

timeout 60 "$PY" -m benchmarks.workloads --quick --device cuda --scale 8 \
  > "$OUT/workloads-x8.log" 2>&1
record "python -m benchmarks.workloads --quick --device cuda --scale 8: exit $?"
cp benchmarks/results/workloads_cuda_x8.* "$OUT/" 2>/dev/null || record "no x8 results"

record "total: $(( $(date +%s) - START )) s"
log "done"
cat "$SUMMARY"
