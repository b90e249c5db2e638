"""Compile every kernel variant the ops launch for an H100 (sm_90), on a machine with no GPU.

The interpreter runs kernels as Python and never sees the compiler, so code can pass every CPU test and
still fail to compile on the GPU. This script swaps Triton's driver for a compile-only stand-in, turns
each launch into a warmup (compile, no run) and calls the ops over their dtypes, layouts and paths.
It also fails on any variant whose registers spill to a stack frame of more than MAX_STACK_BYTES (read with
cuobjdump), or that needs more shared memory than sm_90 has (autotuned launches: when every config does).
perf/sm90_target.py holds the compile-only driver. Run as a script with TRITON_INTERPRET unset; it prints
how many launches compiled and fails on the first compile error. tests/test_compile_sm90.py runs it.
"""
import os
import sys
from pathlib import Path

assert os.environ.get("TRITON_INTERPRET", "0") != "1", "run without the interpreter"
os.environ["TRITONLAYERS_DIRECT_LAUNCH"] = "0"  # every launch goes through JITFunction.run, made a compile here

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for perf

import torch  # noqa: E402
from triton.runtime import driver  # noqa: E402
from triton.runtime.autotuner import Autotuner  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

from perf.sm90_target import SM90_SHARED_BYTES, CompileOnlyDriver, resource_usage, stack_bytes  # noqa: E402

MAX_STACK_BYTES = 32
MAX_SHARED_BYTES = SM90_SHARED_BYTES
compiled = []
spilled = {}
over_shared = {}
_run = JITFunction.run


def _compile_only(self, *args, grid, warmup, **kwargs):
    kernel = _run(self, *args, grid=grid, warmup=True, **kwargs)
    compiled.append(self.fn.__name__)
    usage = resource_usage(kernel.asm["cubin"])
    stack = stack_bytes(usage)
    # A stack frame means registers spilled to local memory. ptxas alone sometimes trades a few words of
    # stack for occupancy; more than MAX_STACK_BYTES is a tile too big for the registers.
    variant = f"{self.fn.__name__} {kernel.metadata.num_warps} warps {sorted(kernel.src.constants.items())}"
    fp64_gemm = self.fn.__name__ == "gemm_kernel" and args[0].dtype == torch.float64  # serves gradcheck only
    if (stack < 0 or stack > MAX_STACK_BYTES) and not fp64_gemm:
        spilled[variant] = usage
    if kernel.metadata.shared > MAX_SHARED_BYTES and not _autotuning:
        over_shared[variant] = kernel.metadata.shared
    return kernel


_autotuning = False


def _compile_configs(self, *args, **kwargs):
    """Autotuner.run, compile-only. ALL_CONFIGS: every config the tuner would try (after its pruning) must
    compile, and at least one must fit sm_90's shared memory without spilling (the tuner skips the others
    or finds them slow). Otherwise only the smallest config, the tuner's fallback, is compiled and must be
    clean: many epilogue variants stay affordable to sweep."""
    global _autotuning
    named = dict(zip(self.arg_names, args))
    configs = self.configs
    if self.early_config_prune:
        configs = self.early_config_prune(configs, named, **kwargs)
    configs = configs if ALL_CONFIGS else configs[-1:]
    clean = []
    _autotuning = True
    try:
        for config in configs:
            before = len(spilled)
            kernel = self.fn.run(*args, **{**kwargs, **config.all_kwargs()})
            fits = kernel.metadata.shared <= MAX_SHARED_BYTES and len(spilled) == before
            clean.append(fits)
            if ALL_CONFIGS and len(spilled) > before:  # a spilling config among others: the tuner's call
                spilled.popitem()
    finally:
        _autotuning = False
    if not any(clean):
        over_shared[f"{self.fn.fn.__name__}: no config fits without spilling"] = len(configs)


ALL_CONFIGS = False


ACTIVATIONS = [("relu", {}), ("relu6", {}), ("leaky_relu", {}), ("elu", {}), ("gelu", {}),
               ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}), ("hardswish", {}), ("hardsigmoid", {}),
               ("softplus", {}), ("sigmoid", {}), ("tanh", {})]
INPLACE = ["relu", "relu6", "leaky_relu", "elu", "hardsigmoid", "silu"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def _forward_backward(fn, x):
    x = x.detach().requires_grad_()
    y = fn(x)
    torch.autograd.grad(y, x, torch.empty_like(y))


def _fused(F, x, bias, activation, residual=True, training=True):
    leaves = [x.detach().requires_grad_()]
    if bias is not None:
        leaves.append(bias.detach().requires_grad_())
    if residual:
        leaves.append(torch.empty_like(x).requires_grad_())
    y = F.fused_dropout(leaves[0], 0.3, training, bias=leaves[1] if bias is not None else None,
                        activation=activation, residual=leaves[-1] if residual else None)
    torch.autograd.grad(y, leaves, torch.empty_like(y))


def _batch_norm(F, x, training, activation, residual, param_dtype, affine=True, running=True):
    channels = x.shape[1]
    leaves = [x.detach().requires_grad_()]
    weight = bias = None
    if affine:
        weight, bias = (torch.empty(channels, dtype=param_dtype).requires_grad_() for _ in range(2))
        leaves += [weight, bias]
    res = torch.empty_like(x).requires_grad_() if residual else None
    if res is not None:
        leaves.append(res)
    stats = (torch.zeros(channels, dtype=param_dtype), torch.ones(channels, dtype=param_dtype)) if running else \
        (None, None)
    y = F.batch_norm(leaves[0], *stats, weight, bias, training, activation=activation, residual=res)
    torch.autograd.grad(y, leaves, torch.empty_like(y))


def sweep_batch_norm(F, dtypes):
    from tritonlayers.batch_norm import _merge
    for dtype in dtypes:
        param_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        variants = [(None, False), ("relu", True), ("gelu", True)] if dtype in (torch.float32, torch.bfloat16) \
            else [(None, False)]
        for shape in ((2, 16, 6, 6), (2, 16, 70, 70)):  # resident, split
            for layout in (torch.contiguous_format, torch.channels_last):
                x = torch.empty(shape, dtype=dtype).contiguous(memory_format=layout)
                for training in (True, False):
                    for activation, residual in variants:
                        _batch_norm(F, x, training, activation, residual, param_dtype)
        _batch_norm(F, torch.empty(2, 16, 70, 70, dtype=dtype), True, None, False, param_dtype, affine=False,
                    running=False)
        _merge(torch.empty(2, 3, 16, dtype=param_dtype), 16)  # SyncBatchNorm's rank merge


def _grad(y, leaves):
    torch.autograd.grad(y, leaves, torch.empty_like(y))


def sweep_gemm(F, dtypes, every_config=True, wide=False):
    """every_config: every tile config of the plain forward GEMM and the partial-softmax head (fp32 and fp16;
    bf16 uses fp16's registers and shared memory, fp64 serves gradcheck only), else the tuner's fallback.
    wide: the pass with int64 offsets: every config of the plain forward GEMM in the dtypes given (the
    head's configs are shapes of those), the fallback elsewhere."""
    global ALL_CONFIGS
    for dtype in dtypes:
        x = torch.empty(64, 40, dtype=dtype, requires_grad=True)
        for features, activation in ((48, None), (48, "relu"), (48, "gelu"), (45, "softmax"), (1030, "log_softmax")):
            weight = torch.empty(features, 40, dtype=dtype, requires_grad=True)
            bias = torch.empty(features, dtype=dtype, requires_grad=True)
            ALL_CONFIGS = every_config and (activation is None if wide else activation in (None, "log_softmax") and
                                            dtype in (torch.float32, torch.float16))
            y = F.linear(x, weight, bias, activation=activation)
            ALL_CONFIGS = False
            _grad(y, [x, weight, bias])
        for layout in (torch.contiguous_format, torch.channels_last):
            image = torch.empty(2, 8, 6, 6, dtype=dtype).contiguous(memory_format=layout).requires_grad_()
            weight = torch.empty(6, 4, 1, 1, dtype=dtype, requires_grad=True)
            bias = torch.empty(6, dtype=dtype, requires_grad=True)
            _grad(F.conv2d(image, weight, bias, 2, groups=2, activation="relu"), [image, weight, bias])
            weight = torch.empty(8, 3, 2, 2, dtype=dtype, requires_grad=True)
            bias = torch.empty(3, dtype=dtype, requires_grad=True)
            _grad(F.conv_transpose2d(image, weight, bias, 2, activation="gelu"), [image, weight, bias])
        _split_k_weight_gradient(F, dtype)
        _split_k_head(F, dtype)


def _split_k_head(F, dtype):
    """A softmax head whose GEMM splits K (forced on a small shape): partial logits, softmax_split_k_kernel."""
    import tritonlayers.linear as linear_host
    depth = linear_host.HEAD_SPLIT_DEPTH
    linear_host.HEAD_SPLIT_DEPTH = 8
    try:
        x = torch.empty(64, 40, dtype=dtype, requires_grad=True)
        for head, bias in (("softmax", torch.empty(45, dtype=dtype)), ("log_softmax", None)):
            _grad(F.linear(x, torch.empty(45, 40, dtype=dtype, requires_grad=True), bias, activation=head), [x])
    finally:
        linear_host.HEAD_SPLIT_DEPTH = depth


def _split_k_weight_gradient(F, dtype):
    """A weight gradient split along K (forced on a small shape), whose partials sum_partials_kernel adds."""
    import tritonlayers._gemm as gemm_host
    from tritonlayers._cache import BoundedCache
    depth, plans = gemm_host.SPLIT_K_MIN_DEPTH, gemm_host._PLANS
    gemm_host.SPLIT_K_MIN_DEPTH, gemm_host._PLANS = 4, BoundedCache()
    try:
        x = torch.empty(64, 40, dtype=dtype, requires_grad=True)
        weight = torch.empty(8, 40, dtype=dtype, requires_grad=True)
        bias = torch.empty(8, dtype=dtype, requires_grad=True)
        _grad(F.linear(x, weight, bias, activation="relu"), [x, weight, bias])
    finally:
        gemm_host.SPLIT_K_MIN_DEPTH, gemm_host._PLANS = depth, plans


def sweep(F, dtypes):
    for dtype in dtypes:
        dense = torch.empty(64, 33, dtype=dtype)
        strided = torch.empty(64, 66, dtype=dtype)[:, ::2]
        # the activation math is one code path per dtype family: every activation in fp32, and in the
        # other dtypes those with dtype-specific constants or the heaviest math
        activations = ACTIVATIONS if dtype == torch.float32 else [(n, k) for n, k in ACTIVATIONS
                                                                 if n in ("gelu", "mish", "softplus")]
        for name, kwargs in activations:
            for x in (dense, strided):
                _forward_backward(lambda t: getattr(F, name)(t, **kwargs), x)
        for name in INPLACE:  # in place: backward from the saved output
            _forward_backward(lambda t: getattr(F, name)(t * 1, inplace=True), dense)
        for function in (F.softmax, F.log_softmax):
            for shape, dim in [((64, 33), 1), ((64, 33), 0), ((4, 40009), 1), ((2, 600, 5, 7), 1)]:
                _forward_backward(lambda t: function(t, dim), torch.empty(shape, dtype=dtype))
            _forward_backward(lambda t: function(t, 1, dtype=torch.float32), dense)
            fp64_pair = {torch.bfloat16: torch.float64, torch.float64: torch.bfloat16}.get(dtype)
            if fp64_pair is not None:  # fp64 <-> bf16 casts (through fp32)
                _forward_backward(lambda t: function(t, 1, dtype=fp64_pair), dense)
        if dtype not in (torch.float32, torch.bfloat16):  # dropout's kernels: one fp32 and one 16-bit family
            continue
        nchw = torch.empty(4, 16, 6, 6, dtype=dtype)
        for x in (dense, strided, nchw.contiguous(memory_format=torch.channels_last)):
            _forward_backward(lambda t: F.dropout(t, 0.3), x)
            _forward_backward(lambda t: F.dropout(t * 1, 0.3, inplace=True), x)
        for x in (nchw, nchw.contiguous(memory_format=torch.channels_last)):
            _forward_backward(lambda t: F.dropout2d(t, 0.3), x)
        _seed_on_device(dense)
        bias, channel_bias = torch.empty(33, dtype=dtype), torch.empty(16, 1, 1, dtype=dtype)
        for activation in (None, "relu", "gelu"):
            _fused(F, dense, bias, activation)
            _fused(F, nchw, channel_bias, activation)
        _fused(F, dense, None, None, residual=False, training=False)


def _seed_on_device(x):
    """Dropout's kernels reading their seed on the device, as under CUDA graph capture."""
    from tritonlayers.dropout import DropoutPlan, dropout_backward, dropout_forward
    plan, seed = DropoutPlan(tuple(x.shape), x.dim() - 1), torch.zeros(2, dtype=torch.int64)
    dropout_forward(x, 0.3, plan, seed, 0)
    dropout_backward(torch.empty_like(x), 0.3, plan, seed, 0)


def sweep_pooling(F, dtypes, indices_only=()):
    """Every pooling mode in both layouts, with and without returned indices; max pooling's saved positions in
    each integer width; the global path with channels or positions contiguous; 1-d and 3-d pooling's views.
    Dtypes in indices_only compile the returned-indices variants alone: an fp64 one once failed to compile
    where fp32's did (the other fp64 variants compile as fp32's do)."""
    for dtype in dtypes:
        every_mode = dtype not in indices_only
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.empty(2, 16, 13, 11, dtype=dtype).contiguous(memory_format=layout).requires_grad_()
            for return_indices in (False, True) if every_mode else (True,):
                _grad(F.max_pool2d(x, 3, 2, 1, return_indices=return_indices)[0] if return_indices
                      else F.max_pool2d(x, 3, 2, 1), [x])
                _grad(F.adaptive_max_pool2d(x, (5, 4), return_indices)[0] if return_indices
                      else F.adaptive_max_pool2d(x, (5, 4)), [x])
                _grad(F.adaptive_max_pool2d(x, 1, return_indices)[0] if return_indices
                      else F.adaptive_max_pool2d(x, 1), [x])
            if not every_mode:
                continue
            _grad(F.max_pool2d(x, 2, dilation=2, ceil_mode=True), [x])
            _grad(F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [x])
            _grad(F.avg_pool2d(x, 2, divisor_override=3), [x])
            _grad(F.adaptive_avg_pool2d(x, (7, 3)), [x])
            _grad(F.adaptive_avg_pool2d(x, 1), [x])
        if not every_mode:
            continue
        wide_window = torch.empty(1, 2, 13, 13, dtype=dtype, requires_grad=True)
        _grad(F.max_pool2d(wide_window, 12), [wide_window])  # 144 taps: int16 positions
        signal = torch.empty(2, 16, 37, dtype=dtype, requires_grad=True)  # 1-d: one-row windows
        _grad(F.max_pool1d(signal, 4, 3, 1, return_indices=True)[0], [signal])
        _grad(F.adaptive_avg_pool1d(signal, 5), [signal])
        for layout in (torch.contiguous_format, torch.channels_last_3d):  # 3-d: a (D, H'W') pass after (H, W)
            clip = torch.empty(2, 16, 5, 6, 7, dtype=dtype).contiguous(memory_format=layout).requires_grad_()
            _grad(F.max_pool3d(clip, 3, 2, 1), [clip])  # (indices: a gather of launch results, none here)
            _grad(F.avg_pool3d(clip, 2, divisor_override=3), [clip])


FAMILIES = ("elementwise", "batch_norm", "gemm", "pooling")


def main(families):
    driver.set_active(CompileOnlyDriver())
    JITFunction.run = _compile_only
    Autotuner.run = _compile_configs
    import tritonlayers._launch as launch
    import tritonlayers._layout as layout
    import tritonlayers.functional as F
    launch.KERNELS_INTERPRETED = True  # let CPU tensors through: nothing is launched
    import tritonlayers.kernels.gemm as gemm_kernels
    gemm_kernels.PRUNE_BY_SHAPE = False  # every config, though the sweep's shapes are small
    threshold = layout.WIDE_INDEX_THRESHOLD
    for wide in (False, True):
        layout.WIDE_INDEX_THRESHOLD = 0 if wide else threshold  # the int64 index variants too
        if "elementwise" in families:
            sweep(F, [torch.float32, torch.bfloat16] if wide else DTYPES)
        if "batch_norm" in families:
            sweep_batch_norm(F, [torch.bfloat16] if wide else DTYPES)
    if "pooling" in families:
        sweep_pooling(F, [torch.float32, torch.bfloat16, torch.float64], indices_only=[torch.float64])  # fp16: as bf16
        layout.WIDE_INDEX_THRESHOLD = 0  # int64 offsets: the window and global kernels' smaller tiles
        sweep_pooling(F, [torch.bfloat16])
        layout.WIDE_INDEX_THRESHOLD = threshold
    if "gemm" in families:
        sweep_gemm(F, DTYPES)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        sweep_gemm(F, [torch.float32], every_config=False)  # TF32 tl.dot: its lowering, in every layer
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        layout.WIDE_INDEX_THRESHOLD = 0  # int64 offsets: every tile config in 16 bits, where registers are tightest
        sweep_gemm(F, [torch.float16], wide=True)
        layout.WIDE_INDEX_THRESHOLD = threshold
    print(f"compiled {len(compiled)} launches for sm_90: " + ", ".join(sorted(set(compiled))))
    for variant, usage in spilled.items():
        print(f"spills: {variant}: {usage}")
    for variant, shared in over_shared.items():
        print(f"shared memory over {MAX_SHARED_BYTES} B: {variant}: {shared}")
    return 1 if spilled or over_shared else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or FAMILIES))
