"""fold_batchnorm: an evaluation-time BatchNorm folded into the 1x1 convolution, transposed convolution or
linear layer in front of it: scale = gamma / sqrt(running_var + eps) per output channel,
W' = W * scale, b' = (b - running_mean) * scale + beta. Computed in fp64, then cast back."""
import copy

import torch


def _output_channel_view(layer):
    """(weight viewed with output channels on dim 0 in a [out, -1] sense, function to undo the view)."""
    weight = layer.weight.detach().to(torch.float64)
    if isinstance(layer, torch.nn.ConvTranspose2d):  # [in, out / groups, kh, kw]: output channels per group
        in_channels, out_group = weight.shape[:2]
        groups = layer.groups
        grouped = weight.reshape(groups, in_channels // groups, out_group, *weight.shape[2:])
        moved = grouped.transpose(1, 2).reshape(groups * out_group, -1)

        def restore(folded):
            return folded.reshape(groups, out_group, in_channels // groups, *weight.shape[2:]).transpose(1, 2) \
                .reshape(weight.shape)
        return moved, restore
    return weight.reshape(weight.shape[0], -1), lambda folded: folded.reshape(weight.shape)


def fold_batchnorm(layer, bn):
    """A copy of `layer` (Conv2d, ConvTranspose2d or Linear, torch's or tritonlayers') computing
    bn(layer(x)) in evaluation mode; exact in fp64, rounded once in lower precision."""
    if not isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
        raise TypeError(f"fold_batchnorm: 'layer' must be a Conv2d, ConvTranspose2d or Linear, got "
                        f"{type(layer).__name__}")
    if not isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"fold_batchnorm: 'bn' must be a BatchNorm module, got {type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fold_batchnorm: 'bn' has no running statistics (track_running_stats=False) to fold")
    if getattr(layer, "activation", None) is not None:
        raise ValueError("fold_batchnorm: 'layer' applies an activation before the BatchNorm; nothing to fold")
    weight, restore = _output_channel_view(layer)
    if weight.shape[0] != bn.num_features:
        raise ValueError(f"fold_batchnorm: 'layer' has {weight.shape[0]} output channels, 'bn' {bn.num_features}")
    mean, var = bn.running_mean.to(torch.float64), bn.running_var.to(torch.float64)
    gamma = bn.weight.detach().to(torch.float64) if bn.affine else torch.ones_like(mean)
    beta = bn.bias.detach().to(torch.float64) if bn.affine else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = layer.bias.detach().to(torch.float64) if layer.bias is not None else torch.zeros_like(mean)
    folded = copy.deepcopy(layer)
    dtype = layer.weight.dtype
    with torch.no_grad():
        folded.weight.copy_(restore(weight * scale[:, None]).to(dtype))
        new_bias = ((bias - mean) * scale + beta).to(dtype)
        if folded.bias is None:
            folded.bias = torch.nn.Parameter(new_bias, requires_grad=layer.weight.requires_grad)
        else:
            folded.bias.copy_(new_bias)
    return folded
