"""Linear, Conv2d (1x1) and ConvTranspose2d (kernel == stride): torch.nn's classes (same constructor,
parameters, state_dict and hooks) on tritonlayers' GEMM core, with an optional fused `activation=`.
Geometry the kernels do not run is refused at construction, naming the argument."""
import torch

from .. import functional as F
from ..activation import resolve_activation
from ..conv import transpose_geometry_message, unsupported_transpose_geometry
from ..linear import HEADS


def _stored_activation(activation, heads=False):
    """Keep the activation as a name or a spec (a tuple), not a submodule: state_dict and children stay torch's."""
    if activation is None or heads and activation in HEADS:
        return activation
    return resolve_activation(activation)


def _activation_repr(activation):
    if activation is None:
        return ""
    return f", activation={activation if isinstance(activation, str) else activation.name!r}"


class Linear(torch.nn.Linear):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.activation = _stored_activation(activation, heads=True)

    def extra_repr(self):
        return super().extra_repr() + _activation_repr(self.activation)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias, activation=self.activation)


class Conv2d(torch.nn.Conv2d):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.kernel_size != (1, 1):
            raise NotImplementedError(f"Conv2d: kernel_size={self.kernel_size} is not supported: tritonlayers runs "
                                      "1x1 convolutions")
        if self.padding not in ("valid", "same", (0, 0)):
            raise NotImplementedError(f"Conv2d: padding={self.padding} is not supported: 1x1 convolutions run "
                                      "without padding")
        self.activation = _stored_activation(activation)

    def extra_repr(self):
        return super().extra_repr() + _activation_repr(self.activation)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        activation=self.activation)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        unsupported = unsupported_transpose_geometry(self.kernel_size, self.stride, self.padding,
                                                     self.output_padding, self.dilation)
        if unsupported is not None:
            raise NotImplementedError(transpose_geometry_message("ConvTranspose2d", *unsupported, self.kernel_size))
        self.activation = _stored_activation(activation)

    def extra_repr(self):
        return super().extra_repr() + _activation_repr(self.activation)

    def forward(self, input, output_size=None):
        if output_size is not None:
            natural = [size * k for size, k in zip(input.shape[-2:], self.kernel_size)]
            if list(output_size)[-2:] != natural:
                raise NotImplementedError(f"ConvTranspose2d: output_size={list(output_size)} would need "
                                          f"output_padding; tritonlayers produces {natural}")
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation, activation=self.activation)
