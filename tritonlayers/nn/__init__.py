"""torch.nn modules whose forward runs tritonlayers' kernels; each subclasses its torch.nn twin."""
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU,
                         Softmax, Softplus, Tanh)

__all__ = ["ELU", "GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSoftmax", "Mish", "ReLU", "ReLU6", "Sigmoid",
           "SiLU", "Softmax", "Softplus", "Tanh"]
