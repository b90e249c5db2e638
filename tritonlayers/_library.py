"""The "tritonlayers" operator namespace, so torch.compile and torch.export see each kernel call as one op.

Functional ops come from torch.library.custom_op, with autograd from register_autograd. Ops that write an
argument (in-place activation and dropout, BatchNorm's running statistics) are defined by `writing_op`:
register_autograd takes only ops that write nothing, so their autograd kernel is an autograd Function.
"""
import torch

NAMESPACE = "tritonlayers"
_LIBRARY = torch.library.Library(NAMESPACE, "FRAGMENT")


def custom_op(name, mutates_args=()):
    """torch.library.custom_op in the tritonlayers namespace (schema from the type hints)."""
    return torch.library.custom_op(f"{NAMESPACE}::{name}", mutates_args=mutates_args)


def writing_op(schema, implementation, fake, autograd_function):
    """Define `tritonlayers::<schema>`, whose schema marks what it writes (`Tensor(a!)`), and return it.

    Under autograd (grad mode on, some tensor argument requiring grad) the op runs as
    `autograd_function.apply(*args)`, whose forward calls the op through `below_autograd`; otherwise it
    runs as is.
    """
    name = schema.split("(", 1)[0]
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
    return op


def records_grad(*args):
    """True when autograd records a call with these arguments: grad mode on and some tensor requiring grad."""
    return torch.is_grad_enabled() and any(isinstance(arg, torch.Tensor) and arg.requires_grad for arg in args)


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
