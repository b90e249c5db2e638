"""python -m perf.profile [--model resnet50 | resnet26-quick] [--dry-run] [--out DIR]

Per-layer kernel time of a model's training step, tritonlayers vs eager torch, each with its % of the
roofline. The model (perf/models.py, channels_last, bf16 autocast, training mode) is converted with
tritonlayers.convert; one forward records every layer's inputs; then each converted layer is timed alone,
forward and forward+backward, against what it replaces in eager torch (a fused BatchNorm against the
BatchNorm, the residual add and the activation it absorbed). Layers convert() left alone (3x3
convolutions: cuDNN in both) are timed once. The roofline of a layer is the larger of its minimal bytes
(inputs, parameters and output; backward adds the output gradient and the input gradients) over the copy
bandwidth measured in the run, and its FLOPs over the torch.mm rate of the autocast dtype measured in the
run (on the CPU dry run fp16: the interpreter computes bf16 tl.dot wrongly). Writes
profile.json, profile.md and profile.png into --out.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from .env import REPO, benchmark_device
from .models import autocast_dtype

DIRECTIONS = ("fwd", "fwd+bwd")


def torch_activation(spec):
    """torch's function for a tritonlayers ActivationSpec (the eager twin of a fused activation)."""
    if spec is None or spec.name == "identity":
        return lambda x: x
    with_params = {"leaky_relu": lambda x: F.leaky_relu(x, spec.param_a), "elu": lambda x: F.elu(x, spec.param_a),
                   "softplus": lambda x: F.softplus(x, spec.param_a, spec.param_b),
                   "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}
    return with_params.get(spec.name, getattr(F, spec.name))


def _is_ours(module):
    return type(module).__module__.startswith("tritonlayers.nn")


def record_layer_inputs(model, images):
    """{path: (module, input tensors)} of every leaf module that ran in one autocast forward."""
    recorded, handles = {}, []
    for path, module in model.named_modules():
        if next(module.children(), None) is None and not isinstance(module, torch.nn.Identity):
            def hook(module, args, path=path):
                recorded.setdefault(path, (module, [a.detach().clone() for a in args if torch.is_tensor(a)]))
            handles.append(module.register_forward_pre_hook(hook))
    with torch.autocast(images.device.type, dtype=autocast_dtype(images.device)):
        model(images)
    for handle in handles:
        handle.remove()
    return recorded


def _eager_twin(original, converted):
    """Eager torch computing what the converted layer does: the original layer, then (fused BatchNorm) the
    residual add and the activation."""
    activation = torch_activation(getattr(converted, "activation", None)) \
        if isinstance(converted, torch.nn.modules.batchnorm._BatchNorm) else (lambda x: x)

    def run(x, residual=None):
        y = original(x)
        return activation(y if residual is None else y + residual)
    return run


def _describe(module, inputs):
    """The layer's class, with what a fused BatchNorm absorbed: e.g. BatchNorm2d+add+relu."""
    name = type(module).__name__
    activation = getattr(module, "activation", None)
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        name += "+add" * (len(inputs) > 1) + (f"+{activation.name}" if activation is not None else "")
    return name


def _flops(module, inputs, output):
    if isinstance(module, torch.nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return 2 * output.numel() * kernel
    if isinstance(module, torch.nn.ConvTranspose2d):
        return 2 * inputs[0].numel() * module.out_channels // module.groups * module.kernel_size[0] * \
            module.kernel_size[1]
    if isinstance(module, torch.nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0


def _bytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _timed(fn, inputs, direction, device):
    from .timing import bench

    def setup():
        leaves = [t.detach().requires_grad_(t.is_floating_point()) for t in inputs]
        if direction == "fwd":
            return lambda: fn(*leaves)
        grad = torch.randn_like(fn(*leaves))
        return lambda: torch.autograd.grad(fn(*leaves), [t for t in leaves if t.requires_grad], grad,
                                           allow_unused=True)

    def autocast_setup():
        with torch.autocast(device.type, dtype=autocast_dtype(device)):
            inner = setup()

        def call():
            with torch.autocast(device.type, dtype=autocast_dtype(device)):
                return inner()
        return call
    return bench(autocast_setup, device, 0)[0]


def profile_layers(original, converted, images, copy_gbps, mm_tflops):
    device = images.device
    rows = []
    for path, (module, inputs) in record_layer_inputs(converted, images).items():
        try:
            eager_module = original.get_submodule(path)
        except AttributeError:
            continue
        if getattr(module, "inplace", False):  # timed on leaves, which in-place ops refuse
            module, eager_module = copy.copy(module), copy.copy(eager_module)
            module.inplace = eager_module.inplace = False
        ours = _is_ours(module)
        eager = _eager_twin(eager_module, module) if ours else module
        with torch.no_grad(), torch.autocast(device.type, dtype=autocast_dtype(device)):
            output = module(*inputs)
        params = [p for p in module.parameters()]
        for direction in DIRECTIONS:
            passes = 1 if direction == "fwd" else 2  # backward: output gradient in, input/parameter gradients out
            nbytes = passes * _bytes([*inputs, *params, output])
            flops = (1 if direction == "fwd" else 3) * _flops(module, inputs, output)
            roofline_ms = max(nbytes / (copy_gbps * 1e9), flops / (mm_tflops * 1e12)) * 1e3
            eager_ms = _timed(eager, inputs, direction, device)
            ours_ms = _timed(module, inputs, direction, device) if ours else None
            rows.append({"layer": path, "type": _describe(module, inputs), "converted": ours, "direction": direction,
                         "input": [list(t.shape) for t in inputs], "dtype": str(inputs[0].dtype)[6:],
                         "ours_ms": ours_ms, "eager_ms": eager_ms, "roofline_ms": roofline_ms,
                         "ours_pct_roofline": 100 * roofline_ms / ours_ms if ours_ms else None,
                         "eager_pct_roofline": 100 * roofline_ms / eager_ms})
        print(f"{path}: {type(module).__name__}", file=sys.stderr, flush=True)
    return rows


def _cell(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


def table(rows):
    lines = ["| layer | type | dir | input | ours ms | eager ms | speedup | ours % roofline | eager % roofline |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        speedup = row["eager_ms"] / row["ours_ms"] if row["ours_ms"] else None
        lines.append(f"| {row['layer']} | {row['type'] if row['converted'] else row['type'] + ' (left alone)'} | "
                     f"{row['direction']} | {'x'.join(map(str, row['input'][0]))} | {_cell(row['ours_ms'], 3)} | "
                     f"{_cell(row['eager_ms'], 3)} | {_cell(speedup, 2)} | {_cell(row['ours_pct_roofline'], 0)} | "
                     f"{_cell(row['eager_pct_roofline'], 0)} |")
    for direction in DIRECTIONS:
        chosen = [row for row in rows if row["direction"] == direction]
        ours = sum(row["ours_ms"] if row["ours_ms"] is not None else row["eager_ms"] for row in chosen)
        lines.append(f"| **total** | | {direction} | | {ours:.3f} | {sum(row['eager_ms'] for row in chosen):.3f} "
                     "| | | |")
    return "\n".join(lines)


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    chosen = [row for row in rows if row["direction"] == "fwd+bwd"]
    fig, axis = plt.subplots(figsize=(9, 0.25 * len(chosen) + 1.5))
    positions = range(len(chosen))
    axis.barh([p - 0.2 for p in positions], [row["eager_ms"] for row in chosen], height=0.4, label="eager")
    axis.barh([p + 0.2 for p in positions], [row["ours_ms"] or 0 for row in chosen], height=0.4,
              label="tritonlayers")
    axis.set_yticks(list(positions))
    axis.set_yticklabels([f"{row['layer']} ({row['type']})" for row in chosen], fontsize=6)
    axis.invert_yaxis()
    axis.set_xlabel("forward + backward ms (autocast)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _mm_tflops(device):
    from .timing import bench
    size = 4096 if device.type == "cuda" else 64
    a = torch.randn(size, size, device=device, dtype=autocast_dtype(device))
    ms, _ = bench(lambda: (lambda: a @ a), device, 3 * a.numel() * 2)
    return 2 * size**3 / (ms * 1e-3) / 1e12


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.profile", description=__doc__.splitlines()[2])
    parser.add_argument("--model", default="resnet50", choices=("resnet50", "resnet26-quick"))
    parser.add_argument("--dry-run", action="store_true", help="a tiny ResNet on the CPU through the interpreter")
    parser.add_argument("--out", help="output folder (default perf/out/profile)")
    args = parser.parse_args(argv)
    device = benchmark_device("python -m perf.profile", args.dry_run)  # before triton is imported
    if device is None:
        return 2
    import tritonlayers
    from .env import run_identity
    from .models import build
    from .timing import copy_bandwidth_gbps
    variant = "dry" if args.dry_run else args.model
    model, batch, size = build(variant)
    model = model.to(device, memory_format=torch.channels_last).train()
    converted, report = tritonlayers.convert(copy.deepcopy(model))
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    copy_gbps, mm_tflops = copy_bandwidth_gbps(device), _mm_tflops(device)
    rows = profile_layers(model, converted, images, copy_gbps, mm_tflops)
    identity = run_identity(device)
    out_dir = Path(args.out) if args.out else REPO / "perf" / "out" / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profile.json").write_text(json.dumps({**identity, "model": variant, "batch": batch, "image_size": size,
                                                      "copy_gbps": copy_gbps, "autocast": str(autocast_dtype(device))[6:], "mm_tflops": mm_tflops,
                                                      "rows": rows}, indent=1) + "\n")
    heading = (f"# {variant} per-layer profile, batch {batch} at {size}x{size}, channels_last, "
               f"{str(autocast_dtype(device))[6:]} autocast\n\n"
               f"{identity['device']}, torch {identity['torch']}, triton {identity['triton']}, commit "
               f"{identity['commit']}; copy bandwidth {copy_gbps:.1f} GB/s, torch.mm {mm_tflops:.1f} TFLOP/s\n")
    if args.dry_run:
        heading += "\n**Dry run through Triton's interpreter: the times say nothing about GPU speed.**\n"
    markdown = heading + "\n" + table(rows) + "\n\nconvert() report:\n\n```\n" + str(report) + "\n```\n"
    (out_dir / "profile.md").write_text(markdown)
    print(markdown)
    written = plot(rows, out_dir / "profile.png")
    print(f"wrote {out_dir / 'profile.json'}, {out_dir / 'profile.md'}" + (f", {written}" if written else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
