"""BatchNorm: host forward/backward, the op tritonlayers::batch_norm (it updates the running statistics in place)
with its autograd Function, and the functional entry point, with the fused form activation(BN(x) + residual)
and the cross-process statistics SyncBatchNorm plugs in.

Training forward: one resident kernel when a channel's N x spatial values fit in registers (one read);
otherwise a split statistics pass, a tiny merge that finalizes (and updates the running statistics in
place), and a normalizing pass. Backward mirrors it: one resident kernel, or a reduction pass for the two
per-channel sums and an input-gradient pass. Saved: the input, the saved mean and inverse std (compute
dtype, fp32 for half inputs), and for a fused activation either the output (when it determines the
derivative, e.g. relu) or the residual (to recompute the pre-activation).
"""
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch

from ._fast_launch import run_kernel
from ._launch import check_tensor, launch_device, sm_count
from ._layout import needs_wide_index, reduction_geometry
from ._library import (below_autograd, custom_op, empty_placeholder, mark_written, no_grads, or_placeholders,
                       runs_eagerly, wanted, writing_op)
from ._split_k import sum_partials
from .activation import ActivationSpec, resolve_activation
from .kernels.batch_norm import (batch_norm_backward_input_kernel, batch_norm_backward_reduce_kernel,
                                 batch_norm_backward_resident_kernel, batch_norm_forward_kernel,
                                 batch_norm_forward_resident_kernel, resident_config)
from .kernels.batch_norm_stats import batch_norm_merge_kernel, batch_norm_stats_kernel, merge_launch
from .kernels.host_math import cdiv
from .kernels.tiles import split_columns, tile_launch_config

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Sync(NamedTuple):
    """How SyncBatchNorm joins ranks: gather each rank's (count, mean, M2) [3, C] into [world, 3, C], and
    sum the backward's (sum dz, sum dz * xhat, count) [3, C] over ranks."""
    gather_stats: Callable
    all_reduce_sums: Callable


def _compute_dtype(tensor):
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def _views(tensors):
    """The (groups, channels, columns) view of same-shaped (N, C, *) tensors, copying to contiguous (with a
    contiguous stand-in for the written tensor, last) when their layouts do not collapse together.
    Returns (tensors, geometry)."""
    geometry = reduction_geometry(1, *tensors)
    if geometry is None:
        tensors = (*(t.contiguous() for t in tensors[:-1]),
                   torch.empty(tensors[-1].shape, dtype=tensors[-1].dtype, device=tensors[-1].device))
        geometry = reduction_geometry(1, *tensors)
    return tensors, geometry


def _per_channel(*tensors):
    """Per-channel vectors as the kernels index them, by channel with unit stride: a strided view (a weight
    sliced out of a larger buffer, an expanded one) as a dense copy. None stays None."""
    return tuple(t if t is None or t.is_contiguous() else t.contiguous() for t in tensors)


def _flat_strides(strides):
    return [s for tensor_strides in strides for s in tensor_strides]


# Each column split writes three fp32 sums per channel for the merge (or the split-K sum) to read back: they
# stay within 1 / PARTIAL_SHARE of the input's bytes. Tiles along contiguous channels (channels_last) span
# at most CHANNEL_BLOCK of them, so a short map gets its programs from channel blocks rather than splits:
# 2048 channels a tile split a 32x2048x4x4 batch 512 ways, whose sums were six times the input's bytes.
PARTIAL_SHARE = 8
CHANNEL_BLOCK = 64


def _split_config(geometry, device, element_size):
    num_groups, num_channels, num_columns, strides = geometry
    block_r, block_c, num_warps = tile_launch_config(num_channels, num_columns, strides[0][1] == 1,
                                                     max_block_r=CHANNEL_BLOCK)
    row_blocks = cdiv(num_channels, block_r)
    max_splits = max(1, num_groups * num_columns * element_size // (PARTIAL_SHARE * 3 * 4))
    tiles_per_program, splits = split_columns(num_groups, num_columns, block_c, row_blocks, 4 * sm_count(device),
                                              max_splits)
    return dict(block_r=block_r, block_c=block_c, num_warps=num_warps, grid=(row_blocks, splits),
                tiles_per_program=tiles_per_program, splits=splits)


def _resident(geometry, live_tensors, sync, wide):
    """Resident launch constexprs when one program can hold its channels' values, else None. Not for SyncBatchNorm
    (statistics must cross ranks before normalizing) nor where offsets may pass int32 (`wide`: the resident
    kernels index in int32; a few values a channel far apart, as in a narrow view of a huge tensor)."""
    if sync is not None or wide:
        return None
    num_groups, num_channels, num_columns, strides = geometry
    config = resident_config(num_channels, num_groups * num_columns, live_tensors, strides[0][1] == 1)
    if config is None:
        return None
    block_r, block_j, num_warps = config
    # a value's (group, column) divides by num_columns: by a constant when Triton would not know it divides
    # by 16 (NCHW 7x7 and 14x14 maps), a multiply instead of a long division per value
    columns = num_columns if num_groups > 1 and num_columns % 16 else 0
    return dict(BLOCK_R=block_r, BLOCK_J=block_j, COLUMNS=columns, num_warps=num_warps)


def batch_norm_outputs(input, training, output_dtype):
    """(output, mean, invstd) as batch_norm_forward returns them: output like the input (in output_dtype), the
    batch statistics in the compute dtype when training, else placeholders."""
    output = torch.empty_like(input, dtype=output_dtype or input.dtype)
    if not training:
        return output, empty_placeholder(output), empty_placeholder(output)
    mean = torch.empty(input.shape[1], dtype=_compute_dtype(input), device=input.device)
    return output, mean, torch.empty_like(mean)


def batch_norm_forward(input, weight, bias, running_mean, running_var, training, momentum, eps, residual=None,
                       spec=ActivationSpec("identity"), sync: Optional[Sync] = None, output_dtype=None):
    """(output, mean, invstd): the batch statistics when training, placeholders in eval (the running buffers are
    the statistics then). Updates the running buffers in place when training."""
    output, mean, invstd = batch_norm_outputs(input, training, output_dtype)
    if input.numel() == 0:
        return output, mean, invstd
    num_channels = input.shape[1]
    stats_dtype = _compute_dtype(input)
    running_buffers = running_mean, running_var
    weight, bias, running_mean, running_var = _per_channel(weight, bias, running_mean, running_var)
    used_mean, used_invstd = (mean, invstd) if training else (running_mean, running_var)
    update_running = training and running_mean is not None
    residual_or_input = residual if residual is not None else input
    (x, res, out), geometry = _views((input, residual_or_input, output))
    num_groups, _, num_columns, strides = geometry
    common = dict(HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, HAS_RESIDUAL=residual is not None,
                  ACTIVATION=spec.kernel_id)
    dummy = used_mean
    weight_, bias_ = (weight if weight is not None else dummy), (bias if bias is not None else dummy)
    running = (running_mean if update_running else dummy, running_var if update_running else dummy)
    wide = needs_wide_index(x, res, out)
    with launch_device("batch_norm", input, weight, bias, residual, running_mean, running_var):
        resident = _resident(geometry, 2 if residual is not None else 1, sync, wide) if training else None
        if resident is not None:
            run_kernel(
                batch_norm_forward_resident_kernel, (cdiv(num_channels, resident["BLOCK_R"]),),
                x, res, out, used_mean, used_invstd, weight_, bias_, *running, num_channels, num_columns,
                num_groups * num_columns, *_flat_strides(strides), momentum, eps, spec.param_a, spec.param_b,
                UPDATE_RUNNING=update_running, **resident, **common)
        else:
            config = _split_config(geometry, input.device, input.element_size())
            if training:
                partial = torch.empty(config["splits"], 3, num_channels, dtype=stats_dtype, device=input.device)
                run_kernel(
                    batch_norm_stats_kernel, config["grid"],
                    x, partial, num_groups, num_channels, num_columns, config["tiles_per_program"], *strides[0],
                    BLOCK_R=config["block_r"], BLOCK_C=config["block_c"], WIDE_INDEX=wide,
                    num_warps=config["num_warps"])
                if sync is not None:
                    partial = sync.gather_stats(_merge(partial, num_channels))
                grid, tile = merge_launch(partial.shape[0], num_channels)
                run_kernel(
                    batch_norm_merge_kernel, grid,
                    partial, partial.shape[0], num_channels, partial, used_mean, used_invstd, *running, momentum, eps,
                    FINALIZE=True, UPDATE_RUNNING=update_running, **tile)
            run_kernel(
                batch_norm_forward_kernel, config["grid"],
                x, res, out, used_mean, used_invstd, weight_, bias_, num_groups, num_channels, num_columns,
                config["tiles_per_program"], *_flat_strides(strides), eps, spec.param_a, spec.param_b,
                USE_RUNNING=not training, BLOCK_R=config["block_r"], BLOCK_C=config["block_c"], WIDE_INDEX=wide,
                num_warps=config["num_warps"], **common)
    if out.data_ptr() != output.data_ptr():
        output.copy_(out)
    for buffer, written in zip(running_buffers, (running_mean, running_var)):
        if update_running and written is not buffer:  # a strided buffer updated through its dense copy
            buffer.copy_(written)
    return output, mean, invstd


def _merge(partial, num_channels):
    """Merge partial [parts, 3, C] statistics into one [3, C] (count, mean, M2)."""
    merged = torch.empty(3, num_channels, dtype=partial.dtype, device=partial.device)
    grid, tile = merge_launch(partial.shape[0], num_channels)
    run_kernel(
        batch_norm_merge_kernel, grid,
        partial, partial.shape[0], num_channels, merged, merged, merged, merged, merged, 0.0, 0.0,
        FINALIZE=False, UPDATE_RUNNING=False, **tile)
    return merged


def batch_norm_backward(grad_output, input, saved, weight, bias, mean, invstd, training, eps, spec, saved_is_output,
                        has_residual, needs, sync: Optional[Sync] = None, residual_dtype=None):
    """(grad_input, grad_weight, grad_bias, grad_residual), each None unless `needs` (four booleans) asks.
    saved: the output (saved_is_output) or the residual, read only for a fused activation.

    The kernel that reads the per-channel sums last stores the weight and bias gradients from them; with
    SyncBatchNorm (they are this rank's sums, the input gradient's are all ranks') or without an input
    gradient, they are copied from the sums."""
    needs_input, needs_weight, needs_bias, needs_residual = needs
    num_channels = input.shape[1]
    grad_input = torch.empty_like(input) if needs_input or needs_residual else None
    grad_residual = torch.empty_like(input, dtype=residual_dtype) if needs_residual else None
    grad_weight = input.new_empty(num_channels, dtype=weight.dtype) if needs_weight else None
    grad_bias = input.new_empty(num_channels, dtype=bias.dtype) if needs_bias else None
    outputs = (grad_input if needs_input else None, grad_weight, grad_bias, grad_residual)
    if input.numel() == 0:
        for grad in (grad_weight, grad_bias):
            if grad is not None:
                grad.zero_()
        return outputs
    sums_dtype = _compute_dtype(input)
    weight, bias, mean, invstd = _per_channel(weight, bias, mean, invstd)  # eval: the (maybe strided) buffers
    reads_saved = spec.name != "identity" and (saved_is_output or has_residual)
    saved_or_input = saved if reads_saved else input
    gi_or_go = grad_input if grad_input is not None else grad_output
    gr_or_go = grad_residual if grad_residual is not None else grad_output
    (go, x, sv, gi, gr), geometry = _views((grad_output, input, saved_or_input, gi_or_go, gr_or_go))
    num_groups, _, num_columns, strides = geometry
    dummy = mean
    weight_, bias_ = (weight if weight is not None else dummy), (bias if bias is not None else dummy)
    param_grads_in_kernel = sync is None and grad_input is not None
    param_grads = (grad_weight if grad_weight is not None else dummy, grad_bias if grad_bias is not None else dummy)
    common = dict(HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, HAS_RESIDUAL=has_residual,
                  SAVED_IS_OUTPUT=saved_is_output, ACTIVATION=spec.kernel_id)
    stores_param_grads = dict(GRAD_WEIGHT=needs_weight and param_grads_in_kernel,
                              GRAD_BIAS=needs_bias and param_grads_in_kernel)
    wide = needs_wide_index(go, x, sv, gi, gr)
    with launch_device("batch_norm", grad_output, input, weight):
        resident = (_resident(geometry, 3 if reads_saved else 2, sync, wide)
                    if training and grad_input is not None else None)
        if resident is not None:
            run_kernel(
                batch_norm_backward_resident_kernel, (cdiv(num_channels, resident["BLOCK_R"]),),
                go, x, sv, gi, gr, mean, invstd, weight_, bias_, *param_grads, num_channels, num_columns,
                num_groups * num_columns, *_flat_strides(strides), spec.param_a, spec.param_b,
                GRAD_RESIDUAL=needs_residual, **resident, **common, **stores_param_grads)
        else:
            config = _split_config(geometry, input.device, input.element_size())
            launch = dict(BLOCK_R=config["block_r"], BLOCK_C=config["block_c"], WIDE_INDEX=wide,
                          num_warps=config["num_warps"], USE_RUNNING=not training, **common)
            sums = None
            if training or needs_weight or needs_bias:
                sums = _backward_sums(go, x, sv, mean, invstd, weight_, bias_, geometry, config, eps, spec, launch,
                                      sums_dtype)
                if not param_grads_in_kernel:
                    _copy_param_grads(sums, grad_weight, grad_bias)
                if sync is not None and grad_input is not None:
                    # weight and bias gradients stay per rank, as torch's (DDP then averages them over ranks)
                    sums = sync.all_reduce_sums(sums)
            if grad_input is not None:
                run_kernel(
                    batch_norm_backward_input_kernel, config["grid"],
                    go, x, sv, gi, gr, mean, invstd, weight_, bias_, sums if sums is not None else mean,
                    *param_grads, num_groups, num_channels, num_columns, config["tiles_per_program"],
                    *_flat_strides(strides), eps, spec.param_a, spec.param_b, TRAINING=training,
                    GRAD_RESIDUAL=needs_residual, **launch, **stores_param_grads)
    if grad_input is not None and gi.data_ptr() != grad_input.data_ptr():
        grad_input.copy_(gi)
    if grad_residual is not None and gr.data_ptr() != grad_residual.data_ptr():
        grad_residual.copy_(gr)
    return outputs


def _backward_sums(go, x, sv, mean, invstd, weight, bias, geometry, config, eps, spec, launch, sums_dtype):
    """The per-channel (sum dz, sum dz * xhat, count) [3, channels]: a partial per split, then their sum."""
    num_groups, num_channels, num_columns, strides = geometry
    partial = torch.empty(config["splits"], 3, num_channels, dtype=sums_dtype, device=x.device)
    run_kernel(
        batch_norm_backward_reduce_kernel, config["grid"],
        go, x, sv, mean, invstd, weight, bias, partial, num_groups, num_channels, num_columns,
        config["tiles_per_program"], *_flat_strides(strides[:3]), eps, spec.param_a, spec.param_b, **launch)
    if config["splits"] == 1:
        return partial[0]
    sums = torch.empty(3, num_channels, dtype=sums_dtype, device=x.device)
    sum_partials(partial, sums, 3, num_channels, 3, 0, num_channels, 1)
    return sums


def _copy_param_grads(sums, grad_weight, grad_bias):
    if grad_weight is not None:
        grad_weight.copy_(sums[1])
    if grad_bias is not None:
        grad_bias.copy_(sums[0])


class BatchNormFunction(torch.autograd.Function):
    """Autograd of tritonlayers::batch_norm (its autograd kernel: the op updates the running statistics, and
    register_autograd takes only ops that write nothing), and of SyncBatchNorm's calls (`sync` given), which
    run the host functions directly: an op cannot take the callables that join the ranks.

    Saves the input, weight, bias, the statistics used (batch ones, or the running buffers in eval) and, for an
    activation fused with a residual, the output (where it determines the derivative) or the residual."""

    @staticmethod
    def forward(ctx, input, weight, bias, residual, running_mean, running_var, training, momentum, eps, activation,
                param_a, param_b, output_dtype, sync=None):
        spec = ActivationSpec(activation, param_a, param_b)
        args = (input, weight, bias, residual, running_mean, running_var, training, momentum, eps, activation,
                param_a, param_b, output_dtype)
        if sync is None:
            # eager calls run the implementation; a tracer must see the op (below its autograd kernel)
            output, mean, invstd = _batch_norm_impl(*args) if runs_eagerly(args) else below_autograd(
                _batch_norm, *args)
        else:
            output, mean, invstd = batch_norm_forward(input, weight, bias, running_mean, running_var, training,
                                                      momentum, eps, residual, spec, sync, output_dtype)
        ctx.mark_non_differentiable(mean, invstd)
        ctx.set_materialize_grads(False)  # else backward gets zero-filled grad_mean and grad_invstd
        # a fused activation's derivative: from the output when a residual went into it (one read either way),
        # else from the pre-activation the backward recomputes from x, which it reads anyway (a read less in
        # both backward passes than reading the output)
        ctx.saved_is_output = spec.name != "identity" and spec.output_determines_gradient and residual is not None
        saved = output if ctx.saved_is_output else residual if spec.name != "identity" else None
        used = (mean, invstd) if training else (running_mean, running_var)
        ctx.save_for_backward(input, weight, bias, *used, saved)
        ctx.training, ctx.eps, ctx.spec, ctx.sync = training, eps, spec, sync
        ctx.has_residual = residual is not None
        ctx.residual_dtype = residual.dtype if residual is not None else None
        return output, mean, invstd

    @staticmethod
    def backward(ctx, grad_output, grad_mean, grad_invstd):
        if grad_output is None:
            return no_grads(ctx)
        input, weight, bias, mean, invstd, saved = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad[:4])
        if ctx.sync is None:
            grads = _batch_norm_grad(grad_output, input, saved, weight, bias, mean, invstd, ctx.training, ctx.eps,
                                     *ctx.spec, ctx.saved_is_output, ctx.has_residual, list(needs),
                                     ctx.residual_dtype)
            grads = wanted(grads, needs)
        else:
            grads = batch_norm_backward(grad_output, input, saved, weight, bias, mean, invstd, ctx.training, ctx.eps,
                                        ctx.spec, ctx.saved_is_output, ctx.has_residual, needs, ctx.sync,
                                        ctx.residual_dtype)
        return (*grads,) + (None,) * 10


def _batch_norm_impl(input, weight, bias, residual, running_mean, running_var, training, momentum, eps, activation,
                     param_a, param_b, output_dtype):
    result = batch_norm_forward(input, weight, bias, running_mean, running_var, training, momentum, eps, residual,
                                ActivationSpec(activation, param_a, param_b), None, output_dtype)
    if training:
        mark_written(running_mean, running_var)
    return result


def _batch_norm_fake(input, weight, bias, residual, running_mean, running_var, training, momentum, eps, activation,
                     param_a, param_b, output_dtype):
    return batch_norm_outputs(input, training, output_dtype)


_batch_norm = writing_op(
    "batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? residual, Tensor(a!)? running_mean, "
    "Tensor(b!)? running_var, bool training, float momentum, float eps, str activation, float param_a, "
    "float param_b, ScalarType output_dtype) -> (Tensor, Tensor, Tensor)",
    _batch_norm_impl, _batch_norm_fake, BatchNormFunction)


@custom_op("batch_norm_backward")
def _batch_norm_grad(grad_output: torch.Tensor, input: torch.Tensor, saved: Optional[torch.Tensor],
                     weight: Optional[torch.Tensor], bias: Optional[torch.Tensor], mean: torch.Tensor,
                     invstd: torch.Tensor, training: bool, eps: float, activation: str, param_a: float,
                     param_b: float, saved_is_output: bool, has_residual: bool, needs: List[bool],
                     residual_dtype: Optional[torch.dtype]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
    """(grad_input, grad_weight, grad_bias, grad_residual), a placeholder where `needs` does not ask."""
    grads = batch_norm_backward(grad_output, input, saved, weight, bias, mean, invstd, training, eps,
                                ActivationSpec(activation, param_a, param_b), saved_is_output, has_residual,
                                tuple(needs), None, residual_dtype)
    return or_placeholders(grads, input)


@_batch_norm_grad.register_fake
def _(grad_output, input, saved, weight, bias, mean, invstd, training, eps, activation, param_a, param_b,
      saved_is_output, has_residual, needs, residual_dtype):
    def per_channel(param):
        return input.new_empty(input.shape[1], dtype=param.dtype) if param is not None else None

    grads = (torch.empty_like(input), per_channel(weight), per_channel(bias),
             torch.empty_like(input, dtype=residual_dtype))
    return or_placeholders(wanted(grads, needs), input)


def _check_channels(name, tensor, num_channels):
    if tensor is not None and tensor.numel() != num_channels:
        raise RuntimeError(f"{name} should contain {num_channels} elements not {tensor.numel()}")


def check_batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, residual):
    """torch's checks, in torch's order and with its exception types, before anything is launched."""
    check_tensor("batch_norm", "input", input)
    if training:
        size = input.size()
        size_prods = size[0] if size else 1
        for i in range(len(size) - 2):
            size_prods *= size[i + 2]
        if size_prods == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool):
        raise TypeError(f"batch_norm(): argument 'momentum' must be float, not {type(momentum).__name__}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    if not training and running_mean is None:
        raise RuntimeError("running_mean must be defined in evaluation mode")
    num_channels = input.shape[1] if input.dim() > 1 else 0
    for name, tensor in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                         ("running_var", running_var)):
        _check_channels(name, tensor, num_channels)
    if input.dim() < 2:
        raise RuntimeError(f"batch_norm: 'input' must have a batch and a channel dim, got shape {tuple(input.shape)}")
    for name, tensor in (("input", input), ("weight", weight), ("bias", bias), ("running_mean", running_mean),
                         ("running_var", running_var), ("residual", residual)):
        if tensor is not None and tensor.dtype not in FLOATING:
            raise NotImplementedError(f"batch_norm: '{name}' has dtype {tensor.dtype}; tritonlayers supports "
                                      "torch.float16, torch.bfloat16, torch.float32 and torch.float64")
    if residual is not None and residual.shape != input.shape:
        raise ValueError(f"batch_norm: 'residual' must have input's shape {tuple(input.shape)}, got "
                         f"{tuple(residual.shape)}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-05,
               *, activation=None, residual=None, _sync=None, _checked=False):
    """F.batch_norm, plus keyword-only fusion: activation(BN(input) + residual) in one pass each way.
    (_checked: the modules ran torch's checks already, before counting the batch.)"""
    if not _checked:
        check_batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, residual)
    spec = resolve_activation(activation)
    output_dtype = torch.promote_types(input.dtype, residual.dtype) if residual is not None else input.dtype
    args = (input, weight, bias, residual, running_mean, running_var, bool(training), float(momentum), float(eps),
            *spec, output_dtype)
    if _sync is not None:
        return BatchNormFunction.apply(*args, _sync)[0]
    return _batch_norm(*args)[0]
