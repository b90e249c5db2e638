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
SHAPE = (3, 21, 7, 9)  # an odd NCHW map, used in channels_last
P, SEED = 0.3, 0


class Op:
    """One showcase row: ours(x) and eager(x) for timing; reference(x64, mask) in fp64 for errors, where mask
    is the scaled keep mask a seeded dropout call draws (None for deterministic ops)."""

    def __init__(self, name, ours, eager, reference=None, mask=None, gemm=False):
        self.name, self.ours, self.eager, self.mask, self.gemm = name, ours, eager, mask, gemm
        self.reference = reference or (lambda x64, _: eager(x64))


def _fixed(shape, seed):
    """Fixed extra inputs in [-1, 1), rounded through bf16 so every dtype holds them exactly and the fp64
    reference sees the very values the kernels do."""
    values = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    return values.to(torch.bfloat16).to(torch.float64)


def _ops():
    ops = [Op(name, getattr(TF, name), getattr(F, name)) for name in ACTIVATIONS]
    ops += [Op(name, lambda x, n=name: getattr(TF, n)(x, 1), lambda x, n=name: getattr(F, n)(x, 1))
            for name in ("softmax", "log_softmax")]
    ops += [Op(name, lambda x, n=name: getattr(TF, n)(x, P), lambda x, n=name: getattr(F, n)(x, P),
               reference=lambda x64, mask: x64 * mask, mask=name) for name in ("dropout", "dropout2d")]
    bias, residual = _fixed((SHAPE[1], 1, 1), 1).to(DEVICE), _fixed(SHAPE, 2).to(DEVICE)

    def fused(x):
        return TF.fused_dropout(x, P, bias=bias.to(x.dtype), activation="gelu", residual=residual.to(x.dtype))

    def fused_eager(x):
        return residual.to(x.dtype) + F.dropout(F.gelu(x + bias.to(x.dtype)), P)

    ops.append(Op("fused_dropout", fused, fused_eager, mask="dropout",
                  reference=lambda x64, mask: residual + F.gelu(x64 + bias) * mask))
    weight, shift = _fixed((SHAPE[1],), 3).add(1.5).to(DEVICE), _fixed((SHAPE[1],), 4).to(DEVICE)

    def bn(module, x, add_relu):
        """Training-mode BatchNorm, optionally fused with add + relu: fresh running buffers each call, and
        parameters and statistics in fp32 for half inputs, as under autocast."""
        param_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        running = (torch.zeros(SHAPE[1], device=x.device, dtype=param_dtype),
                   torch.ones(SHAPE[1], device=x.device, dtype=param_dtype))
        args = (x, *running, weight.to(param_dtype), shift.to(param_dtype), True)
        if module is TF:
            return TF.batch_norm(*args, activation="relu" if add_relu else None,
                                 residual=residual.to(x.dtype) if add_relu else None)
        y = F.batch_norm(*args)
        return F.relu(y + residual.to(x.dtype)) if add_relu else y

    ops += [Op("batch_norm", lambda x: bn(TF, x, False), lambda x: bn(F, x, False)),
            Op("bn_add_relu", lambda x: bn(TF, x, True), lambda x: bn(F, x, True))]
    linear_weight = _fixed((12, SHAPE[-1]), 5).to(DEVICE)
    conv_weight, conv_bias = _fixed((16, SHAPE[1], 1, 1), 6).to(DEVICE), _fixed((16,), 7).to(DEVICE)
    transpose_weight = _fixed((SHAPE[1], 4, 2, 2), 8).to(DEVICE)

    def layer(module, x, kind):
        """The GEMM layers with their fused epilogues: linear + softmax over the last dim, a strided 1x1
        convolution + bias + relu, a 2x2 stride-2 transposed convolution."""
        if kind == "linear":
            weight = linear_weight.to(x.dtype)
            return TF.linear(x, weight, activation="softmax") if module is TF else F.softmax(F.linear(x, weight), -1)
        if kind == "conv":
            args = (x, conv_weight.to(x.dtype), conv_bias.to(x.dtype), 2)
            return TF.conv2d(*args, activation="relu") if module is TF else F.relu(F.conv2d(*args))
        return getattr(module, "conv_transpose2d")(x, transpose_weight.to(x.dtype), None, 2)

    ops += [Op(name, lambda x, k=kind: layer(TF, x, k), lambda x, k=kind: layer(F, x, k), gemm=True)
            for name, kind in (("linear_softmax", "linear"), ("conv1x1_relu", "conv"),
                               ("conv_transpose", "transpose"))]
    pools = {"max_pool_3x3s2": lambda m, x: m.max_pool2d(x, 3, 2, 1),
             "avg_pool_2x2": lambda m, x: m.avg_pool2d(x, 2, ceil_mode=True),
             "adaptive_avg": lambda m, x: m.adaptive_avg_pool2d(x, (3, 4)),
             "global_max": lambda m, x: m.adaptive_max_pool2d(x, 1)}
    ops += [Op(name, lambda x, p=pool: p(TF, x), lambda x, p=pool: p(F, x)) for name, pool in pools.items()]
    return ops


def max_errors(op, dtype):
    """(output error, gradient error) of tritonlayers vs torch in fp64, each relative to max(1, |reference|)."""
    generator = torch.Generator().manual_seed(0)
    # values across every activation's interesting range
    x = (torch.rand(SHAPE, generator=generator, dtype=torch.float64) * 16 - 8).to(dtype)
    x = x.to(DEVICE).contiguous(memory_format=torch.channels_last).requires_grad_()
    mask = None
    if op.mask:  # the same seed draws the same mask (keys are logical indices): take it from ones
        torch.manual_seed(SEED)
        mask = getattr(TF, op.mask)(torch.ones(SHAPE, dtype=torch.float64, device=DEVICE), P)
        torch.manual_seed(SEED)
    y = op.ours(x)
    grad_output = (torch.rand(y.shape, generator=generator, dtype=torch.float64) * 2 - 1).to(dtype).to(DEVICE)
    (grad,) = torch.autograd.grad(y, x, grad_output)
    x64 = x.detach().double().requires_grad_()
    expected = op.reference(x64, mask)
    (expected_grad,) = torch.autograd.grad(expected, x64, grad_output.double())

    def error(actual, reference):
        return ((actual.double() - reference).abs() / reference.abs().clamp(min=1)).max().item()

    return error(y, expected), error(grad, expected_grad)


def forward_times(op):
    """Forward ms of tritonlayers, eager and torch.compile on a (32, 256, 56, 56) fp16 tensor."""
    from .timing import bench
    x = torch.randn(32, 256, 56, 56, device=DEVICE, dtype=torch.float16)
    nbytes = 2 * x.numel() * x.element_size()
    functions = [op.ours, op.eager, torch.compile(op.eager, dynamic=False)]
    return [bench(lambda fn=fn: (lambda: fn(x)), DEVICE, nbytes)[0] for fn in functions]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.showcase", description="every op against torch")
    parser.add_argument("--no-timing", action="store_true", help="skip the GPU timings (errors only)")
    timing = DEVICE.type == "cuda" and not parser.parse_args(argv).no_timing
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    where = "GPU " + torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU, Triton interpreter"
    print(f"tritonlayers showcase on {where}: every op against torch in fp64 (errors relative to "
          "max(1, |torch|); dropout ops against torch with the same mask)\n")
    header = f"{'op':<15} " + " ".join(f"{str(d)[6:]:>18}" for d in dtypes)
    if timing:
        header += "   fwd ms (fp16 32x256x56x56): ours / eager / compile"
    print(header)
    print(f"{'':<15} " + " ".join(f"{'out':>8} {'grad':>9}" for _ in dtypes))
    failures = 0
    ops = _ops()
    # fp32 GEMMs compared with fp64: TF32 off (the kernels follow torch's switches, which allow it for convs)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    for op in ops:
        cells = []
        for dtype in dtypes:
            if op.gemm and dtype == torch.bfloat16 and DEVICE.type != "cuda":
                cells.append(f"{'(GPU only)':>18}")  # Triton's interpreter computes bf16 tl.dot wrongly
                continue
            out_error, grad_error = max_errors(op, dtype)
            ok = out_error <= TOLERANCE[dtype] and grad_error <= TOLERANCE[dtype]
            failures += not ok
            cells.append(f"{out_error:8.1e} {grad_error:8.1e}{' ' if ok else '!'}")
        line = f"{op.name:<15} " + " ".join(cells)
        if timing:
            line += "   " + " / ".join(f"{ms:.3f}" for ms in forward_times(op))
        print(line, flush=True)
    print(f"\n{len(ops)} ops x {len(dtypes)} dtypes: " +
          ("all within tolerance" if not failures else f"{failures} outside tolerance (marked !)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
