"""BatchNorm statistics: per-channel (count, mean, M2) by Welford/Chan merging, and their finalization.

Each tile contributes its exact two-pass (count, mean, M2), merged into running ones with Chan's formula,
so a channel with mean 1e4 and std 1 keeps its variance in fp32. Partial statistics are laid out
[parts, 3, channels] (count, mean, M2); the same merge kernel combines the parts of one launch, or the
ranks of SyncBatchNorm, and finalizes: saved mean and inverse std, running statistics updated in place.
"""
import triton
import triton.language as tl

from .precision import compute_full, to_compute_dtype
from .tiles import TILE_STAGES, program_tiles, tile_coordinates, tile_offsets
from .host_math import cdiv, next_power_of_2


@triton.jit
def tile_welford(x, mask):
    """Per-row (count, mean, M2) of a [rows, columns] tile, masked-off values ignored. The mean is a rough one
    corrected by the mean of the (exact) differences from it: a plain sum of values near 100 rounds at the
    sum's magnitude, which left the mean a few ulps off (torch's is within one), and every xhat with it."""
    count = tl.sum(mask.to(x.dtype), axis=1)
    safe_count = tl.maximum(count, 1)
    rough = tl.sum(tl.where(mask, x, 0), axis=1) / safe_count
    centered = tl.where(mask, x - rough[:, None], 0)
    correction = tl.sum(centered, axis=1) / safe_count
    m2 = tl.sum(centered * centered, axis=1) - correction * correction * count  # sum((x - mean)^2)
    return count, rough + correction, tl.maximum(m2, 0)


@triton.jit
def chan_merge(count_a, mean_a, m2_a, count_b, mean_b, m2_b):
    """Chan et al.'s parallel merge of two (count, mean, M2) summaries."""
    count = count_a + count_b
    share_b = tl.where(count > 0, count_b / tl.maximum(count, 1), 0)
    delta = mean_b - mean_a
    return count, mean_a + delta * share_b, m2_a + m2_b + delta * delta * count_a * share_b


@triton.jit
def finalize_stats(count, mean, m2, rows, row_mask, mean_ptr, invstd_ptr, running_mean_ptr, running_var_ptr,
                   momentum, eps, UPDATE_RUNNING: tl.constexpr):
    """Store the saved mean and inverse std (biased variance) and, if asked, move the running mean and the
    running unbiased variance toward the batch's by momentum, in place."""
    invstd = 1 / tl.sqrt(m2 / count + eps)
    tl.store(mean_ptr + rows, mean.to(mean_ptr.dtype.element_ty), mask=row_mask)
    tl.store(invstd_ptr + rows, invstd.to(invstd_ptr.dtype.element_ty), mask=row_mask)
    if UPDATE_RUNNING:
        running_mean = tl.load(running_mean_ptr + rows, mask=row_mask).to(mean.dtype)
        running_var = tl.load(running_var_ptr + rows, mask=row_mask).to(mean.dtype)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * (m2 / (count - 1))
        tl.store(running_mean_ptr + rows, running_mean.to(running_mean_ptr.dtype.element_ty), mask=row_mask)
        tl.store(running_var_ptr + rows, running_var.to(running_var_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def batch_norm_stats_kernel(
    input_ptr, partial_ptr, num_groups, num_channels, num_columns, tiles_per_program,
    input_group_stride, input_row_stride, input_column_stride,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """(count, mean, M2) of BLOCK_R channels over this program's column tiles -> partial[split, :, channels].

    Each lane sums (x - shift) and its square, with shift a channel's mean over the program's first tile, and
    the lanes are reduced once at the end: per-tile reductions cross warps when the channels are the
    contiguous dim (channels_last), and their barriers cost more than the loads. The shift keeps the sums
    free of cancellation (a channel with mean 1e4 and std 1 sums values of order 1). The first tile, read
    for the shift, starts the sums."""
    pid_rows = tl.program_id(0)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    group, rows, columns = tile_coordinates(pid_rows, first_tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
    first_columns = tl.where(first_tile < last_tile, num_columns, 0)  # a program with no tile: no shift
    mask = (rows[:, None] < num_channels) & (columns[None, :] < first_columns)
    x = to_compute_dtype(tl.load(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                                          input_column_stride), mask=mask, other=0))
    lanes_count = mask.to(x.dtype)
    shift = tl.sum(x, axis=1) / tl.maximum(tl.sum(lanes_count, axis=1), 1)
    lanes_sum = tl.where(mask, x - shift[:, None], 0)
    lanes_squares = lanes_sum * lanes_sum
    for tile in tl.range(first_tile + 1, last_tile, num_stages=TILE_STAGES):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_channels) & (columns[None, :] < num_columns)
        x = to_compute_dtype(tl.load(input_ptr + tile_offsets(group, rows, columns, input_group_stride,
                                                              input_row_stride, input_column_stride), mask=mask))
        centered = tl.where(mask, x - shift[:, None], 0)
        lanes_count += mask.to(x.dtype)
        lanes_sum += centered
        lanes_squares += centered * centered
    count = tl.sum(lanes_count, axis=1)
    total = tl.sum(lanes_sum, axis=1)
    safe_count = tl.maximum(count, 1)
    mean = shift + total / safe_count
    m2 = tl.maximum(tl.sum(lanes_squares, axis=1) - total * total / safe_count, 0)
    rows = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < num_channels
    out = partial_ptr + tl.program_id(1) * 3 * num_channels + rows
    tl.store(out, count.to(partial_ptr.dtype.element_ty), mask=row_mask)
    tl.store(out + num_channels, mean.to(partial_ptr.dtype.element_ty), mask=row_mask)
    tl.store(out + 2 * num_channels, m2.to(partial_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def merge_parts(partial_ptr, first_part, num_parts, num_channels, rows, row_mask, BLOCK_P: tl.constexpr):
    """(count, rough mean, mean - rough mean, M2) of BLOCK_P parts from first_part on. The mean is taken in
    two passes (a rough count-weighted mean, then the weighted mean of the parts' offsets from it, exact
    differences): count * mean sums of means near 1e4 would round away their spread."""
    parts = first_part + tl.arange(0, BLOCK_P)
    mask = (parts[:, None] < num_parts) & row_mask[None, :]
    source = partial_ptr + parts[:, None] * 3 * num_channels + rows[None, :]
    part_count = to_compute_dtype(tl.load(source, mask=mask, other=0))
    part_mean = to_compute_dtype(tl.load(source + num_channels, mask=mask, other=0))
    part_m2 = to_compute_dtype(tl.load(source + 2 * num_channels, mask=mask, other=0))
    count = tl.sum(part_count, axis=0)
    safe_count = tl.maximum(count, 1)
    rough_mean = tl.sum(part_count * part_mean, axis=0) / safe_count
    offset = part_mean - rough_mean[None, :]
    correction = tl.sum(part_count * offset, axis=0) / safe_count
    spread = offset - correction[None, :]
    return count, rough_mean, correction, tl.sum(part_m2 + part_count * spread * spread, axis=0)


@triton.jit
def batch_norm_merge_kernel(
    partial_ptr, num_parts, num_channels, merged_ptr, mean_ptr, invstd_ptr, running_mean_ptr, running_var_ptr,
    momentum, eps, FINALIZE: tl.constexpr, UPDATE_RUNNING: tl.constexpr, BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Merge partial[parts, 3, channels]. FINALIZE: store the saved mean / inverse std (and update the
    running statistics); else store the merged (count, mean, M2) to merged[3, channels].

    BLOCK_P parts are combined per step (one Chan merge per part chained hundreds of dependent steps: 83 us
    for 528 parts on an H200), the next steps' parts loaded meanwhile (few programs: latency decides). Steps
    merge their means as offsets from the first step's rough mean, so the merges' mean differences keep
    their digits."""
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    row_mask = rows < num_channels
    count, shift, mean_offset, m2 = merge_parts(partial_ptr, 0, num_parts, num_channels, rows, row_mask, BLOCK_P)
    for first_part in tl.range(BLOCK_P, num_parts, BLOCK_P, num_stages=TILE_STAGES):
        step_count, step_mean, step_correction, step_m2 = merge_parts(
            partial_ptr, first_part, num_parts, num_channels, rows, row_mask, BLOCK_P)
        count, mean_offset, m2 = chan_merge(count, mean_offset, m2, step_count, (step_mean - shift) + step_correction,
                                            step_m2)
    mean = shift + mean_offset
    if FINALIZE:
        finalize_stats(count, mean, m2, rows, row_mask, mean_ptr, invstd_ptr, running_mean_ptr, running_var_ptr,
                       momentum, eps, UPDATE_RUNNING)
    else:
        tl.store(merged_ptr + rows, count, mask=row_mask)
        tl.store(merged_ptr + num_channels + rows, mean, mask=row_mask)
        tl.store(merged_ptr + 2 * num_channels + rows, m2, mask=row_mask)


MERGE_TILE = 4096  # parts x channels one merge program holds per step


def merge_launch(num_parts, num_channels):
    """(grid, constexprs) of batch_norm_merge_kernel: narrow channel blocks when there are many parts, so
    more programs share them and each takes few steps."""
    block = min(next_power_of_2(num_channels), 128 if num_parts <= 8 else 32)
    block_p = min(next_power_of_2(num_parts), MERGE_TILE // block)
    return (cdiv(num_channels, block),), dict(BLOCK=block, BLOCK_P=block_p)
