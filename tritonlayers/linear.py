"""linear(input, weight, bias=None, *, activation=None): a fully-connected layer on the GEMM core, with the
activation, or a softmax / log_softmax over the output features, fused into the epilogue.

Backward: grad_input = dz @ W and grad_weight = dz^T @ x as GEMMs over any leading dims, where dz, the
gradient before the activation, is formed as the GEMMs load their A operand (from the saved output where
it determines the derivative, else from the pre-activation the forward stored) and never written; the
weight-gradient GEMM also sums dz's rows into grad_bias. Softmax heads take the softmax backward first.
The layer is the op tritonlayers::linear (autograd from register_autograd); the helpers its autograd shares
with the convolutions live here too.
"""
import functools
from typing import List, Optional, Tuple

import torch

from ._autocast import lower_precision
from ._gemm import (NO_BATCH, Level, accumulator_dtype, axis, check_same_dtype, gemm, split_k_axes,
                    split_k_factor)
from ._launch import check_floating, check_tensor, sm_count
from ._library import custom_op, no_grads, or_placeholders, records_grad, wanted
from .activation import ActivationSpec, activation_backward, resolve_activation
from .softmax import normalize_partial_softmax, softmax_backward, softmax_from_split_k
from .kernels.gemm import STATS_COLUMNS, softmax_epilogue_config
from .kernels.host_math import cdiv

HEADS = ("softmax", "log_softmax")


def _rows(*tensors_and_operands):
    """The M (or K) axis over the leading dims of several same-shaped [..., features] tensors."""
    first = tensors_and_operands[0][0]
    return _leading_axis(first.shape[:-1], tuple((op, t.stride()[:-1]) for t, op in tensors_and_operands))


@functools.lru_cache(maxsize=1024)
def _leading_axis(sizes, operand_strides):
    """_rows on (sizes, ((operand, strides), ...)): cached, as every training step repeats its shapes."""
    return axis(*(Level(size, {op: strides[d] for op, strides in operand_strides}) for d, size in enumerate(sizes)))


def _too_strided(*tensors_and_operands):
    try:
        _rows(*tensors_and_operands)
        return False
    except ValueError:
        return True


def linear_outputs(input, weight, store_pre):
    """(output, pre-activation or None) buffers: [..., out_features], contiguous, in the input's dtype."""
    output = torch.empty(*input.shape[:-1], weight.shape[0], dtype=input.dtype, device=input.device)
    return output, torch.empty_like(output) if store_pre else None


def linear_forward(input, weight, bias, spec, head, store_pre):
    """(output, pre-activation or None)."""
    output, pre = linear_outputs(input, weight, store_pre)
    try:
        m = _rows((input, "a"), (output, "c"))
    except ValueError:  # leading dims that do not merge into three: one copy
        input = input.contiguous()
        m = _rows((input, "a"), (output, "c"))
    out_features = weight.shape[0]
    n = axis(Level(out_features, {"b": weight.stride(0), "c": output.stride(-1)}))
    k = axis(Level(input.shape[-1], {"a": input.stride(-1), "b": weight.stride(1)}))
    if head is not None and pre is None:
        splits = head_splits(m.total, out_features, input.shape[-1], input.device)
        if splits > 1:
            _split_k_head(input, weight, bias, output, (m, n, k), splits, head)
            return output, pre
    softmax, stats = _head_mode(head, m.total, out_features, input.device, output.dtype)
    gemm(input, weight, output, batch=NO_BATCH, m=m, n=n, k=k, bias=bias, bias_along="n",
         spec=spec if head is None else ActivationSpec("identity"), softmax=softmax, softmax_stats=stats, pre=pre,
         allow_tf32=torch.backends.cuda.matmul.allow_tf32, op_name="linear")
    if stats is not None:
        normalize_partial_softmax(output, stats, log=head == "log_softmax")
    return output, pre


# A softmax head with too few 128x128 output tiles for two programs an SM (ImageNet's 1000 classes at batch
# 256: 16 tiles on 132 SMs; its GEMM took 18 us on an H200 against cuBLAS's 6) splits K as GEMMs do, with
# chunks of at least HEAD_SPLIT_DEPTH (the epilogue's softmax rules out summing partials into C): the
# chunks run as a batch of GEMMs into partial logits in the accumulator's dtype, and one pass sums them with
# the bias and normalizes each row, which must fit one tile (HEAD_SPLIT_MAX_FEATURES). Thin row tiles would
# reread the weight once per row block, through small MMAs.
HEAD_SPLIT_DEPTH = 256
HEAD_SPLIT_MAX_FEATURES = 4096


def head_splits(rows, features, depth, device):
    """How many K chunks a softmax head's GEMM runs as (1: no split): the GEMMs' split-K rule with chunks at
    least HEAD_SPLIT_DEPTH deep, for rows within HEAD_SPLIT_MAX_FEATURES."""
    if features > HEAD_SPLIT_MAX_FEATURES:
        return 1
    return split_k_factor(NO_BATCH, axis(Level(rows, {})), axis(Level(features, {})), axis(Level(depth, {})),
                          device, min_depth=HEAD_SPLIT_DEPTH)


def _split_k_head(input, weight, bias, output, axes, splits, head):
    """output = softmax / log_softmax(input @ weight^T + bias) through split-K partials (see head_splits): the
    GEMM's axes (m, n, k) cut into `splits` chunks run as a batch, into dense (splits, ..., features) partials."""
    batch, m, n, k = split_k_axes(splits, NO_BATCH, *axes)
    partials = torch.empty(splits, *output.shape, dtype=accumulator_dtype(input.dtype), device=input.device)
    gemm(input, weight, partials, batch=batch, m=m, n=n, k=k, allow_tf32=torch.backends.cuda.matmul.allow_tf32,
         op_name="linear")
    softmax_from_split_k(partials, bias, output, log=head == "log_softmax")


def _head_mode(head, rows, features, device, dtype):
    """(gemm's one-tile softmax or None, the statistics buffer of an online softmax across tiles or None) for
    a softmax head over `features`.

    A row that fits one tile is normalized in the epilogue, unless that leaves the GPU idle: the fused head
    runs one program per BLOCK_M rows, and with fewer of them than a quarter of the SMs (a classifier at
    batch 256) ordinary tiles are faster. Otherwise each tile stores its logits with its rows' max and sum
    of exponentials, and a light pass combines those and normalizes in place (an online softmax across
    tiles: the logits are read once more, not twice)."""
    if head is None:
        return None, None
    config = softmax_epilogue_config(features)
    if config is not None and cdiv(rows, config[0]) >= max(1, sm_count(device) // 4):
        return head, None
    stats = torch.empty((2, rows, cdiv(features, STATS_COLUMNS)), dtype=accumulator_dtype(dtype), device=device)
    return None, stats


def backward_operand(kind, grad_output, saved):
    """(gradient, a_saved, prologue) for the backward GEMMs: the gradient after the activation with the
    saved tensor (`kind`, see saved_kind) its prologue needs (same strides), or the gradient before it when no
    prologue applies."""
    if kind is None:
        return grad_output, None, None
    if saved.stride() != grad_output.stride():
        grad_output, saved = grad_output.contiguous(), saved.contiguous()
    return grad_output, saved, "output" if kind == "output" else "input"


def materialized(grad, a_saved, prologue, spec):
    """The gradient before the activation as a tensor (for a bias gradient wanted without the weight's)."""
    if prologue is None:
        return grad
    return activation_backward(grad, a_saved, spec, saved_is_output=prologue == "output")


def linear_input_grad(grad, a_saved, prologue, spec, weight, input_shape):
    """dz @ W, shaped like the input."""
    grad_input = torch.empty(input_shape, dtype=grad.dtype, device=grad.device)
    m = _rows((grad, "a"), (grad_input, "c"))
    n = axis(Level(weight.shape[1], {"b": weight.stride(1), "c": grad_input.stride(-1)}))
    k = axis(Level(weight.shape[0], {"a": grad.stride(-1), "b": weight.stride(0)}))
    gemm(grad, weight, grad_input, batch=NO_BATCH, m=m, n=n, k=k, a_saved=a_saved, prologue=prologue, spec=spec,
         allow_tf32=torch.backends.cuda.matmul.allow_tf32, op_name="linear")
    return grad_input


def linear_weight_grad(grad, a_saved, prologue, spec, input, weight, bias_grad):
    """dz^T @ x, summed over every leading dim; dz's column sums go to bias_grad (when given)."""
    grad_weight = torch.empty_like(weight)
    m = axis(Level(weight.shape[0], {"a": grad.stride(-1), "c": grad_weight.stride(0)}))
    n = axis(Level(weight.shape[1], {"b": input.stride(-1), "c": grad_weight.stride(1)}))
    k = _rows((grad, "a"), (input, "b"))
    gemm(grad, input, grad_weight, batch=NO_BATCH, m=m, n=n, k=k, a_saved=a_saved, prologue=prologue, spec=spec,
         bias_grad=bias_grad, allow_tf32=torch.backends.cuda.matmul.allow_tf32, op_name="linear")
    return grad_weight


def linear_backward(grad_output, input, weight, saved, spec, head, needs):
    """(grad_input, grad_weight, grad_bias), each None unless `needs` (three booleans) asks."""
    needs_input, needs_weight, needs_bias = needs
    if head is not None:
        grad, a_saved, prologue = softmax_backward(saved, grad_output, saved.dim() - 1, saved.dtype,
                                                   log=head == "log_softmax"), None, None
    else:
        grad, a_saved, prologue = backward_operand(saved_kind(spec, head), grad_output, saved)
    if _too_strided((grad, "a"), (input, "b")):
        grad, input = grad.contiguous(), input.contiguous()
        a_saved = a_saved.contiguous() if a_saved is not None else None
    grad_input = grad_weight = grad_bias = None
    if needs_input:
        grad_input = linear_input_grad(grad, a_saved, prologue, spec, weight, input.shape)
    if needs_weight:
        grad_bias = torch.empty(weight.shape[0], dtype=accumulator_dtype(grad.dtype), device=grad.device) \
            if needs_bias and fuses_bias_grad(prologue) else None
        grad_weight = linear_weight_grad(grad, a_saved, prologue, spec, input, weight, grad_bias)
    if needs_bias and grad_bias is None:
        # over the rows as one dim (a 1-D input has none: sum over an empty dim tuple would sum everything)
        grad_bias = materialized(grad, a_saved, prologue, spec).reshape(-1, grad.shape[-1]).sum(0)
    if grad_bias is not None:
        grad_bias = grad_bias.to(weight.dtype)
    return grad_input, grad_weight, grad_bias


def fuses_bias_grad(prologue):
    """Whether the weight-gradient GEMM also sums the bias gradient: only when its A tile passes through
    registers anyway (a prologue turns it into the gradient before the activation). Otherwise summing it
    there keeps A from going straight from shared memory to the tensor cores, which costs more than one
    more read of the gradient by a separate sum."""
    return prologue is not None


def gemm_grads_like(grad_input, weight, bias_features, needs):
    """Fake (grad_input, grad_weight, grad_bias) of a GEMM layer's backward op, given its grad_input buffer:
    placeholders where `needs` does not ask."""
    grads = (grad_input, torch.empty_like(weight), weight.new_empty(bias_features))
    return or_placeholders(wanted(grads, needs), grad_input)


def save_for_gemm_backward(ctx, input, weight, spec, head, output, pre):
    """setup_context of the GEMM layers: the input, the weight and what saved_kind names (or None)."""
    ctx.mark_non_differentiable(pre)
    ctx.set_materialize_grads(False)  # else backward gets a zero-filled grad_pre (output-sized when stored)
    ctx.spec, ctx.head = spec, head
    kind = saved_kind(spec, head)
    ctx.save_for_backward(input, weight, output if kind == "output" else pre if kind == "pre" else None)


@custom_op("linear")
def _linear(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: str,
            param_a: float, param_b: float, head: Optional[str], store_pre: bool) -> Tuple[torch.Tensor,
                                                                                          torch.Tensor]:
    """(output, pre-activation or a placeholder)."""
    output, pre = linear_forward(input, weight, bias, ActivationSpec(activation, param_a, param_b), head,
                                 store_pre)
    return or_placeholders((output, pre), output)


@_linear.register_fake
def _(input, weight, bias, activation, param_a, param_b, head, store_pre):
    output, pre = linear_outputs(input, weight, store_pre)
    return or_placeholders((output, pre), output)


@custom_op("linear_backward")
def _linear_grad(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor,
                 saved: Optional[torch.Tensor], activation: str, param_a: float, param_b: float,
                 head: Optional[str], needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = linear_backward(grad_output, input, weight, saved, ActivationSpec(activation, param_a, param_b), head,
                            needs)
    return or_placeholders(grads, input)


@_linear_grad.register_fake
def _(grad_output, input, weight, saved, activation, param_a, param_b, head, needs):
    grad_input = torch.empty(input.shape, dtype=grad_output.dtype, device=grad_output.device)
    return gemm_grads_like(grad_input, weight, weight.shape[0], needs)


def _setup_context(ctx, inputs, output):
    input, weight, _, activation, param_a, param_b, head, _ = inputs
    save_for_gemm_backward(ctx, input, weight, ActivationSpec(activation, param_a, param_b), head, *output)


def _backward(ctx, grad_output, grad_pre):
    if grad_output is None:
        return no_grads(ctx)
    input, weight, saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:3]
    grads = _linear_grad(grad_output, input, weight, saved, *ctx.spec, ctx.head, list(needs))
    return (*wanted(grads, needs), None, None, None, None, None)


_linear.register_autograd(_backward, setup_context=_setup_context)


def saved_kind(spec, head):
    """What backward needs besides the inputs: the output (softmax heads, and activations whose output
    determines the derivative: no extra memory, the output lives on anyway), the pre-activation (stored by
    the forward epilogue), or nothing (no activation)."""
    if head is not None or spec.name != "identity" and spec.output_determines_gradient:
        return "output"
    return "pre" if spec.name != "identity" else None


def resolve_head_or_activation(activation):
    """(spec, head): 'softmax' / 'log_softmax' are heads over the output features, the rest activations."""
    if isinstance(activation, str) and activation in HEADS:
        return ActivationSpec("identity"), activation
    return resolve_activation(activation), None


def linear(input, weight, bias=None, *, activation=None):
    """F.linear, plus keyword-only `activation`: an activation of the family or 'softmax' / 'log_softmax'
    over the output features, fused into the GEMM's epilogue."""
    check_tensor("linear", "input", input)
    check_tensor("linear", "weight", weight)
    input, weight, bias = lower_precision(input, weight, bias)  # torch's autocast policy for linear
    if weight.dim() != 2:
        raise RuntimeError(f"linear: 'weight' must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if input.dim() == 0 or input.shape[-1] != weight.shape[1]:
        rows = input.numel() // input.shape[-1] if input.dim() and input.shape[-1] else input.numel()
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1] if input.dim() else 1} "
                           f"and {weight.shape[1]}x{weight.shape[0]})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"linear: 'bias' must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    check_same_dtype("linear", input=input, weight=weight, bias=bias)
    check_floating("linear", "input", input.dtype)
    spec, head = resolve_head_or_activation(activation)
    store_pre = saved_kind(spec, head) == "pre" and records_grad(input, weight, bias)
    return _linear(input, weight, bias, *spec, head, store_pre)[0]
