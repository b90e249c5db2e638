"""Activation cases: the activation layers of ResNet-50 and MobileNetV2 at batch 32."""
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF

from . import DTYPES, Case

# (shape, where it appears)
SHAPES = {
    (32, 64, 112, 112): "ResNet-50 stem",
    (32, 256, 56, 56): "ResNet-50 stage 1",
    (32, 96, 112, 112): "MobileNetV2 block 2 expansion",
    (32, 2048, 7, 7): "ResNet-50 stage 4",
}
ACTIVATIONS = ["relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "softplus",
               "sigmoid", "tanh"]
PASSES = {"fwd": 2, "bwd": 3, "fwd+bwd": 5}  # fwd reads x, writes y; bwd reads grad and x (or y), writes grad
QUICK = [("relu", (32, 256, 56, 56), torch.bfloat16, "contiguous"),
         ("gelu", (32, 96, 112, 112), torch.float32, "channels_last")]


def _case(name, shape, dtype, layout):
    return Case(op=name, family="activation", shape=shape, dtype=dtype, layout=layout,
                ours=getattr(TF, name), eager=getattr(F, name), passes=PASSES, note=SHAPES.get(shape, ""))


def cases(profile):
    if profile == "dry":
        return [_case(name, (2, 3, 5, 7), torch.float32, "channels_last") for name in ("relu", "gelu")]
    if profile == "quick":
        return [_case(*spec) for spec in QUICK]
    return [_case(name, shape, dtype, layout) for name in ACTIVATIONS for shape in SHAPES for dtype in DTYPES
            for layout in ("contiguous", "channels_last")]
