"""max_pool1d, avg_pool1d, adaptive_avg_pool1d, adaptive_max_pool1d: 1-d pooling as 2-d pooling of the
(N, C, 1, L) view, which is how torch computes it too, with torch's 1-d argument checks and messages (the
2-d checks then speak for the geometry where torch's 1-d ops defer to theirs)."""
from ._launch import check_floating, check_tensor
from .pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d, pooling_output_size


def _one_int(value, op_name, name, position, size_message):
    """An int or a one-element sequence of one, as torch's 1-d pooling reads its size arguments."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise RuntimeError(size_message(len(value)))
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{op_name}(): argument '{name}' (position {position}) must be tuple of ints, not "
                        f"{type(value).__name__}")
    return value


def _one_int_argument(value, op_name, name, position):
    return _one_int(value, op_name, name, position,
                    lambda size: f"{op_name}() argument '{name}' should contain one int (got {size})")


def _check_rank(op_name, input):
    check_tensor(op_name, "input", input)
    if input.dim() not in (2, 3):
        raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.dim()}-dimensional tensor for argument #1 "
                           f"'self' (while checking arguments for {op_name})")


def _squeezed(result):
    return tuple(t.squeeze(-2) for t in result) if isinstance(result, tuple) else result.squeeze(-2)


def _window_arguments(op, input, kernel_size, stride, padding, *dilation):
    """torch's check1d / checkDimRange order, for the 1-d ops that defer to their 2-d twins (avg_pool1d,
    max_pool1d with indices): (kernel, stride, padding, *dilation) as ints."""
    kernel = _one_int_argument(kernel_size, op, "kernel_size", 2)
    _check_rank(op, input)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = _one_int_argument(stride, op, "stride", 3)
    padding = _one_int_argument(padding, op, "padding", 4)
    return (kernel, stride, padding, *(_one_int_argument(d, op, "dilation", 5) for d in dilation))


def _max_pool1d_arguments(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """torch's own max_pool1d checks (without indices), in its order: (kernel, stride, padding, dilation)."""
    check_tensor(op, "input", input)
    if input.dim() not in (2, 3) or 0 in input.shape[-2:]:
        raise RuntimeError(f"{op}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, "
                           f"but got:{list(input.shape)}")
    kernel = _one_int(kernel_size, op, "kernel_size", 2, lambda size: (
        f"{op}() kernel_size must be an int, list of ints or tuple of ints of size 1 but got size {size}"))
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = _one_int(stride, op, "stride", 3, lambda size: (
        f"{op}() stride must be None, an int, list of ints, or tuple of ints of size 1 but got size {size}"))
    padding = _one_int(padding, op, "padding", 4, lambda size: (
        f"{op}() padding must be an int, list of ints, or tuple of ints of size 1 but got size {size}"))
    dilation = _one_int(dilation, op, "dilation", 5, lambda size: (
        f"{op}() dilation must be an int, list of ints or tuple of ints of size 1 but got size {size}"))
    for name, value, positive in (("kernel_size", kernel, True), ("stride", stride, True),
                                  ("padding", padding, False)):
        if value < 0 or positive and value == 0:
            raise RuntimeError(f"{op}() {name} must be {'greater than zero' if positive else 'non-negative'}, but "
                               f"got {value}")
    if padding > kernel // 2:
        raise RuntimeError(f"{op}() padding should be at most half of kernel size, but got padding={padding} and "
                           f"kernel_size={kernel}")
    if dilation <= 0:
        raise RuntimeError(f"{op}() dilation must be greater than zero, but got {dilation}")
    length = pooling_output_size(input.shape[-1], kernel, padding, stride, dilation, ceil_mode)
    if length <= 0:
        raise RuntimeError(f"{op}() Invalid computed output size: {length}")
    check_floating(op, "input", input.dtype)
    return kernel, stride, padding, dilation


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices:  # torch's max_pool1d_with_indices: the 1-d argument checks, then max_pool2d's
        kernel, stride, padding, dilation = _window_arguments("max_pool1d", input, kernel_size, stride, padding,
                                                              dilation)
    else:
        kernel, stride, padding, dilation = _max_pool1d_arguments("max_pool1d", input, kernel_size, stride, padding,
                                                                  dilation, ceil_mode)
    return _squeezed(max_pool2d(input.unsqueeze(-2), (1, kernel), (1, stride), (0, padding), (1, dilation), ceil_mode,
                                return_indices))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    kernel, stride, padding = _window_arguments("avg_pool1d", input, kernel_size, stride, padding)
    return avg_pool2d(input.unsqueeze(-2), (1, kernel), (1, stride), (0, padding), ceil_mode,
                      count_include_pad).squeeze(-2)


def _adaptive_size(op, input, output_size):
    _check_rank(op, input)
    size = _one_int_argument(output_size, op, "output_size", 2)
    if input.shape[-1] == 0:
        raise RuntimeError(f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input has "
                           f"sizes {list(input.shape)} with dimension {input.dim() - 1} being empty")
    return size


def adaptive_avg_pool1d(input, output_size):
    size = _adaptive_size("adaptive_avg_pool1d", input, output_size)
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    size = _adaptive_size("adaptive_max_pool1d", input, output_size)
    return _squeezed(adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices))
