"""tritonlayers: Triton kernels for classic CNN layers as autograd-aware PyTorch ops and torch.nn modules."""
from . import functional, nn
from .activation import ActivationSpec, resolve_activation
from .convert import convert
from .fold import fold_batchnorm

__version__ = "0.1.0"
__all__ = ["functional", "nn", "ActivationSpec", "convert", "fold_batchnorm", "resolve_activation", "__version__"]
