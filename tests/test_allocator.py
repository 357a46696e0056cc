"""minigrad.allocator: freed buffers stay in the heap, so a loop that allocates and frees the
same large arrays stops page-faulting (counted with getrusage, which load does not change)."""

import os
import subprocess
import sys
import textwrap

import pytest

from minigrad import allocator

glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc's mallopt only")

LOOP = textwrap.dedent("""
    import resource
    import numpy as np
    import minigrad
    from minigrad import allocator

    def step():
        # a training step's pattern: activations held until the step ends (2-6 MiB each,
        # 64 MiB in all), temporaries freed on the way
        held = [np.ones((512, 1024 + 64 * i), np.float32) for i in range(16)]
        temps = [np.ones((256, 1024), np.float32) * k for k in range(8)]
        return sum(float(a[0, 0]) for a in held + temps)

    for _ in range(3):
        step()
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 10
    print(faults, allocator.settings())
""")


def _faults(env_value):
    env = dict(os.environ)
    env.pop("MINIGRAD_MALLOC_TUNING", None)
    if env_value is not None:
        env["MINIGRAD_MALLOC_TUNING"] = env_value
    out = subprocess.run([sys.executable, "-c", LOOP], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split(maxsplit=1)
    return float(out[0]), out[1].strip()


@glibc
def test_import_tunes_malloc_and_steps_stop_faulting():
    faults, settings = _faults(None)
    assert settings == str({"mmap_threshold": allocator.MMAP_THRESHOLD,
                            "trim_threshold": allocator.TRIM_THRESHOLD})
    assert faults < 100  # 72 MiB per step reused: no fresh pages


@glibc
def test_opt_out_keeps_glibc_defaults():
    faults, settings = _faults("0")
    assert settings == "None"
    assert faults > 5000  # glibc hands the memory back and faults it in again (~14,000)


@glibc
def test_release_hands_free_memory_back():
    code = ("import numpy as np, minigrad\n"
            "from minigrad import allocator\n"
            "def rss():\n"
            "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
            "held = [np.ones((1024, 1024), np.float32) for _ in range(64)]\n"
            "del held\n"
            "kept = rss()\n"
            "allocator.release()\n"
            "print(kept - rss())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert int(out) > 128 * 2 ** 20  # the 256 MiB freed above were kept, then handed back


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="positive"):
        allocator.tune(0, 1)
