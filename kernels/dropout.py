"""Mask-free dropout: element-wise or channel-wise, fused with bias, activation and residual.

No mask is stored. Each keep decision is one Philox draw keyed by torch's seed: unit u = key // map_size
takes draw u % 4 of the Philox call at counter `offset + u // 4`. `key` is the element's logical
(row-major) index, so forward and backward regenerate the same mask whatever the layouts of the tensors
they touch; map_size is 1 for element-wise dropout and the size of a feature map for channel-wise dropout
(u is then n * C + c). Every element (or map) of a call, and every call (the host advances torch's offset
past what a call uses), gets its own draw.

Tensors are walked as tiles of a (groups, rows, columns) view (tiles.py) with rows the dim a bias runs along
(else the most contiguous one), so bias gradients are summed in registers and written once per program.
"""
import triton
import triton.language as tl

from .activation import IDENTITY, activation_backward_from_input, apply_activation
from .host_math import next_power_of_2
from .precision import compute_full, to_compute_dtype
from .tiles import program_tiles, tile_coordinates, tile_offsets

# Philox counter words c2, c3: a fixed tag keeps these streams apart from torch's own Philox kernels, which
# put their thread index (a subsequence) there.
STREAM_TAG = tl.constexpr(0x746C6179)


@triton.jit
def _philox4(unit, seed, offset_low, offset_high):
    """The four 32-bit draws of Philox at counter offset + unit // 4, the offset passed as two 31-bit words:
    as one int it would turn from int32 to int64 once torch's offset passes 2**31, recompiling the kernels
    mid-training."""
    counter = (unit // 4).to(tl.int64) + (offset_high.to(tl.int64) << 31) + offset_low
    zero = counter.to(tl.uint32) * 0
    return tl.philox(seed, counter.to(tl.uint32), (counter >> 32).to(tl.uint32), zero, zero + STREAM_TAG)


@triton.jit
def _keep(draw, p, scale):
    return tl.where(tl.uint_to_uniform_float(draw) >= p, scale, 0.0)


@triton.jit
def _unit_keep_scale(unit, seed, offset_low, offset_high, p, scale):
    """scale where unit u is kept (probability 1 - p), else 0: draw u % 4 of the Philox call at u // 4."""
    r0, r1, r2, r3 = _philox4(unit, seed, offset_low, offset_high)
    lane = unit % 4
    return _keep(tl.where(lane == 0, r0, tl.where(lane == 1, r1, tl.where(lane == 2, r2, r3))), p, scale)


@triton.jit
def keep_scale(key, seed, offset_low, offset_high, p, scale, map_size):
    """scale where an element is kept (probability 1 - p), else 0, for a tile of keys. Unit u = key //
    map_size (map_size == 1 specializes to no division) is decided by draw u % 4 of the Philox call at u // 4,
    so every element of a map gets the same decision. One Philox call per element here; _tile_keep_scale's
    other modes make the same decisions with fewer."""
    return _unit_keep_scale(key // map_size, seed, offset_low, offset_high, p, scale)


@triton.jit
def _draws_in_fours(quads, seed, offset_low, offset_high, SIZE0: tl.constexpr, SIZE1: tl.constexpr):
    """The four draws of Philox calls `quads` (SIZE0 x SIZE1), in order along a new last dim of size 4."""
    r0, r1, r2, r3 = _philox4(quads * 4, seed, offset_low, offset_high)
    fours = tl.join(tl.join(r0, r2), tl.join(r1, r3))  # [..., 2, 2]: flattened, r0 r1 r2 r3
    return tl.reshape(fours, (SIZE0, SIZE1, 4))


# _tile_keep_scale's modes (the host picks one per launch: tritonlayers/dropout.py draw_mode)
PER_ELEMENT = tl.constexpr(0)  # one Philox call per element, any keys
FOURS_ALONG_COLUMNS = tl.constexpr(1)  # element keys in aligned fours along the columns
FOURS_ALONG_ROWS = tl.constexpr(2)  # likewise along the rows
MAP_PER_ROW = tl.constexpr(3)  # channel-wise: each tile row lies in one map (the columns span one map)
MAPS_IN_FOURS = tl.constexpr(4)  # likewise, and the rows' maps (units) come in aligned fours


@triton.jit
def _tile_keep_scale(group, rows, columns, tile, num_columns, key_group_stride, key_row_stride, key_column_stride,
                     map_size, seed, offset_low, offset_high, p, scale, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
                     DRAWS: tl.constexpr):
    """keep_scale's decisions for a [rows, columns] tile. Philox is the kernel's dominant arithmetic: the
    fours modes make one call per four elements (strides, tile starts and sizes multiples of 4), the map modes
    one per row or per four rows, which the columns share (a thread makes them once for all its columns)."""
    if DRAWS == FOURS_ALONG_COLUMNS:
        column_start = (tile % tl.cdiv(num_columns, BLOCK_C)) * BLOCK_C
        first_keys = group * key_group_stride + rows * key_row_stride
        quads = (first_keys // 4)[:, None] + (column_start // 4 + tl.arange(0, BLOCK_C // 4))[None, :]
        fours = _draws_in_fours(quads, seed, offset_low, offset_high, BLOCK_R, BLOCK_C // 4)
        return _keep(tl.reshape(fours, (BLOCK_R, BLOCK_C)), p, scale)
    elif DRAWS == FOURS_ALONG_ROWS:
        first_keys = group * key_group_stride + columns * key_column_stride
        quads = (tl.program_id(0) * BLOCK_R // 4 + tl.arange(0, BLOCK_R // 4))[:, None] + (first_keys // 4)[None, :]
        fours = _draws_in_fours(quads, seed, offset_low, offset_high, BLOCK_R // 4, BLOCK_C)
        if BLOCK_C > 1:  # with one column the permute moves a size-1 dim: same order, no layout shuffle
            fours = tl.permute(fours, (0, 2, 1))
        return _keep(tl.reshape(fours, (BLOCK_R, BLOCK_C)), p, scale)
    elif DRAWS == MAPS_IN_FOURS:
        # units group * (key_group_stride // map_size) + row (the key row stride is map_size): one Philox call
        # per four rows, broadcast along the columns; no division per element
        first_quad = (group * (key_group_stride // map_size) + tl.program_id(0) * BLOCK_R) // 4
        fours = _draws_in_fours((first_quad + tl.arange(0, BLOCK_R // 4))[:, None], seed, offset_low, offset_high,
                                BLOCK_R // 4, 1)
        return _keep(tl.reshape(fours, (BLOCK_R, 1)), p, scale)
    elif DRAWS == MAP_PER_ROW:
        return _unit_keep_scale(group * (key_group_stride // map_size) + rows, seed, offset_low, offset_high, p,
                                scale)[:, None]
    else:
        key = tile_offsets(group, rows, columns, key_group_stride, key_row_stride, key_column_stride)
        return keep_scale(key, seed, offset_low, offset_high, p, scale, map_size)


# Values of a channel-wise (map mode) tile: a thread's draws serve every column it holds, so a larger tile
# makes fewer per element (32 values a thread at 8 warps: for bf16 channels_last, 8 channels by 4 pixels, one
# Philox call per four channels, four 16-byte loads in flight).
MAP_TILE = 8192
MAP_TILE_ROWS = 64  # rows (channels) first taken, 128 bytes of bf16: the columns get the rest


def map_tile_config(num_rows, num_columns):
    """(BLOCK_R, BLOCK_C, num_warps) of the map modes: up to MAP_TILE_ROWS rows, the columns (one map's pixels)
    filling the tile, then more rows where the map is small."""
    block_r = min(next_power_of_2(num_rows), MAP_TILE_ROWS)
    block_c = min(next_power_of_2(num_columns), MAP_TILE // block_r)
    block_r = min(next_power_of_2(num_rows), MAP_TILE // block_c)
    return block_r, block_c, max(1, min(8, block_r * block_c // 256))


# seed and offset change from call to call: specializing on their values would compile new variants
@triton.jit(do_not_specialize=["seed", "offset_low", "offset_high"])
def dropout_forward_kernel(
    input_ptr, residual_ptr, output_ptr, bias_ptr,
    num_groups, num_rows, num_columns, tiles_per_program,
    input_group_stride, input_row_stride, input_column_stride,
    residual_group_stride, residual_row_stride, residual_column_stride,
    output_group_stride, output_row_stride, output_column_stride,
    key_group_stride, key_row_stride, key_column_stride,
    map_size, seed, offset_low, offset_high, p, scale, param_a, param_b,
    DROPOUT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
    DRAWS: tl.constexpr, SEED_ON_DEVICE: tl.constexpr,
):
    """output = residual + dropout(activation(input + bias)), each part optional."""
    if SEED_ON_DEVICE:  # drawn inside a CUDA graph: seed points to the value each replay draws anew
        seed = tl.load(seed)
    pid_rows = tl.program_id(0)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    for tile in range(first_tile, last_tile):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_rows) & (columns[None, :] < num_columns)
        x = tl.load(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                         input_column_stride), mask=mask, other=0)
        x = to_compute_dtype(x.to(output_ptr.dtype.element_ty))
        if HAS_BIAS:
            bias = tl.load(bias_ptr + rows, mask=rows < num_rows, other=0)
            x += to_compute_dtype(bias.to(output_ptr.dtype.element_ty))[:, None]
        y = apply_activation(x, ACTIVATION, param_a, param_b)
        if DROPOUT:
            y = y * _tile_keep_scale(group, rows, columns, tile, num_columns, key_group_stride, key_row_stride,
                                     key_column_stride, map_size, seed, offset_low, offset_high, p, scale,
                                     BLOCK_R, BLOCK_C, DRAWS)
        if HAS_RESIDUAL:
            residual = tl.load(residual_ptr + tile_offsets(group, rows, columns, residual_group_stride,
                                                       residual_row_stride, residual_column_stride), mask=mask)
            y += to_compute_dtype(residual.to(output_ptr.dtype.element_ty))
        tl.store(output_ptr + tile_offsets(group, rows, columns, output_group_stride, output_row_stride,
                                       output_column_stride), y.to(output_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["seed", "offset_low", "offset_high"])
def dropout_backward_kernel(
    grad_output_ptr, input_ptr, grad_input_ptr, bias_ptr, bias_partial_ptr,
    num_groups, num_rows, num_columns, tiles_per_program,
    grad_output_group_stride, grad_output_row_stride, grad_output_column_stride,
    input_group_stride, input_row_stride, input_column_stride,
    grad_input_group_stride, grad_input_row_stride, grad_input_column_stride,
    key_group_stride, key_row_stride, key_column_stride,
    map_size, seed, offset_low, offset_high, p, scale, param_a, param_b,
    DROPOUT: tl.constexpr, HAS_BIAS: tl.constexpr, BIAS_GRAD: tl.constexpr,
    ACTIVATION: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
    DRAWS: tl.constexpr, SEED_ON_DEVICE: tl.constexpr,
):
    """grad_input = activation'(input + bias) * mask * scale * grad_output, the mask regenerated from the
    seed. BIAS_GRAD: this program's column sum of grad_input per row goes to bias_partial[pid_split, row]
    (in the compute dtype)."""
    if SEED_ON_DEVICE:  # drawn inside a CUDA graph: seed points to the value each replay draws anew
        seed = tl.load(seed)
    pid_rows = tl.program_id(0)
    pid_split = tl.program_id(1)
    first_tile, last_tile = program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C)
    bias_grad = compute_full(0.0, grad_output_ptr, BLOCK_R)
    for tile in range(first_tile, last_tile):
        group, rows, columns = tile_coordinates(pid_rows, tile, num_columns, BLOCK_R, BLOCK_C, WIDE_INDEX)
        mask = (rows[:, None] < num_rows) & (columns[None, :] < num_columns)
        grad = to_compute_dtype(tl.load(grad_output_ptr + tile_offsets(
            group, rows, columns, grad_output_group_stride, grad_output_row_stride, grad_output_column_stride),
            mask=mask, other=0))
        if DROPOUT:
            grad = grad * _tile_keep_scale(group, rows, columns, tile, num_columns, key_group_stride,
                                           key_row_stride, key_column_stride, map_size, seed, offset_low,
                                           offset_high, p, scale, BLOCK_R, BLOCK_C, DRAWS)
        if ACTIVATION != IDENTITY:
            x = tl.load(input_ptr + tile_offsets(group, rows, columns, input_group_stride, input_row_stride,
                                             input_column_stride), mask=mask, other=0)
            x = to_compute_dtype(x.to(grad_output_ptr.dtype.element_ty))
            if HAS_BIAS:
                bias = tl.load(bias_ptr + rows, mask=rows < num_rows, other=0)
                x += to_compute_dtype(bias.to(grad_output_ptr.dtype.element_ty))[:, None]
            grad = activation_backward_from_input(grad, x, ACTIVATION, param_a, param_b)
        tl.store(grad_input_ptr + tile_offsets(group, rows, columns, grad_input_group_stride, grad_input_row_stride,
                                           grad_input_column_stride), grad.to(grad_input_ptr.dtype.element_ty),
                 mask=mask)
        if BIAS_GRAD:
            bias_grad += tl.sum(tl.where(mask, grad, 0), axis=1)
    if BIAS_GRAD:
        rows = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
        tl.store(bias_partial_ptr + pid_split * num_rows + rows, bias_grad, mask=rows < num_rows)
