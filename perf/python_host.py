"""python -m perf.python_host [--ops relu,gemm] [--calls 50] [--batches 15]

Host Python per call of each dry-profile case, ours against eager torch, on tiny CPU tensors with every kernel
launch of ours stubbed out: what our op wrappers (checks, plans, allocations, autograd Functions) cost without
a GPU, so host-time work can be measured in sessions without one. On a GPU a call also pays its launches
(perf.host_profile's launch floor) and a backward the engine's handoff to its device thread. Eager torch
computes its tiny tensors for real, which is small at these sizes. Times are the best of --batches batches of
--calls calls (this machine's timing noise is one-sided). Prints a markdown table.
"""
import argparse
import os
import sys
import time

import torch

STUBBED = "run_kernel"  # the launch every module of ours calls, imported by name


def stub_launches():
    """Replace run_kernel in every tritonlayers module that imported it by a no-op."""
    import tritonlayers.functional  # noqa: F401  (imports every module that launches)
    import tritonlayers.nn  # noqa: F401
    from tritonlayers import _fast_launch
    launch, stubbed = _fast_launch.run_kernel, []
    for name, module in list(sys.modules.items()):
        if name.startswith("tritonlayers") and module is not _fast_launch and getattr(module, STUBBED, None) is launch:
            setattr(module, STUBBED, _no_launch)
            stubbed.append(name)
    if not stubbed:
        raise RuntimeError("no module of tritonlayers imports run_kernel: nothing to stub")


def _no_launch(*args, **kwargs):
    pass


def best_us(fn, calls, batches):
    """The best mean microseconds per call over `batches` batches of `calls` calls (after a warm-up)."""
    for _ in range(calls):
        fn()
    best = float("inf")
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) * 1e6 / calls)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.python_host", description=__doc__.splitlines()[2])
    parser.add_argument("--ops", default="", help="comma-separated ops or families (default: all)")
    parser.add_argument("--calls", type=int, default=50, help="calls per batch")
    parser.add_argument("--batches", type=int, default=15, help="batches; the best one counts")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_INTERPRET", "1")  # CPU tensors must pass the ops' device checks
    from .cases import all_cases, select
    stub_launches()
    from .kernel_times import DIRECTIONS
    from .runner import _setup
    device = torch.device("cpu")
    print("| op | shape | layout | note | dir | ours us | eager us | ours - eager us |\n" + "|---" * 8 + "|")
    for case in select(all_cases("dry"), [op for op in args.ops.split(",") if op]):
        x = case.make_input(device)
        extras = case.make_extras(x)
        for direction in DIRECTIONS:
            ours, eager = (best_us(_setup(impl, x, extras, direction)(), args.calls, args.batches)
                           for impl in (case.ours, case.eager))
            print(f"| {case.op} | {'x'.join(map(str, case.shape))} | {case.layout} | {case.note} | {direction} | "
                  f"{ours:.1f} | {eager:.1f} | {ours - eager:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
