"""What this machine offers the encoders, read without importing torch where possible."""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

# Device files without which no torch GPU backend can run on Linux: NVIDIA's driver (bare
# metal and containers), ROCm's kernel driver (torch.cuda on AMD) and WSL2's GPU bridge.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
# CPU flags under which ONNX Runtime's x86 int8 MatMul (MLAS) multiplies uint8 activations by
# int8 weights with exact 32-bit sums: AVX-512 VNNI, AVX-VNNI (vpdpbusd) and AMX (tdpbusd).
_EXACT_U8S8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})


def default_device() -> str:
    """The best available torch device: ``cuda``, then ``mps``, then ``cpu``."""
    linux = sys.platform.startswith("linux") and "torch" not in sys.modules
    if linux and not any(os.path.exists(path) for path in _GPU_DEVICE_FILES):
        return "cpu"  # torch could find no GPU here: do not import it
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bfloat16 (AVX512_BF16 alone is slower than int8)."""
    return cpu_flags() >= {"amx_tile", "amx_bf16"}


@functools.cache
def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from the first ``flags`` line of ``cpuinfo_path`` (Linux)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def int8_matmul_saturates(flags: frozenset[str] | None = None, machine: str | None = None) -> bool:
    """Whether ONNX Runtime's uint8 x int8 MatMul can saturate (None: this machine's values).

    On x86 without VNNI or AMX, MLAS uses ``vpmaddubsw``, which adds pairs of products in 16
    bits with saturation; 7-bit weights keep every sum in range. An x86 CPU whose flags cannot
    be read counts as saturating (7 bits are safe everywhere).
    """
    machine = (machine if machine is not None else platform.machine()).lower()
    exact = (cpu_flags() if flags is None else flags) & _EXACT_U8S8_FLAGS
    return machine in _X86_MACHINES and not exact


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthread siblings counted once)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores: set[str] = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add(f"{package}:{(topology / 'core_id').read_text().strip()}")
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))
