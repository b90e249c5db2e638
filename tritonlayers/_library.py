"""The "tritonlayers" operator namespace, so torch.compile and torch.export see each kernel call as one op.

Functional ops come from torch.library.custom_op, with autograd from register_autograd. Ops that write an
argument (in-place activation and dropout, BatchNorm's running statistics) are defined by `writing_op`:
register_autograd takes only ops that write nothing, so their autograd kernel is an autograd Function.

Eager calls skip the dispatcher: going through it (custom_op's autograd wrapper, redispatch, its dynamo guard)
costs tens of microseconds of host time per call, as much as a small kernel runs. When nothing traces (no
dynamo, no dispatch mode such as FakeTensorMode or make_fx, only plain tensors) an op runs its implementation
directly, or, when autograd records the call, an autograd Function built from the same implementation,
setup_context and backward. Whatever traces sees the registered op.
"""
import functools

import torch
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
from torch.autograd import forward_ad

NAMESPACE = "tritonlayers"
_LIBRARY = torch.library.Library(NAMESPACE, "FRAGMENT")


_PLAIN_TENSORS = frozenset((torch.Tensor, torch.nn.Parameter))


def runs_eagerly(args):
    """True when no tracer can see this call: not compiling, no dispatch mode, no torch.func transform (vmap's
    batched tensors have no storage a kernel could read; the op runs under vmap's per-sample fallback), no
    forward-AD level open, plain tensors only. (Loops, not generators: this runs on every call, and a
    generator doubled its host time.)"""
    if (torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack() > 0
            or torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0):
        return False
    for arg in args:
        if isinstance(arg, torch.Tensor) and type(arg) not in _PLAIN_TENSORS:
            return False
    return True


_UNSUPPORTED_TRANSFORMS = {torch._C._functorch.TransformType.Grad: "torch.func.grad / vjp / jacrev",
                           torch._C._functorch.TransformType.Jvp: "torch.func.jvp / jacfwd"}


def refuse_unsupported_autodiff(op_name, args):
    """NotImplementedError for the differentiation the ops do not implement, which would otherwise lose
    derivatives silently (a dual tensor's tangent, a jvp's, came back None or zero): forward mode
    (torch.autograd.forward_ad, torch.func.jvp) and torch.func's grad transforms. vmap is fine: it runs the op
    per sample. Called off the eager path only (runs_eagerly is False whenever either could apply)."""
    if forward_ad._current_level >= 0:
        for arg in args:
            if isinstance(arg, torch.Tensor) and forward_ad.unpack_dual(arg).tangent is not None:
                raise NotImplementedError(
                    f"{NAMESPACE}::{op_name}: forward-mode AD (torch.autograd.forward_ad's dual tensors, "
                    "torch.func.jvp) is not supported; use torch's op, or reverse mode (backward)")
    if torch._C._are_functorch_transforms_active():
        for interpreter in retrieve_all_functorch_interpreters():
            transform = _UNSUPPORTED_TRANSFORMS.get(interpreter.key())
            if transform is not None:
                raise NotImplementedError(f"{NAMESPACE}::{op_name}: {transform} is not supported (torch.func.vmap "
                                          "is); use torch's op, or torch.autograd")


class EagerFastOp:
    """A torch.library custom op whose eager calls run the implementation without the dispatcher."""

    def __init__(self, name, definition, implementation):
        self.name, self.definition, self.implementation = name, definition, implementation
        self.function = None  # the autograd Function of eager calls that autograd records

    def register_fake(self, fake):
        return self.definition.register_fake(fake)

    def register_autograd(self, backward, *, setup_context):
        backward = first_order_only(self.name)(backward)
        self.definition.register_autograd(backward, setup_context=setup_context)
        implementation = self.implementation

        def forward(ctx, *args):  # ctx-style: a separate setup_context makes apply() bind arguments by signature
            output = implementation(*args)
            setup_context(ctx, args, output)
            return output
        self.function = type(f"{implementation.__name__}_function", (torch.autograd.Function,), {
            "forward": staticmethod(forward), "backward": staticmethod(backward)})

    def __call__(self, *args):
        if not runs_eagerly(args):
            refuse_unsupported_autodiff(self.name, args)
            return self.definition(*args)
        if self.function is not None and records_grad(*args):
            return self.function.apply(*args)
        return self.implementation(*args)


def custom_op(name, mutates_args=()):
    """torch.library.custom_op in the tritonlayers namespace (schema from the type hints), with the eager fast
    path."""
    def define(implementation):
        definition = torch.library.custom_op(f"{NAMESPACE}::{name}", mutates_args=mutates_args)(implementation)
        return EagerFastOp(name, definition, implementation)
    return define


def writing_op(schema, implementation, fake, autograd_function):
    """Define `tritonlayers::<schema>`, whose schema marks what it writes (`Tensor(a!)`), and return it.

    Under autograd (grad mode on, some tensor argument requiring grad) the op runs as
    `autograd_function.apply(*args)`, whose forward calls the op through `below_autograd`; otherwise it
    runs as is. The Function's backward is made first_order_only here, as register_autograd's are.
    """
    name = schema.split("(", 1)[0]
    autograd_function.backward = staticmethod(first_order_only(name)(autograd_function.backward))
    _LIBRARY.define(schema, tags=(torch.Tag.pt2_compliant_tag,))
    _LIBRARY.impl(name, implementation, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=_LIBRARY)
    op = getattr(getattr(torch.ops, NAMESPACE), name).default
    returns_nothing = not op._schema.returns

    def autograd_kernel(*args):
        if records_grad(*args):
            result = autograd_function.apply(*args)
            return None if returns_nothing else result
        return below_autograd(op, *args)

    _LIBRARY.impl(name, autograd_kernel, "Autograd")

    def call(*args):
        if not runs_eagerly(args):
            refuse_unsupported_autodiff(name, args)
            return op(*args)
        if records_grad(*args):
            result = autograd_function.apply(*args)
            return None if returns_nothing else result
        return implementation(*args)
    return call


def records_grad(*args):
    """True when autograd records a call with these arguments: grad mode on and some tensor requiring grad."""
    if not torch.is_grad_enabled():
        return False
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.requires_grad:
            return True
    return False


def first_order_only(op_name):
    """Decorator of a backward(ctx, *grads) built from kernels, which autograd cannot differentiate again
    (register_autograd and writing_op apply it to every op's backward).
    Under create_graph=True (grad mode on in backward) it returns its gradients attached to a node that
    raises, naming the op, when a second backward reaches it, as torch's once_differentiable does: detached
    gradients would drop every second-order term silently (a gradient penalty through the layer would get
    none). Always, not only when a saved tensor requires grad: some are copies made without grad (the input
    an in-place activation overwrites)."""
    message = (f"{NAMESPACE}::{op_name}: double backward (differentiating a gradient taken with "
               "create_graph=True) is not supported: its backward runs kernels autograd cannot differentiate; "
               "use torch's op where second-order gradients are needed").encode()

    def decorate(backward):
        @functools.wraps(backward)
        def wrapper(ctx, *grads):
            if not torch.is_grad_enabled() or torch.compiler.is_compiling():
                return backward(ctx, *grads)
            with torch.no_grad():
                outputs = backward(ctx, *grads)
            delayed = torch._C._functions.DelayedError(message, len(outputs))
            return delayed(*[None if t is None else t.detach().requires_grad_() for t in outputs])
        return wrapper
    return decorate


def no_grads(ctx):
    """What a backward returns when its output's gradient is None (grads not materialized as zeros)."""
    return (None,) * len(ctx.needs_input_grad)


def below_autograd(op, *args):
    """Call op past its autograd kernel (from an autograd Function's forward)."""
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)


def mark_written(*tensors):
    """Bump the version counters of tensors a kernel wrote behind autograd's back, so a stale saved copy is
    caught in backward as with torch's own in-place ops."""
    for tensor in tensors:
        if tensor is not None:
            torch.autograd.graph.increment_version(tensor)


def empty_placeholder(like):
    """The stand-in an op returns for an output it was asked not to compute (ops cannot return None)."""
    return like.new_empty(0)


def or_placeholders(tensors, like):
    """tensors with each None replaced by a placeholder, for an op to return."""
    return tuple(empty_placeholder(like) if tensor is None else tensor for tensor in tensors)


def wanted(grads, needs):
    """The gradients autograd asked for (`needs`, one boolean each), None for the placeholders."""
    return tuple(grad if need else None for grad, need in zip(grads, needs))
