"""Folding and fusion across one module's children, found in its forward traced one level deep by torch.fx
(each submodule it calls stays one node):

- fold: layer -> evaluation-mode BatchNorm, the layer's output feeding only the BatchNorm;
- fuse: BatchNorm -> add -> activation, BatchNorm -> add and BatchNorm / Conv2d / ConvTranspose2d / Linear
  -> activation, into the tritonlayers module's `activation=` and the BatchNorm's residual argument.

When all that changed is which children run (a fused activation module becomes nn.Identity, a folded
BatchNorm a FoldedBatchNorm), the module keeps its own forward; otherwise (a residual passed to a BatchNorm,
a functional activation dropped) a torch.fx.GraphModule with the module's state and hooks replaces it."""
from collections import Counter, defaultdict

import torch
import torch.fx as fx
from torch.fx.graph_module import _USER_PRESERVED_ATTRIBUTES_KEY

from ._convert_patterns import activation_of, has_hooks, residual_of, writes_in_place
from ._convert_swap import is_library_module
from .fold import fold_batchnorm

_BatchNorm = torch.nn.modules.batchnorm._BatchNorm
_FOLDABLE = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)


class FoldedBatchNorm(torch.nn.Identity):
    """Stands where convert folded an evaluation-mode BatchNorm into the layer before it. After a Linear it
    checks the output is (N, C): on (N, L, C) the BatchNorm normalized L, not the features the fold scaled."""

    def __init__(self, into, after_linear=False):
        super().__init__()
        self.into, self.after_linear = into, after_linear

    def extra_repr(self):
        return f"into={self.into!r}"

    def forward(self, input):
        if self.after_linear and input.dim() != 2:
            raise RuntimeError(f"a BatchNorm was folded into Linear '{self.into}' for (N, C) outputs, but it "
                               f"gives {tuple(input.shape)}; convert the model in train mode to keep the BatchNorm")
        return input


def has_candidates(module):
    """Whether `module`'s forward may hold a fold or fusion: it has one and calls a BatchNorm or GEMM layer."""
    return type(module).forward is not torch.nn.Module.forward and any(
        isinstance(child, (_BatchNorm, *_FOLDABLE)) for child in module.children())


class _ChildrenAsLeaves(fx.Tracer):
    def is_leaf_module(self, module, qualified_name):
        return True


def _trace(module):
    """The forward's graph; ValueError when it depends on the training flags, as a graph fixes one mode."""
    modes = {m: m.training for m in module.modules()}
    try:
        graph = _ChildrenAsLeaves().trace(module)
        for m in modes:
            m.training = not module.training
        flipped = _ChildrenAsLeaves().trace(module)
    finally:
        for m, mode in modes.items():
            m.training = mode
    if graph.python_code("self").src != flipped.python_code("self").src:
        raise ValueError("forward depends on self.training")
    return graph


def _graph_module(module, graph):
    """A GraphModule running `graph` with all of `module`'s state: parameters, buffers (persistent or not),
    children (called or not), hooks, mode and plain attributes, in the module's order."""
    graph.lint()
    converted = fx.GraphModule(module, graph)  # named GraphModule: its deepcopy would be anyway
    own = set(vars(converted)) - set(vars(torch.nn.Module()))
    vars(converted).update((name, value) for name, value in vars(module).items() if name not in own)
    # GraphModule's deepcopy rebuilds parameters, buffers and children, and restores these
    state = ("training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_modules")
    converted.meta[_USER_PRESERVED_ATTRIBUTES_KEY] = {
        name: value for name, value in vars(module).items() if name not in own and name not in state}
    return converted


class _Rewrite:
    """Folds and fusions on one traced forward, applied to the module's children as they are found."""

    def __init__(self, root, graph, path, report):
        self.root, self.graph, self.report = root, graph, report
        self.prefix = path + "." if path else ""
        self.calls = Counter(id(root.get_submodule(node.target)) for node in graph.nodes if node.op == "call_module")
        self.erased = set()
        self.fused_into = defaultdict(list)  # target of a dropped activation call -> paths it was fused into
        self.needs_new_forward = False

    def _module(self, node):
        return self.root.get_submodule(node.target) if isinstance(node, fx.Node) and node.op == "call_module" \
            else None

    def _exclusive(self, node):
        """A library layer (not a subclass computing something else) called only here and watched by no hook,
        so changing it changes only this call."""
        module = self._module(node)
        return module is not None and is_library_module(module) and self.calls[id(module)] == 1 and \
            not has_hooks(module)

    @staticmethod
    def _sole_user(node):
        return next(iter(node.users)) if len(node.users) == 1 else None

    def _replace_child(self, target, new):
        parent_path, _, name = target.rpartition(".")
        old = self.root.get_submodule(target)
        self.calls[id(new)] = self.calls.pop(id(old), 0)
        setattr(self.root.get_submodule(parent_path), name, new.train(old.training))

    def _drop(self, node, into):
        """Remove an activation or add node whose work the module at path `into` now does."""
        if node.op == "call_module":
            self.fused_into[node.target].append(into)
        else:
            self.needs_new_forward = True
        self.erased.add(node)
        self.graph.erase_node(node)

    def fold(self, node):
        """Fold the evaluation-mode BatchNorm called at `node` into the layer feeding it; returns the layer's
        node, or None."""
        bn = self._module(node)
        if not (isinstance(bn, _BatchNorm) and not bn.training and self._exclusive(node) and len(node.args) == 1
                and not node.kwargs):
            return None
        user = self._sole_user(node)
        if getattr(bn, "activation", False) is None and user is not None and residual_of(user, node) is not None:
            return None  # the BatchNorm kernel also takes the add (and activation): fewer passes than folding
        layer_node = node.args[0]
        layer = self._module(layer_node)
        if not (isinstance(layer, _FOLDABLE) and self._exclusive(layer_node) and self._sole_user(layer_node) is node):
            return None
        bn_path, layer_path = self.prefix + node.target, self.prefix + layer_node.target
        try:
            folded = fold_batchnorm(layer, bn)
        except (TypeError, ValueError) as error:
            self.report.add_reason(bn_path, f"not folded: {error}")
            return None
        self._replace_child(layer_node.target, folded)
        self._replace_child(node.target, FoldedBatchNorm(layer_path, isinstance(layer, torch.nn.Linear)))
        self.report.record(bn_path, type(bn), "folded", f"into {layer_path}")
        self.report.add_reason(layer_path, f"{bn_path} folded in")
        return layer_node

    def _written_between(self, first, last):
        """Whether a node between `first` and `last` may write in place into what `first` reads, so that
        `first` cannot move down to `last`."""
        node = first.next
        while node is not last:
            if writes_in_place(node, self.root):
                return True
            node = node.next
        return False

    def fuse(self, producer, output):
        """Fuse what follows `output` into the module called at `producer` (output is producer, or the
        FoldedBatchNorm after it): a residual add when it is a BatchNorm, then an activation."""
        module = self._module(producer)
        if getattr(module, "activation", False) is not None or not self._exclusive(producer):
            return
        path, fused = self.prefix + producer.target, []
        user = self._sole_user(output)
        residual = residual_of(user, output) if user is not None and output is producer and isinstance(
            module, _BatchNorm) and len(producer.args) == 1 and not producer.kwargs else None
        if residual is not None and not self._written_between(producer, user):
            producer.args = (producer.args[0], residual)
            user.prepend(producer)  # the residual may be computed after the BatchNorm was
            user.replace_all_uses_with(producer)
            self._drop(user, path)
            fused.append("residual add")
            user = self._sole_user(producer)
        spec = activation_of(user, self.root) if user is not None and user.args and user.args[0] is output else None
        if spec is not None:
            module.activation = spec
            user.replace_all_uses_with(output)
            source = self.prefix + user.target if user.op == "call_module" else \
                f"{getattr(user.target, '__name__', user.target)}()"
            fused.append(f"{spec.name} from {source}")
            self._drop(user, path)
        if fused:
            self.report.record(path, type(module), "fused", " + ".join(fused))

    def run(self):
        for node in list(self.graph.nodes):
            if node not in self.erased and node.op == "call_module":
                self.fuse(self.fold(node) or node, node)

    def install(self, path):
        """The module to put in the root's place: the root, or a GraphModule when its forward must change."""
        called = {id(self.root.get_submodule(node.target)) for node in self.graph.nodes if node.op == "call_module"}
        for target, into in self.fused_into.items():
            if id(self.root.get_submodule(target)) in called:  # a shared activation, still applied elsewhere
                self.needs_new_forward = True
                self.report.add_reason(self.prefix + target, f"also fused into {', '.join(into)}")
            else:
                self.report.record(self.prefix + target, type(self.root.get_submodule(target)), "fused",
                                   f"into {', '.join(into)}; replaced by Identity")
                self._replace_child(target, torch.nn.Identity())
        if not self.needs_new_forward:
            return self.root
        self.report.record(path, type(self.root), "rewritten",
                           "forward regenerated by torch.fx (a GraphModule) to apply the fusions")
        return _graph_module(self.root, self.graph)


def rewrite_forward(path, module, report):
    """Fold and fuse across `module`'s children; returns the module to put in its place (itself, or a
    GraphModule). A forward torch.fx cannot trace is reported and left as it is."""
    attributes = set(vars(module))
    try:
        graph = _trace(module)
    except Exception as error:  # user code: data-dependent control flow, non-tensor arguments, ...
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        report.record(path, type(module), "left alone",
                      f"forward not traced by torch.fx ({reason}); fusions only inside its children")
        replacement = module
    else:
        rewrite = _Rewrite(module, graph, path, report)
        rewrite.run()
        replacement = rewrite.install(path)
    for name in set(vars(module)) - attributes:  # tensor constants the tracer stored on the module
        del vars(module)[name]
    return replacement
