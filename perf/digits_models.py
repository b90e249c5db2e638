"""The training demo's CNN, built twice with the same structure and state_dict keys: from torch.nn, and from
tritonlayers.nn with BatchNorm + ReLU and the log_softmax head fused into one module each.

tritonlayers runs 1x1 convolutions only, so the image reaches them as patches: PixelUnshuffle (a reshape that
does no arithmetic, torch's in both models) stacks each 4x4 patch into 16 channels, which makes a 1x1
convolution a 4x4 stride-4 one. Non-overlapping patches never see across their borders, so the image comes
with two pooled copies as extra channels: its 3x3 local mean and 3x3 local max (stride 1), each pixel of
which reaches one pixel into the neighbouring patch. The global average pool then averages the four
quadrants' features.

    (1, 8, 8) -[image, avgpool 3x3, maxpool 3x3]-> (3, 8, 8) -unshuffle 4-> (48, 2, 2)
    -conv 1x1, bn+relu-> (W, 2, 2) -global avgpool-> (W,) -dropout-> -linear + log_softmax-> (10,)

Small on purpose: through Triton's CPU interpreter every kernel program runs in Python (milliseconds each,
most kernels launching one or more per sample), and the demo must train both models within four minutes on
two CPU cores. A second convolution block (W -> 2W at 2x2) reached about the same accuracy and cost 40% more
time per step, which put the demo past that budget.
"""
from collections import OrderedDict

import torch

import tritonlayers.nn

CLASSES = 10


class PooledViews(torch.nn.Module):
    """The input beside its 3x3 stride-1 average and max pools, stacked as channels: (N, C, H, W) ->
    (N, 3C, H, W)."""

    def __init__(self, layers):
        super().__init__()
        self.local_mean = layers.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.local_max = layers.MaxPool2d(3, stride=1, padding=1)

    def forward(self, input):
        return torch.cat([input, self.local_mean(input), self.local_max(input)], dim=1)


def _conv_bn_relu(layers, in_channels, out_channels):
    conv = layers.Conv2d(in_channels, out_channels, 1, bias=False)  # BatchNorm's shift makes a bias redundant
    if layers is torch.nn:
        return torch.nn.Sequential(OrderedDict(conv=conv, bn=torch.nn.BatchNorm2d(out_channels),
                                               relu=torch.nn.ReLU()))
    return torch.nn.Sequential(OrderedDict(conv=conv, bn=layers.BatchNorm2d(out_channels, activation="relu")))


def _global_average_pool(layers):
    if layers is torch.nn:
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return layers.GlobalAvgPool2d(flatten=True)


def _head(layers, in_features):
    """Linear + log_softmax: the log-probabilities that nll_loss takes."""
    if layers is torch.nn:
        return torch.nn.Sequential(OrderedDict(fc=torch.nn.Linear(in_features, CLASSES),
                                               log_softmax=torch.nn.LogSoftmax(dim=1)))
    return torch.nn.Sequential(OrderedDict(fc=layers.Linear(in_features, CLASSES, activation="log_softmax")))


def digits_cnn(layers, width=32, dropout=0.1):
    """The CNN from `layers`, either torch.nn or tritonlayers.nn, with `width` channels."""
    if layers is not torch.nn and layers is not tritonlayers.nn:
        raise ValueError(f"digits_cnn: layers must be torch.nn or tritonlayers.nn, got {layers!r}")
    return torch.nn.Sequential(OrderedDict(
        views=PooledViews(layers),
        patches=torch.nn.PixelUnshuffle(4),
        embed=_conv_bn_relu(layers, 3 * 16, width),
        pool=_global_average_pool(layers),
        dropout=layers.Dropout(dropout),
        head=_head(layers, width),
    ))


def twin_models(seed, width=32, dropout=0.1):
    """(torch.nn model, tritonlayers model) with identical weights: the torch model's initialisation under
    `seed`, loaded into the tritonlayers one (its modules subclass torch's, so the keys match)."""
    torch.manual_seed(seed)
    torch_model = digits_cnn(torch.nn, width, dropout)
    ours = digits_cnn(tritonlayers.nn, width, dropout)
    ours.load_state_dict(torch_model.state_dict())
    return torch_model, ours
