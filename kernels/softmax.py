"""Softmax and log_softmax over one dim of a strided tensor, forward and backward.

The host views a tensor as (groups, rows, columns): `rows` is the reduced dim and `columns` the other dim a
program vectorizes over (the most contiguous remaining one), so softmax over a non-last dim of an NCHW
tensor reads contiguous columns instead of transposing. A program owns BLOCK_C columns of one group:
- single block (BLOCK_R >= rows): the tile stays in registers; memory is read once, written once;
- multi block: an online max/sum pass over row chunks, then a second pass that writes.
softmax_normalize_kernel finishes a linear layer's softmax head whose rows span several GEMM tiles, and
softmax_split_k_kernel one whose GEMM split K.
"""
import triton
import triton.language as tl

from .precision import compute_full, to_compute_dtype, to_storage
from .tiles import TILE_STAGES, tile_offsets, with_divisor
from .host_math import next_power_of_2


@triton.jit
def _program_tile(num_columns, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr):
    """(group, first column) of this program."""
    pid = tl.program_id(0)
    if WIDE_INDEX:
        pid = pid.to(tl.int64)
    column_blocks = tl.cdiv(num_columns, BLOCK_C)
    return pid // column_blocks, (pid % column_blocks) * BLOCK_C


@triton.jit
def _indices(start, BLOCK: tl.constexpr, WIDE_INDEX: tl.constexpr):
    """start + [0, BLOCK); int64 when WIDE_INDEX (some offset may pass 2**31)."""
    indices = start + tl.arange(0, BLOCK)
    if WIDE_INDEX:
        indices = indices.to(tl.int64)
    return indices


@triton.jit
def _load_input(pointers, mask, output_ptr):
    # dtype= casts the input to the output dtype first (torch's semantics), then math runs in fp32/fp64.
    x = tl.load(pointers, mask=mask, other=float("-inf"))
    return to_compute_dtype(to_storage(x, output_ptr))


@triton.jit
def online_max_sum(running_max, running_sum, maxima, sums, AXIS: tl.constexpr):
    """Merge (max m, sum of exp(x - m)) summaries along AXIS into running ones: the running sum is rescaled
    when the max grows (a plain value x is the summary (x, 1)). A group whose values so far are all -inf
    shifts by 0 instead of -inf, so it stays a sum of 0 instead of turning into NaN."""
    new_max = tl.maximum(running_max, tl.max(maxima, axis=AXIS))
    shift = tl.where(new_max == float("-inf"), 0, new_max)
    total = running_sum * tl.exp(running_max - shift) + \
        tl.sum(sums * tl.exp(maxima - tl.expand_dims(shift, AXIS)), axis=AXIS)
    return new_max, total


@triton.jit
def whole_softmax(x, AXIS: tl.constexpr, LOG: tl.constexpr):
    """softmax / log_softmax along AXIS of a tile that holds its rows whole (masked-off values -inf)."""
    shifted = x - tl.expand_dims(tl.max(x, axis=AXIS), AXIS)
    exp_shifted = tl.exp(shifted)
    total = tl.sum(exp_shifted, axis=AXIS)
    if LOG:
        y = shifted - tl.expand_dims(tl.log(total), AXIS)
    else:
        y = exp_shifted * tl.expand_dims(1 / total, AXIS)
    return y


@triton.jit
def softmax_forward_kernel(
    input_ptr, output_ptr, num_rows, num_columns,
    input_group_stride, input_row_stride, input_column_stride,
    output_group_stride, output_row_stride, output_column_stride,
    LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    WIDE_INDEX: tl.constexpr, ALIGN: tl.constexpr = 0,
):
    num_rows, num_columns = with_divisor(num_rows, ALIGN), with_divisor(num_columns, ALIGN)
    group, column_start = _program_tile(num_columns, BLOCK_C, WIDE_INDEX)
    columns = _indices(column_start, BLOCK_C, WIDE_INDEX)
    column_mask = columns[None, :] < num_columns
    if SINGLE_BLOCK:
        rows = _indices(0, BLOCK_R, WIDE_INDEX)
        mask = (rows[:, None] < num_rows) & column_mask
        x = _load_input(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                             input_column_stride, ALIGN), mask, output_ptr)
        y = whole_softmax(x, 0, LOG)
        tl.store(output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                       output_column_stride, ALIGN), to_storage(y, output_ptr), mask=mask)
    else:
        # Online softmax: running max m and sum s of exp(x - m) over the row chunks
        running_max = compute_full(float("-inf"), output_ptr, BLOCK_C)
        running_sum = compute_full(0.0, output_ptr, BLOCK_C)
        for row_start in range(0, num_rows, BLOCK_R):
            rows = _indices(row_start, BLOCK_R, WIDE_INDEX)
            mask = (rows[:, None] < num_rows) & column_mask
            x = _load_input(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                                 input_column_stride, ALIGN), mask, output_ptr)
            running_max, running_sum = online_max_sum(running_max, running_sum, x, 1.0, 0)
        log_total = tl.log(running_sum)
        inverse_total = 1 / running_sum
        for row_start in range(0, num_rows, BLOCK_R):
            rows = _indices(row_start, BLOCK_R, WIDE_INDEX)
            mask = (rows[:, None] < num_rows) & column_mask
            x = _load_input(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                                 input_column_stride, ALIGN), mask, output_ptr)
            shifted = x - running_max[None, :]
            if LOG:
                y = shifted - log_total[None, :]
            else:
                y = tl.exp(shifted) * inverse_total[None, :]
            tl.store(output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                           output_column_stride, ALIGN), to_storage(y, output_ptr), mask=mask)


@triton.jit
def softmax_normalize_kernel(
    logits_ptr, stats_ptr, num_rows, num_columns, row_stride, num_slots,
    LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    WIDE_INDEX: tl.constexpr, ALIGN: tl.constexpr = 0,
):
    """In place, rows of logits -> softmax / log_softmax, from the partial statistics the GEMM stored per
    column tile (gemm_kernel's PARTIAL_SOFTMAX: stats is (2, rows, slots), maxima then sums of exp(x - max)):
    the slots are combined online, then each logit is read once and written once."""
    rows = _indices(tl.program_id(0) * BLOCK_R, BLOCK_R, WIDE_INDEX)
    row_mask = rows < num_rows
    running_max = tl.full([BLOCK_R], float("-inf"), stats_ptr.dtype.element_ty)
    running_sum = tl.zeros([BLOCK_R], stats_ptr.dtype.element_ty)
    for slot_start in range(0, num_slots, BLOCK_S):
        slots = slot_start + tl.arange(0, BLOCK_S)
        mask = row_mask[:, None] & (slots[None, :] < num_slots)
        offsets = rows[:, None] * num_slots + slots[None, :]
        slot_max = tl.load(stats_ptr + offsets, mask=mask, other=float("-inf"))
        slot_sum = tl.load(stats_ptr + num_rows * num_slots + offsets, mask=mask, other=0)
        running_max, running_sum = online_max_sum(running_max, running_sum, slot_max, slot_sum, 1)
    log_total = tl.log(running_sum)
    inverse_total = 1 / running_sum
    num_columns = with_divisor(num_columns, ALIGN)
    row_offsets = rows * row_stride
    if ALIGN > 1:
        row_offsets = tl.multiple_of(row_offsets, ALIGN)
    for column_start in range(0, num_columns, BLOCK_C):
        columns = _indices(column_start, BLOCK_C, WIDE_INDEX)
        mask = row_mask[:, None] & (columns[None, :] < num_columns)
        pointers = logits_ptr + row_offsets[:, None] + columns[None, :]
        shifted = tl.load(pointers, mask=mask, other=0).to(running_max.dtype) - running_max[:, None]
        if LOG:
            y = shifted - log_total[:, None]
        else:
            y = tl.exp(shifted) * inverse_total[:, None]
        tl.store(pointers, to_storage(y, logits_ptr), mask=mask)


@triton.jit
def softmax_split_k_kernel(
    partials_ptr, bias_ptr, output_ptr, num_splits, num_rows, num_columns,
    HAS_BIAS: tl.constexpr, LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
    WIDE_INDEX: tl.constexpr, ALIGN: tl.constexpr = 0,
):
    """Rows of a split-K linear head -> softmax / log_softmax: partials is dense (splits, rows, columns) in the
    accumulator's dtype, output dense (rows, columns), a row within one BLOCK_C tile. Each logit is the sum
    over splits plus the bias, rounded to the output's dtype (as a GEMM would store it) before normalizing."""
    rows = _indices(tl.program_id(0) * BLOCK_R, BLOCK_R, WIDE_INDEX)
    columns = tl.arange(0, BLOCK_C)
    num_columns = with_divisor(num_columns, ALIGN)
    column_mask = columns < num_columns
    mask = (rows < num_rows)[:, None] & column_mask[None, :]
    row_offsets = rows * num_columns
    if ALIGN > 1:
        row_offsets = tl.multiple_of(row_offsets, ALIGN)
    offsets = row_offsets[:, None] + columns[None, :]
    plane = num_rows * num_columns
    if WIDE_INDEX:
        plane = plane.to(tl.int64)
    logits = tl.zeros((BLOCK_R, BLOCK_C), dtype=partials_ptr.dtype.element_ty)
    for split in tl.range(0, num_splits, num_stages=TILE_STAGES):
        logits += tl.load(partials_ptr + split * plane + offsets, mask=mask, other=0)
    if HAS_BIAS:
        logits += tl.load(bias_ptr + columns, mask=column_mask, other=0).to(logits.dtype)[None, :]
    logits = tl.where(mask, to_storage(logits, output_ptr).to(logits.dtype), float("-inf"))
    tl.store(output_ptr + offsets, to_storage(whole_softmax(logits, 1, LOG), output_ptr), mask=mask)


def split_k_softmax_launch_config(num_rows, num_columns, tile=2048):
    """(BLOCK_R, BLOCK_C, num_warps) of softmax_split_k_kernel: whole rows, several short ones a program."""
    block_c = next_power_of_2(num_columns)
    block_r = max(1, min(next_power_of_2(num_rows), tile // block_c))
    return block_r, block_c, max(1, min(8, block_r * block_c // 256))


@triton.jit
def _backward_terms(y_pointers, grad_pointers, mask, LOG: tl.constexpr):
    """(term to sum over rows, y or exp(y), grad) for one tile: softmax sums g*y, log_softmax sums g."""
    y = to_compute_dtype(tl.load(y_pointers, mask=mask, other=0))
    grad = to_compute_dtype(tl.load(grad_pointers, mask=mask, other=0))
    if LOG:
        return grad, tl.exp(y), grad
    else:
        return grad * y, y, grad


@triton.jit
def softmax_backward_kernel(
    output_ptr, grad_output_ptr, grad_input_ptr, num_rows, num_columns,
    output_group_stride, output_row_stride, output_column_stride,
    grad_output_group_stride, grad_output_row_stride, grad_output_column_stride,
    grad_input_group_stride, grad_input_row_stride, grad_input_column_stride,
    LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    WIDE_INDEX: tl.constexpr, ALIGN: tl.constexpr = 0,
):
    """softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g)."""
    num_rows, num_columns = with_divisor(num_rows, ALIGN), with_divisor(num_columns, ALIGN)
    group, column_start = _program_tile(num_columns, BLOCK_C, WIDE_INDEX)
    columns = _indices(column_start, BLOCK_C, WIDE_INDEX)
    column_mask = columns[None, :] < num_columns
    if SINGLE_BLOCK:
        rows = _indices(0, BLOCK_R, WIDE_INDEX)
        mask = (rows[:, None] < num_rows) & column_mask
        term, weight, grad = _backward_terms(
            output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                      output_column_stride, ALIGN),
            grad_output_ptr + tile_offsets(group, rows, columns, grad_output_group_stride, grad_output_row_stride,
                                       grad_output_column_stride, ALIGN), mask, LOG)
        total = tl.sum(term, axis=0)
        if LOG:
            grad_x = grad - weight * total[None, :]
        else:
            grad_x = weight * (grad - total[None, :])
        tl.store(grad_input_ptr + tile_offsets(group, rows, columns, grad_input_group_stride, grad_input_row_stride,
                                           grad_input_column_stride, ALIGN), to_storage(grad_x, grad_input_ptr),
                 mask=mask)
    else:
        total = compute_full(0.0, output_ptr, BLOCK_C)
        for row_start in range(0, num_rows, BLOCK_R):
            rows = _indices(row_start, BLOCK_R, WIDE_INDEX)
            mask = (rows[:, None] < num_rows) & column_mask
            term, _, _ = _backward_terms(
                output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                      output_column_stride, ALIGN),
                grad_output_ptr + tile_offsets(group, rows, columns, grad_output_group_stride, grad_output_row_stride,
                                           grad_output_column_stride, ALIGN), mask, LOG)
            total += tl.sum(term, axis=0)
        for row_start in range(0, num_rows, BLOCK_R):
            rows = _indices(row_start, BLOCK_R, WIDE_INDEX)
            mask = (rows[:, None] < num_rows) & column_mask
            _, weight, grad = _backward_terms(
                output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                      output_column_stride, ALIGN),
                grad_output_ptr + tile_offsets(group, rows, columns, grad_output_group_stride, grad_output_row_stride,
                                           grad_output_column_stride, ALIGN), mask, LOG)
            if LOG:
                grad_x = grad - weight * total[None, :]
            else:
                grad_x = weight * (grad - total[None, :])
            tl.store(grad_input_ptr + tile_offsets(group, rows, columns, grad_input_group_stride, grad_input_row_stride,
                                               grad_input_column_stride, ALIGN),
                     to_storage(grad_x, grad_input_ptr), mask=mask)


# A program keeps at most this many bytes of a tile in registers: 32K fp32 values (a 32000-class row in one
# read) over 16 warps, 64 per thread.
MAX_TILE_BYTES = 128 * 1024
# Tile size for short rows: enough columns per program to keep loads wide without spilling.
TARGET_TILE = 4096


def softmax_launch_config(num_rows, num_columns, rows_contiguous, fp64=False, live_tensors=1):
    """(BLOCK_R, BLOCK_C, SINGLE_BLOCK, num_warps) for a (rows x columns) problem.

    rows_contiguous: the reduced dim has stride 1 (last-dim softmax), so tiles are long along rows and
    stack several rows' worth of columns; otherwise columns are contiguous (non-last-dim softmax) and tiles
    are wide along columns to keep loads coalesced. fp64: math in fp64, so half as many values fit;
    live_tensors: tiles held at once (backward holds y and grad: a 32K tile of both spilled on sm_90).
    """
    # read at call time: tests shrink it to reach the multi-block path on small tensors
    max_tile = MAX_TILE_BYTES // (8 if fp64 else 4) // live_tensors
    block_r, block_c = _tile(num_rows, num_columns, rows_contiguous, max_tile)
    single_block = block_r >= num_rows
    if not single_block:  # the online loop keeps the chunk, its exponentials and pointers live: smaller chunks
        block_r, block_c = _tile(num_rows, num_columns, rows_contiguous, max_tile // 4)
    num_warps = max(1, min(16, block_r * block_c // 512))
    return block_r, block_c, single_block, num_warps


def _tile(num_rows, num_columns, rows_contiguous, max_tile):
    rows_pow2 = next_power_of_2(num_rows)
    columns_pow2 = next_power_of_2(num_columns)
    if rows_contiguous:
        block_r = min(rows_pow2, max_tile)
        block_c = max(1, min(columns_pow2, TARGET_TILE // block_r))
    else:
        block_c = min(columns_pow2, 128, max_tile)
        block_r = max(1, min(rows_pow2, max_tile // block_c))
    return block_r, block_c


def normalize_launch_config(num_rows, num_columns, num_slots, tile=2048):
    """(BLOCK_R, BLOCK_C, BLOCK_S, num_warps) of softmax_normalize_kernel: a tile of up to `tile` logits, several
    short rows per program, a long row walked in chunks."""
    block_c = min(next_power_of_2(num_columns), tile)
    block_r = max(1, min(next_power_of_2(num_rows), tile // block_c))
    block_s = max(1, min(next_power_of_2(num_slots), tile // block_r))
    return block_r, block_c, block_s, max(1, min(8, block_r * block_c // 256))
