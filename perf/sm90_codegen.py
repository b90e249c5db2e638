"""python -m perf.sm90_codegen [--quick] [--ops gemm,max_pool2d] [--dirs fwd,fwd+bwd] [--model resnet26-quick]

What each benchmark case's kernels compile to on an H100 (sm_90), on a machine without a GPU: per launch
(for an autotuned kernel, per config the tuner would try), the tile and flag constexprs, warps and stages,
registers, spilled bytes, shared memory, and static counts of the PTX instructions that decide a kernel's
speed: global loads and stores by width (v4.b32 is 16 bytes a thread; b16 a scalar half), cp.async copies
and TMA (cp.async.bulk) transfers, tensor-core instructions, and integer divisions (each a long sequence).
Nothing runs: the host code of each op runs on CPU tensors as on the GPU, with the GPU's SM count, and every
launch only compiles. Run with TRITON_INTERPRET unset. It found a channels_last max-pool walking NCHW order
and 138 divisions a thread in the NCHW 7x7 GEMM epilogue; it cannot time anything. --model compiles instead
every kernel one training step of a converted perf.models network launches (channels_last, bf16
autocast), forward and backward: it found the 1000-class head's GEMMs loading one bf16 at a time.
"""
import argparse
import os
import re
import sys
from collections import Counter

os.environ.setdefault("TRITONLAYERS_DIRECT_LAUNCH", "0")  # every launch goes through JITFunction.run

# one PTX instruction: optional predicate, then the mnemonic with its dotted modifiers
_INSTRUCTION = re.compile(r"^\s*(?:@!?%p\d+\s+)?([a-z][\w.]*)", re.M)
_WIDTH = re.compile(r"\.(v\d\.)?([bfsu]\d+)$")


def ptx_summary(ptx):
    """{column: text} of a kernel's static instruction counts that matter for speed."""
    counts = Counter(match.group(1) for match in _INSTRUCTION.finditer(ptx))

    def widths(prefix):
        found = Counter()
        for name, count in counts.items():
            if name.startswith(prefix):
                width = _WIDTH.search(name)
                found[(width.group(1) or "") + width.group(2) if width else name] += count
        return " ".join(f"{width} x{count}" for width, count in sorted(found.items())) or "-"

    def total(*prefixes):
        return sum(count for name, count in counts.items() if name.startswith(prefixes))

    return {"global loads": widths("ld.global"), "global stores": widths("st.global"),
            "cp.async": total("cp.async.cg", "cp.async.ca"), "TMA": total("cp.async.bulk"),
            "tensor core": total("wgmma.mma_async", "mma.sync"), "int div/rem": total("div.s", "div.u", "rem.")}


def _constexprs(kwargs):
    """The launch's tile sizes and flags worth reading (set, upper-case keyword constexprs)."""
    return " ".join(f"{name}={value}" for name, value in kwargs.items()
                    if name.isupper() and value not in (None, False, 0))


class Recorder:
    """Turns launches into compiles and keeps, per distinct compiled variant, one report row."""

    def __init__(self):
        self.rows = {}

    def install(self):
        from triton.runtime import driver
        from triton.runtime.autotuner import Autotuner
        from triton.runtime.jit import JITFunction

        from .sm90_target import CompileOnlyDriver
        driver.set_active(CompileOnlyDriver())
        compile_only = JITFunction.run
        recorder = self

        def run(jit, *args, grid, warmup, **kwargs):
            kernel = compile_only(jit, *args, grid=grid, warmup=True, **kwargs)
            recorder.record(jit.fn.__name__, kwargs, kernel)
            return kernel

        def tune(autotuner, *args, **kwargs):
            named = dict(zip(autotuner.arg_names, args))
            configs = autotuner.configs
            if autotuner.early_config_prune:
                configs = autotuner.early_config_prune(configs, named, **kwargs)
            for config in configs:
                autotuner.fn.run(*args, **{**kwargs, **config.all_kwargs()})

        JITFunction.run = run
        Autotuner.run = tune

    def record(self, name, kwargs, kernel):
        from .sm90_target import resource_usage, stack_bytes
        settings = _constexprs(kwargs)
        if (name, settings) in self.rows:
            return
        usage = resource_usage(kernel.asm["cubin"])
        registers = usage.split("REG:")[1].split()[0] if "REG:" in usage else "?"
        self.rows[(name, settings)] = {
            "kernel": name, "constexprs": settings, "warps x stages": f"{kernel.metadata.num_warps} x "
            f"{kernel.metadata.num_stages}", "regs": registers, "spill B": stack_bytes(usage),
            "smem KiB": round(kernel.metadata.shared / 1024, 1), **ptx_summary(kernel.asm["ptx"])}

    def take(self):
        rows, self.rows = list(self.rows.values()), {}
        return rows


def _as_gpu(device_sms):
    """Let the ops take CPU tensors without the interpreter and size their grids for the GPU."""
    import tritonlayers
    import tritonlayers._launch as launch
    launch.KERNELS_INTERPRETED = True  # nothing runs: every launch only compiles
    for name, module in list(sys.modules.items()):
        if name.startswith(tritonlayers.__name__) and hasattr(module, "sm_count"):
            module.sm_count = lambda device: device_sms


def _table(rows):
    if not rows:
        return "(no kernel launches)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.sm90_codegen", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="the quick benchmark cases (default: full)")
    parser.add_argument("--ops", default="", help="comma-separated ops or families (default: all)")
    parser.add_argument("--dirs", default="fwd,fwd+bwd", help="directions: fwd, fwd+bwd")
    parser.add_argument("--model", help="a perf.models variant: one converted training step instead of cases")
    parser.add_argument("--batch", type=int, help="the --model step's batch (default: the variant's)")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print("python -m perf.sm90_codegen: unset TRITON_INTERPRET (kernels must compile, not interpret)",
              file=sys.stderr)
        return 2
    from .sm90_target import SM90_SMS
    recorder = Recorder()
    recorder.install()
    import torch

    from .cases import all_cases, select
    from .runner import _setup
    _as_gpu(SM90_SMS)
    print(f"# sm_90 code of the benchmark cases' kernels (compiled on a CPU, not run; triton "
          f"{__import__('triton').__version__}, torch {torch.__version__})\n")
    device = torch.device("cpu")
    if args.model:
        return _model_step(args.model, args.batch, recorder)
    for case in select(all_cases("quick" if args.quick else "full"), [op for op in args.ops.split(",") if op]):
        x = case.make_input(device)
        extras = case.make_extras(x)
        for direction in args.dirs.split(","):
            call = _setup(case.ours, x, extras, direction)()
            recorder.take()  # what the setup launched (a forward for the gradient's shape)
            call()
            print(f"## {case.op} {'x'.join(map(str, case.shape))} {str(case.dtype)[6:]} {case.layout} "
                  f"{case.note} {direction}\n\n{_table(recorder.take())}\n", flush=True)
    return 0


def _model_step(variant, batch, recorder):
    """Tables of the kernels one training step of `variant`, converted, launches: forward, then backward."""
    import torch

    import tritonlayers

    from .models import build
    model, default_batch, size = build(variant)
    model = tritonlayers.convert(model.to(memory_format=torch.channels_last).train(), inplace=True)[0]
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch or default_batch, 3, size, size, generator=generator).contiguous(
        memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    forward = recorder.take()
    logits.float().sum().backward()
    for name, rows in (("forward", forward), ("backward", recorder.take())):
        print(f"## {variant} training step, batch {images.shape[0]} at {size}x{size}: {name}\n\n{_table(rows)}\n",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
