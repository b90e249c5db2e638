"""BatchNorm cases: ResNet-50's batch-32 BatchNorm layers in training and evaluation, NCHW and channels_last,
half precision with fp32 parameters and statistics (as under autocast), the fused bn -> add -> relu of a
residual block against the eager sequence, and a (32, 128, 16384) BatchNorm1d (where one program per channel
ran 25x slower than PyTorch in a peer library)."""
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from tritonlayers.batch_norm import _resident
from tritonlayers._layout import needs_wide_index, reduction_geometry

from . import Case

RESNET50 = [(32, 64, 112, 112), (32, 256, 56, 56), (32, 512, 28, 28), (32, 1024, 14, 14), (32, 2048, 7, 7)]


def _extras(fused):
    def extras(x):
        channels = x.shape[1]
        made = {"weight": torch.rand(channels, device=x.device).add_(0.5).requires_grad_(),
                "bias": torch.randn(channels, device=x.device).requires_grad_(),
                "running_mean": torch.zeros(channels, device=x.device),
                "running_var": torch.ones(channels, device=x.device)}
        if fused:
            made["residual"] = torch.randn_like(x).requires_grad_()
        return made
    return extras


def _passes(shape, dtype, layout, training, fused):
    """Tensor-sized passes the kernels make: a resident training step reads x once (2 forward, 3 backward),
    a split one twice (3, 5); fused adds the residual read (and, backward, the relu output read per pass
    and the residual gradient's write)."""
    if not training:
        return {"fwd": 2 + fused, "bwd": 3 + 2 * fused, "fwd+bwd": 5 + 3 * fused}
    x = torch.empty(shape, dtype=dtype, device="meta")
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    resident = _resident(reduction_geometry(1, x, x, x), 1, None, needs_wide_index(x)) is not None
    fwd = (2 if resident else 3) + fused
    bwd = (3 if resident else 5) + (2 if resident else 3) * fused
    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}


def _case(shape, dtype, layout, training, fused, note):
    def ours(x, weight, bias, running_mean, running_var, residual=None):
        return TF.batch_norm(x, running_mean, running_var, weight, bias, training, activation="relu" if fused else None,
                             residual=residual)

    def eager(x, weight, bias, running_mean, running_var, residual=None):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training)
        return F.relu(y + residual) if fused else y

    name = "batch_norm_add_relu" if fused else "batch_norm"
    return Case(op=name, family="batch_norm", shape=shape, dtype=dtype, layout=layout, ours=ours, eager=eager,
                passes=_passes(shape, dtype, layout, training, fused), extras=_extras(fused),
                note=("train" if training else "eval") + f", {note}")


def cases(profile):
    if profile == "dry":
        return [_case((3, 5, 4, 7), torch.float32, "channels_last", True, False, "dry"),
                _case((3, 5, 4, 7), torch.float32, "contiguous", True, True, "dry"),
                _case((3, 5, 4, 7), torch.float32, "contiguous", False, False, "dry")]
    if profile == "quick":
        return [_case((32, 256, 56, 56), torch.bfloat16, "channels_last", True, False, "ResNet-50 stage 1"),
                _case((32, 256, 56, 56), torch.bfloat16, "contiguous", True, True, "ResNet-50 stage 1"),
                _case((32, 2048, 7, 7), torch.float16, "contiguous", True, False, "ResNet-50 stage 4")]
    found = []
    for shape in RESNET50:
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            for layout in ("contiguous", "channels_last"):
                note = f"ResNet-50 {shape[1]} channels"
                found += [_case(shape, dtype, layout, True, False, note), _case(shape, dtype, layout, False, False, note),
                          _case(shape, dtype, layout, True, True, note)]
    found += [_case((32, 128, 16384), dtype, "contiguous", True, False, "BatchNorm1d, long L")
              for dtype in (torch.float32, torch.bfloat16)]
    return found
