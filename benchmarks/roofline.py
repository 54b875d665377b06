"""The int8 roofline of this CPU for TAS-B: how many passages/s its int8 matrix units allow.

Two figures, in int8 multiply-adds (MACs) per second:

* measured: ONNX Runtime's own int8 GEMM on large matrices of TAS-B's shapes (768 x 3072 and
  3072 x 768 weights, 2,048 rows), with ``MatMulInteger`` (uint8 x int8 -> int32, the bare
  kernel) and ``DynamicQuantizeMatMul`` (fp32 in, quantised on the fly, fp32 out: what a
  dynamically quantised model runs), with 1 thread and with one per physical core. The
  roofline is the best one-thread rate times the physical cores, or the best many-thread rate
  if higher: one core's rate is the kernel's, and it holds up when other processes share
  the machine, where a two-thread run does not.
* theoretical: from the CPU flags and ``cpu MHz`` in /proc/cpuinfo. With AVX-512 VNNI one
  ``vpdpbusd`` on 512-bit registers does 64 int8 MACs; the assumption is one such instruction
  per cycle per core (Zen 4 runs 512-bit instructions as two 256-bit halves on its two
  VNNI-capable pipes, Intel cores since Ice Lake have one 512-bit VNNI port); with AVX-VNNI or
  AVX2 alone, 32 MACs per cycle. ``cpu MHz`` is the clock the kernel reports (a virtual
  machine often shows the base clock; boost makes the true peak higher).

TAS-B costs, per token and layer, ``4 * 768**2 + 2 * 768 * 3072`` MACs in its matrices plus
``2 * 768 * n`` in attention over ``n`` tokens; six layers. The roofline counts every MAC at the
int8 peak (attention and the fp32 matrices too), so no encoder can reach it.

Usage::

    python benchmarks/roofline.py     # a few seconds
"""

from __future__ import annotations

import argparse
import time
from typing import Any

DIM, FFN, LAYERS = 768, 3072, 6
_ROWS = 2048


def tasb_macs(tokens: int) -> int:
    """Multiply-adds TAS-B spends on one passage of ``tokens`` tokens (all positions)."""
    matrices = 4 * DIM * DIM + 2 * DIM * FFN
    attention = 2 * DIM * tokens
    return LAYERS * tokens * (matrices + attention)


def passages_per_second(macs_per_second: float, tokens: int = 128) -> float:
    """Passages of ``tokens`` tokens a second at ``macs_per_second``."""
    return macs_per_second / tasb_macs(tokens)


def theoretical_peak(cpuinfo: str = "/proc/cpuinfo") -> tuple[float, str]:
    """Int8 MACs/s from the CPU flags and clock, and the assumptions in words."""
    from langchain_tasb.encoding.hardware import cpu_flags, physical_cores

    flags = cpu_flags(cpuinfo)
    mhz = 0.0
    with open(cpuinfo, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("cpu MHz"):
                mhz = float(line.partition(":")[2])
                break
    if "avx512_vnni" in flags:
        per_cycle, how = 64, "AVX-512 VNNI: one 512-bit vpdpbusd (64 int8 MACs) per cycle"
    elif "avx_vnni" in flags or "avx2" in flags:
        per_cycle, how = 32, "AVX-VNNI/AVX2: 32 int8 MACs per cycle"
    else:
        per_cycle, how = 16, "SSE: 16 int8 MACs per cycle"
    cores = physical_cores()
    peak = cores * per_cycle * mhz * 1e6
    return peak, f"{cores} cores x {per_cycle} MACs/cycle x {mhz:.0f} MHz ({how})"


def _gemm_model(kind: str, k: int, n: int) -> Any:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "B")
    if kind == "MatMulInteger":
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
        opsets = [helper.make_opsetid("", 17)]
    else:
        scale = numpy_helper.from_array(np.full((n,), 0.01, dtype=np.float32), "scale")
        node = helper.make_node(
            "DynamicQuantizeMatMul", ["A", "B", "scale"], ["Y"], domain="com.microsoft"
        )
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    initializers = [weight] if kind == "MatMulInteger" else [weight, scale]
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", a_type, [_ROWS, k])],
        [helper.make_tensor_value_info("Y", y_type, [_ROWS, n])],
        initializers,
    )
    return onnx.helper.make_model(graph, opset_imports=opsets)


def measure_gemm(kind: str, threads: int, seconds: float = 1.0) -> float:
    """Int8 MACs/s of ONNX Runtime's ``kind`` GEMM on TAS-B's two matrix shapes."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    best = 0.0
    for k, n in ((DIM, FFN), (FFN, DIM)):
        model = _gemm_model(kind, k, n).SerializeToString()
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(1)
        if kind == "MatMulInteger":
            a = rng.integers(0, 256, (_ROWS, k), dtype=np.uint8)
        else:
            a = rng.standard_normal((_ROWS, k), dtype=np.float32)
        session.run(None, {"A": a})
        fastest, deadline = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            session.run(None, {"A": a})
            fastest = min(fastest, time.perf_counter() - started)
        best = max(best, _ROWS * k * n / fastest)
    return best


def measured_peak(seconds: float = 1.0) -> tuple[float, list[tuple[str, int, float]]]:
    """The int8 roofline in MACs/s, and every (kernel, threads, MACs/s) measured.

    The roofline is the best one-thread rate times the physical cores, or the best
    many-thread rate if higher.
    """
    from langchain_tasb.encoding.hardware import physical_cores

    rows = [
        (kind, threads, measure_gemm(kind, threads, seconds))
        for kind in ("MatMulInteger", "DynamicQuantizeMatMul")
        for threads in sorted({1, physical_cores()})
    ]
    one_core = max(rate for _, threads, rate in rows if threads == 1)
    return max(one_core * physical_cores(), *(r[2] for r in rows)), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per kernel shape")
    args = parser.parse_args()
    peak, rows = measured_peak(args.seconds)
    theory, how = theoretical_peak()
    print("| int8 GEMM (ONNX Runtime, 2048 rows) | threads | G MAC/s | TAS-B passages/s of 128 |")
    print("|---|---:|---:|---:|")
    for kind, threads, rate in rows:
        print(f"| {kind} | {threads} | {rate / 1e9:.0f} | {passages_per_second(rate):.1f} |")
    print(f"| theoretical: {how} | | {theory / 1e9:.0f} | {passages_per_second(theory):.1f} |")
    print(
        f"\nroofline (best one-core rate x cores): {peak / 1e9:.0f} G int8 MAC/s = "
        f"{passages_per_second(peak):.1f} TAS-B passages/s of 128 tokens "
        f"({tasb_macs(128) / 128 / 1e6:.1f} M MACs per token); "
        f"{100 * peak / theory:.0f}% of the theoretical peak at the reported clock"
    )


if __name__ == "__main__":
    main()
