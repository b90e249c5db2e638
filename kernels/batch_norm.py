"""BatchNorm normalization and backward, with the fused form activation(BN(x) + residual).

Tensors are walked as tiles of the (groups, channels, columns) view of (N, C, *) (tiles.py): channels are
the rows. Split kernels walk column tiles and leave per-channel partial sums; resident kernels hold all of
a channel block's values in registers and do a whole step in one read (used when N x spatial is small).

Per-channel statistics come either from the batch (saved mean and inverse std, in the compute dtype) or,
with USE_RUNNING (evaluation), from the running mean and variance: then mean_ptr / invstd_ptr point at the
running buffers and the inverse std is computed here.
"""
import triton
import triton.language as tl

from .activation import (IDENTITY, activation_backward_from_input, activation_backward_from_output,
                         apply_activation)
from .batch_norm_stats import finalize_stats, tile_welford
from .precision import compute_full, to_compute_dtype
from .tiles import TILE_STAGES, program_tiles, tile_coordinates, tile_offsets
from .host_math import next_power_of_2


@triton.jit
def channel_affine(rows, row_mask, weight_ptr, bias_ptr, like_ptr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
                   BLOCK_R: tl.constexpr):
    """(weight, bias) of BLOCK_R channels in the compute dtype of like_ptr (1 and 0 when absent)."""
    weight = compute_full(1.0, like_ptr, BLOCK_R)
    bias = compute_full(0.0, like_ptr, BLOCK_R)
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + rows, mask=row_mask, other=0).to(weight.dtype)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + rows, mask=row_mask, other=0).to(bias.dtype)
    return weight, bias


@triton.jit
def channel_parameters(rows, row_mask, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, eps, like_ptr,
                       USE_RUNNING: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
                       BLOCK_R: tl.constexpr):
    """(mean, inverse std, weight, bias) of BLOCK_R channels in the compute dtype of like_ptr. USE_RUNNING:
    invstd_ptr holds the running variance, turned into an inverse std here."""
    weight, bias = channel_affine(rows, row_mask, weight_ptr, bias_ptr, like_ptr, HAS_WEIGHT, HAS_BIAS, BLOCK_R)
    mean = tl.load(mean_ptr + rows, mask=row_mask, other=0).to(weight.dtype)
    if USE_RUNNING:
        invstd = 1 / tl.sqrt(tl.load(invstd_ptr + rows, mask=row_mask, other=1).to(weight.dtype) + eps)
    else:
        invstd = tl.load(invstd_ptr + rows, mask=row_mask, other=0).to(weight.dtype)
    return mean, invstd, weight, bias


@triton.jit
def pre_activation(centered, invstd, weight, bias):
    """(x - mean) * invstd * weight + bias of a tile from its centered values: the forward's pre-activation,
    recomputed by backward with the same operations, so an activation's derivative sees the very value the
    forward activated (relu's at 0 included). Centering first keeps digits when the mean is large next to
    the spread."""
    return centered * (invstd * weight)[:, None] + bias[:, None]


@triton.jit
def normalize(x, mean, invstd, weight, bias, residual, ACTIVATION: tl.constexpr, param_a, param_b,
              HAS_RESIDUAL: tl.constexpr):
    """activation((x - mean) * invstd * weight + bias + residual) for a [rows, columns] tile."""
    z = pre_activation(x - mean[:, None], invstd, weight, bias)
    if HAS_RESIDUAL:
        z += residual
    return apply_activation(z, ACTIVATION, param_a, param_b)


@triton.jit
def pre_activation_grad(grad, centered, invstd, weight, bias, saved, ACTIVATION: tl.constexpr,
                        SAVED_IS_OUTPUT: tl.constexpr, HAS_RESIDUAL: tl.constexpr, param_a, param_b):
    """d loss / d (BN(x) + residual): through the activation from the saved output, or from the recomputed
    pre-activation (saved then holds the residual, if any)."""
    if ACTIVATION == IDENTITY:
        return grad
    elif SAVED_IS_OUTPUT:
        return activation_backward_from_output(grad, saved, ACTIVATION, param_a, param_b)
    else:
        z = pre_activation(centered, invstd, weight, bias)
        if HAS_RESIDUAL:
            z += saved
        return activation_backward_from_input(grad, z, ACTIVATION, param_a, param_b)


@triton.jit
def tile_dz(grad_pointers, input_pointers, saved_pointers, mask, mean, invstd, weight, bias, ACTIVATION: tl.constexpr,
            SAVED_IS_OUTPUT: tl.constexpr, HAS_RESIDUAL: tl.constexpr, param_a, param_b):
    """(xhat, dz) of a backward tile: the normalized input and the gradient before the activation (0 where
    masked). The saved tensor is read only when the activation needs it."""
    grad = to_compute_dtype(tl.load(grad_pointers, mask=mask, other=0))
    centered = to_compute_dtype(tl.load(input_pointers, mask=mask, other=0)) - mean[:, None]
    xhat = centered * invstd[:, None]
    saved = grad
    if ACTIVATION != IDENTITY and (SAVED_IS_OUTPUT or HAS_RESIDUAL):
        saved = to_compute_dtype(tl.load(saved_pointers, mask=mask, other=0))
    dz = pre_activation_grad(grad, centered, invstd, weight, bias, saved, ACTIVATION, SAVED_IS_OUTPUT, HAS_RESIDUAL,
                             param_a, param_b)
    return xhat, tl.where(mask, dz, 0)


@triton.jit
def batch_norm_forward_kernel(
    input_ptr, residual_ptr, output_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr,
    num_groups, num_channels, num_columns, tiles_per_program,
    input_group_stride, input_row_stride, input_column_stride,
    residual_group_stride, residual_row_stride, residual_column_stride,
    output_group_stride, output_row_stride, output_column_stride,
    eps, param_a, param_b,
    USE_RUNNING: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """output = activation(BN(input) + residual) with given per-channel statistics."""
    pid_rows = tl.program_id(0)
    channels = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    mean, invstd, weight, bias = channel_parameters(channels, channels < num_channels, mean_ptr, invstd_ptr,
                                                    weight_ptr, bias_ptr, eps, input_ptr, USE_RUNNING, HAS_WEIGHT,
                                                    HAS_BIAS, BLOCK_R)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    for tile in range(first_tile, last_tile):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_channels) & (columns[None, :] < num_columns)
        x = to_compute_dtype(tl.load(input_ptr + tile_offsets(group, rows, columns, input_group_stride,
                                                              input_row_stride, input_column_stride), mask=mask))
        residual = x
        if HAS_RESIDUAL:
            residual = to_compute_dtype(tl.load(residual_ptr + tile_offsets(
                group, rows, columns, residual_group_stride, residual_row_stride, residual_column_stride),
                mask=mask))
        y = normalize(x, mean, invstd, weight, bias, residual, ACTIVATION, param_a, param_b, HAS_RESIDUAL)
        tl.store(output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                           output_column_stride), y.to(output_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _resident_tile(pid_rows, num_channels, num_columns, total, group_stride, row_stride, column_stride,
                   BLOCK_R: tl.constexpr, BLOCK_J: tl.constexpr, COLUMNS: tl.constexpr):
    """(rows, mask, offsets) of all total = groups x columns values of BLOCK_R channels. COLUMNS: when
    nonzero, num_columns as a constant (an NCHW 7x7 map's 49: a multiply instead of a division per value)."""
    if COLUMNS != 0:
        num_columns = COLUMNS
    rows = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    j = tl.arange(0, BLOCK_J)
    group, column = j // num_columns, j % num_columns
    mask = (rows[:, None] < num_channels) & (j[None, :] < total)
    offsets = rows[:, None] * row_stride + (group * group_stride + column * column_stride)[None, :]
    return rows, mask, offsets


@triton.jit
def batch_norm_forward_resident_kernel(
    input_ptr, residual_ptr, output_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr,
    running_mean_ptr, running_var_ptr, num_channels, num_columns, total,
    input_group_stride, input_row_stride, input_column_stride,
    residual_group_stride, residual_row_stride, residual_column_stride,
    output_group_stride, output_row_stride, output_column_stride,
    momentum, eps, param_a, param_b,
    UPDATE_RUNNING: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_J: tl.constexpr, COLUMNS: tl.constexpr = 0,
):
    """Training forward in one read: batch statistics of BLOCK_R channels held in registers, saved and
    running statistics written, then the normalized output."""
    pid_rows = tl.program_id(0)
    rows, mask, offsets = _resident_tile(pid_rows, num_channels, num_columns, total, input_group_stride,
                                         input_row_stride, input_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    row_mask = rows < num_channels
    x = to_compute_dtype(tl.load(input_ptr + offsets, mask=mask))
    count, mean, m2 = tile_welford(x, mask)
    finalize_stats(count, mean, m2, rows, row_mask, mean_ptr, invstd_ptr, running_mean_ptr, running_var_ptr,
                   momentum, eps, UPDATE_RUNNING)
    invstd = 1 / tl.sqrt(m2 / count + eps)
    weight, bias = channel_affine(rows, row_mask, weight_ptr, bias_ptr, input_ptr, HAS_WEIGHT, HAS_BIAS, BLOCK_R)
    residual = x
    if HAS_RESIDUAL:
        _, _, residual_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, residual_group_stride,
                                                residual_row_stride, residual_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
        residual = to_compute_dtype(tl.load(residual_ptr + residual_offsets, mask=mask))
    y = normalize(x, mean, invstd, weight, bias, residual, ACTIVATION, param_a, param_b, HAS_RESIDUAL)
    _, _, output_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, output_group_stride,
                                          output_row_stride, output_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    tl.store(output_ptr + output_offsets, y.to(output_ptr.dtype.element_ty), mask=mask)


@triton.jit
def batch_norm_backward_reduce_kernel(
    grad_output_ptr, input_ptr, saved_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, partial_ptr,
    num_groups, num_channels, num_columns, tiles_per_program,
    grad_output_group_stride, grad_output_row_stride, grad_output_column_stride,
    input_group_stride, input_row_stride, input_column_stride,
    saved_group_stride, saved_row_stride, saved_column_stride,
    eps, param_a, param_b,
    USE_RUNNING: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    SAVED_IS_OUTPUT: tl.constexpr, ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
    WIDE_INDEX: tl.constexpr,
):
    """Per-channel sum(dz), sum(dz * xhat) and count over this program's tiles -> partial[split, 0:3, channels],
    where dz is the gradient before the activation and xhat the normalized input."""
    pid_rows = tl.program_id(0)
    channels = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    mean, invstd, weight, bias = channel_parameters(channels, channels < num_channels, mean_ptr, invstd_ptr,
                                                    weight_ptr, bias_ptr, eps, input_ptr, USE_RUNNING, HAS_WEIGHT,
                                                    HAS_BIAS, BLOCK_R)
    # per-lane sums, reduced across the tile once at the end: a reduction per tile crosses warps when the
    # channels are the contiguous dim (channels_last), and its barriers cost more than the loads
    lanes_dz = tl.zeros((BLOCK_R, BLOCK_C), dtype=mean.dtype)
    lanes_dz_xhat = tl.zeros((BLOCK_R, BLOCK_C), dtype=mean.dtype)
    lanes_count = tl.zeros((BLOCK_R, BLOCK_C), dtype=mean.dtype)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    for tile in tl.range(first_tile, last_tile, num_stages=TILE_STAGES):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_channels) & (columns[None, :] < num_columns)
        xhat, dz = tile_dz(
            grad_output_ptr + tile_offsets(group, rows, columns, grad_output_group_stride, grad_output_row_stride,
                                           grad_output_column_stride),
            input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride, input_column_stride),
            saved_ptr + tile_offsets(group, rows, columns, saved_group_stride, saved_row_stride, saved_column_stride),
            mask, mean, invstd, weight, bias, ACTIVATION, SAVED_IS_OUTPUT, HAS_RESIDUAL, param_a, param_b)
        lanes_dz += dz
        lanes_dz_xhat += dz * xhat
        lanes_count += mask.to(lanes_count.dtype)
    store_sums(partial_ptr + tl.program_id(1) * 3 * num_channels, channels, num_channels, tl.sum(lanes_dz, axis=1),
               tl.sum(lanes_dz_xhat, axis=1), tl.sum(lanes_count, axis=1))


@triton.jit
def store_sums(sums_ptr, channels, num_channels, sum_dz, sum_dz_xhat, count):
    """sums[0:3, channels] = (sum dz, sum dz * xhat, count): what the input gradient needs, summable over
    programs and ranks."""
    mask = channels < num_channels
    tl.store(sums_ptr + channels, sum_dz.to(sums_ptr.dtype.element_ty), mask=mask)
    tl.store(sums_ptr + num_channels + channels, sum_dz_xhat.to(sums_ptr.dtype.element_ty), mask=mask)
    tl.store(sums_ptr + 2 * num_channels + channels, count.to(sums_ptr.dtype.element_ty), mask=mask)


@triton.jit
def store_param_grads(grad_weight_ptr, grad_bias_ptr, channels, channel_mask, sum_dz, sum_dz_xhat,
                      GRAD_WEIGHT: tl.constexpr, GRAD_BIAS: tl.constexpr):
    """grad_weight = sum(dz * xhat), grad_bias = sum(dz), per channel."""
    if GRAD_WEIGHT:
        tl.store(grad_weight_ptr + channels, sum_dz_xhat.to(grad_weight_ptr.dtype.element_ty), mask=channel_mask)
    if GRAD_BIAS:
        tl.store(grad_bias_ptr + channels, sum_dz.to(grad_bias_ptr.dtype.element_ty), mask=channel_mask)


@triton.jit
def input_grad(dz, xhat, invstd, weight, sum_dz, sum_dz_xhat, count, TRAINING: tl.constexpr):
    """dx of a tile: batch statistics depend on x in training, not in evaluation."""
    if TRAINING:
        return (invstd * weight)[:, None] * (
            dz - (sum_dz[:, None] + xhat * sum_dz_xhat[:, None]) / count[:, None])
    else:
        return dz * (invstd * weight)[:, None]


@triton.jit
def batch_norm_backward_input_kernel(
    grad_output_ptr, input_ptr, saved_ptr, grad_input_ptr, grad_residual_ptr, mean_ptr, invstd_ptr, weight_ptr,
    bias_ptr, sums_ptr, grad_weight_ptr, grad_bias_ptr, num_groups, num_channels, num_columns, tiles_per_program,
    grad_output_group_stride, grad_output_row_stride, grad_output_column_stride,
    input_group_stride, input_row_stride, input_column_stride,
    saved_group_stride, saved_row_stride, saved_column_stride,
    grad_input_group_stride, grad_input_row_stride, grad_input_column_stride,
    grad_residual_group_stride, grad_residual_row_stride, grad_residual_column_stride,
    eps, param_a, param_b,
    TRAINING: tl.constexpr, USE_RUNNING: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr, SAVED_IS_OUTPUT: tl.constexpr, GRAD_RESIDUAL: tl.constexpr,
    GRAD_WEIGHT: tl.constexpr, GRAD_BIAS: tl.constexpr, ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """grad_input (and grad_residual = dz) with the per-channel sums of sums[3, channels] (training); the
    first program of each channel block also stores the weight and bias gradients (GRAD_WEIGHT, GRAD_BIAS)
    from them, in the parameters' dtype (a torch cast each cost a launch)."""
    pid_rows = tl.program_id(0)
    channels = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    channel_mask = channels < num_channels
    mean, invstd, weight, bias = channel_parameters(channels, channel_mask, mean_ptr, invstd_ptr, weight_ptr,
                                                    bias_ptr, eps, input_ptr, USE_RUNNING, HAS_WEIGHT, HAS_BIAS,
                                                    BLOCK_R)
    sum_dz = mean  # placeholders: evaluation needs no sums
    sum_dz_xhat = mean
    count = mean
    if TRAINING or GRAD_WEIGHT or GRAD_BIAS:
        sum_dz = tl.load(sums_ptr + channels, mask=channel_mask, other=0).to(mean.dtype)
        sum_dz_xhat = tl.load(sums_ptr + num_channels + channels, mask=channel_mask, other=0).to(mean.dtype)
        count = tl.load(sums_ptr + 2 * num_channels + channels, mask=channel_mask, other=1).to(mean.dtype)
        if tl.program_id(1) == 0:
            store_param_grads(grad_weight_ptr, grad_bias_ptr, channels, channel_mask, sum_dz, sum_dz_xhat,
                              GRAD_WEIGHT, GRAD_BIAS)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    for tile in range(first_tile, last_tile):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_channels) & (columns[None, :] < num_columns)
        xhat, dz = tile_dz(
            grad_output_ptr + tile_offsets(group, rows, columns, grad_output_group_stride, grad_output_row_stride,
                                           grad_output_column_stride),
            input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride, input_column_stride),
            saved_ptr + tile_offsets(group, rows, columns, saved_group_stride, saved_row_stride, saved_column_stride),
            mask, mean, invstd, weight, bias, ACTIVATION, SAVED_IS_OUTPUT, HAS_RESIDUAL, param_a, param_b)
        if GRAD_RESIDUAL:
            tl.store(grad_residual_ptr + tile_offsets(group, rows, columns, grad_residual_group_stride,
                                                      grad_residual_row_stride, grad_residual_column_stride),
                     dz.to(grad_residual_ptr.dtype.element_ty), mask=mask)
        dx = input_grad(dz, xhat, invstd, weight, sum_dz, sum_dz_xhat, count, TRAINING)
        tl.store(grad_input_ptr + tile_offsets(group, rows, columns, grad_input_group_stride, grad_input_row_stride,
                                               grad_input_column_stride), dx.to(grad_input_ptr.dtype.element_ty),
                 mask=mask)


@triton.jit
def batch_norm_backward_resident_kernel(
    grad_output_ptr, input_ptr, saved_ptr, grad_input_ptr, grad_residual_ptr, mean_ptr, invstd_ptr, weight_ptr,
    bias_ptr, grad_weight_ptr, grad_bias_ptr, num_channels, num_columns, total,
    grad_output_group_stride, grad_output_row_stride, grad_output_column_stride,
    input_group_stride, input_row_stride, input_column_stride,
    saved_group_stride, saved_row_stride, saved_column_stride,
    grad_input_group_stride, grad_input_row_stride, grad_input_column_stride,
    grad_residual_group_stride, grad_residual_row_stride, grad_residual_column_stride,
    param_a, param_b,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr, SAVED_IS_OUTPUT: tl.constexpr,
    GRAD_RESIDUAL: tl.constexpr, GRAD_WEIGHT: tl.constexpr, GRAD_BIAS: tl.constexpr, ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_J: tl.constexpr, COLUMNS: tl.constexpr = 0,
):
    """Training backward in one read of each tensor: a channel block's values held in registers; the weight
    and bias gradients (GRAD_WEIGHT, GRAD_BIAS) stored from its sums in the parameters' dtype."""
    pid_rows = tl.program_id(0)
    rows, mask, go_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, grad_output_group_stride,
                                            grad_output_row_stride, grad_output_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    _, _, x_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, input_group_stride,
                                     input_row_stride, input_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    row_mask = rows < num_channels
    mean, invstd, weight, bias = channel_parameters(rows, row_mask, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, 0.0,
                                                    input_ptr, False, HAS_WEIGHT, HAS_BIAS, BLOCK_R)
    _, _, saved_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, saved_group_stride,
                                         saved_row_stride, saved_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    xhat, dz = tile_dz(grad_output_ptr + go_offsets, input_ptr + x_offsets, saved_ptr + saved_offsets, mask, mean,
                       invstd, weight, bias, ACTIVATION, SAVED_IS_OUTPUT, HAS_RESIDUAL, param_a, param_b)
    sum_dz = tl.sum(dz, axis=1)
    sum_dz_xhat = tl.sum(dz * xhat, axis=1)
    count = tl.sum(mask.to(dz.dtype), axis=1)
    store_param_grads(grad_weight_ptr, grad_bias_ptr, rows, row_mask, sum_dz, sum_dz_xhat, GRAD_WEIGHT, GRAD_BIAS)
    if GRAD_RESIDUAL:
        _, _, gr_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, grad_residual_group_stride,
                                          grad_residual_row_stride, grad_residual_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
        tl.store(grad_residual_ptr + gr_offsets, dz.to(grad_residual_ptr.dtype.element_ty), mask=mask)
    dx = input_grad(dz, xhat, invstd, weight, sum_dz, sum_dz_xhat, count, True)
    _, _, gx_offsets = _resident_tile(pid_rows, num_channels, num_columns, total, grad_input_group_stride,
                                      grad_input_row_stride, grad_input_column_stride, BLOCK_R, BLOCK_J, COLUMNS)
    tl.store(grad_input_ptr + gx_offsets, dx.to(grad_input_ptr.dtype.element_ty), mask=mask)


# A resident program holds at most this many values per tensor in registers.
RESIDENT_TILE = 8192
# With channels contiguous (channels_last), a resident program reads runs of BLOCK_R channels: fewer than
# this many make short, poorly coalesced runs, and the split kernels' wide channel tiles win.
MIN_CONTIGUOUS_CHANNELS = 16


def resident_config(num_channels, total, live_tensors, channels_contiguous):
    """(BLOCK_R, BLOCK_J, num_warps) for holding all `total` values of BLOCK_R channels in registers, or
    None when they do not fit."""
    block_j = next_power_of_2(total)
    budget = RESIDENT_TILE // live_tensors
    budget = next_power_of_2(budget + 1) // 2  # the power of two at or below: block sizes must be
    if block_j > budget:
        return None
    block_r = max(1, min(next_power_of_2(num_channels), budget // block_j))
    if channels_contiguous and block_r < min(MIN_CONTIGUOUS_CHANNELS, num_channels):
        return None
    return block_r, block_j, max(1, min(8, block_r * block_j // 256))
