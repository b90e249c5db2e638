"""Dropout without a mask: dropout, channel-wise dropout1d/2d/3d and fused_dropout
(residual + dropout(activation(input + bias))): host forward/backward, the ops tritonlayers::dropout (every
form; autograd from register_autograd) and tritonlayers::dropout_ (in place), and the functional API.

The seed and offset are drawn by an op of their own (_random.draw_seed_offset) before the dropout op runs.
Backward regenerates the mask from them; nothing input-sized is saved for plain dropout, and fused_dropout
saves the input (and bias) only when its activation needs them.
"""
import warnings
from typing import NamedTuple, Optional, Tuple

import torch

from ._cache import BoundedCache
from ._fast_launch import run_kernel
from ._launch import check_no_internal_overlap, check_tensor, launch_device, sm_count
from ._layout import empty_like_dense, needs_wide_index, reduction_geometry
from ._library import below_autograd, custom_op, empty_placeholder, mark_written, or_placeholders, writing_op
from ._random import draw_seed_offset, seed_offset_values
from .activation import ActivationSpec, resolve_activation
from .kernels.dropout import (FOURS_ALONG_COLUMNS, FOURS_ALONG_ROWS, MAP_PER_ROW, MAPS_IN_FOURS, PER_ELEMENT,
                              dropout_backward_kernel, dropout_forward_kernel, map_tile_config)
from .kernels.host_math import cdiv
from .kernels.tiles import split_columns, tile_launch_config

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
OFFSET_LOW_MASK = 2**31 - 1  # the Philox offset goes to the kernels as two int32 words (see _philox4)


class DropoutPlan(NamedTuple):
    """How a call draws and indexes. Keys are logical row-major indices, so masks do not depend on layouts;
    map_size consecutive keys share one draw (1: element-wise; a feature map's size: channel-wise). Rows
    run along row_dim; rows_fixed: they must (a bias runs along it), else contiguous tensors are walked as
    one flat row."""
    shape: tuple
    row_dim: int
    map_size: int = 1
    rows_fixed: bool = False

    @property
    def key_strides(self):
        return torch.empty(self.shape, device="meta").stride()

    @property
    def draws(self):
        """Philox counters a call uses: one per element, or one per (sample, channel) map."""
        return max(1, torch.Size(self.shape).numel() // self.map_size)


def _launch(kernel, plan, tensors, bias, seed, offset, p, spec, bias_grad=False, **constexprs):
    """Run a dropout kernel over `tensors` (of plan.shape, the written one last, possibly a contiguous
    stand-in: returned) and a 1-D bias (or None). Returns (written tensor, bias partials): with bias_grad,
    the per-program column sums of the written tensor, (splits, rows) in the compute dtype."""
    key = (kernel, plan, tuple([(t.shape, t.stride(), t.dtype) for t in tensors]), tensors[0].device, bias_grad)
    launch = _LAUNCHES.get(key)
    if launch is None:
        launch = _LAUNCHES.put(key, _Launch(kernel, plan, tensors, bias_grad))
    # Without copies the kernels take the tensors as given: launch.scalars hold the strides they are walked
    # with (the flat or collapsed views the launch was worked out on share their pointers).
    if launch.copies:
        tensors = (*(tensor.contiguous() for tensor in tensors[:-1]),
                   torch.empty(plan.shape, dtype=tensors[-1].dtype, device=tensors[-1].device))
    partial = torch.empty(launch.partials, dtype=_compute_dtype(tensors[0]), device=tensors[0].device) \
        if bias_grad else None
    pointers = (bias if bias is not None else tensors[0],)
    if kernel is dropout_backward_kernel:
        pointers += (partial if partial is not None else tensors[0],)
    head = (*tensors, *pointers, *launch.scalars)
    tail = (offset & OFFSET_LOW_MASK, offset >> 31, p, 0.0 if p >= 1 else 1.0 / (1.0 - p), spec.param_a, spec.param_b)
    flags = dict(HAS_BIAS=bias is not None, ACTIVATION=spec.kernel_id, **launch.constexprs, **constexprs)
    seed_on_device = isinstance(seed, torch.Tensor)
    if not seed_on_device and tensors[0].is_cuda and tuple(flags.items()) not in launch.capture_ready:
        _prepare_capture(kernel, head, tail, flags)
        launch.capture_ready.add(tuple(flags.items()))
    run_kernel(kernel, launch.grid, *head, seed, *tail, SEED_ON_DEVICE=seed_on_device, **flags)
    return tensors[-1], partial


_LAUNCHES = BoundedCache()  # every training step repeats its dropout calls' shapes


def _prepare_capture(kernel, head, tail, flags):
    """Compile and load the device-seed twin of a launch (what a CUDA graph capture of the call runs) by
    launching it over an empty grid: a capture cannot load a module, and the warm-up steps before one run the
    host-seed kernels only."""
    seed = torch.zeros(1, dtype=torch.int64, device=head[0].device)
    run_kernel(kernel, (0, 1), *head, seed, *tail, SEED_ON_DEVICE=True, **flags)


class _Launch:
    """What a dropout launch over tensors of given shapes, strides and dtypes needs besides the tensors and
    the draw: whether they are copied first, the grid, the geometry's scalar arguments and the tile
    constexprs. Worked out once per layout: it was most of a call's host time."""

    def __init__(self, kernel, plan, tensors, bias_grad):
        device = tensors[0].device
        plan, tensors, self.copies = _indexable(plan, tensors)
        key = torch.empty_strided(plan.shape, plan.key_strides, device="meta")
        num_groups, num_rows, num_columns, strides = reduction_geometry(plan.row_dim, *tensors, key)
        maps = _maps_along_rows(plan, strides[-1], num_columns)
        if maps:
            block_r, block_c, num_warps = map_tile_config(num_rows, num_columns)
        else:
            block_r, block_c, num_warps = tile_launch_config(num_rows, num_columns, strides[0][1] == 1)
        row_blocks = cdiv(num_rows, block_r)
        # Programs to fill the device a few times over; column sums for a bias want fewer, longer programs.
        # Channel-wise launches (never a bias) take a tile per program, as element-wise ones over a flat row do:
        # looping 24 tiles of 4 KiB in each of 4 programs an SM, one tile's loads in flight at a time, channels_last
        # dropout2d on 32x256x56x56 bf16 took 127 us on an H200 (element-wise dropout on 8192x4096: 44 us).
        programs = (row_blocks * num_groups * cdiv(num_columns, block_c) if maps
                    else (2 if bias_grad else 4) * sm_count(device))
        tiles_per_program, splits = split_columns(num_groups, num_columns, block_c, row_blocks, programs)
        self.grid, self.partials = (row_blocks, splits), (splits, num_rows)
        self.scalars = (num_groups, num_rows, num_columns, tiles_per_program,
                        *(s for tensor_strides in strides for s in tensor_strides), plan.map_size)
        self.constexprs = dict(BLOCK_R=block_r, BLOCK_C=block_c, WIDE_INDEX=needs_wide_index(*tensors, key),
                               DRAWS=draw_mode(plan, strides[-1], num_columns, block_r, block_c),
                               num_warps=num_warps)
        self.capture_ready = set()  # the flags whose device-seed twin is loaded (see _prepare_capture)


def _maps_along_rows(plan, key_strides, num_columns):
    """Channel-wise, each row one map, the columns spanning it (channels_last: rows are the channels)."""
    key_group, key_row, key_column = key_strides
    return (plan.map_size > 1 and key_column == 1 and key_row == plan.map_size == num_columns
            and key_group % plan.map_size == 0)


def draw_mode(plan, key_strides, num_columns, block_r, block_c):
    """kernels/dropout.py's DRAWS for a launch: fours of consecutive element keys along the tile's columns or
    rows (one Philox call per four), a map per tile row (channel-wise, the columns spanning one map: one call
    per four rows when the maps of a group's rows come in aligned fours, else per row), else one call per
    element. Each makes the same decisions."""
    key_group, key_row, key_column = key_strides
    if plan.map_size == 1 and key_group % 4 == 0:
        if key_column == 1 and key_row % 4 == 0 and block_c % 4 == 0:
            return FOURS_ALONG_COLUMNS.value
        if key_row == 1 and key_column % 4 == 0 and block_r % 4 == 0:
            return FOURS_ALONG_ROWS.value
    if _maps_along_rows(plan, key_strides, num_columns):
        return MAPS_IN_FOURS.value if key_group % (4 * plan.map_size) == 0 and block_r % 4 == 0 else MAP_PER_ROW.value
    return PER_ELEMENT.value


def _compute_dtype(tensor):
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def _bias_grad_like(grad_output, plan):
    """An uninitialized bias gradient: one value per row, in the compute dtype."""
    rows = plan.shape[plan.row_dim] if plan.shape else 1
    return torch.empty(rows, dtype=_compute_dtype(grad_output), device=grad_output.device)


def _indexable(plan, tensors):
    """(plan, tensors, copies) ready for a launch: contiguous tensors (0-d ones too) as flat views when rows
    may move; when the dims besides plan.row_dim do not collapse to two groups together with the logical key
    layout, copies is True and the tensors are contiguous stand-ins (the launch then copies for real)."""
    if not plan.shape or not plan.rows_fixed and all(t.is_contiguous() for t in tensors):
        # one flat row: key = memory offset, long contiguous rows (W = 56 or 7 rows would defeat 16-byte access)
        numel = torch.Size(plan.shape).numel()
        plan, tensors = plan._replace(shape=(numel,), row_dim=0), tuple(tensor.view(numel) for tensor in tensors)
    key = torch.empty_strided(plan.shape, plan.key_strides, device="meta")
    if reduction_geometry(plan.row_dim, *tensors, key) is not None:
        return plan, tensors, False
    return plan, tuple(torch.empty(plan.shape, dtype=t.dtype, device="meta") for t in tensors), True


def _flat_bias(bias, plan):
    """The bias as the contiguous 1-D tensor the kernels index by row (a one-element bias repeated)."""
    if bias is None:
        return None
    rows = plan.shape[plan.row_dim] if plan.shape else 1
    return bias.reshape(-1).expand(rows).contiguous()


def dropout_forward(input, p, plan, seed, offset, *, bias=None, residual=None, spec=ActivationSpec("identity"),
                    output_dtype=None, inplace=False, apply_dropout=True):
    """residual + dropout(activation(input + bias)); written into input when inplace."""
    output = input if inplace else empty_like_dense(input, dtype=output_dtype)
    if input.numel() == 0:
        return output
    with launch_device("dropout", input, bias, residual):
        target, _ = _launch(dropout_forward_kernel, plan, (input, residual if residual is not None else input, output),
                            _flat_bias(bias, plan), seed, offset, p, spec, DROPOUT=apply_dropout,
                            HAS_RESIDUAL=residual is not None)
    if target.data_ptr() != output.data_ptr():
        output.copy_(target.reshape(output.shape))
    return output


def dropout_backward(grad_output, p, plan, seed, offset, *, input=None, bias=None, spec=ActivationSpec("identity"),
                     input_dtype=None, bias_grad=False, apply_dropout=True):
    """(grad_input, grad_bias as a 1-D tensor in the compute dtype, or None): the mask regenerated from seed
    and offset; input
    and bias are read only when the activation needs them."""
    grad_input = empty_like_dense(grad_output, dtype=input_dtype)
    if grad_output.numel() == 0:
        return grad_input, (_bias_grad_like(grad_output, plan).zero_() if bias_grad else None)
    needs_input = spec.name != "identity"
    with launch_device("dropout", grad_output, input, bias):
        target, partial = _launch(dropout_backward_kernel, plan,
                                  (grad_output, input if needs_input else grad_output, grad_input),
                                  _flat_bias(bias, plan) if needs_input else None, seed, offset, p, spec,
                                  bias_grad=bias_grad, DROPOUT=apply_dropout, BIAS_GRAD=bias_grad)
    if target.data_ptr() != grad_input.data_ptr():
        grad_input.copy_(target.reshape(grad_input.shape))
    return grad_input, (partial.sum(0) if bias_grad else None)


@custom_op("dropout")
def _dropout(input: torch.Tensor, bias: Optional[torch.Tensor], residual: Optional[torch.Tensor],
             seed_offset: torch.Tensor, p: float, row_dim: int, map_size: int, rows_fixed: bool, activation: str,
             param_a: float, param_b: float, output_dtype: torch.dtype) -> torch.Tensor:
    """residual + dropout(activation(input + bias)); p == 0: no dropout (and no draw was made)."""
    plan = DropoutPlan(tuple(input.shape), row_dim, map_size, rows_fixed)
    return dropout_forward(input, p, plan, *seed_offset_values(seed_offset), bias=bias, residual=residual,
                           spec=ActivationSpec(activation, param_a, param_b), output_dtype=output_dtype,
                           apply_dropout=p > 0)


@_dropout.register_fake
def _(input, bias, residual, seed_offset, p, row_dim, map_size, rows_fixed, activation, param_a, param_b,
      output_dtype):
    return empty_like_dense(input, dtype=output_dtype)


@custom_op("dropout_backward")
def _dropout_grad(grad_output: torch.Tensor, input: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  seed_offset: torch.Tensor, p: float, row_dim: int, map_size: int, rows_fixed: bool,
                  activation: str, param_a: float, param_b: float, input_dtype: torch.dtype,
                  bias_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """(grad_input, grad_bias: one value per row in the compute dtype, or a placeholder unless bias_grad)."""
    plan = DropoutPlan(tuple(grad_output.shape), row_dim, map_size, rows_fixed)
    grad_input, grad_bias = dropout_backward(
        grad_output, p, plan, *seed_offset_values(seed_offset), input=input, bias=bias,
        spec=ActivationSpec(activation, param_a, param_b), input_dtype=input_dtype, bias_grad=bias_grad,
        apply_dropout=p > 0)
    return or_placeholders((grad_input, grad_bias), grad_input)


@_dropout_grad.register_fake
def _(grad_output, input, bias, seed_offset, p, row_dim, map_size, rows_fixed, activation, param_a, param_b,
      input_dtype, bias_grad):
    grad_input = empty_like_dense(grad_output, dtype=input_dtype)
    plan = DropoutPlan(tuple(grad_output.shape), row_dim, map_size, rows_fixed)
    return grad_input, _bias_grad_like(grad_output, plan) if bias_grad else empty_placeholder(grad_input)


def _setup_context(ctx, inputs, output):
    """Saves the seed and offset, and input and bias only when the activation's derivative needs them."""
    input, bias, residual, seed_offset, *plan_and_spec, _ = inputs
    activation = plan_and_spec[4]
    ctx.seed_offset, ctx.plan_and_spec = seed_offset, plan_and_spec
    if activation != "identity":
        ctx.save_for_backward(input, bias)
    ctx.input_dtype = input.dtype
    ctx.bias_dtype, ctx.bias_shape = (bias.dtype, bias.shape) if bias is not None else (None, None)
    ctx.residual_dtype = residual.dtype if residual is not None else None


def _backward(ctx, grad_output):
    input, bias = ctx.saved_tensors or (None, None)
    needs_input_grad, needs_bias_grad, needs_residual_grad = ctx.needs_input_grad[:3]
    grad_input = grad_bias = grad_residual = None
    if needs_input_grad or needs_bias_grad:
        grad_input, grad_bias = _dropout_grad(grad_output, input, bias, ctx.seed_offset, *ctx.plan_and_spec,
                                              ctx.input_dtype, needs_bias_grad)
        if needs_bias_grad:  # a one-element bias was broadcast over every row: sum them
            grad_bias = (grad_bias.sum() if ctx.bias_shape.numel() == 1 else grad_bias)
            grad_bias = grad_bias.to(ctx.bias_dtype).reshape(ctx.bias_shape)
        else:
            grad_bias = None
    if needs_residual_grad:
        grad_residual = grad_output.to(ctx.residual_dtype)  # no copy when the dtypes agree
    return (grad_input, grad_bias, grad_residual) + (None,) * 9


_dropout.register_autograd(_backward, setup_context=_setup_context)


class DropoutInplaceFunction(torch.autograd.Function):
    """Autograd of tritonlayers::dropout_. Saves the seed and offset only."""

    @staticmethod
    def forward(ctx, input, seed_offset, p, row_dim, map_size):
        below_autograd(_dropout_inplace, input, seed_offset, p, row_dim, map_size)
        ctx.mark_dirty(input)
        ctx.seed_offset, ctx.plan = seed_offset, (p, row_dim, map_size)
        return input

    @staticmethod
    def backward(ctx, grad_output):
        grad_input, _ = _dropout_grad(grad_output, None, None, ctx.seed_offset, *ctx.plan, False, "identity", 0.0,
                                      0.0, grad_output.dtype, False)
        return grad_input, None, None, None, None


def _dropout_inplace_impl(input, seed_offset, p, row_dim, map_size):
    plan = DropoutPlan(tuple(input.shape), row_dim, map_size)
    dropout_forward(input, p, plan, *seed_offset_values(seed_offset), inplace=True)
    mark_written(input)


_dropout_inplace = writing_op(
    "dropout_(Tensor(a!) input, Tensor seed_offset, float p, int row_dim, int map_size) -> ()",
    _dropout_inplace_impl, lambda input, seed_offset, p, row_dim, map_size: None, DropoutInplaceFunction)


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _check_dtype(op_name, input):
    if input.dtype not in FLOATING:
        raise RuntimeError(f"{op_name}: 'input' has dtype {input.dtype}; dropout needs a floating point input "
                           "(torch.float16, torch.bfloat16, torch.float32 or torch.float64)")


def _dropout_op(op_name, input, p, training, inplace, plan):
    """torch's shortcuts first (the input itself for p == 0, eval, or an empty tensor; zeros times input for
    p == 1, drawing no randomness), then the kernel."""
    if p == 0 or not training or input.numel() == 0:
        return input
    _check_dtype(op_name, input)
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    if inplace:
        check_no_internal_overlap(input)  # before the draw: a refused call leaves the generator as it was
    seed_offset = draw_seed_offset(input.device, plan.draws)
    if inplace:
        _dropout_inplace(input, seed_offset, float(p), plan.row_dim, plan.map_size)
        return input
    return _dropout(input, None, None, seed_offset, float(p), plan.row_dim, plan.map_size, False, "identity", 0.0,
                    0.0, input.dtype)


def _innermost_dim(input):
    """The dim with the smallest stride among dims longer than 1: rows along it are contiguous."""
    if input.dim() == 0:
        return 0
    dims = [d for d in range(input.dim()) if input.shape[d] > 1] or [input.dim() - 1]
    strides = input.stride()
    innermost = dims[0]
    for d in dims[1:]:  # the first smallest, as min(key=) would pick; a loop dynamo traces
        if strides[d] < strides[innermost]:
            innermost = d
    return innermost


def dropout(input, p=0.5, training=True, inplace=False):
    check_tensor("dropout", "input", input)
    _check_p(p)
    plan = DropoutPlan(tuple(input.shape), _innermost_dim(input))
    return _dropout_op("dropout", input, p, training, inplace, plan)


def _feature_dropout(op_name, input, p, training, inplace, batched):
    """Channel-wise dropout over (N, C, *) (batched) or (C, *) (unbatched) inputs: one draw per map, the
    dims after the channel dim."""
    channel_dim = 1 if batched else 0
    if input.dim() < channel_dim + 1:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    map_size = torch.Size(input.shape[channel_dim + 1:]).numel()
    plan = DropoutPlan(tuple(input.shape), _innermost_dim(input), map_size=max(map_size, 1))
    return _dropout_op(op_name, input, p, training, inplace, plan)


def dropout1d(input, p=0.5, training=True, inplace=False):
    check_tensor("dropout1d", "input", input)
    _check_p(p)
    if input.dim() not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input. Note that dropout1d exists "
            "to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an "
            "optional batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout("dropout1d", input, p, training, inplace, batched=input.dim() == 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    check_tensor("dropout2d", "input", input)
    _check_p(p)
    if input.dim() not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.dim()}-D input to dropout2d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if input.dim() == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d "
            "instead.", stacklevel=2)
    # torch treats every rank as batched here (3-D inputs included, see the warning above)
    return _feature_dropout("dropout2d", input, p, training, inplace, batched=True)


def dropout3d(input, p=0.5, training=True, inplace=False):
    check_tensor("dropout3d", "input", input)
    _check_p(p)
    if input.dim() not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout3d exists to provide channel-wise dropout on inputs with 3 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).", stacklevel=2)
    # torch unsqueezes every non-5-D input to a batch of one: channels are then its first dim
    return _feature_dropout("dropout3d", input, p, training, inplace, batched=input.dim() == 5)


def _bias_dim(input, bias):
    """The dim of input that bias runs along, by torch's broadcasting (aligned from the right): bias must
    have one dim of input's size there and ones elsewhere, e.g. (D,) for the last dim or (C, 1, 1) for the
    channels of an NCHW map."""
    shape = tuple(bias.shape)
    offset = input.dim() - len(shape)
    runs = [offset + i for i, size in enumerate(shape) if size != 1]
    if offset < 0 or len(runs) > 1 or (runs and shape[runs[0] - offset] != input.shape[runs[0]]) or (
            not runs and input.dim() == 0):
        raise NotImplementedError(
            f"fused_dropout: 'bias' of shape {shape} must broadcast along a single dim of input {tuple(input.shape)} "
            "(e.g. (D,) for the last dim, or (C, 1, 1) for the channels of an NCHW map)")
    return runs[0] if runs else input.dim() - 1


def fused_dropout(input, p=0.5, training=True, *, bias=None, activation=None, residual=None):
    """residual + dropout(activation(input + bias), p, training) in one pass forward and one backward.

    bias broadcasts along one dim of input (torch's rules); residual has input's shape; activation is a name
    of the activation family or a torch.nn activation module. Gradients flow to input, bias and residual.
    """
    check_tensor("fused_dropout", "input", input)
    _check_p(p)
    spec = resolve_activation(activation)
    _check_dtype("fused_dropout", input)
    output_dtype = input.dtype
    if bias is not None:
        check_tensor("fused_dropout", "bias", bias)
        _check_dtype("fused_dropout", bias)
        output_dtype = torch.promote_types(output_dtype, bias.dtype)
    if residual is not None:
        check_tensor("fused_dropout", "residual", residual)
        _check_dtype("fused_dropout", residual)
        if residual.shape != input.shape:
            raise ValueError(f"fused_dropout: 'residual' must have input's shape {tuple(input.shape)}, got "
                             f"{tuple(residual.shape)}")
        output_dtype = torch.promote_types(output_dtype, residual.dtype)
    apply_dropout = training and p > 0
    if not apply_dropout and bias is None and residual is None and spec.name == "identity":
        return input
    row_dim = _bias_dim(input, bias) if bias is not None else _innermost_dim(input)
    plan = DropoutPlan(tuple(input.shape), row_dim, rows_fixed=bias is not None)
    # no dropout: p 0 and a placeholder seed, drawing nothing from the generator
    seed_offset = (draw_seed_offset(input.device, plan.draws) if apply_dropout
                   else torch.zeros(2, dtype=torch.int64, device="cpu"))
    return _dropout(input, bias, residual, seed_offset, float(p) if apply_dropout else 0.0, plan.row_dim,
                    plan.map_size, plan.rows_fixed, *spec, output_dtype)
