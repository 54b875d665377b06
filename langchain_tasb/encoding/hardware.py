"""What this machine offers the encoders: a GPU, AMX tiles, exact int8 kernels, physical cores.

Each answer is read without importing torch when it can be: a process that only answers
queries through ONNX Runtime never needs it.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

# Device files without which no torch GPU backend can run on Linux: NVIDIA's driver (bare
# metal and containers), ROCm's kernel driver (torch.cuda on AMD) and WSL2's GPU bridge.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def gpu_possible() -> bool:
    """Whether torch could find a GPU here, decided without importing torch when it can be.

    On Linux a GPU needs one of :data:`_GPU_DEVICE_FILES`; elsewhere (macOS has MPS) only
    torch can tell. Importing torch costs time and memory that a process that only answers
    queries through ONNX Runtime never needs.
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


def default_device() -> str:
    """The best available torch device: ``cuda``, then ``mps``, then ``cpu``.

    Torch is imported only when :func:`gpu_possible` says a GPU could be there.
    """
    if not gpu_possible():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bfloat16 (Intel Xeon since Sapphire Rapids).

    Read from ``/proc/cpuinfo`` (Linux); False elsewhere. On such a CPU torch's bfloat16
    matrix products outrun ONNX Runtime's int8 ones for batches of documents, whose
    GELU-fed matrices stay in fp32 (see :mod:`langchain_tasb.encoding.split_encoder`).
    AVX512_BF16 alone (AMD Zen 4, Intel Cooper Lake) is not enough: there bfloat16 torch
    encodes documents slower than the int8 graph (measured on Zen 4 with
    ``benchmarks/encode.py``, rows ``torch-bf16`` and ``onnx-int8``; see
    ``benchmarks/RESULTS.md``).
    """
    return cpu_flags() >= {"amx_tile", "amx_bf16"}


@functools.cache
def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from the first ``flags`` line of ``cpuinfo_path`` (Linux)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


# CPU flags under which ONNX Runtime's x86 int8 MatMul (MLAS) multiplies uint8 activations by
# int8 weights with exact 32-bit sums: AVX-512 VNNI, AVX-VNNI (vpdpbusd) and AMX (tdpbusd).
_EXACT_U8S8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})


def int8_matmul_saturates(flags: frozenset[str] | None = None, machine: str | None = None) -> bool:
    """Whether ONNX Runtime's uint8 x int8 MatMul can saturate on this CPU.

    Without VNNI or AMX (AVX2, or AVX-512 without VNNI: for example AMD before Zen 4, Intel
    Skylake), ONNX Runtime's kernels (MLAS) multiply with ``vpmaddubsw``, which adds each pair
    of adjacent products in 16 bits with saturation: two large activations (up to 255) times
    two large weights of one sign (up to 127) exceed 32,767 and are clipped, an error that
    exact int8 arithmetic does not make. Weights limited to 7 bits (``reduce_range``, as ONNX
    Runtime's quantisation guide advises for these CPUs) keep every pair sum in range.
    ``vpmaddubsw`` is an x86 instruction: other architectures keep 8 bits. An x86 CPU whose
    flags cannot be read (``/proc/cpuinfo`` is Linux only) counts as saturating: 7-bit
    weights are safe on every CPU, full int8 is exact only on some.

    Args:
        flags: CPU flags as :func:`cpu_flags` reads them (default: this CPU's).
        machine: ``platform.machine()`` (default: this machine's).
    """
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine not in _X86_MACHINES:
        return False
    return not (cpu_flags() if flags is None else flags) & _EXACT_U8S8_FLAGS


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
            core = (topology / "core_id").read_text().strip()
        except OSError:
            cores.add(str(cpu))
        else:
            cores.add(f"{package}:{core}")
    return max(1, len(cores))
