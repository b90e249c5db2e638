"""Runs benchmark cases: each case x implementation x direction becomes one result row."""
import sys

import torch

from .progress import ProgressBar
from .timing import bench

IMPLS = ("tritonlayers", "eager", "compile")
DIRECTIONS = ("fwd", "bwd", "fwd+bwd")
# torch.compile's default mode: what `torch.compile(model)` gives, and max-autotune's per-graph tuning of every
# case would take longer than a GPU lease.
COMPILE_MODE = "default"
STOPPED = "not measured: the run was stopped (time limit) before this case"


def compile_eager(fn, dry_run):
    # The dry run only exercises the pipeline: dynamo with the eager backend, no codegen on the CPU.
    if dry_run:
        return torch.compile(fn, backend="eager", dynamic=False)
    return torch.compile(fn, mode=COMPILE_MODE, dynamic=False)


def _setup(fn, x, extras, direction):
    """A factory for the timed function: forward only, backward only (forward done once, graph kept), or both.
    Gradients flow to x and to the extras that require grad."""
    def setup():
        if direction == "fwd":
            return lambda: fn(x, **extras)
        leaf = x.detach().requires_grad_()
        leaves = [leaf, *(t for t in extras.values() if t.requires_grad)]
        grad = torch.randn_like(fn(leaf.detach(), **extras))
        if direction == "bwd":
            out = fn(leaf, **extras)
            return lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True)
        return lambda: torch.autograd.grad(fn(leaf, **extras), leaves, grad)
    return setup


def peak_memory_mb(setup, device):
    """Peak device memory one call allocates beyond what was allocated before it, in MiB (None off CUDA)."""
    if device.type != "cuda":
        return None
    fn = setup()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def run(cases, device, identity, copy_gbps, dry_run, graphs=False):
    """One row per case x impl x direction. An interrupt (SIGINT, as `timeout -s INT` sends) ends the run early:
    the rows measured so far are kept and every other one says it was not measured, so a report still gets
    written."""
    rows = []
    progress = ProgressBar(len(cases) * len(IMPLS) * len(DIRECTIONS), "perf", stream=sys.stderr)
    try:
        _run_cases(cases, device, identity, copy_gbps, dry_run, rows, progress, graphs)
    except KeyboardInterrupt:
        print(f"\nstopped after {len(rows)} measurements", file=sys.stderr)
        measured = {_key(row) for row in rows}
        for case in cases:
            for impl in IMPLS:
                for direction in DIRECTIONS:
                    stub = _row(case, impl, direction, identity)
                    if _key(stub) not in measured:
                        rows.append({**stub, "error": STOPPED})
    progress.close()
    return rows


def _key(row):
    return tuple(row[name] if name != "shape" else tuple(row[name])
                 for name in ("op", "shape", "note", "dtype", "layout", "impl", "direction"))


def _run_cases(cases, device, identity, copy_gbps, dry_run, rows, progress, graphs):
    done = 0
    for case in cases:
        torch._dynamo.reset()  # a fresh cache per case: dynamo's recompile limit would silently fall back to eager
        x = case.make_input(device)
        extras = case.make_extras(x)
        functions = {"tritonlayers": case.ours, "eager": case.eager, "compile": compile_eager(case.eager, dry_run)}
        cublas_tflops = _cublas_tflops(case, device, graphs) if case.gemm else None
        for impl, fn in functions.items():
            for direction in DIRECTIONS:
                done += 1
                progress.update(done, f"{case.op} {tuple(case.shape)} {str(case.dtype)[6:]} {direction} {impl}")
                row = _measure(case, impl, fn, x, extras, direction, device, identity, copy_gbps, graphs)
                if row["ms"] is not None and case.gemm:
                    row["tflops"] = case.flops(direction) / (row["ms"] * 1e-3) / 1e12
                    row["pct_cublas"] = 100.0 * row["tflops"] / cublas_tflops
                rows.append(row)
        del x, extras
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _cublas_tflops(case, device, graphs):
    """torch.mm of the case's (M, N, K) in its dtype: the cuBLAS rate its GEMMs are held to."""
    m, n, k = case.gemm
    a = torch.randn(m, k, device=device, dtype=case.dtype)
    b = torch.randn(k, n, device=device, dtype=case.dtype)
    ms, _ = bench(lambda: (lambda: torch.mm(a, b)), device, (m * k + k * n + m * n) * a.element_size(), graphs)
    return 2 * m * n * k / (ms * 1e-3) / 1e12


def _row(case, impl, direction, identity):
    return {"op": case.op, "family": case.family, "direction": direction, "shape": list(case.shape),
            "dtype": str(case.dtype)[6:], "layout": case.layout, "impl": impl, "ms": None, "gbps": None,
            "pct_copy_bw": None, "tflops": None, **identity, "note": case.note, "timer": None, "peak_mb": None,
            "pct_cublas": None, "error": None}


def _measure(case, impl, fn, x, extras, direction, device, identity, copy_gbps, graphs):
    nbytes = case.minimal_bytes(direction)
    row = _row(case, impl, direction, identity)
    try:
        setup = _setup(fn, x, extras, direction)
        ms, row["timer"] = bench(setup, device, nbytes, graphs)
        if direction == "fwd+bwd":
            row["peak_mb"] = peak_memory_mb(setup, device)
    except Exception as error:  # one failing case must not end the run; the report shows it
        row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        if device.type == "cuda":
            torch.cuda.synchronize()
        return row
    row["ms"] = ms
    row["gbps"] = nbytes / (ms * 1e-3) / 1e9
    row["pct_copy_bw"] = 100.0 * row["gbps"] / copy_gbps
    return row
