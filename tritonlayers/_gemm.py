"""Host side of the GEMM core: describe each axis (batch, M, N, K) as tensor dims with a stride per operand,
merge the dims that line up, and launch gemm_kernel with autotuned tiles (or the softmax epilogue's)."""
import math
from typing import NamedTuple

import torch
import triton

from ._launch import launch_device, sm_count
from .activation import ActivationSpec
from .kernels.gemm import INTERPRETED, INTERPRETER_CONFIG, gemm_autotuned, gemm_kernel, softmax_epilogue_config

OPERANDS = ("a", "b", "c", "bias")
SOFTMAX_IDS = {None: 0, "softmax": 1, "log_softmax": 2}


class Level(NamedTuple):
    """One tensor dim of a GEMM axis: its size and the stride each operand walks it with (missing: 0)."""
    size: int
    strides: dict


class Axis(NamedTuple):
    """An axis merged to at most three levels for the kernel: total size, the inner two sizes, and per
    operand the three strides (outer first)."""
    total: int
    levels: int
    size1: int
    size2: int
    strides: dict


def axis(*levels):
    """Axis from Levels, outermost first: size-1 dims dropped, neighbours merged where every operand's outer
    stride equals its inner stride times the inner size."""
    kept = []
    for level in levels:
        if level.size == 1:
            continue
        if kept and all(kept[-1].strides.get(op, 0) == level.strides.get(op, 0) * level.size for op in OPERANDS):
            kept[-1] = Level(kept[-1].size * level.size, level.strides)
        else:
            kept.append(level)
    if len(kept) > 3:
        raise ValueError(f"a GEMM axis spans {len(kept)} unmergeable dims; at most 3 are supported")
    total = math.prod(level.size for level in kept)
    padded = [Level(1, {})] * (3 - len(kept)) + kept
    strides = {op: [level.strides.get(op, 0) for level in padded] for op in OPERANDS}
    return Axis(total, max(1, len(kept)), padded[1].size, padded[2].size, strides)


def input_precision(dtype, allow_tf32):
    """tl.dot's precision: fp32 follows torch's TF32 switch for the op, everything else computes exactly."""
    return "tf32" if dtype == torch.float32 and allow_tf32 else "ieee"


def gemm(a, b, c, *, batch, m, n, k, bias=None, bias_along=None, spec=ActivationSpec("identity"), softmax=None,
         pre=None, a_saved=None, prologue=None, bias_grad=None, allow_tf32=False, op_name="gemm"):
    """c = epilogue(prologue(a) @ b) over the given axes (a, b, c are the base tensors the strides walk from).

    Forward: bias_along "n" or "m" (bias is 1-D, offset per batch by the batch axis' "bias" strides);
    softmax None, "softmax" or "log_softmax" over N (needs N to fit one tile: softmax_epilogue_config); pre
    a tensor laid out like c that also receives the pre-activation; spec the activation.
    Backward: prologue "input" / "output" turns a (the gradient after spec's activation) into the gradient
    before it from a_saved (the saved pre-activation / output, with a's strides); bias_grad a tensor that
    receives a's row sums, offset per batch by the "bias" strides.
    """
    if m.total == 0 or n.total == 0 or batch.total == 0:
        return
    bias_like = bias if bias is not None else bias_grad
    args = [a, b, c, bias_like if bias_like is not None else c, pre if pre is not None else c,
            a_saved if a_saved is not None else a, m.total, n.total, k.total,
            batch.size1, batch.size2, m.size1, m.size2, n.size1, n.size2, k.size1, k.size2,
            *batch.strides["a"], *m.strides["a"], *k.strides["a"],
            *batch.strides["b"], *k.strides["b"], *n.strides["b"],
            *batch.strides["c"], *m.strides["c"], *n.strides["c"],
            *batch.strides["bias"], spec.param_a, spec.param_b]
    constexprs = dict(M_LEVELS=m.levels, N_LEVELS=n.levels, K_LEVELS=k.levels,
                      BIAS={None: 0, "n": 1, "m": 2}[bias_along if bias is not None else None],
                      ACTIVATION=spec.kernel_id, SOFTMAX=SOFTMAX_IDS[softmax], STORE_PRE=pre is not None,
                      PROLOGUE={None: 0, "input": 1, "output": 2}[prologue], BIAS_GRAD=bias_grad is not None,
                      INPUT_PRECISION=input_precision(a.dtype, allow_tf32))
    grid = _grid(m.total, n.total, batch.total, a.device)
    with launch_device(op_name, a, b, c, bias, a_saved, bias_grad):
        if softmax is not None:
            block_m, block_n, block_k, num_warps, num_stages = softmax_epilogue_config(n.total)
            gemm_kernel[grid({"BLOCK_M": block_m, "BLOCK_N": block_n})](
                *args, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=4, num_warps=num_warps,
                num_stages=num_stages, **constexprs)
        elif INTERPRETED:
            gemm_kernel[grid(INTERPRETER_CONFIG)](*args, **INTERPRETER_CONFIG, **constexprs)
        else:
            gemm_autotuned[grid](*args, **constexprs)


def _grid(rows, columns, batches, device):
    """The launch grid for a tile config: a program per tile and batch, or (PERSISTENT) about one per SM
    spread over the batches, each looping over its share of the tiles."""
    def grid(meta):
        tiles = triton.cdiv(rows, meta["BLOCK_M"]) * triton.cdiv(columns, meta["BLOCK_N"])
        if meta.get("PERSISTENT"):
            tiles = min(tiles, triton.cdiv(sm_count(device), batches))
        return (tiles, batches)
    return grid


NO_BATCH = axis()


def check_same_dtype(op_name, **tensors):
    """torch refuses mixed input / weight / bias dtypes; so do we, naming them."""
    present = {name: t for name, t in tensors.items() if t is not None}
    dtypes = {t.dtype for t in present.values()}
    if len(dtypes) > 1:
        listed = ", ".join(f"{name}: {t.dtype}" for name, t in present.items())
        raise RuntimeError(f"{op_name}: expected input, weight and bias to have the same dtype, but got {listed}")
