"""Swapping a torch.nn layer for its tritonlayers twin, when the twin runs the layer's configuration.

The twin's own constructor is the judge: it is built (on the meta device, so nothing is allocated) from the
layer's constructor arguments and refuses what its kernels do not run. Accepted layers change class in
place, so parameters, buffers, hooks, mode and any attribute the user set stay with them."""
import inspect

import torch

from . import nn as tl_nn

# torch.nn class -> tritonlayers.nn subclass of the same name (GlobalAvgPool2d & co. have no torch twin)
TWINS = {getattr(torch.nn, name): getattr(tl_nn, name) for name in tl_nn.__all__ if hasattr(torch.nn, name)}
_CONVERTED = frozenset(getattr(tl_nn, name) for name in tl_nn.__all__)


def is_library_module(module):
    """A torch.nn layer or its tritonlayers twin, not a subclass whose forward may compute something else."""
    return type(module) in TWINS or type(module) in _CONVERTED


def _constructor_args(module):
    """Keyword arguments that rebuild `module`'s configuration: the attributes named like its torch class's
    __init__ parameters (a parameter slot such as `bias` becomes whether it is set)."""
    args = {}
    for name, parameter in inspect.signature(type(module).__init__).parameters.items():
        if name in ("self", "device", "dtype") or parameter.kind in (parameter.VAR_POSITIONAL,
                                                                     parameter.VAR_KEYWORD):
            continue
        if name in module._parameters:
            args[name] = module._parameters[name] is not None
        elif hasattr(module, name):
            args[name] = getattr(module, name)
        else:
            raise ValueError(f"its constructor argument '{name}' is not an attribute to read back")
    return args


def _probe(twin, module):
    """The twin built from the module's configuration; raises what the twin raises when it refuses it."""
    args = _constructor_args(module)
    if "device" in inspect.signature(type(module).__init__).parameters:
        args["device"] = "meta"
    return twin(**args)


def try_swap(module):
    """Turn `module` into its tritonlayers twin in place when the twin accepts its configuration, with the
    twin's extra attributes (e.g. activation=None) at their defaults. Returns (swapped, reason it was not):
    the reason is None for containers, which are not layers."""
    cls = type(module)
    if cls in _CONVERTED:
        return False, "already a tritonlayers module"
    if cls in TWINS:
        try:
            probe = _probe(TWINS[cls], module)
        except (NotImplementedError, ValueError, TypeError) as error:
            return False, str(error)
        module.__class__ = TWINS[cls]
        for name, value in vars(probe).items():
            vars(module).setdefault(name, value)
        return True, None
    twin_base = next((base for base in TWINS if isinstance(module, base)), None)
    if twin_base is not None:
        return False, f"a subclass of torch.nn.{twin_base.__name__} whose forward may differ from torch's"
    if next(module.children(), None) is None:
        return False, "no tritonlayers twin"
    return False, None
