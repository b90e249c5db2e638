"""The direct launch path (tritonlayers/_fast_launch.py): a repeated specialization skips Triton's launcher,
anything Triton specializes on sends the call back through it, and the arguments reach the compiled kernel's
launcher in parameter order. On the CPU the kernels run through the interpreter, which has no compiled
launcher: a fake JITFunction's run stands in for Triton's, and records what the direct path calls. On a GPU
the real path runs (and the whole suite exercises it)."""
import os

import pytest
import torch
import triton
import triton.language as tl
from triton import knobs
from triton.runtime.jit import JITFunction

from helpers import DEVICE, ON_GPU, assert_close
from tritonlayers import _fast_launch
from tritonlayers._cache import BoundedCache
from tritonlayers._launch import KERNELS_INTERPRETED


def _two_pointer_kernel(x_ptr, y_ptr, n, scale, seed, FLAG: tl.constexpr, BLOCK: tl.constexpr = 16):
    pass


class FakeCompiled:
    """Stands in for Triton's CompiledKernel: records what its launcher receives."""

    def __init__(self):
        self.function, self.packed_metadata, self.launches = "function", "metadata", []

    def run(self, *args):
        self.launches.append(args)


@pytest.fixture
def fake_kernel(monkeypatch):
    """(kernel, slow calls list, compiled): a JITFunction whose Triton launcher is a recording fake."""
    kernel = JITFunction(_two_pointer_kernel, do_not_specialize=["seed"])
    compiled, slow_calls = FakeCompiled(), []

    def run(*args, grid, warmup, **kwargs):
        slow_calls.append((args, grid, kwargs))
        return compiled

    monkeypatch.setattr(kernel, "run", run)
    monkeypatch.setattr(_fast_launch, "ENABLED", True)
    monkeypatch.setattr(_fast_launch, "_ENTRIES", BoundedCache())
    monkeypatch.setattr(torch._C, "_cuda_getDevice", lambda: 0, raising=False)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda device: 777, raising=False)
    return kernel, slow_calls, compiled


def test_direct_path_only_for_compiled_kernels():
    switched_off = os.environ.get("TRITONLAYERS_DIRECT_LAUNCH") == "0"
    assert _fast_launch.ENABLED is (not KERNELS_INTERPRETED and ON_GPU and not switched_off)


def test_repeat_goes_direct_with_arguments_in_parameter_order(fake_kernel):
    kernel, slow_calls, compiled = fake_kernel
    x, y = torch.zeros(32), torch.zeros(32)
    _fast_launch.run_kernel(kernel, (3,), x, y, 20, 0.5, 17, FLAG=True, num_warps=4)
    assert len(slow_calls) == 1 and not compiled.launches
    # another float and another unspecialized int of the same class
    _fast_launch.run_kernel(kernel, (5, 2), x, y, 20, 0.25, 19, FLAG=True, num_warps=4)
    assert len(slow_calls) == 1
    # grid, stream, function, metadata, no launch metadata or hooks, then every parameter (the default last)
    assert compiled.launches == [(5, 2, 1, 777, "function", "metadata", None, None, None, x, y, 20, 0.25, 19, True,
                                  16)]


@pytest.mark.parametrize("change", ["misaligned", "dtype", "int", "seed_one", "seed_multiple_of_16",
                                    "seed_wide", "constexpr", "option"])
def test_a_new_specialization_goes_through_triton(fake_kernel, change):
    kernel, slow_calls, compiled = fake_kernel
    base = torch.zeros(40)
    args, kwargs = [base[:32], base[8:], 20, 0.5, 17], {"FLAG": True, "num_warps": 4}
    _fast_launch.run_kernel(kernel, (1,), *args, **kwargs)
    if change == "misaligned":
        args[1] = base[1:]  # 4 bytes past a 16-byte boundary
    elif change == "dtype":
        args[0] = args[0].double()
    elif change == "int":  # specialized ints are keyed by value
        args[2] = 21
    elif change == "seed_one":
        args[4] = 1
    elif change == "seed_multiple_of_16":
        args[4] = 48
    elif change == "seed_wide":
        args[4] = 2**31 + 1
    elif change == "constexpr":
        kwargs["FLAG"] = False
    else:
        kwargs["num_warps"] = 8
    _fast_launch.run_kernel(kernel, (1,), *args, **kwargs)
    assert len(slow_calls) == 2 and not compiled.launches
    _fast_launch.run_kernel(kernel, (1,), *args, **kwargs)  # now known
    assert len(slow_calls) == 2 and len(compiled.launches) == 1


def test_launch_hooks_send_calls_through_triton(fake_kernel):
    kernel, slow_calls, compiled = fake_kernel
    x = torch.zeros(16)
    _fast_launch.run_kernel(kernel, (1,), x, x, 3, 1.0, 5, FLAG=False)
    hook = lambda metadata: None  # noqa: E731  (a profiler's launch hook)
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        _fast_launch.run_kernel(kernel, (1,), x, x, 3, 1.0, 5, FLAG=False)
        assert len(slow_calls) == 2 and not compiled.launches
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    _fast_launch.run_kernel(kernel, (1,), x, x, 3, 1.0, 5, FLAG=False)
    assert len(slow_calls) == 2 and len(compiled.launches) == 1


def test_keyword_tensor_is_never_frozen(fake_kernel):
    kernel, slow_calls, compiled = fake_kernel
    x = torch.zeros(16)
    for _ in range(3):
        _fast_launch.run_kernel(kernel, (1,), x, y_ptr=torch.zeros(16), n=3, scale=1.0, seed=5, FLAG=False)
    assert len(slow_calls) == 3 and not compiled.launches


def test_autotuned_kernel_passes_the_config(fake_kernel):
    kernel, slow_calls, compiled = fake_kernel
    tuned = triton.autotune(configs=[triton.Config({"BLOCK": 64}, num_warps=2)], key=["n"])(kernel)
    x = torch.zeros(16)
    grids = []

    def grid(meta):
        grids.append((meta["BLOCK"], meta["FLAG"]))
        return (2,)

    _fast_launch.run_kernel(tuned, grid, x, x, 32, 1.0, 5, FLAG=True)
    _fast_launch.run_kernel(tuned, grid, x, x, 32, 1.0, 5, FLAG=True)
    assert len(slow_calls) == 1 and slow_calls[0][2]["BLOCK"] == 64
    assert compiled.launches[0][0] == 2 and compiled.launches[0][-2:] == (True, 64)
    assert grids == [(64, True)]  # the direct call's grid saw the config and the constexprs


@triton.jit
def _scale_kernel(x_ptr, y_ptr, n, scale, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(y_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * scale, mask=mask)


@pytest.mark.skipif(not ON_GPU, reason="GPU only: the interpreter has no compiled launcher to call directly")
def test_gpu_direct_launch_matches_and_skips_triton(monkeypatch):
    assert _fast_launch.ENABLED
    calls = []
    real_run = JITFunction.run

    def counting_run(self, *args, **kwargs):
        calls.append(self)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(JITFunction, "run", counting_run)
    base, n = torch.randn(1000, device=DEVICE), 990
    for start, scale in ((0, 2.0), (4, -3.0), (1, 0.5), (5, 1.5)):
        x = base[start:start + n]
        y = torch.full((n + 3,), float("nan"), device=DEVICE)[3:] if start % 4 else torch.empty(n, device=DEVICE)
        _fast_launch.run_kernel(_scale_kernel, (triton.cdiv(n, 128),), x, y, n, scale, BLOCK=128)
        assert_close(y, x * scale)
    # aligned and misaligned pointers: two specializations, each through Triton once
    assert len(calls) == 2
