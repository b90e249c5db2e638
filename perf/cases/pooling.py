"""Pooling cases from real networks: ResNet's stem max pool 3x3/s2/p1 on (32, 64, 112, 112), the global
average / max pooling of ResNet-50's (32, 2048, 7, 7) and EfficientNet/MobileNetV2's (32, 1280, 7, 7) heads,
DenseNet-121's transition average pool 2x2/s2 and VGG-16's adaptive average pool to 7x7 (at 448x448); NCHW and
channels_last; 1-d pooling of the M5 raw-audio CNN (its first max pool 4/s4 on (32, 128, 8000) and its
global average over time); 3-d pooling of video networks (C3D's 2x2x2/s2 max pool on (8, 128, 16, 56, 56),
channels_last_3d and NCDHW, and R3D-18's global average pool of (32, 512, 2, 7, 7)). Eager runs torch's own
kernels (global pooling via its adaptive ops, as torchvision does)."""
import functools
import math

import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from tritonlayers.pooling import pooling_output_size

from . import DTYPES, Case

LAYOUTS = ("contiguous", "channels_last")


def _passes(shape, out_sizes):
    """Input-sized passes that no implementation avoids: forward reads x and writes y; backward reads the
    output gradient and writes the input gradient (max pooling's argmax record is not counted)."""
    ratio = math.prod(out_sizes) / math.prod(shape[2:])
    return {"fwd": 1 + ratio, "bwd": 1 + ratio, "fwd+bwd": 2 + 2 * ratio}


def _window_case(op, shape, dtype, layout, note, **kwargs):
    kernel, stride, padding = kwargs["kernel_size"], kwargs["stride"], kwargs.get("padding", 0)
    out_sizes = [pooling_output_size(size, kernel, padding, stride, 1, False) for size in shape[2:]]
    window = "x".join([str(kernel)] * len(out_sizes))
    return Case(op=op, family="pooling", shape=shape, dtype=dtype, layout=layout,
                ours=functools.partial(getattr(TF, op), **kwargs), eager=functools.partial(getattr(F, op), **kwargs),
                passes=_passes(shape, out_sizes), note=f"{window}/s{stride}/p{padding}, {note}")


def _adaptive_case(op, shape, dtype, layout, output_size, note):
    return Case(op=op, family="pooling", shape=shape, dtype=dtype, layout=layout,
                ours=functools.partial(getattr(TF, op), output_size=output_size),
                eager=functools.partial(getattr(F, op), output_size=output_size),
                passes=_passes(shape, [output_size] * (len(shape) - 2)),
                note=f"to {'x'.join([str(output_size)] * (len(shape) - 2))}, {note}")


def _stem(dtype, layout):
    return _window_case("max_pool2d", (32, 64, 112, 112), dtype, layout, "ResNet stem", kernel_size=3, stride=2,
                        padding=1)


def _global(op, channels, dtype, layout):
    network = "ResNet-50" if channels == 2048 else "MobileNetV2 / EfficientNet-B0"
    return _adaptive_case(op, (32, channels, 7, 7), dtype, layout, 1, f"global, {network} head")


def _audio(dtype):
    return [_window_case("max_pool1d", (32, 128, 8000), dtype, "contiguous", "M5 audio CNN", kernel_size=4,
                         stride=4),
            _adaptive_case("adaptive_avg_pool1d", (32, 512, 30), dtype, "contiguous", 1, "global, M5 audio CNN head")]


def _video(dtype, layout):
    return [_window_case("max_pool3d", (8, 128, 16, 56, 56), dtype, layout, "C3D pool2", kernel_size=2, stride=2),
            _adaptive_case("adaptive_avg_pool3d", (32, 512, 2, 7, 7), dtype, layout, 1, "global, R3D-18 head")]


def cases(profile):
    if profile == "dry":
        return [_window_case("max_pool2d", (2, 3, 9, 10), torch.float32, "channels_last", "dry", kernel_size=3,
                             stride=2, padding=1),
                _window_case("avg_pool2d", (2, 3, 9, 10), torch.float32, "contiguous", "dry", kernel_size=2,
                             stride=2),
                _adaptive_case("adaptive_avg_pool2d", (2, 5, 3, 4), torch.float32, "contiguous", 1, "global, dry"),
                _adaptive_case("adaptive_max_pool2d", (2, 3, 11, 9), torch.float32, "channels_last", 7, "dry"),
                _window_case("max_pool1d", (2, 3, 17), torch.float32, "contiguous", "dry", kernel_size=4, stride=4),
                _window_case("max_pool3d", (2, 3, 4, 5, 6), torch.float32, "channels_last", "dry", kernel_size=2,
                             stride=2)]
    if profile == "quick":
        return [_stem(torch.bfloat16, "contiguous"), _stem(torch.bfloat16, "channels_last"),
                _global("adaptive_avg_pool2d", 2048, torch.bfloat16, "channels_last"),
                _global("adaptive_max_pool2d", 1280, torch.float16, "contiguous"),
                _window_case("avg_pool2d", (32, 256, 56, 56), torch.float32, "contiguous", "DenseNet-121 transition",
                             kernel_size=2, stride=2),
                _adaptive_case("adaptive_avg_pool2d", (32, 512, 14, 14), torch.float16, "channels_last", 7,
                               "VGG-16 head at 448x448"),
                *_audio(torch.bfloat16), *_video(torch.bfloat16, "channels_last")]
    found = []
    for dtype in DTYPES:
        for layout in LAYOUTS:
            found.append(_stem(dtype, layout))
            for op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
                found += [_global(op, 2048, dtype, layout), _global(op, 1280, dtype, layout)]
            found.append(_window_case("avg_pool2d", (32, 256, 56, 56), dtype, layout, "DenseNet-121 transition",
                                      kernel_size=2, stride=2))
            found.append(_adaptive_case("adaptive_avg_pool2d", (32, 512, 14, 14), dtype, layout, 7,
                                        "VGG-16 head at 448x448"))
        found += _audio(dtype)
        for layout in LAYOUTS:
            found += _video(dtype, layout)
    return found
