#!/usr/bin/env python3
"""Measures the two ceilings the throughput floor is built from, on the GPU at hand:

  copyBytesPerS  a large device-to-device copy, counting bytes read + bytes written;
  gemmFlopsPerS  the best dense bf16 matrix product (torch.matmul → cuBLAS) over a few shapes,
                 one of them the size of an 8B model's MLP at a large decode batch.

Timing: CUDA events around each repetition, after warm-up, median of many; inputs are random
(never zeros, which run faster than real data) and rotate among several buffers so that L2
does not serve repeats. Each GEMM is checked against a float64 product on a slice first.

Usage: python3 bench/floor.py --out bench/results/floor-h100.json
bench/throughput.ts reads the file with --floor PATH.
"""
import argparse
import json
import statistics
import sys
import time

import torch


def time_ms(fn, warmup, reps):
    """Median ms of `reps` timed calls of fn() after `warmup` untimed ones (CUDA events)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times), max(times)


def measure_copy(num_bytes, reps):
    num_elems = num_bytes // 2
    # two source/destination pairs, alternated: no repeat finds its data in L2
    sources = [torch.randn(num_elems, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    destinations = [torch.full_like(s, float("nan")) for s in sources]
    state = {"i": 0}

    def copy_once():
        i = state["i"] = (state["i"] + 1) % 2
        destinations[i].copy_(sources[i])

    median_ms, min_ms, max_ms = time_ms(copy_once, warmup=5, reps=reps)
    for s, d in zip(sources, destinations):
        if not torch.equal(s, d):
            raise RuntimeError("device-to-device copy produced wrong data")
    moved = 2 * num_elems * 2  # read + write, bf16
    return {
        "bytes": moved,
        "medianMs": median_ms,
        "minMs": min_ms,
        "maxMs": max_ms,
        "bytesPerS": moved / (median_ms / 1e3),
    }


def check_gemm(a, b):
    """Relative Frobenius error of a bf16 product against float64 on a 256-row slice."""
    rows = slice(0, 256)
    out = torch.full((256, b.shape[1]), float("nan"), device="cuda", dtype=torch.bfloat16)
    torch.matmul(a[rows], b, out=out)
    ref = a[rows].double() @ b.double()
    if not torch.isfinite(out).all():
        raise RuntimeError("GEMM left NaN in its output")
    return (torch.linalg.norm(out.double() - ref) / torch.linalg.norm(ref)).item()


def measure_gemm(m, n, k, reps):
    sets = [(torch.randn(m, k, device="cuda", dtype=torch.bfloat16), torch.randn(k, n, device="cuda", dtype=torch.bfloat16)) for _ in range(3)]
    rel_error = check_gemm(*sets[0])
    if not rel_error < 1e-2:  # bf16 operands, fp32 accumulation: ~1e-3
        raise RuntimeError(f"GEMM {m}x{n}x{k}: relative error {rel_error} against float64")
    outs = [torch.empty(m, n, device="cuda", dtype=torch.bfloat16) for _ in sets]
    state = {"i": 0}

    def gemm_once():
        i = state["i"] = (state["i"] + 1) % len(sets)
        torch.matmul(sets[i][0], sets[i][1], out=outs[i])

    median_ms, min_ms, max_ms = time_ms(gemm_once, warmup=10, reps=reps)
    flops = 2 * m * n * k
    return {
        "m": m, "n": n, "k": k,
        "relErrorVsFloat64": rel_error,
        "medianMs": median_ms, "minMs": min_ms, "maxMs": max_ms,
        "flopsPerS": flops / (median_ms / 1e3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--copy-mib", type=int, default=2048, help="bytes per copy buffer, MiB")
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("floor.py needs a CUDA GPU")

    started = time.time()
    copy = measure_copy(args.copy_mib * 1024 * 1024, args.reps)
    # square peak-style, and an 8B model's up/gate projection at 512 and 4096 tokens
    shapes = [(8192, 8192, 8192), (4096, 28672, 4096), (512, 28672, 4096), (4096, 4096, 14336)]
    gemms = [measure_gemm(m, n, k, args.reps) for m, n, k in shapes]
    best = max(gemms, key=lambda g: g["flopsPerS"])
    result = {
        "deviceName": torch.cuda.get_device_name(0),
        "copyBytesPerS": copy["bytesPerS"],
        "gemmFlopsPerS": best["flopsPerS"],
        "copy": copy,
        "gemms": gemms,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsedS": time.time() - started,
        "commandLine": " ".join(sys.argv),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{result['deviceName']}: copy {copy['bytesPerS'] / 1e12:.2f} TB/s (read+write), "
          f"bf16 GEMM {best['flopsPerS'] / 1e12:.0f} TFLOP/s ({best['m']}x{best['n']}x{best['k']})")
    for g in gemms:
        print(f"  gemm {g['m']}x{g['n']}x{g['k']}: {g['flopsPerS'] / 1e12:.0f} TFLOP/s, rel err {g['relErrorVsFloat64']:.1e}")


if __name__ == "__main__":
    main()
