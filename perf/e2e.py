"""python -m perf.e2e [--quick | --dry-run] [--steps N] [--out DIR]

A ResNet-50 training step (channels_last, bf16 autocast (fp16 on the CPU dry run), SGD with momentum,
batch 32 at 224x224) several ways on one device in one run: eager torch, tritonlayers.convert(model),
torch.compile(model), and on a GPU eager and converted again with the whole step (forward, backward,
optimizer) captured once as a CUDA graph and replayed, which removes every launch's host time: images/s,
step time and peak memory; on a GPU also eager and converted with the backward on the calling thread
(torch.autograd.set_multithreading_enabled(False): the engine otherwise hands a CUDA backward to its device
thread, whose handoff and cold core may be where a Python autograd node's host time goes); then, for the
steps that are neither graphed nor repeated so, one profiled step's GPU time by kernel
name (where a graphed step's time goes: kernels are the same, launched by the graph). --quick runs a
ResNet-26 at 128x128; --dry-run a tiny ResNet on the CPU through Triton's interpreter (the pipeline only:
its times say nothing). Writes e2e.json into --out and prints the tables.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .env import REPO, benchmark_device

IMPLS = ("eager", "tritonlayers", "compile")
GRAPHED = ("eager+graph", "tritonlayers+graph")  # CUDA only
CALLING_THREAD = ("eager+calling-thread backward", "tritonlayers+calling-thread backward")  # CUDA only


def _prepare(impl, model, dry_run):
    """(callable model, conversion summary) for one implementation."""
    if impl == "tritonlayers":
        import tritonlayers
        converted, report = tritonlayers.convert(model, inplace=True)
        return converted, report.summary()
    if impl == "compile":  # default mode: max-autotune of a whole training graph takes longer than a lease
        return torch.compile(model, backend="eager" if dry_run else "inductor"), ""
    return model, ""


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(impl, variant, device, steps, warmup, dry_run):
    """One row: the mean step time over `steps` steps after `warmup` (compilation, autotuning and, for a
    graphed step, the capture happen there)."""
    from .models import autocast_dtype, build
    model, batch, size = build(variant)
    dtype = autocast_dtype(device)
    model = model.to(device, memory_format=torch.channels_last).train()
    impl, _, how = impl.partition("+")
    graphed, calling_thread = how == "graph", how == "calling-thread backward"
    step_model, summary = _prepare(impl, model, dry_run)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator(device=device).manual_seed(1)
    images = torch.randn(batch, 3, size, size, device=device, generator=generator).contiguous(
        memory_format=torch.channels_last)
    labels = torch.randint(0, model.fc.out_features, (batch,), device=device, generator=generator)
    losses = []

    def step():
        # autocast's cast cache would hold casts made during a capture: off, as torch's CUDA-graph notes ask
        with torch.autocast(device.type, dtype=dtype, cache_enabled=not graphed):
            loss = torch.nn.functional.cross_entropy(step_model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=not graphed)  # a replayed step writes the same gradient buffers
        losses.append(loss.detach())
        return loss

    if graphed:
        step = _captured(step, warmup, losses)
    else:
        for _ in range(warmup):
            step()
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.autograd.set_multithreading_enabled(not calling_thread):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(device)
    step_ms = (time.perf_counter() - start) * 1e3 / steps
    peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    kernels = {}
    if not how and device.type == "cuda":  # the CPU profiler has no kernels to show
        from .kernel_times import kernel_us
        gpu_us, launches, by_name, _ = kernel_us(step, device, 1)
        top = sorted(by_name.items(), key=lambda item: -item[1])[:TOP_KERNELS]
        kernels = {"gpu_ms": gpu_us / 1e3, "kernels": launches, "top_kernels": [[name[:70], us] for name, us in top]}
    return {"impl": f"{impl}+{how}" if how else impl, "model": variant, "batch": batch, "image_size": size,
            "autocast": str(dtype)[6:],
            "memory_format": "channels_last", "step_ms": step_ms, "images_per_s": batch * 1e3 / step_ms,
            "peak_mb": peak_mb, "first_loss": losses[0].item(), "last_loss": losses[-1].item(),
            "conversion": summary, **kernels}


TOP_KERNELS = 12


def _captured(step, warmup, losses):
    """Run `step` `warmup` times on a side stream (tuning, allocating the gradient and momentum buffers),
    capture one step as a CUDA graph, and return a step that replays it and records its loss."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss = step()
    losses.pop()  # a capture records the step without running it: its loss is not a value yet

    def replay():
        graph.replay()
        losses.append(loss.clone())
    return replay


def table(rows):
    eager = next((row["step_ms"] for row in rows if row["impl"] == "eager"), None)
    lines = ["| impl | step ms | images/s | vs eager | peak MiB | first / last loss |", "|---|---|---|---|---|---|"]
    for row in rows:
        peak = "" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        speedup = f"{eager / row['step_ms']:.2f}x" if eager else ""
        lines.append(f"| {row['impl']} | {row['step_ms']:.2f} | {row['images_per_s']:.1f} | {speedup} | {peak} | "
                     f"{row['first_loss']:.3f} / {row['last_loss']:.3f} |")
    return "\n".join(lines)


def kernel_tables(rows):
    """Markdown: each profiled step's GPU time and kernel count, and its longest kernels by name."""
    lines = []
    for row in rows:
        if row.get("top_kernels"):
            lines += ["", f"{row['impl']}: GPU {row['gpu_ms']:.2f} ms in {row['kernels']:.0f} kernels a step", "",
                      "| kernel | us per step |", "|---|---|"]
            lines += [f"| {name} | {us:.1f} |" for name, us in row["top_kernels"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.e2e", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="ResNet-26 at 128x128 (fits a short GPU lease)")
    parser.add_argument("--dry-run", action="store_true", help="a tiny ResNet on the CPU through the interpreter")
    parser.add_argument("--steps", type=int, help="timed steps (default 20; dry run 1)")
    parser.add_argument("--out", help="output folder (default perf/out/e2e)")
    args = parser.parse_args(argv)
    device = benchmark_device("python -m perf.e2e", args.dry_run)  # before triton is imported
    if device is None:
        return 2
    from .env import run_identity
    variant = "dry" if args.dry_run else "resnet26-quick" if args.quick else "resnet50"
    steps = args.steps or (1 if args.dry_run else 20)
    identity = run_identity(device)
    out_dir = Path(args.out) if args.out else REPO / "perf" / "out" / "e2e"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    impls = IMPLS + (GRAPHED + CALLING_THREAD if device.type == "cuda" else ())
    try:
        for impl in impls:
            torch._dynamo.reset()
            rows.append({**identity, **measure(impl, variant, device, steps, 1 if args.dry_run else 3, args.dry_run)})
            print(f"{impl}: {rows[-1]['step_ms']:.2f} ms/step", file=sys.stderr, flush=True)
            # written after each implementation: a run stopped at its time limit keeps the rows it made
            (out_dir / "e2e.json").write_text(json.dumps(rows, indent=1) + "\n")
    except KeyboardInterrupt:
        print(f"stopped (time limit) after {len(rows)} of {len(impls)} implementations", flush=True)
    if not rows:
        return 1
    print(f"{variant} training step, batch {rows[0]['batch']} at {rows[0]['image_size']}x{rows[0]['image_size']}, "
          f"channels_last, {rows[0]['autocast']} autocast, on {identity['device']}" +
          (" (dry run: times say nothing)" if args.dry_run else ""))
    print(table(rows))
    print(kernel_tables(rows))
    if len(rows) > 1:
        print(f"tritonlayers conversion: {rows[1]['conversion']}")
    print(f"wrote {out_dir / 'e2e.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
