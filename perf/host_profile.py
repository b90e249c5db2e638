"""python -m perf.host_profile [--quick] [--ops relu,gemm] [--top 25] [--calls 200] [--dry-run]

Where the host time of a call goes: first the launch floor (host microseconds to issue a trivial kernel:
eager torch, a Triton kernel through its JIT launcher, the same compiled kernel's launcher called directly,
and tritonlayers' launcher), then the backward floor (torch.autograd.grad through 1 and 10 chained nodes,
native or Python autograd Functions, one kernel each way: the engine's fixed cost per call and its cost per
node; every layer of ours is a Python node), each also with multithreaded backward off, then, per case and
direction, host times (ours and eager's, with the backward on the engine's device thread as by default and
on the calling thread) and cProfile's functions with the most internal time over repeated calls of ours.
Why the calling-thread rows: on CUDA the engine hands a backward to its device thread, whose core is cold;
if ours pay far more there than on the calling thread, the per-layer host gap is that handoff (which
torch.autograd.set_multithreading_enabled(False) avoids), not our Python. perf.kernel_times says whether a
case is launch-bound; this says why. Prints to stdout only.
"""
import argparse
import cProfile
import io
import pstats
import sys

import torch

from .env import benchmark_device
from .kernel_times import DIRECTIONS, host_us


def launch_floor(device, calls):
    """{launch path: host microseconds per call} for a one-program kernel."""
    from tritonlayers._fast_launch import run_kernel

    from .launch_floor_kernels import store_kernel, wide_store_kernel  # after the interpreter choice
    x, y, z = (torch.zeros(64, device=device) for _ in range(3))
    strides = list(range(2, 28))
    rows = {"eager torch x.zero_()": host_us(lambda: x.zero_(), device, calls)}
    for name, kernel, args, constexprs in (
            ("2 args", store_kernel, (x, 64), {"BLOCK": 64}),
            ("30 args", wide_store_kernel, (x, y, z, 64, *strides), {"BLOCK": 64, "FLAG": True})):
        compiled = kernel[(1,)](*args, **constexprs)
        rows[f"triton kernel[grid](...), {name}"] = host_us(lambda: kernel[(1,)](*args, **constexprs), device, calls)
        rows[f"tritonlayers run_kernel, {name}"] = host_us(lambda: run_kernel(kernel, (1,), *args, **constexprs),
                                                           device, calls)
        if device.type == "cuda":
            stream = torch.cuda.current_stream(device).cuda_stream
            full = (*args, *constexprs.values())
            rows[f"compiled.run directly, {name}"] = host_us(
                lambda: compiled.run(1, 1, 1, stream, compiled.function, compiled.packed_metadata, None, None, None,
                                     *full), device, calls)
    return rows


class _Double(torch.autograd.Function):
    """x * 2 with a Python backward: what the engine does for each of our layers' nodes."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


def backward_floor(device, calls):
    """{backward path: host microseconds per call} of torch.autograd.grad through chains of 1 and 10 nodes."""
    leaf = torch.zeros(64, device=device, requires_grad=True)
    grad = torch.ones(64, device=device)
    rows = {}
    for kind, node in (("native x * 2", lambda t: t * 2), ("Python autograd.Function", _Double.apply)):
        for depth in (1, 10):
            def forward():
                out = leaf
                for _ in range(depth):
                    out = node(out)
                return out

            def forward_backward():
                return torch.autograd.grad(forward(), leaf, grad)
            forward_backward()  # the engine's first call sets up its threads
            rows[f"forward, {depth} x {kind}"] = host_us(forward, device, calls)
            rows[f"forward + autograd.grad, {depth} x {kind}"] = host_us(forward_backward, device, calls)
            with torch.autograd.set_multithreading_enabled(False):
                rows[f"forward + autograd.grad, {depth} x {kind}, on the calling thread"] = host_us(
                    forward_backward, device, calls)
    return rows


def profile_case(case, direction, device, calls, top):
    """Host microseconds per call with tritonlayers' direct launches and with Triton's launcher, then the
    profile (direct launches on)."""
    from tritonlayers import _fast_launch

    from .runner import _setup
    x = case.make_input(device)
    extras = case.make_extras(x)
    eager, fn = (_setup(impl, x, extras, direction)() for impl in (case.eager, case.ours))
    for _ in range(3):
        eager()
        fn()
    eager_us = host_us(eager, device, calls)
    enabled = _fast_launch.ENABLED
    try:
        _fast_launch.ENABLED = False
        through_triton = host_us(fn, device, calls)
    finally:
        _fast_launch.ENABLED = enabled
    print(f"host us per call: {host_us(fn, device, calls):.1f} (direct launches {'on' if enabled else 'off'}), "
          f"{through_triton:.1f} through Triton's launcher; eager torch {eager_us:.1f}")
    if direction != "fwd":
        with torch.autograd.set_multithreading_enabled(False):
            print(f"backward on the calling thread: host us per call {host_us(fn, device, calls):.1f}; eager torch "
                  f"{host_us(eager, device, calls):.1f}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.host_profile", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="the quick benchmark cases")
    parser.add_argument("--ops", default="relu,conv1x1_bias_relu,linear_softmax,batch_norm",
                        help="comma-separated ops or families")
    parser.add_argument("--calls", type=int, default=200, help="calls per measurement")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU through the interpreter")
    args = parser.parse_args(argv)
    device = benchmark_device("python -m perf.host_profile", args.dry_run)
    if device is None:
        return 2
    from .cases import all_cases, select
    from .env import run_identity
    calls = 2 if args.dry_run else args.calls
    identity = run_identity(device)
    print(f"# Host time: {identity['device']}, torch {identity['torch']}, triton {identity['triton']}, "
          f"commit {identity['commit']}, {identity['date']}\n")
    print("| launch path | host us per call |\n|---|---|")
    for name, us in launch_floor(device, calls).items():
        print(f"| {name} | {us:.1f} |", flush=True)
    print("\n| backward path | host us per call |\n|---|---|")
    for name, us in backward_floor(device, calls).items():
        print(f"| {name} | {us:.1f} |", flush=True)
    cases = select(all_cases("dry" if args.dry_run else "quick" if args.quick else "full"),
                   [op for op in args.ops.split(",") if op])
    seen = set()
    try:
        for case in cases:
            if case.op in seen:  # one shape per op: the profile's shape matters little
                continue
            seen.add(case.op)
            for direction in DIRECTIONS:
                print(f"\n## {case.op} {'x'.join(map(str, case.shape))} {str(case.dtype)[6:]} {case.layout} "
                      f"{direction}, {calls} calls", flush=True)
                print(profile_case(case, direction, device, calls, args.top), flush=True)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
