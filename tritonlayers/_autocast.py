"""torch.autocast for tritonlayers' ops: the casts torch's autocast makes for each op's torch twin, made by the
functional entry points before the op is called (so argument checks see the cast tensors, as in torch).

torch's policy (aten/src/ATen/autocast_mode.h): linear, conv2d and conv_transpose2d cast their floating inputs
to the autocast dtype on every device type; on CUDA, softplus runs in fp32 and softmax / log_softmax default
their dtype to fp32; everything else here (activations, dropout, batch_norm, pooling) runs in the input's
dtype. A tensor is cast when it is floating point but not fp64 and autocast is on for its device type.
"""
import torch


def _autocast_dtype(tensor):
    """The autocast dtype for this tensor, or None when autocast leaves it alone."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.dtype == torch.float64:
        return None
    device_type = tensor.device.type
    if device_type not in ("cpu", "cuda") or not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def lower_precision(*tensors):
    """torch's lower_precision_fp policy (linear, convolutions): each eligible tensor in the autocast dtype."""
    if not (torch.is_autocast_enabled("cuda") or torch.is_autocast_enabled("cpu")):
        return tensors  # the common case, checked once instead of per tensor
    casts = [_autocast_dtype(tensor) for tensor in tensors]
    return tuple(tensor if dtype is None else tensor.to(dtype) for tensor, dtype in zip(tensors, casts))


def fp32_on_cuda(tensor):
    """torch's CUDA fp32 policy (softplus): an eligible CUDA tensor in fp32."""
    if tensor.device.type != "cuda" or _autocast_dtype(tensor) is None:
        return tensor
    return tensor.float()


def fp32_dtype_on_cuda(tensor, dtype):
    """torch's CUDA fp32_set_opt_dtype policy (softmax, log_softmax): an unset dtype becomes fp32 for an eligible
    CUDA input."""
    if dtype is None and tensor.device.type == "cuda" and _autocast_dtype(tensor) is not None:
        return torch.float32
    return dtype
