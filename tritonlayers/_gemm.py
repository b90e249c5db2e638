"""Host side of the GEMM core: describe each axis (batch, M, N, K) as tensor dims with a stride per operand,
merge the dims that line up, and launch gemm_kernel with autotuned tiles (or the softmax epilogue's)."""
import functools
import math
from typing import NamedTuple

import torch

from . import _layout
from ._cache import BoundedCache
from ._fast_launch import run_kernel
from ._launch import launch_device, sm_count
from ._split_k import sum_partials
from .activation import ActivationSpec
from .kernels.activation import IDENTITY
from .kernels.gemm import (INTERPRETED, INTERPRETER_CONFIG, PARTIAL_SOFTMAX, STATS_COLUMNS, gemm_autotuned, gemm_kernel,
                           softmax_epilogue_config)
from .kernels.host_math import alignment, cdiv

OPERANDS = ("a", "b", "c", "bias")  # axis() spells them out: its key is built on every GEMM call
SOFTMAX_IDS = {None: 0, "softmax": 1, "log_softmax": 2, "partial": PARTIAL_SOFTMAX.value}


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
    return _merged_axis(tuple([(size, (strides.get("a", 0), strides.get("b", 0), strides.get("c", 0),
                                        strides.get("bias", 0))) for size, strides in levels]))


@functools.lru_cache(maxsize=4096)
def _merged_axis(levels):
    """axis() on hashable levels ((size, strides in OPERANDS order), ...): cached, since every call of a layer
    builds the same axes (the merging was a large share of a GEMM call's host time). The result's strides
    are tuples: it is shared."""
    kept = []
    for size, strides in levels:
        if size == 1:
            continue
        if kept and all(outer == inner * size for outer, inner in zip(kept[-1][1], strides)):
            kept[-1] = (kept[-1][0] * size, strides)
        else:
            kept.append((size, strides))
    if len(kept) > 3:
        raise ValueError(f"a GEMM axis spans {len(kept)} unmergeable dims; at most 3 are supported")
    total = math.prod(size for size, _ in kept)
    padded = [(1, (0,) * len(OPERANDS))] * (3 - len(kept)) + kept
    strides = {op: tuple(level_strides[i] for _, level_strides in padded) for i, op in enumerate(OPERANDS)}
    return Axis(total, max(1, len(kept)), padded[1][0], padded[2][0], strides)


def accumulator_dtype(dtype):
    """The dtype GEMMs accumulate (and store split partials) in: fp64 for fp64, fp32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def input_precision(dtype, allow_tf32):
    """tl.dot's precision: fp32 follows torch's TF32 switch for the op, everything else computes exactly."""
    return "tf32" if dtype == torch.float32 and allow_tf32 else "ieee"


def gemm(a, b, c, *, batch, m, n, k, bias=None, bias_along=None, spec=ActivationSpec("identity"), softmax=None,
         softmax_stats=None, pre=None, a_saved=None, prologue=None, bias_grad=None, allow_tf32=False, op_name="gemm"):
    """c = epilogue(prologue(a) @ b) over the given axes (a, b, c are the base tensors the strides walk from).

    Forward: bias_along "n" or "m" (bias is 1-D, offset per batch by the batch axis' "bias" strides);
    softmax None, "softmax" or "log_softmax" over N (needs N to fit one tile: softmax_epilogue_config); or
    softmax_stats, a (2, batch * M, cdiv(N, STATS_COLUMNS)) tensor in the accumulator's dtype: c gets the
    logits and it each column tile's row max and sum of exp (softmax.normalize_partial_softmax); pre
    a tensor laid out like c that also receives the pre-activation; spec the activation.
    Backward: prologue "input" / "output" turns a (the gradient after spec's activation) into the gradient
    before it from a_saved (the saved pre-activation / output, with a's strides); bias_grad a tensor that
    receives a's row sums, offset per batch by the "bias" strides.
    """
    if m.total == 0 or n.total == 0 or batch.total == 0:
        return
    if bias is not None and not bias.is_contiguous():
        bias = bias.contiguous()  # the axes walk the bias with unit strides: a strided view as a dense copy
    if softmax_stats is not None:
        softmax = "partial"
    # Axes come from axis()'s cache, so equal axes are the same objects: a plan holds them, so their ids
    # stay theirs while it lives.
    key = (id(batch), id(m), id(n), id(k), a.dtype, a.device, bias is None, bias_along, spec, softmax, pre is None,
           a_saved is None, prologue, bias_grad is None, allow_tf32, _layout.WIDE_INDEX_THRESHOLD)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS.put(key, _Plan(a, batch, m, n, k, bias, bias_along, spec, softmax, pre, prologue, bias_grad,
                                     allow_tf32))
    operands = (b, a) if plan.swapped else (a, b)
    target, bias_target = c, bias_grad
    if plan.splits > 1:
        target = torch.empty(plan.partials_shape, dtype=plan.partials_dtype, device=a.device)
        if bias_grad is not None:
            bias_target = torch.empty(plan.partials_shape[:3], dtype=plan.partials_dtype, device=a.device)
    bias_like = bias if bias is not None else bias_target
    with launch_device(op_name, a, b, c, bias, a_saved, bias_grad):
        run_kernel(plan.kernel, plan.grid, *operands, target, bias_like if bias_like is not None else target,
                   pre if pre is not None else target, a_saved if a_saved is not None else operands[0],
                   softmax_stats if softmax_stats is not None else target, *plan.scalars, **plan.constexprs)
        if plan.splits > 1:
            _sum_partials(target, bias_target, c, bias_grad, *plan.unsplit)


_PLANS = BoundedCache()  # tests that change split-K or the interpreter's tiles start from an empty one


class _Plan:
    """What a gemm() call launches, given its axes and flags: operand order, split-K, the kernel's scalar
    arguments, constexprs and grid. Every training step repeats its GEMMs, and working these out cost about
    as much host time as the launch."""

    def __init__(self, a, batch, m, n, k, bias, bias_along, spec, softmax, pre, prologue, bias_grad, allow_tf32):
        self.axes = (batch, m, n, k)  # keeps the key's ids taken
        self.swapped = prologue is None and bias_grad is None and softmax is None and _columns_first(m, n)
        if self.swapped:
            # C^T = B^T A^T: the same product with C's contiguous dim as N, so tiles store whole rows (a
            # channels_last convolution's output is contiguous along its channels, which were M)
            m, n = _swap_operands(n), _swap_operands(m)
            batch, k = _swap_operands(batch), _swap_operands(k)
            bias_along = {"m": "n", "n": "m", None: None}[bias_along]
        self.splits = 1
        if bias is None and pre is None and softmax is None and (spec.kernel_id == IDENTITY.value or
                                                                   prologue is not None):
            self.splits = split_k_factor(batch, m, n, k, a.device)
        if self.splits > 1:
            self.unsplit = (batch, m, n)
            batch, m, n, k = split_k_axes(self.splits, batch, m, n, k)
            self.partials_shape = (self.splits, batch.total // self.splits, m.total, n.total)
            self.partials_dtype = accumulator_dtype(a.dtype)
        self.scalars = (m.total, n.total, k.total, batch.size1, batch.size2, m.size1, m.size2, n.size1, n.size2,
                        k.size1, k.size2, *batch.strides["a"], *m.strides["a"], *k.strides["a"],
                        *batch.strides["b"], *k.strides["b"], *n.strides["b"],
                        *batch.strides["c"], *m.strides["c"], *n.strides["c"],
                        *batch.strides["bias"], spec.param_a, spec.param_b)
        self.constexprs = dict(M_LEVELS=m.levels, N_LEVELS=n.levels, K_LEVELS=k.levels,
                               BIAS={None: 0, "n": 1, "m": 2}[bias_along if bias is not None else None],
                               ACTIVATION=spec.kernel_id, SOFTMAX=SOFTMAX_IDS[softmax], STORE_PRE=pre is not None,
                               PROLOGUE={None: 0, "input": 1, "output": 2}[prologue],
                               BIAS_GRAD=bias_grad is not None, INPUT_PRECISION=input_precision(a.dtype, allow_tf32))
        for name, axis_ in (("M", m), ("N", n), ("K", k)):
            if _divides_slowly(axis_):  # (a two-level axis never reads size1: 1, not a variant per batch size)
                self.constexprs.update({f"{name}_SIZE1": axis_.size1 if axis_.levels == 3 else 1,
                                        f"{name}_SIZE2": axis_.size2})
        self.constexprs["ALIGN"] = alignment((m.total, n.total, k.total), (
            *m.strides["a"], *m.strides["c"], *n.strides["b"], *n.strides["c"], *k.strides["a"], *k.strides["b"]))
        self.constexprs["WIDE_INDEX"] = _needs_wide_offsets(batch, m, n, k)
        grid = _grid(m.total, n.total, batch.total, a.device)
        self.kernel, self.grid = gemm_autotuned, grid
        if softmax is not None and softmax != "partial":
            block_m, block_n, block_k, num_warps, num_stages = softmax_epilogue_config(n.total)
            self.kernel, self.grid = gemm_kernel, grid({"BLOCK_M": block_m, "BLOCK_N": block_n})
            self.constexprs.update(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=4,
                                   num_warps=num_warps, num_stages=num_stages)
        elif INTERPRETED:
            config = INTERPRETER_CONFIG if softmax is None else {**INTERPRETER_CONFIG, "BLOCK_N": STATS_COLUMNS}
            self.kernel, self.grid = gemm_kernel, grid(config)
            self.constexprs.update(config)


def _needs_wide_offsets(batch, m, n, k):
    """Whether some operand's element offsets (from its base pointer, over every axis it walks) may not fit
    int32: A's over batch, M, K (the prologue's saved tensor shares them), B's over batch, K, N, C's (and the
    pre-activation's, split partials') over batch, M, N, the bias's over its batch strides plus M or N."""
    extents = {op: sum(_extent(axis_, op) for axis_ in (batch, m, n, k)) for op in OPERANDS}
    extents["bias"] += max(m.total, n.total)
    return max(extents.values()) >= _layout.WIDE_INDEX_THRESHOLD


def _extent(axis_, op):
    """The largest offset operand `op` reaches along an axis (its levels' (size - 1) * stride summed; none
    along an empty one: K of a layer without inputs)."""
    if axis_.total == 0:
        return 0
    return sum((size - 1) * abs(stride) for size, stride in zip(_level_sizes(axis_), axis_.strides[op]))


def _divides_slowly(axis_):
    """Whether the kernel should get the axis' inner sizes as constants: a level size that is not a multiple
    of 16 (Triton's specialization of ints) leaves every element's offset to a runtime division. Others stay
    runtime ints, so a new shape compiles nothing new."""
    return axis_.levels >= 2 and axis_.size2 % 16 != 0 or axis_.levels == 3 and axis_.size1 % 16 != 0


def _columns_first(m, n):
    """True when C is contiguous along M but not along N."""
    return m.strides["c"][2] == 1 and n.strides["c"][2] != 1 and m.total > 1


def _swap_operands(axis_):
    """The axis with A's and B's strides exchanged."""
    strides = dict(axis_.strides)
    strides["a"], strides["b"] = axis_.strides["b"], axis_.strides["a"]
    return axis_._replace(strides=strides)


# Split-K: a GEMM whose output tiles cannot fill the GPU (a weight gradient reduces over every pixel into a
# small C) splits its K axis into chunks run as extra batches, each writing fp32 partials that are summed
# afterwards: deterministic, unlike atomics.
SPLIT_K_MIN_DEPTH = 1024  # K per chunk: shorter chunks would move more partials than they save
SPLIT_K_TILE = 128  # the tile edge the program count is estimated with


def split_k_factor(batch, m, n, k, device, min_depth=None):
    """How many chunks to split K into (1: none): enough programs for about two per SM, chunks at least
    min_depth (default SPLIT_K_MIN_DEPTH) deep and dividing K's outermost dim (so each chunk is the same
    strided walk)."""
    programs = cdiv(m.total, SPLIT_K_TILE) * cdiv(n.total, SPLIT_K_TILE) * batch.total
    if batch.levels == 3 or k.levels == 0 or programs == 0:
        return 1
    most = min(cdiv(2 * sm_count(device), programs), k.total // (min_depth or SPLIT_K_MIN_DEPTH))
    outer = _outer_size(k)
    return max((splits for splits in range(1, most + 1) if outer % splits == 0), default=1)


def _outer_size(k):
    return k.total // (k.size1 * k.size2) if k.levels == 3 else k.size1 if k.levels == 2 else k.size2


def split_k_axes(splits, batch, m, n, k):
    """(batch, m, n, k) for K cut into `splits` chunks that run as an outermost batch level; C and the bias
    gradient become dense partials (splits, batch, M, N) and (splits, batch, M) in the accumulator's dtype
    (fp32; fp64 for fp64), which gemm() allocates per call."""
    outer = 3 - k.levels  # the padded index of K's outermost dim
    chunk = _outer_size(k) // splits
    sizes = [k.size1, k.size2]
    if outer > 0:
        sizes[outer - 1] //= splits
    k = Axis(k.total // splits, k.levels, *sizes, k.strides)
    rows, columns = m.total, n.total
    strides = {op: [chunk * k.strides[op][outer], *batch.strides[op][1:]] for op in ("a", "b")}
    strides["c"] = [batch.total * rows * columns, batch.size2 * rows * columns, rows * columns]
    strides["bias"] = [batch.total * rows, batch.size2 * rows, rows]
    batch = Axis(batch.total * splits, batch.levels + 1, batch.size1, batch.size2, strides)
    m = m._replace(strides={**m.strides, "c": [m.size1 * m.size2 * columns, m.size2 * columns, columns]})
    n = n._replace(strides={**n.strides, "c": [n.size1 * n.size2, n.size2, 1]})
    return batch, m, n, k


def _level_sizes(axis_):
    return [axis_.total // (axis_.size1 * axis_.size2), axis_.size1, axis_.size2]


def _sum_partials(partials, bias_partials, c, bias_grad, batch, m, n):
    """Sums split-K partials into C (and the bias gradient), walking them with their axes' strides: one
    kernel each when every axis is one tensor dim (weight gradients), else torch's sum and a copy."""
    if batch.levels == m.levels == n.levels == 1:
        sum_partials(partials, c, batch.total * m.total, n.total, m.total, batch.strides["c"][2], m.strides["c"][2],
                    n.strides["c"][2])
        if bias_grad is not None:
            sum_partials(bias_partials, bias_grad, batch.total * m.total, 1, m.total, batch.strides["bias"][2], 1, 0)
        return
    sizes = _level_sizes(batch) + _level_sizes(m) + _level_sizes(n)
    view = c.as_strided(sizes, [*batch.strides["c"], *m.strides["c"], *n.strides["c"]])
    view.copy_(partials.sum(0).view(sizes))
    if bias_grad is not None:
        sizes = _level_sizes(batch) + [m.total]
        view = bias_grad.as_strided(sizes, [*batch.strides["bias"], 1])
        view.copy_(bias_partials.sum(0).view(sizes))


def _grid(rows, columns, batches, device):
    """The launch grid for a tile config: a program per tile and batch, or (PERSISTENT) about one per SM
    spread over the batches, each looping over its share of the tiles."""
    def grid(meta):
        tiles = cdiv(rows, meta["BLOCK_M"]) * cdiv(columns, meta["BLOCK_N"])
        if meta.get("PERSISTENT"):
            tiles = min(tiles, cdiv(sm_count(device), batches))
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
