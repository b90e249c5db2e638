"""Functional ops mirroring torch.nn.functional's names, signatures, defaults and semantics for what they
support; fused extras are keyword-only."""
from .activation import (elu, gelu, hardsigmoid, hardswish, leaky_relu, mish, relu, relu6, sigmoid, silu, softplus,
                         tanh)
from .batch_norm import batch_norm
from .conv import conv2d, conv_transpose2d
from .linear import linear
from .pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from .pooling1d import adaptive_avg_pool1d, adaptive_max_pool1d, avg_pool1d, max_pool1d
from .pooling3d import adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, max_pool3d
from .dropout import dropout, dropout1d, dropout2d, dropout3d, fused_dropout
from .softmax import log_softmax, softmax

__all__ = ["elu", "gelu", "hardsigmoid", "hardswish", "leaky_relu", "mish", "relu", "relu6", "sigmoid", "silu",
           "softplus", "tanh", "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d",
           "dropout3d", "fused_dropout", "batch_norm", "linear",
           "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "max_pool3d", "avg_pool3d",
           "adaptive_avg_pool3d", "adaptive_max_pool3d"]
