"""Compile every kernel variant the ops launch for an H100 (sm_90), on a machine with no GPU.

The interpreter runs kernels as Python and never sees the compiler, so code can pass every CPU test and
still fail to compile on the GPU. This script swaps Triton's driver for a compile-only stand-in, turns
each launch into a warmup (compile, no run) and calls the ops over their dtypes, layouts and paths.
Run as a script with TRITON_INTERPRET unset; it prints how many launches compiled and fails on the first
compile error. tests/test_compile_sm90.py runs it.
"""
import os
import sys

assert os.environ.get("TRITON_INTERPRET", "0") != "1", "run without the interpreter"

import torch  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.runtime import driver  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402


class CompileOnlyDriver:
    """Just what JITFunction.run needs to compile for sm_90 without a device."""

    def __init__(self):
        self.utils = self

    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_device_properties(self, device):
        return {"max_shared_mem": 232448, "multiprocessor_count": 132}

    def get_active_torch_device(self):
        return torch.device("cpu")

    def is_active(self):
        return True


compiled = []
_run = JITFunction.run


def _compile_only(self, *args, grid, warmup, **kwargs):
    kernel = _run(self, *args, grid=grid, warmup=True, **kwargs)
    compiled.append(self.fn.__name__)
    return kernel


ACTIVATIONS = [("relu", {}), ("relu6", {}), ("leaky_relu", {}), ("elu", {}), ("gelu", {}),
               ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}), ("hardswish", {}), ("hardsigmoid", {}),
               ("softplus", {}), ("sigmoid", {}), ("tanh", {})]
INPLACE = ["relu", "relu6", "leaky_relu", "elu", "hardsigmoid", "silu"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def _forward_backward(fn, x):
    x = x.detach().requires_grad_()
    y = fn(x)
    torch.autograd.grad(y, x, torch.empty_like(y))


def sweep(F):
    for dtype in DTYPES:
        dense = torch.empty(64, 33, dtype=dtype)
        strided = torch.empty(64, 66, dtype=dtype)[:, ::2]
        for name, kwargs in ACTIVATIONS:
            for x in (dense, strided):
                _forward_backward(lambda t: getattr(F, name)(t, **kwargs), x)
        for name in INPLACE:  # in place: backward from the saved output
            _forward_backward(lambda t: getattr(F, name)(t * 1, inplace=True), dense)
        for function in (F.softmax, F.log_softmax):
            for shape, dim in [((64, 33), 1), ((64, 33), 0), ((4, 20011), 1), ((2, 300, 5, 7), 1)]:
                _forward_backward(lambda t: function(t, dim), torch.empty(shape, dtype=dtype))
            _forward_backward(lambda t: function(t, 1, dtype=torch.float32), dense)


def main():
    driver.set_active(CompileOnlyDriver())
    JITFunction.run = _compile_only
    import tritonlayers._launch as launch
    import tritonlayers.functional as F
    launch.KERNELS_INTERPRETED = True  # let CPU tensors through: nothing is launched
    sweep(F)
    print(f"compiled {len(compiled)} launches for sm_90: " + ", ".join(sorted(set(compiled))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
