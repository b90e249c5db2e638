"""tritonlayers: Triton kernels for classic CNN layers as autograd-aware PyTorch ops and torch.nn modules."""
from . import functional, nn
from .activation import ActivationSpec, resolve_activation

__version__ = "0.1.0"
__all__ = ["functional", "nn", "ActivationSpec", "resolve_activation", "__version__"]
