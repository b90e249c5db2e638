"""tritonlayers.convert: a torch.nn model with tritonlayers' layers swapped in and its BatchNorms fused or
folded, plus a report of what happened to each module."""
import copy
from collections import defaultdict

import torch

from ._convert_fx import has_candidates, rewrite_forward
from ._convert_report import ConversionReport
from ._convert_swap import try_swap


def _registrations(model):
    """id(module) -> every (parent, name) it is registered under, so a replacement reaches all of them."""
    owners = defaultdict(list)
    for parent in model.modules():
        for name, child in parent._modules.items():
            if child is not None:
                owners[id(child)].append((parent, name))
    return owners


def convert(model, *, inplace=False):
    """Return (converted model, ConversionReport).

    1. Every torch.nn layer with a tritonlayers twin (tritonlayers.nn) becomes that twin when the twin runs
       its configuration; others (a 3x3 Conv2d, a subclass with its own forward, ...) are left alone with the
       reason. Parameters, buffers, hooks, train/eval mode, device and dtype stay; a tritonlayers module is
       never converted again.
    2. Each module's forward is traced one level deep with torch.fx (its children stay calls), and
       - in eval mode, a BatchNorm fed only by a Conv2d / ConvTranspose2d / Linear is folded into a copy of
         that layer (tritonlayers.fold_batchnorm); the model then computes the eval-mode result only;
       - BatchNorm -> add -> activation, BatchNorm -> add and BatchNorm / 1x1 Conv2d / ConvTranspose2d /
         Linear -> activation (a module, or F.relu, torch.relu, x.relu() ... that tritonlayers runs) become
         the module's activation= and the BatchNorm's residual argument, when the intermediate results have
         no other users and no hook watches the modules involved.
       A module whose forward only changes in which children run keeps its forward (fused activations become
       nn.Identity, folded BatchNorms a FoldedBatchNorm); one that must pass a residual or drop a functional
       activation is replaced by a torch.fx.GraphModule with its state and hooks. A forward that does not
       trace (data-dependent control flow, ...) stays as it is while its children are still converted, so
       nn.Sequential chains inside it fuse. The fused residual add assumes both addends have one shape, as in
       residual connections; a broadcasting add would raise.

    inplace=False converts a deep copy; inplace=True converts `model`'s own modules (the same Parameter
    objects, except in folded layers) and returns the model, or the GraphModule replacing it when its own
    forward had to change."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"convert: 'model' must be a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    report = ConversionReport()
    for path, module in model.named_modules():
        original = type(module)
        swapped, reason = try_swap(module)
        if swapped or reason is not None:
            report.record(path, original, "swapped" if swapped else "left alone", reason or "")
    owners, modules = _registrations(model), list(model.named_modules())
    for path, module in reversed(modules):  # children before the modules calling them
        if not has_candidates(module):
            continue
        replacement = rewrite_forward(path, module, report)
        if replacement is not module:
            for parent, name in owners[id(module)]:
                setattr(parent, name, replacement)
            model = replacement if module is model else model
    report.sort([path for path, _ in modules])
    return model, report
