"""What a torch.fx node computes, as far as convert's fusions care: a supported activation (module, function
or tensor method) or an addition of two tensors."""
import operator

import torch
import torch.nn.functional as F

from ._convert_swap import is_library_module
from .activation import resolve_activation

# function -> (the torch.nn module it equals, that module's constructor arguments after the input, in order)
_FUNCTIONS = {
    F.relu: (torch.nn.ReLU, ("inplace",)), torch.relu: (torch.nn.ReLU, ()), torch.relu_: (torch.nn.ReLU, ()),
    F.relu6: (torch.nn.ReLU6, ("inplace",)),
    F.leaky_relu: (torch.nn.LeakyReLU, ("negative_slope", "inplace")),
    F.elu: (torch.nn.ELU, ("alpha", "inplace")),
    F.gelu: (torch.nn.GELU, ("approximate",)),
    F.silu: (torch.nn.SiLU, ("inplace",)),
    F.mish: (torch.nn.Mish, ("inplace",)),
    F.hardswish: (torch.nn.Hardswish, ("inplace",)),
    F.hardsigmoid: (torch.nn.Hardsigmoid, ("inplace",)),
    F.softplus: (torch.nn.Softplus, ("beta", "threshold")),
    torch.sigmoid: (torch.nn.Sigmoid, ()), F.sigmoid: (torch.nn.Sigmoid, ()),
    torch.tanh: (torch.nn.Tanh, ()), F.tanh: (torch.nn.Tanh, ()),
}
_METHODS = {"relu": torch.nn.ReLU, "relu_": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid,
            "sigmoid_": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "tanh_": torch.nn.Tanh}
_ADDS = (operator.add, torch.add)  # torch.fx traces `a += b` as operator.add


def has_hooks(module):
    """Hooks see a module's inputs and output, which fusing or folding it would change."""
    return any(getattr(module, name) for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                  "_backward_pre_hooks"))


def _equivalent_module(node, root):
    """The torch.nn activation module `node` computes on its first argument, or None."""
    if node.op == "call_module":
        module = root.get_submodule(node.target)
        usable = is_library_module(module) and not has_hooks(module) and len(node.args) == 1 and not node.kwargs
        return module if usable else None
    if node.op == "call_function" and node.target in _FUNCTIONS:
        module_type, names = _FUNCTIONS[node.target]
        extra = dict(zip(names, node.args[1:]), **node.kwargs)
        if len(node.args) - 1 > len(names) or not set(extra) <= set(names):
            return None
    elif node.op == "call_method" and node.target in _METHODS:
        module_type, extra = _METHODS[node.target], {}
        if len(node.args) != 1 or node.kwargs:
            return None
    else:
        return None
    if any(isinstance(value, torch.fx.Node) for value in extra.values()):
        return None  # a parameter computed at run time
    return module_type(**extra)


def activation_of(node, root):
    """The ActivationSpec of the activation `node` applies to node.args[0], or None."""
    try:
        module = _equivalent_module(node, root)
        spec = None if module is None else resolve_activation(module)
    except (TypeError, ValueError):  # not an activation tritonlayers runs, or arguments torch would refuse
        return None
    return None if spec is None or spec.name == "identity" else spec


def residual_of(add, operand):
    """The other addend when `add` is `operand + other` (or other + operand) of two distinct tensors, without
    writing into `other`; else None."""
    if add.op == "call_function" and add.target in _ADDS or add.op == "call_method" and add.target in ("add",
                                                                                                          "add_"):
        if len(add.args) != 2 or add.kwargs or operand not in add.args:
            return None
        other = add.args[1] if add.args[0] is operand else add.args[0]
        writes_other = add.target == "add_" and add.args[0] is other
        # a parameter or buffer addend (get_attr) would broadcast, which the fused residual does not
        if isinstance(other, torch.fx.Node) and other.op != "get_attr" and other is not operand and not writes_other:
            return other
    return None


def writes_in_place(node, root):
    """Whether `node` may write into a tensor it is given: an inplace=True module or argument, or a function
    or method named like torch's in-place ops (relu_, add_)."""
    if node.op == "call_module":
        return getattr(root.get_submodule(node.target), "inplace", False) is True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return node.op in ("call_function", "call_method") and (
        node.kwargs.get("inplace") is True or name.endswith("_") and not name.endswith("__"))
