"""One strided GEMM core for 1x1 convolutions, kernel == stride transposed convolutions and linear layers:
C[b] = epilogue(A[b] @ B[b]) with fp32 accumulation (fp64 for fp64), fused bias, activation or row softmax.

Every axis (batch, M, N, K) may span up to three tensor dims, each with its own stride per operand: an
index along the axis splits into (outer, middle, inner) by the sizes of the inner two. That is how one
kernel walks NCHW pixels of a strided 1x1 convolution (n, h, w), the (group, tap) batches of a transposed
convolution, or a weight-gradient reduction over every pixel, without layout copies. The host merges dims
that line up, so common cases are LEVELS == 1 and take the plain pointer-increment path.
"""
import os

import torch
import triton
import triton.language as tl

from .activation import (IDENTITY, activation_backward_from_input, activation_backward_from_output,
                         apply_activation)
from .precision import to_compute_dtype
from .softmax import online_max_sum
from .tiles import with_divisor
from .host_math import cdiv, next_power_of_2


@triton.jit
def axis_offsets(index, size1, size2, stride0, stride1, stride2, LEVELS: tl.constexpr, ALIGN: tl.constexpr = 0):
    """Memory offsets of indices along an axis made of LEVELS tensor dims (inner ones last). ALIGN: a power
    of two the host found dividing every stride that is not 1, declared on offsets along an axis without a
    unit stride (Triton specializes a stride of 1 into a constant), so tiles contiguous along the other
    axis keep 16-byte accesses."""
    if LEVELS == 1:
        offsets = index * stride2
    elif LEVELS == 2:
        offsets = (index // size2) * stride1 + (index % size2) * stride2
    else:
        inner = index % size2
        rest = index // size2
        offsets = (rest // size1) * stride0 + (rest % size1) * stride1 + inner * stride2
    if ALIGN > 1 and not (isinstance(stride0, tl.constexpr) or isinstance(stride1, tl.constexpr) or
                          isinstance(stride2, tl.constexpr)):
        offsets = tl.multiple_of(offsets, ALIGN)
    return offsets


# SOFTMAX mode 3: the tile stores its logits and, per row, the max and the sum of exp(logit - max) over its
# columns (a row too long for one tile); softmax_normalize_kernel combines them and normalizes in place.
PARTIAL_SOFTMAX = tl.constexpr(3)
STATS_COLUMNS = 128  # BLOCK_N of the partial-softmax GEMM: one stats slot per column tile


@triton.jit
def _store_partial_softmax_stats(logits, stats_ptr, batch, rows, pid_n, row_mask, column_mask, M, N,
                                 BLOCK_N: tl.constexpr):
    """Row max and sum of exp(logit - max) of this tile's columns into slot pid_n of stats, a (2, batches * M,
    slots) tensor (maxima, then sums). The logits come rounded to the output dtype, as the normalization
    pass reads them, so each row sums to 1 as torch's softmax of the stored logits would."""
    logits = tl.where(column_mask[None, :], logits, float("-inf"))
    tile_max, tile_sum = online_max_sum(tl.full(rows.shape, float("-inf"), logits.dtype),
                                        tl.zeros(rows.shape, logits.dtype), logits, 1.0, 1)
    slots = tl.cdiv(N, BLOCK_N)
    offsets = (batch.to(tl.int64) * M + rows) * slots + pid_n
    tl.store(stats_ptr + offsets, tile_max.to(stats_ptr.dtype.element_ty), mask=row_mask)
    plane = tl.num_programs(1).to(tl.int64) * M * slots
    tl.store(stats_ptr + plane + offsets, tile_sum.to(stats_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _gemm_tile(
    pid, a_ptr, b_ptr, c_ptr, bias_ptr, pre_ptr, a_saved_ptr, stats_ptr, M, N, K,
    batch_size1, batch_size2, m_size1, m_size2, n_size1, n_size2, k_size1, k_size2,
    a_batch0, a_batch1, a_batch2, a_m0, a_m1, a_m2, a_k0, a_k1, a_k2,
    b_batch0, b_batch1, b_batch2, b_k0, b_k1, b_k2, b_n0, b_n1, b_n2,
    c_batch0, c_batch1, c_batch2, c_m0, c_m1, c_m2, c_n0, c_n1, c_n2,
    bias_batch0, bias_batch1, bias_batch2,
    param_a, param_b,
    M_LEVELS: tl.constexpr, N_LEVELS: tl.constexpr, K_LEVELS: tl.constexpr,
    BIAS: tl.constexpr, ACTIVATION: tl.constexpr, SOFTMAX: tl.constexpr, STORE_PRE: tl.constexpr,
    PROLOGUE: tl.constexpr, BIAS_GRAD: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr, M_SIZE1: tl.constexpr, M_SIZE2: tl.constexpr, N_SIZE1: tl.constexpr,
    N_SIZE2: tl.constexpr, K_SIZE1: tl.constexpr, K_SIZE2: tl.constexpr, ALIGN: tl.constexpr,
    WIDE_INDEX: tl.constexpr,
):
    """One (BLOCK_M, BLOCK_N) tile of C, tile `pid` in grouped order. WIDE_INDEX: offsets in int64 (an
    operand whose offsets may pass 2**31 elements; int32 products of index and stride would wrap)."""
    # Sizes and strides that are multiples of 2, 4 or 8 but not all of 16 (a 1000-class head) get that
    # divisor from the host (ALIGN): Triton only knows multiples of 16, and without it a tile's rows start
    # at unknown alignment and the masks along its contiguous dim split every load and store into single
    # elements (sm_90: b16 loads, no cp.async, in both backward GEMMs of such a head). (M // 8) * 8 is M
    # with its divisor visible; axis_offsets declares the offsets'.
    M, N, K = with_divisor(M, ALIGN), with_divisor(N, ALIGN), with_divisor(K, ALIGN)
    # A multi-level axis whose inner sizes are not multiples of 16 (NCHW maps of 7x7 or 14x14 pixels) gets
    # them as constants: divided by a runtime int, every element of a tile's offsets paid a long division
    # (138 per thread in a 128x256 epilogue, which spilled registers); by a constant it is a multiply.
    if M_SIZE2 != 0:
        m_size1, m_size2 = M_SIZE1, M_SIZE2
    if N_SIZE2 != 0:
        n_size1, n_size2 = N_SIZE1, N_SIZE2
    if K_SIZE2 != 0:
        k_size1, k_size2 = K_SIZE1, K_SIZE2
    # Grouped program order: GROUP_M row blocks share their B tiles while they sit in L2.
    blocks_m = tl.cdiv(M, BLOCK_M)
    blocks_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * blocks_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = tl.minimum(blocks_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    batch = tl.program_id(1)
    if WIDE_INDEX:
        batch = batch.to(tl.int64)
    batch_inner = batch % batch_size2
    batch_rest = batch // batch_size2
    batch_outer, batch_middle = batch_rest // batch_size1, batch_rest % batch_size1
    a_ptr += batch_outer * a_batch0 + batch_middle * a_batch1 + batch_inner * a_batch2
    b_ptr += batch_outer * b_batch0 + batch_middle * b_batch1 + batch_inner * b_batch2
    c_offset = batch_outer * c_batch0 + batch_middle * c_batch1 + batch_inner * c_batch2

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    columns = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    if WIDE_INDEX:
        rows, columns = rows.to(tl.int64), columns.to(tl.int64)
    row_mask = rows < M
    column_mask = columns < N
    a_rows = axis_offsets(rows, m_size1, m_size2, a_m0, a_m1, a_m2, M_LEVELS, ALIGN)
    b_columns = axis_offsets(columns, n_size1, n_size2, b_n0, b_n1, b_n2, N_LEVELS, ALIGN)
    if a_ptr.dtype.element_ty == tl.float64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    row_sums = tl.sum(acc, axis=1)
    a_saved_ptr += batch_outer * a_batch0 + batch_middle * a_batch1 + batch_inner * a_batch2
    for k_start in range(0, K, BLOCK_K):
        ks = k_start + tl.arange(0, BLOCK_K)
        if WIDE_INDEX:
            ks = ks.to(tl.int64)
        k_mask = ks < K
        a_k = axis_offsets(ks, k_size1, k_size2, a_k0, a_k1, a_k2, K_LEVELS, ALIGN)
        b_k = axis_offsets(ks, k_size1, k_size2, b_k0, b_k1, b_k2, K_LEVELS, ALIGN)
        a_offsets = a_rows[:, None] + a_k[None, :]
        a_mask = row_mask[:, None] & k_mask[None, :]
        a = tl.load(a_ptr + a_offsets, mask=a_mask, other=0)
        if PROLOGUE != 0:
            saved = to_compute_dtype(tl.load(a_saved_ptr + a_offsets, mask=a_mask, other=0))
            if PROLOGUE == 1:
                dz = activation_backward_from_input(to_compute_dtype(a), saved, ACTIVATION, param_a, param_b)
            else:
                dz = activation_backward_from_output(to_compute_dtype(a), saved, ACTIVATION, param_a, param_b)
            a = dz.to(a.dtype)
        if BIAS_GRAD:
            row_sums += tl.sum(a.to(acc.dtype), axis=1)
        b = tl.load(b_ptr + b_k[:, None] + b_columns[None, :], mask=k_mask[:, None] & column_mask[None, :], other=0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=acc.dtype)

    bias_ptr += batch_outer * bias_batch0 + batch_middle * bias_batch1 + batch_inner * bias_batch2
    if BIAS_GRAD:
        if pid_n == 0:
            tl.store(bias_ptr + rows, row_sums.to(bias_ptr.dtype.element_ty), mask=row_mask)
    z = acc
    if BIAS != 0:
        if BIAS == 1:
            z += tl.load(bias_ptr + columns, mask=column_mask, other=0).to(acc.dtype)[None, :]
        else:
            z += tl.load(bias_ptr + rows, mask=row_mask, other=0).to(acc.dtype)[:, None]
    c_offsets = c_offset + axis_offsets(rows, m_size1, m_size2, c_m0, c_m1, c_m2, M_LEVELS, ALIGN)[:, None] + \
        axis_offsets(columns, n_size1, n_size2, c_n0, c_n1, c_n2, N_LEVELS, ALIGN)[None, :]
    mask = row_mask[:, None] & column_mask[None, :]
    if STORE_PRE:
        tl.store(pre_ptr + c_offsets, z.to(pre_ptr.dtype.element_ty), mask=mask)
    if SOFTMAX == PARTIAL_SOFTMAX:
        _store_partial_softmax_stats(z.to(c_ptr.dtype.element_ty).to(acc.dtype), stats_ptr, batch, rows, pid_n,
                                     row_mask, column_mask, M, N, BLOCK_N)
        y = z
    elif SOFTMAX != 0:
        logits = tl.where(column_mask[None, :], z, float("-inf"))
        shifted = logits - tl.max(logits, axis=1)[:, None]
        exp_shifted = tl.exp(shifted)
        total = tl.sum(exp_shifted, axis=1)
        if SOFTMAX == 2:
            y = shifted - tl.log(total)[:, None]
        else:
            y = exp_shifted / total[:, None]
    elif ACTIVATION != IDENTITY and PROLOGUE == 0:
        y = apply_activation(z, ACTIVATION, param_a, param_b)
    else:
        y = z
    tl.store(c_ptr + c_offsets, y.to(c_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gemm_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr, pre_ptr, a_saved_ptr, stats_ptr, M, N, K,
    batch_size1, batch_size2, m_size1, m_size2, n_size1, n_size2, k_size1, k_size2,
    a_batch0, a_batch1, a_batch2, a_m0, a_m1, a_m2, a_k0, a_k1, a_k2,
    b_batch0, b_batch1, b_batch2, b_k0, b_k1, b_k2, b_n0, b_n1, b_n2,
    c_batch0, c_batch1, c_batch2, c_m0, c_m1, c_m2, c_n0, c_n1, c_n2,
    bias_batch0, bias_batch1, bias_batch2,
    param_a, param_b,
    M_LEVELS: tl.constexpr, N_LEVELS: tl.constexpr, K_LEVELS: tl.constexpr,
    BIAS: tl.constexpr, ACTIVATION: tl.constexpr, SOFTMAX: tl.constexpr, STORE_PRE: tl.constexpr,
    PROLOGUE: tl.constexpr, BIAS_GRAD: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    PERSISTENT: tl.constexpr = False, M_SIZE1: tl.constexpr = 0, M_SIZE2: tl.constexpr = 0, N_SIZE1: tl.constexpr = 0,
    N_SIZE2: tl.constexpr = 0, K_SIZE1: tl.constexpr = 0, K_SIZE2: tl.constexpr = 0, ALIGN: tl.constexpr = 0,
    WIDE_INDEX: tl.constexpr = False,
):
    """C[b] = epilogue(A[b] @ B[b]): one program per (BLOCK_M, BLOCK_N) tile and batch, or with PERSISTENT
    about one program per SM per batch looping over tiles (launch and tail costs shrink, and a tile's
    epilogue stores overlap the next tile's loads).

    Forward epilogue: BIAS 0 none, 1 along N (a linear layer's features), 2 along M (a convolution's
    output channels); ACTIVATION; SOFTMAX 0, or 1 / 2 for softmax / log_softmax over N (the host makes
    BLOCK_N cover N), or 3 (PARTIAL_SOFTMAX) for logits plus per-tile row statistics to stats_ptr (BLOCK_N
    = STATS_COLUMNS); STORE_PRE also stores the pre-activation (after bias) to pre_ptr, laid out like C.

    Backward prologue: with PROLOGUE 1 (saved pre-activation) or 2 (saved output), A holds the gradient
    after ACTIVATION and becomes the gradient before it as it is loaded, from a_saved (laid out like A), so
    that gradient is never written to memory. BIAS_GRAD: the programs of the first N block also store A's
    row sums (the bias gradient when A is dz transposed) to bias_ptr, per batch like a bias.

    M_SIZE1 / M_SIZE2 (and N's, K's): when nonzero, the axis' inner sizes as constants; ALIGN: when nonzero,
    a power of two dividing M, N, K and every stride but unit ones (see _gemm_tile); WIDE_INDEX: int64
    offsets."""
    if PERSISTENT:
        tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
        for pid in range(tl.program_id(0), tiles, tl.num_programs(0)):
            _gemm_tile(pid, a_ptr, b_ptr, c_ptr, bias_ptr, pre_ptr, a_saved_ptr, stats_ptr, M, N, K, batch_size1,
                batch_size2, m_size1, m_size2, n_size1, n_size2, k_size1, k_size2, a_batch0, a_batch1, a_batch2, a_m0,
                a_m1, a_m2, a_k0, a_k1, a_k2, b_batch0, b_batch1, b_batch2, b_k0, b_k1, b_k2, b_n0, b_n1, b_n2,
                c_batch0, c_batch1, c_batch2, c_m0, c_m1, c_m2, c_n0, c_n1, c_n2, bias_batch0, bias_batch1,
                bias_batch2, param_a, param_b, M_LEVELS, N_LEVELS, K_LEVELS, BIAS, ACTIVATION, SOFTMAX, STORE_PRE,
                PROLOGUE, BIAS_GRAD, INPUT_PRECISION, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, M_SIZE1, M_SIZE2, N_SIZE1,
                N_SIZE2, K_SIZE1, K_SIZE2, ALIGN, WIDE_INDEX)
    else:
        _gemm_tile(tl.program_id(0), a_ptr, b_ptr, c_ptr, bias_ptr, pre_ptr, a_saved_ptr, stats_ptr, M, N, K,
            batch_size1, batch_size2, m_size1, m_size2, n_size1, n_size2, k_size1, k_size2, a_batch0, a_batch1,
            a_batch2, a_m0, a_m1, a_m2, a_k0, a_k1, a_k2, b_batch0, b_batch1, b_batch2, b_k0, b_k1, b_k2, b_n0, b_n1,
            b_n2, c_batch0, c_batch1, c_batch2, c_m0, c_m1, c_m2, c_n0, c_n1, c_n2, bias_batch0, bias_batch1,
            bias_batch2, param_a, param_b, M_LEVELS, N_LEVELS, K_LEVELS, BIAS, ACTIVATION, SOFTMAX, STORE_PRE,
            PROLOGUE, BIAS_GRAD, INPUT_PRECISION, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, M_SIZE1, M_SIZE2, N_SIZE1,
            N_SIZE2, K_SIZE1, K_SIZE2, ALIGN, WIDE_INDEX)


INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"  # as triton.jit decided above

# Tile configs for sm_90 (Triton's matmul tutorial's, trimmed so first-call tuning stays within seconds).
CONFIGS = [
    # persistent variants of the big tiles, for large GEMMs whose tile count is not a multiple of the SMs (8
    # warps: the loop over tiles keeps more state live than a one-tile program)
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8, "PERSISTENT": True}, num_stages=3,
                  num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8, "PERSISTENT": True}, num_stages=3,
                  num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
]
# The partial-softmax GEMM's tiles: BLOCK_N is STATS_COLUMNS (a stats slot per column tile, whichever
# config the tuner keeps). Heads have few rows and a long K (the ImageNet head: 256 x 1000 over 2048): thin
# row tiles with long K steps give the SMs programs (128 x 128 left 16 programs: 18 us on an H200, cuBLAS 6).
# The last, small one serves the dtypes without tensor cores (fp64: gradcheck).
PARTIAL_SOFTMAX_CONFIGS = [c for c in CONFIGS if c.kwargs["BLOCK_N"] == STATS_COLUMNS] + [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": STATS_COLUMNS, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": STATS_COLUMNS, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": STATS_COLUMNS, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4)]
# Tall GEMMs with at most 64 columns (1x1 convolutions that reduce channels: ResNet's 256 -> 64) are bound
# by reading A: taller tiles re-read B from L2 less and keep more bytes in flight (32x64 tiles reached 59%
# of copy bandwidth on an H200). Tried only for such shapes, so other shapes' tuning time does not grow.
SKINNY_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 256, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
]
SKINNY_MIN_ROWS = 16384
# GEMMs whose K takes one or two 64-deep steps (a 1x1 convolution from 64 channels: ResNet's stage-1 expand,
# the input gradient of its reduce) are bound by writing C. Three or four stages of shared memory buffer
# steps such a K never takes and leave room for one or two programs an SM, so an SM's loads sit idle while
# its programs store; with two stages, two or three programs share it. Tried only for such shapes when C
# is large.
SHORT_K_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=2, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=2, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=2, num_warps=4),
]
SHORT_K_MAX_DEPTH = 128
SHORT_K_MIN_OUTPUTS = 2**22
# The interpreter runs one modest tile (its numpy matmul does not care, and autotuning would time Python).
INTERPRETER_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 4}



PRUNE_BY_SHAPE = True  # tests/sm90_compile_sweep.py turns it off to compile every config on small shapes


def prune_configs(configs, named_args, **kwargs):
    """Without tensor cores (exact fp32, fp64) a program's accumulator lives in plain registers: big tiles
    spill (checked on sm_90 by tests/sm90_compile_sweep.py), so those dtypes tune over the small ones
    (fp64, which serves gradcheck, over the smallest). Tiles much larger than the problem only compute
    padding, and a persistent grid only pays with more tiles than SMs: both are dropped, so first-call
    tuning compiles and times fewer configs. The last config (the smallest) always stays. The partial
    softmax tunes over its own configs; tall 16-bit GEMMs of at most 64 columns also over SKINNY_CONFIGS, large
    16-bit ones with a short K over SHORT_K_CONFIGS."""
    dtype = named_args["a_ptr"].dtype
    half = dtype in (torch.float16, torch.bfloat16)
    if kwargs.get("SOFTMAX") == PARTIAL_SOFTMAX.value:
        configs = PARTIAL_SOFTMAX_CONFIGS
    elif named_args["N"] <= 64 and named_args["M"] >= SKINNY_MIN_ROWS and half:
        configs = SKINNY_CONFIGS + configs
    elif named_args["K"] <= SHORT_K_MAX_DEPTH and named_args["M"] * named_args["N"] >= SHORT_K_MIN_OUTPUTS and half:
        configs = SHORT_K_CONFIGS + configs
    if dtype not in (torch.float16, torch.bfloat16) and kwargs.get("INPUT_PRECISION") != "tf32":
        largest = 32 * 64 if dtype == torch.float64 else 64 * 128
        configs = [c for c in configs if c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] <= largest and
                   (dtype != torch.float64 or c.kwargs["BLOCK_K"] <= 32)]  # fp64 64-deep stages: too much smem
    if not PRUNE_BY_SHAPE:
        return configs
    rows, columns = named_args["M"], named_args["N"]
    device = named_args["a_ptr"].device
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1

    def useful(config):
        block_m, block_n = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
        if block_m > max(64, next_power_of_2(rows)) or block_n > max(64, next_power_of_2(columns)):
            return False
        return not config.kwargs.get("PERSISTENT") or cdiv(rows, block_m) * cdiv(columns, block_n) > sms

    return [c for c in configs[:-1] if useful(c)] + configs[-1:]


def _time_config(kernel_call, quantiles):
    """The tuner's timing of one config: a few short runs (Triton's default spends 125 ms per config, which
    made a network's first step take minutes)."""
    return triton.testing.do_bench(kernel_call, warmup=5, rep=20, quantiles=quantiles)


gemm_autotuned = triton.autotune(
    configs=CONFIGS,
    key=["M", "N", "K", "M_LEVELS", "N_LEVELS", "K_LEVELS", "BIAS", "ACTIVATION", "SOFTMAX", "PROLOGUE",
         "BIAS_GRAD", "INPUT_PRECISION"],
    prune_configs_by={"early_config_prune": prune_configs},
    do_bench=_time_config,
)(gemm_kernel)


def softmax_epilogue_config(num_features, max_tile=16384):
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) with BLOCK_N covering every feature, or None when
    a row does not fit a tile (the host then runs the softmax kernel over the logits). Wide B tiles take a
    short K step and two stages so shared memory stays within sm_90's 227 KB even in fp32."""
    block_n = max(16, next_power_of_2(num_features))
    if block_n * 16 > max_tile:
        return None
    block_m = max(16, min(64, max_tile // block_n))
    block_k = 32 if block_n <= 256 else 16
    return block_m, block_n, block_k, max(4, min(8, block_m * block_n // 1024)), 2
