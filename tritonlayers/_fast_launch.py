"""Launching compiled kernels without Triton's per-call Python.

`run_kernel(kernel, grid, *args, **constexprs)` launches like `kernel[grid](*args, **constexprs)`. On CUDA,
once a specialization has run through Triton's launcher (which compiles and autotunes), later calls with the
same specialization call that compiled kernel's launcher directly: Triton's JITFunction.run redoes, on every
call, argument binding, its cache key (a string of the options), device and stream lookups, the launch
metadata for profiler hooks and a check of the kernel's globals, which made mid-size layers launch-bound
(perf.kernel_times; perf.host_profile shows the split).

The key is at least as fine as Triton's specialization: every tensor's dtype and 16-byte alignment, the ints
Triton does not specialize (do_not_specialize: random offsets) by their class (== 1, divisible by 16, 32-bit
or wider), floats by type, every other argument by value (finer than Triton's int classes, and bounded by the
shapes a program runs), the keyword arguments' values and the device; an autotuned kernel's tuning
arguments are ints or keywords, so the key holds them too. The fast path steps aside (Triton's launcher
runs) when launch hooks or pre-run hooks are installed (profilers such as proton use them), under the
interpreter, or with TRITONLAYERS_DIRECT_LAUNCH=0. Kernels' module globals are checked by Triton's launcher
only: they are constants here.
"""
import inspect
import operator
import os

import torch
from triton import knobs
from triton.runtime.autotuner import Autotuner
from triton.runtime.jit import JITFunction

from ._cache import BoundedCache
from ._launch import KERNELS_INTERPRETED

ENABLED = (not KERNELS_INTERPRETED and torch.cuda.is_available()
           and os.environ.get("TRITONLAYERS_DIRECT_LAUNCH", "1") != "0")

_ENTRIES = BoundedCache(8192)
_LAYOUTS = {}  # (id(kernel), the positional arguments' types) -> _Layout, or _NO_ENTRY
_NO_ENTRY = object()  # what the fast path does not serve (kept so it is not analyzed again)
_INT32_MIN, _INT32_MAX, _INT64_MAX = -2**31, 2**31 - 1, 2**63 - 1
_RUNTIME = knobs.runtime


def _int_class(value):
    """What of an unspecialized int Triton's specialization still depends on: == 1, % 16, its width."""
    if value == 1:
        return 1
    width = 0 if _INT32_MIN <= value <= _INT32_MAX else 4 if value <= _INT64_MAX else 8
    return width + (2 if value % 16 == 0 else 3)


def _getter(positions):
    """args -> the tuple of args at `positions` (operator.itemgetter returns a bare item for one)."""
    if len(positions) == 1:
        position = positions[0]
        return lambda args: (args[position],)
    return operator.itemgetter(*positions) if positions else lambda args: ()


class _Layout:
    """How to key a kernel's calls whose positional arguments have given types: tensors by dtype and
    16-byte alignment, ints Triton does not specialize (do_not_specialize, e.g. random offsets) by class, and
    every other argument but floats (typed fp32, never specialized) by value, which is finer than Triton's
    classes and bounded by the shapes a program runs."""
    __slots__ = ("tensors", "classes", "values")

    def __init__(self, jit, autotuned_keys, types):
        tensors, classes, values = [], [], []
        for position, (param, kind) in enumerate(zip(jit.params, types)):
            if issubclass(kind, torch.Tensor):
                tensors.append(position)
            elif kind is int and param.do_not_specialize and param.name not in autotuned_keys:
                classes.append(position)
            elif kind is not float:
                values.append(position)
        self.tensors, self.classes, self.values = _getter(tensors), tuple(classes), _getter(values)


class _Meta(dict):
    """What a callable grid sees on the direct path: the launch's constexprs and options, the autotuner's
    config included (not the positional arguments: tritonlayers' grids read only the tile sizes)."""


class _Entry:
    __slots__ = ("launcher", "function", "metadata", "tail", "meta")

    def __init__(self, compiled, tail, meta):
        self.launcher = compiled.run
        self.function = compiled.function
        self.metadata = compiled.packed_metadata
        self.tail = tail  # the parameters after the positional ones, in order: constants of the specialization
        self.meta = meta


def _hook_installed(hook):
    return hook is not None and (not hasattr(hook, "calls") or bool(hook.calls))


def run_kernel(kernel, grid, *args, **kwargs):
    """kernel[grid](*args, **kwargs), through the compiled kernel's launcher when this specialization ran
    before. `kernel` is a triton.jit function or a triton.autotune of one."""
    if not ENABLED:
        kernel[grid](*args, **kwargs)
        return
    device = torch._C._cuda_getDevice()
    types = tuple(map(type, args))
    layout = _LAYOUTS.get((id(kernel), types))
    if layout is None:
        layout = _LAYOUTS[(id(kernel), types)] = _new_layout(kernel, types)
    entry = key = None
    if layout is not _NO_ENTRY:
        tensors = layout.tensors(args)
        try:
            key = (layout, device, tuple(kwargs.items()), layout.values(args), tuple([t.dtype for t in tensors]),
                   tuple([t.data_ptr() % 16 == 0 for t in tensors]), tuple([_int_class(args[i]) for i in
                                                                           layout.classes]))
            entry = _ENTRIES.get(key)
        except TypeError:  # an unhashable argument
            key = None
    jit = kernel.fn if type(kernel) is Autotuner else kernel
    if (entry is None or entry is _NO_ENTRY or jit.pre_run_hooks or _hook_installed(_RUNTIME.launch_enter_hook)
            or _hook_installed(_RUNTIME.launch_exit_hook)):
        compiled = kernel[grid](*args, **kwargs)
        if entry is None and key is not None:
            _ENTRIES.put(key, _new_entry(kernel, jit, compiled, args, kwargs))
        return
    if callable(grid):
        grid = grid(entry.meta)
    entry.launcher(grid[0], grid[1] if len(grid) > 1 else 1, grid[2] if len(grid) > 2 else 1,
                   torch._C._cuda_getCurrentRawStream(device), entry.function, entry.metadata, None, None, None,
                   *args, *entry.tail)


def _new_layout(kernel, types):
    autotuned = type(kernel) is Autotuner
    jit = kernel.fn if autotuned else kernel
    if not isinstance(jit, JITFunction) or len(types) > len(jit.params):
        return _NO_ENTRY
    return _Layout(jit, set(kernel.keys) if autotuned else set(), types)


def _new_entry(kernel, jit, compiled, args, kwargs):
    """The fast path's entry for a specialization that just launched through Triton, or _NO_ENTRY."""
    if hasattr(compiled, "result"):  # an asynchronous compile's future
        compiled = compiled.result()
    if not all(hasattr(compiled, name) for name in ("run", "function", "packed_metadata")):
        return _NO_ENTRY
    constants = dict(kwargs)
    if type(kernel) is Autotuner:
        constants.update(kernel.best_config.all_kwargs())
    if any(isinstance(value, torch.Tensor) for value in constants.values()):
        return _NO_ENTRY
    tail = []
    for param in jit.params[len(args):]:
        if param.name in constants:
            tail.append(constants[param.name])
        elif param.default is not inspect.Parameter.empty:
            tail.append(param.default)
            constants[param.name] = param.default
        else:
            return _NO_ENTRY
    return _Entry(compiled, tuple(tail), _Meta(constants))
