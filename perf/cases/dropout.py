"""Dropout cases: plain dropout on transformer / classifier-head activations and CNN feature maps, channel
dropout (dropout2d) on CNN maps, and fused_dropout (bias + activation + dropout + residual) against the
eager sequence of four ops."""
import functools

import torch
import torch.nn.functional as F

import tritonlayers.functional as TF

from . import Case

P = 0.1
# Minimal passes: plain fwd reads x, writes y; bwd reads grad, writes grad (no mask: it is regenerated).
PLAIN = {"fwd": 2, "bwd": 2, "fwd+bwd": 4}
# Fused fwd reads x and residual, writes y; bwd reads grad and x (for the activation), writes grad_input;
# the residual's gradient is grad itself, the bias's a reduction finished in a tiny second pass.
FUSED = {"fwd": 3, "bwd": 3, "fwd+bwd": 6}
HEAD = (8192, 4096)
MAP = (32, 256, 56, 56)  # ResNet-50 stage 1


def _plain(name, shape, dtype, layout, note):
    return Case(op=name, family="dropout", shape=shape, dtype=dtype, layout=layout,
                ours=functools.partial(getattr(TF, name), p=P), eager=functools.partial(getattr(F, name), p=P),
                passes=PLAIN, note=note)


def _extras(bias_shape):
    def extras(x):
        bias = torch.randn(bias_shape, device=x.device, dtype=x.dtype).requires_grad_()
        return {"bias": bias, "residual": torch.randn_like(x).requires_grad_()}
    return extras


def _eager_fused(x, bias, residual, activation):
    return residual + F.dropout(getattr(F, activation)(x + bias), P)


def _fused(shape, dtype, layout, activation, note):
    bias_shape = (shape[-1],) if len(shape) == 2 else (shape[1], 1, 1)
    return Case(op="fused_dropout", family="dropout", shape=shape, dtype=dtype, layout=layout,
                ours=functools.partial(TF.fused_dropout, p=P, activation=activation),
                eager=functools.partial(_eager_fused, activation=activation), passes=FUSED,
                note=f"bias+{activation}+residual, {note}", extras=_extras(bias_shape))


def cases(profile):
    if profile == "dry":
        return [_plain("dropout", (2, 3, 5, 7), torch.float32, "channels_last", "dry"),
                _plain("dropout2d", (2, 3, 5, 7), torch.float32, "contiguous", "dry"),
                _fused((5, 33), torch.float32, "contiguous", "gelu", "dry")]
    if profile == "quick":
        return [_plain("dropout", HEAD, torch.bfloat16, "contiguous", "transformer / head"),
                _plain("dropout2d", MAP, torch.bfloat16, "channels_last", "ResNet-50 stage 1"),
                _fused(HEAD, torch.bfloat16, "contiguous", "gelu", "transformer / head")]
    found = []
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        found.append(_plain("dropout", HEAD, dtype, "contiguous", "transformer / head"))
        found += [_plain(name, MAP, dtype, layout, "ResNet-50 stage 1") for name in ("dropout", "dropout2d")
                  for layout in ("contiguous", "channels_last")]
        found.append(_plain("dropout2d", (32, 2048, 7, 7), dtype, "contiguous", "ResNet-50 stage 4"))
        found.append(_fused(HEAD, dtype, "contiguous", "gelu", "transformer / head"))
        found += [_fused(MAP, dtype, layout, "relu", "ResNet-50 stage 1") for layout in ("contiguous", "channels_last")]
    return found
