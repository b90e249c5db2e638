"""The main job for now: run every implemented op against torch and print a table.

For each op and dtype: the largest difference from torch's fp64 result, in the output and in the input
gradient, against the dtype's tolerance. On a GPU also the forward time of tritonlayers, eager torch and
torch.compile on a ResNet-50-sized tensor. On a CPU the kernels run through Triton's interpreter.

    python -m perf.showcase [--no-timing]
"""
import argparse
import sys

import torch

from .env import use_interpreter_without_cuda

DEVICE = use_interpreter_without_cuda()  # before tritonlayers (and so triton) is imported

import torch.nn.functional as F  # noqa: E402

import tritonlayers.functional as TF  # noqa: E402

from .cases.activation import ACTIVATIONS  # noqa: E402

# Largest |ours - fp64 torch| accepted, relative to the reference's scale, per dtype (fp64: torch's own fp64
# kernels round some constants to fp32, e.g. hardsigmoid's 1/6 in backward).
TOLERANCE = {torch.float64: 1e-7, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
OPS = [(name, {}) for name in ACTIVATIONS] + [("softmax", {"dim": 1}), ("log_softmax", {"dim": 1})]


def max_errors(name, kwargs, dtype):
    """(output error, gradient error) of tritonlayers vs torch in fp64, each relative to max(1, |reference|)."""
    generator = torch.Generator().manual_seed(0)
    # an odd NCHW map in channels_last, values across every activation's interesting range
    x = (torch.rand(3, 21, 7, 9, generator=generator, dtype=torch.float64) * 16 - 8).to(dtype)
    x = x.to(DEVICE).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad_output = (torch.rand(x.shape, generator=generator, dtype=torch.float64) * 2 - 1).to(dtype).to(DEVICE)
    y = getattr(TF, name)(x, **kwargs)
    (grad,) = torch.autograd.grad(y, x, grad_output)
    x64 = x.detach().double().requires_grad_()
    expected = getattr(F, name)(x64, **kwargs)
    (expected_grad,) = torch.autograd.grad(expected, x64, grad_output.double())

    def error(actual, reference):
        return ((actual.double() - reference).abs() / reference.abs().clamp(min=1)).max().item()

    return error(y, expected), error(grad, expected_grad)


def forward_times(name, kwargs):
    """Forward ms of tritonlayers, eager and torch.compile on a (32, 256, 56, 56) fp16 tensor."""
    from .timing import bench
    x = torch.randn(32, 256, 56, 56, device=DEVICE, dtype=torch.float16)
    nbytes = 2 * x.numel() * x.element_size()
    eager = lambda t: getattr(F, name)(t, **kwargs)  # noqa: E731
    functions = [lambda t: getattr(TF, name)(t, **kwargs), eager, torch.compile(eager, dynamic=False)]
    return [bench(lambda fn=fn: (lambda: fn(x)), DEVICE, nbytes)[0] for fn in functions]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.showcase", description="every op against torch")
    parser.add_argument("--no-timing", action="store_true", help="skip the GPU timings (errors only)")
    timing = DEVICE.type == "cuda" and not parser.parse_args(argv).no_timing
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    where = "GPU " + torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU, Triton interpreter"
    print(f"tritonlayers showcase on {where}: every op against torch (errors relative to max(1, |torch fp64|))\n")
    header = f"{'op':<12} " + " ".join(f"{str(d)[6:]:>18}" for d in dtypes)
    if timing:
        header += "   fwd ms (fp16 32x256x56x56): ours / eager / compile"
    print(header)
    print(f"{'':<12} " + " ".join(f"{'out':>8} {'grad':>9}" for _ in dtypes))
    failures = 0
    for name, kwargs in OPS:
        cells = []
        for dtype in dtypes:
            out_error, grad_error = max_errors(name, kwargs, dtype)
            ok = out_error <= TOLERANCE[dtype] and grad_error <= TOLERANCE[dtype]
            failures += not ok
            cells.append(f"{out_error:8.1e} {grad_error:8.1e}{' ' if ok else '!'}")
        line = f"{name:<12} " + " ".join(cells)
        if timing:
            line += "   " + " / ".join(f"{ms:.3f}" for ms in forward_times(name, kwargs))
        print(line, flush=True)
    print(f"\n{len(OPS)} ops x {len(dtypes)} dtypes: " +
          ("all within tolerance" if not failures else f"{failures} outside tolerance (marked !)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
