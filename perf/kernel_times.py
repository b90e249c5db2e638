"""python -m perf.kernel_times [--quick] [--ops relu,gemm] [--out DIR] [--dry-run]

Where each benchmark case's time goes, ours against eager torch: host time per call (the Python and
launch work that issues it, measured without waiting for the GPU), GPU time per call (the sum of its
kernels' durations from torch.profiler) and kernels per call, with the longest kernels by name, and then
every kernel of one call of ours in launch order (telling apart the GEMMs of a backward, all named
gemm_kernel). A case whose host time exceeds its GPU time is launch-bound: faster kernels will not help it,
less host code will.
Writes kernel_times.json into --out and prints the table (markdown).
"""
import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from .env import REPO, benchmark_device

IMPLS = ("tritonlayers", "eager")
DIRECTIONS = ("fwd", "fwd+bwd")


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_us(fn, device, calls):
    """Mean host microseconds to issue one call, the GPU not waited for (its queue absorbs the calls)."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    issued = time.perf_counter() - start
    _synchronize(device)
    return issued * 1e6 / calls


def kernel_us(fn, device, calls):
    """(GPU microseconds per call, kernels per call, {kernel name: microseconds per call}, [(kernel name,
    microseconds)] of the last call in launch order) from the profiler's device events (none on the CPU)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(calls):
            fn()
        _synchronize(device)
    by_name, kernels = defaultdict(float), []
    for event in profiler.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            by_name[event.name] += event.device_time / calls
            kernels.append((event.time_range.start, event.name, event.device_time))
    return sum(by_name.values()), len(kernels) / calls, dict(by_name), last_call(kernels, calls)


def last_call(kernels, calls):
    """[(name, us)] of the last of `calls` equal calls, in launch order, from (start, name, us) of all."""
    per_call = len(kernels) // calls
    return [(name[:40], us) for _, name, us in sorted(kernels)[len(kernels) - per_call:]] if per_call else []


def measure(case, impl, direction, device, calls):
    from .runner import _setup
    x = case.make_input(device)
    extras = case.make_extras(x)
    fn = _setup(case.ours if impl == "tritonlayers" else case.eager, x, extras, direction)()
    for _ in range(3):  # compile, autotune, allocator warm-up
        fn()
    host = host_us(fn, device, calls)
    gpu, launches, by_name, sequence = kernel_us(fn, device, calls)
    top = sorted(by_name.items(), key=lambda item: -item[1])[:3]
    return {"op": case.op, "shape": list(case.shape), "dtype": str(case.dtype)[6:], "layout": case.layout,
            "note": case.note, "impl": impl, "direction": direction, "host_us": host, "gpu_us": gpu,
            "kernels_per_call": launches, "top_kernels": [[name[:60], us] for name, us in top],
            "sequence": [[name, us] for name, us in sequence]}


def markdown(rows, identity):
    lines = ["# Host and GPU time per call", "", f"- device: {identity['device']}, torch {identity['torch']}, "
             f"triton {identity['triton']}, commit {identity['commit']}, {identity['date']}",
             "- host us: issuing one call without waiting for the GPU; GPU us: its kernels' summed durations",
             "", "| op | shape | dtype | layout | dir | impl | host us | GPU us | kernels | longest kernels (us) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['op']} | {'x'.join(map(str, row['shape']))} | {row['dtype']} | {row['layout']} | "
                         f"{row['direction']} | {row['impl']} | error: {row['error']} |||||")
            continue
        top = ", ".join(f"{name} {us:.1f}" for name, us in row["top_kernels"])
        lines.append(f"| {row['op']} | {'x'.join(map(str, row['shape']))} | {row['dtype']} | {row['layout']} | "
                     f"{row['direction']} | {row['impl']} | {row['host_us']:.1f} | {row['gpu_us']:.1f} | "
                     f"{row['kernels_per_call']:.1f} | {top} |")
    lines += ["", "## Kernels of one call of ours, in launch order (us)", ""]
    for row in rows:
        if row.get("impl") == "tritonlayers" and row.get("sequence"):
            sequence = ", ".join(f"{name} {us:.1f}" for name, us in row["sequence"])
            lines.append(f"- {row['op']} {'x'.join(map(str, row['shape']))} {row['dtype']} {row['layout']} "
                         f"{row['direction']}: {sequence}")
    return "\n".join(lines) + "\n"


def gemm_configs(timings=None):
    """Markdown lines: each GEMM the autotuner tuned in this process (its key: M, N, K, levels, epilogue
    flags, precision, dtypes; after any operand swap or split-K), the config it chose and, from `timings`
    (record_tuning's), every candidate's time in us, fastest first."""
    from tritonlayers.kernels.gemm import gemm_autotuned
    if not getattr(gemm_autotuned, "cache", None):
        return []
    lines = ["", "## GEMM configs chosen by the autotuner", "", "| key | config | candidates (us) |", "|---|---|---|"]
    for key, config in gemm_autotuned.cache.items():
        candidates = sorted((timings or {}).get(key, {}).items(), key=lambda item: _first(item[1]))
        listed = ", ".join(f"{_tile(candidate)} {_first(time) * 1e3:.1f}" for candidate, time in candidates)
        lines.append(f"| {', '.join(map(str, key))} | {config} | {listed} |")
    return lines


def record_tuning(autotuner):
    """{key: {config: time in ms}} for each key `autotuner` tunes from now on (Triton keeps the last key's
    timings only)."""
    timings, tune = {}, autotuner.run

    def run(*args, **kwargs):
        known = set(autotuner.cache)
        result = tune(*args, **kwargs)
        for key in set(autotuner.cache) - known:
            timings[key] = dict(getattr(autotuner, "configs_timings", None) or {})
        return result
    autotuner.run = run
    return timings


def _first(time):
    return time[0] if isinstance(time, (list, tuple)) else time


def _tile(config):
    kwargs = config.kwargs
    persistent = "p" if kwargs.get("PERSISTENT") else ""
    return (f"{kwargs.get('BLOCK_M')}x{kwargs.get('BLOCK_N')}x{kwargs.get('BLOCK_K')}{persistent}"
            f"/w{config.num_warps}s{config.num_stages}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.kernel_times", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="the quick benchmark cases")
    parser.add_argument("--ops", default="", help="comma-separated ops or families")
    parser.add_argument("--calls", type=int, default=20, help="calls timed per measurement")
    parser.add_argument("--out", help="output folder (default perf/out/kernel_times)")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU through the interpreter")
    args = parser.parse_args(argv)
    device = benchmark_device("python -m perf.kernel_times", args.dry_run)
    if device is None:
        return 2
    from .cases import all_cases, select
    from .env import run_identity
    cases = select(all_cases("dry" if args.dry_run else "quick" if args.quick else "full"),
                   [op for op in args.ops.split(",") if op])
    identity = run_identity(device)
    from tritonlayers.kernels.gemm import gemm_autotuned
    tuning = record_tuning(gemm_autotuned)
    rows = []
    try:
        for case in cases:
            for direction in DIRECTIONS:
                for impl in IMPLS:
                    try:
                        rows.append(measure(case, impl, direction, device, 1 if args.dry_run else args.calls))
                    except Exception as error:  # one failing case must not end the run
                        rows.append({"op": case.op, "shape": list(case.shape), "dtype": str(case.dtype)[6:],
                                     "layout": case.layout, "impl": impl, "direction": direction,
                                     "error": f"{type(error).__name__}: {str(error)[:200]}"})
                    print(f"{case.op} {direction} {impl}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # a time limit: keep what was measured
        print(f"stopped after {len(rows)} measurements", file=sys.stderr)
    out_dir = Path(args.out) if args.out else REPO / "perf" / "out" / "kernel_times"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "kernel_times.json").write_text(json.dumps([{**identity, **row} for row in rows], indent=1) + "\n")
    print(markdown(rows, identity) + "\n".join(gemm_configs(tuning)))
    failed = not rows or any("error" in row for row in rows)
    return 1 if failed and args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
