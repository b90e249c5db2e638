"""GEMM-family cases, each also timed against cuBLAS (torch.mm of the same M, N, K, dtype) in the same run:
ResNet-50's 1x1 convolutions at batch 32 (with bias + relu fused, against eager conv then relu), a large
linear layer, classifier heads with a fused softmax / sigmoid, and a U-Net decoder's 2x2 stride-2
transposed convolution."""
import functools

import torch
import torch.nn.functional as F

import tritonlayers.functional as TF

from . import Case

# (input shape, out channels, stride, where it appears)
CONVS = [((32, 64, 56, 56), 256, 1, "ResNet-50 stage 1 expand"), ((32, 256, 56, 56), 64, 1, "stage 1 reduce"),
         ((32, 256, 56, 56), 512, 2, "stage 2 strided downsample"), ((32, 512, 7, 7), 2048, 1, "stage 4 expand"),
         ((32, 2048, 7, 7), 512, 1, "stage 4 reduce")]
HALF = (torch.float16, torch.bfloat16)


def _passes(x_numel, weight_numel, y_numel):
    """Minimal bytes in units of the input's size: fwd reads x and W, writes y; bwd reads dy, x and W,
    writes dx and dW."""
    fwd = (x_numel + weight_numel + y_numel) / x_numel
    bwd = (y_numel + 2 * x_numel + 2 * weight_numel) / x_numel
    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}


def _weights(shape, bias_len):
    def extras(x):
        weight = (torch.randn(shape, device=x.device, dtype=x.dtype) / shape[1] ** 0.5).requires_grad_()
        return {"weight": weight, "bias": torch.randn(bias_len, device=x.device, dtype=x.dtype).requires_grad_()}
    return extras


def _conv(shape, out_channels, stride, dtype, layout, note):
    batch, channels, height, width = shape
    out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
    pixels = batch * out_h * out_w

    def ours(x, weight, bias):
        return TF.conv2d(x, weight, bias, stride, activation="relu")

    def eager(x, weight, bias):
        return F.relu(F.conv2d(x, weight, bias, stride))

    return Case(op="conv1x1_bias_relu", family="gemm", shape=shape, dtype=dtype, layout=layout, ours=ours,
                eager=eager, passes=_passes(batch * channels * height * width, out_channels * channels,
                                            pixels * out_channels),
                note=f"{out_channels} out, stride {stride}, {note}", extras=_weights((out_channels, channels, 1, 1),
                                                                                   out_channels),
                gemm=(pixels, out_channels, channels), low=-1.0, high=1.0)


def _linear(rows, in_features, out_features, dtype, activation, note):
    def eager(x, weight, bias, activation=activation):
        y = F.linear(x, weight, bias)
        if activation in ("softmax", "log_softmax"):
            return getattr(F, activation)(y, -1)
        return getattr(F, activation)(y) if activation else y

    name = "linear" + (f"_{activation}" if activation else "")
    return Case(op=name, family="gemm", shape=(rows, in_features), dtype=dtype, layout="contiguous",
                ours=functools.partial(_ours_linear, activation=activation), eager=eager,
                passes=_passes(rows * in_features, out_features * in_features, rows * out_features), note=note,
                extras=_weights((out_features, in_features), out_features), gemm=(rows, out_features, in_features),
                low=-1.0, high=1.0)


def _ours_linear(x, weight, bias, activation):
    return TF.linear(x, weight, bias, activation=activation)


def _transpose(shape, out_channels, kernel, dtype, layout, note):
    batch, channels, height, width = shape
    pixels = batch * height * width

    def ours(x, weight, bias):
        return TF.conv_transpose2d(x, weight, bias, kernel)

    def eager(x, weight, bias):
        return F.conv_transpose2d(x, weight, bias, kernel)

    return Case(op="conv_transpose2d", family="gemm", shape=shape, dtype=dtype, layout=layout, ours=ours,
                eager=eager, passes=_passes(pixels * channels, channels * out_channels * kernel * kernel,
                                            pixels * out_channels * kernel * kernel),
                note=f"{out_channels} out, {kernel}x{kernel} stride {kernel}, {note}",
                extras=_weights((channels, out_channels, kernel, kernel), out_channels),
                gemm=(pixels, out_channels * kernel * kernel, channels), low=-1.0, high=1.0)


def cases(profile):
    if profile == "dry":
        return [_conv((2, 6, 5, 5), 8, 2, torch.float32, "channels_last", "dry"),
                _linear(5, 12, 7, torch.float32, "softmax", "dry"),
                _transpose((2, 6, 3, 3), 4, 2, torch.float32, "contiguous", "dry")]
    if profile == "quick":
        return [_conv((32, 256, 56, 56), 64, 1, torch.bfloat16, "channels_last", "ResNet-50 stage 1 reduce"),
                _conv((32, 512, 7, 7), 2048, 1, torch.bfloat16, "contiguous", "ResNet-50 stage 4 expand"),
                # the same GEMM without NCHW's two-level pixel axis (NCHW ran 55 us on an H200, cuDNN 11)
                _conv((32, 512, 7, 7), 2048, 1, torch.bfloat16, "channels_last", "ResNet-50 stage 4 expand"),
                _linear(8192, 4096, 4096, torch.bfloat16, None, "large linear"),
                _linear(256, 2048, 1000, torch.bfloat16, "softmax", "ImageNet classifier head")]
    found = []
    for dtype in HALF:
        for shape, out_channels, stride, note in CONVS:
            found += [_conv(shape, out_channels, stride, dtype, layout, note)
                      for layout in ("contiguous", "channels_last")]
        found += [_linear(8192, 4096, 4096, dtype, None, "large linear"),
                  _linear(256, 2048, 1000, dtype, "softmax", "ImageNet classifier head"),
                  _linear(256, 2048, 1000, dtype, "sigmoid", "multi-label head"),
                  _linear(32, 4096, 32000, dtype, "log_softmax", "32k-class head")]
        found += [_transpose((32, 256, 28, 28), 128, 2, dtype, layout, "U-Net decoder")
                  for layout in ("contiguous", "channels_last")]
    return found
