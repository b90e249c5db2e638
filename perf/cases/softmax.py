"""softmax / log_softmax cases: classifier heads, segmentation maps (softmax over channels), and a sweep of
row lengths from 256 to 256K at a fixed total size (flat throughput, no cliff at N=1152)."""
import functools

import torch
import torch.nn.functional as F

import tritonlayers.functional as TF

from . import DTYPES, Case

PASSES = {"fwd": 2, "bwd": 3, "fwd+bwd": 5}  # fwd reads x, writes y; bwd reads y and grad, writes grad
HEADS = [(32, 1000), (256, 1000), (32, 32000), (256, 32000)]  # ImageNet-1k and 32k-class heads
SEGMENTATION = (8, 21, 512, 512)  # Pascal VOC's 21 classes at 512x512, softmax over dim 1
ROW_SWEEP_ELEMENTS = 2**25
ROW_LENGTHS = [256, 1024, 1152, 4096, 16384, 65536, 262144]


def _case(name, shape, dim, dtype, layout, note):
    return Case(op=name, family="softmax", shape=shape, dtype=dtype, layout=layout,
                ours=functools.partial(getattr(TF, name), dim=dim), eager=functools.partial(getattr(F, name), dim=dim),
                passes=PASSES, note=f"dim={dim}" + (f", {note}" if note else ""), low=-8.0, high=8.0)


def cases(profile):
    if profile == "dry":
        return [_case("softmax", (2, 3, 5, 7), 1, torch.float32, "channels_last", "segmentation"),
                _case("log_softmax", (3, 37), -1, torch.float32, "contiguous", "head")]
    if profile == "quick":
        return [_case("softmax", SEGMENTATION, 1, torch.float16, "contiguous", "segmentation"),
                _case("softmax", SEGMENTATION, 1, torch.float16, "channels_last", "segmentation"),
                _case("softmax", (8192, 1152), -1, torch.float32, "contiguous", "eager's cliff"),
                _case("softmax", (128, 262144), -1, torch.float32, "contiguous", "row sweep"),
                _case("log_softmax", (4096, 32000), -1, torch.bfloat16, "contiguous", "32k-class head"),
                _case("softmax", (32, 1000), -1, torch.float32, "contiguous", "ImageNet head")]
    found = []
    for name in ("softmax", "log_softmax"):
        for dtype in DTYPES:
            found += [_case(name, shape, -1, dtype, "contiguous", "classifier head") for shape in HEADS]
            found += [_case(name, SEGMENTATION, 1, dtype, layout, "segmentation")
                      for layout in ("contiguous", "channels_last")]
            found += [_case(name, (ROW_SWEEP_ELEMENTS // n, n), -1, dtype, "contiguous", "row sweep")
                      for n in ROW_LENGTHS]
    return found
