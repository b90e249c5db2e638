"""Pooling modules: torch.nn's MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d and
AdaptiveMaxPool1d/2d/3d on tritonlayers' kernels, and GlobalAvgPool2d / GlobalMaxPool2d (adaptive pooling to
1x1, the classifier head's global pool, optionally flattened to (N, C))."""
import torch

from .. import functional as F


class MaxPool1d(torch.nn.MaxPool1d):
    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool1d(torch.nn.AvgPool1d):
    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AdaptiveAvgPool1d(torch.nn.AdaptiveAvgPool1d):
    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool1d(torch.nn.AdaptiveMaxPool1d):
    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class MaxPool3d(torch.nn.MaxPool3d):
    def forward(self, input):
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool3d(torch.nn.AvgPool3d):
    def forward(self, input):
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool3d(torch.nn.AdaptiveAvgPool3d):
    def forward(self, input):
        return F.adaptive_avg_pool3d(input, self.output_size)


class AdaptiveMaxPool3d(torch.nn.AdaptiveMaxPool3d):
    def forward(self, input):
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)


class MaxPool2d(torch.nn.MaxPool2d):
    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool2d(torch.nn.AvgPool2d):
    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(torch.nn.AdaptiveMaxPool2d):
    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


def _flattened(result, flatten, batched):
    if not flatten:
        return result
    dims = 1 if batched else 0
    if isinstance(result, tuple):
        return tuple(t.flatten(dims) for t in result)
    return result.flatten(dims)


class GlobalAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """Mean over all spatial positions: (N, C, H, W) -> (N, C, 1, 1), or (N, C) with flatten=True."""

    def __init__(self, flatten=False):
        super().__init__(1)
        self.flatten = flatten

    def extra_repr(self):
        return f"flatten={self.flatten}"

    def forward(self, input):
        return _flattened(F.adaptive_avg_pool2d(input, 1), self.flatten, input.dim() == 4)


class GlobalMaxPool2d(torch.nn.AdaptiveMaxPool2d):
    """Max over all spatial positions: (N, C, H, W) -> (N, C, 1, 1), or (N, C) with flatten=True."""

    def __init__(self, flatten=False, return_indices=False):
        super().__init__(1, return_indices)
        self.flatten = flatten

    def extra_repr(self):
        return f"flatten={self.flatten}, return_indices={self.return_indices}"

    def forward(self, input):
        return _flattened(F.adaptive_max_pool2d(input, 1, self.return_indices), self.flatten, input.dim() == 4)
