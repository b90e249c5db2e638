"""torch.nn modules whose forward runs tritonlayers' kernels; each subclasses its torch.nn twin."""
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU,
                         Softmax, Softplus, Tanh)
from .batch_norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .gemm_layers import Conv2d, ConvTranspose2d, Linear
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
                      AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool1d,
                      MaxPool2d, MaxPool3d)

__all__ = ["ELU", "GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSoftmax", "Mish", "ReLU", "ReLU6", "Sigmoid",
           "SiLU", "Softmax", "Softplus", "Tanh", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
           "Linear", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
           "AdaptiveMaxPool1d", "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d"]
