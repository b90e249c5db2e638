"""BatchNorm modules: torch.nn's BatchNorm1d/2d/3d and SyncBatchNorm (same constructor, parameters, buffers,
state_dict and momentum / num_batches_tracked / track_running_stats behaviour) whose forward runs
tritonlayers' kernels. An optional `activation=` fuses activation(BN(x) + residual), residual given to
forward."""
import torch
import torch.distributed as dist

from ..activation import resolve_activation
from ..batch_norm import Sync, batch_norm, check_batch_norm_args


class _FusedBatchNorm:
    """Mixin: torch's _BatchNorm.forward with tritonlayers' batch_norm and the fused activation."""

    def _init_activation(self, activation):
        # kept as a spec (a tuple), not a submodule: state_dict and children stay torch's
        self.activation = resolve_activation(activation) if activation is not None else None

    def extra_repr(self):
        text = super().extra_repr()
        return text + (f", activation={self.activation.name!r}" if self.activation is not None else "")

    def _running_stats_and_factor(self, input, residual):
        """(exponential average factor, bn_training, running_mean, running_var), as torch's _BatchNorm, except
        that the call is checked before num_batches_tracked counts it: a failing call changes nothing."""
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_buffers = not self.training or self.track_running_stats
        running_mean = self.running_mean if use_buffers else None
        running_var = self.running_var if use_buffers else None
        check_batch_norm_args(input, running_mean, running_var, self.weight, self.bias, bn_training, 0.0, residual)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return factor, bn_training, running_mean, running_var

    def forward(self, input, residual=None):
        self._check_input_dim(input)
        factor, bn_training, running_mean, running_var = self._running_stats_and_factor(input, residual)
        return batch_norm(input, running_mean, running_var, self.weight, self.bias, bn_training, factor, self.eps,
                          activation=self.activation, residual=residual, _checked=True)


class BatchNorm1d(_FusedBatchNorm, torch.nn.BatchNorm1d):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_activation(activation)


class BatchNorm2d(_FusedBatchNorm, torch.nn.BatchNorm2d):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_activation(activation)


class BatchNorm3d(_FusedBatchNorm, torch.nn.BatchNorm3d):
    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_activation(activation)


def _process_group_sync(process_group, world_size):
    """Sync over a torch.distributed process group (NCCL on GPUs, gloo on CPUs)."""
    rank = dist.get_rank(process_group)

    def gather_stats(local):
        # an all_reduce of one slot per rank: gloo cannot all_gather CUDA tensors, and every backend reduces
        gathered = torch.zeros(world_size, *local.shape, dtype=local.dtype, device=local.device)
        gathered[rank] = local
        dist.all_reduce(gathered, group=process_group)
        return gathered

    def all_reduce_sums(sums):
        sums = sums.contiguous()
        dist.all_reduce(sums, group=process_group)
        return sums

    return Sync(gather_stats, all_reduce_sums)


class SyncBatchNorm(_FusedBatchNorm, torch.nn.SyncBatchNorm):
    """Each rank reduces its local (count, mean, M2); ranks gather and merge them (uneven batches included);
    backward all-reduces the per-channel sums. CPU tensors work too (gloo), through Triton's interpreter."""

    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_activation(activation)

    def forward(self, input, residual=None):
        self._check_input_dim(input)
        self._check_non_zero_input_channels(input)
        factor, bn_training, running_mean, running_var = self._running_stats_and_factor(input, residual)
        sync = None
        if bn_training and self.training and dist.is_available() and dist.is_initialized():
            process_group = self.process_group or dist.group.WORLD
            world_size = dist.get_world_size(process_group)
            if world_size > 1:
                sync = _process_group_sync(process_group, world_size)
        return batch_norm(input, running_mean, running_var, self.weight, self.bias, bn_training, factor, self.eps,
                          activation=self.activation, residual=residual, _sync=sync, _checked=True)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every BatchNorm*d in `module` by a tritonlayers SyncBatchNorm with the same parameters,
        buffers, training mode and fused activation (torch's convert_sync_batchnorm, our class)."""
        converted = module
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group, activation=getattr(module, "activation", None))
            if module.affine:
                with torch.no_grad():
                    converted.weight = module.weight
                    converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
            if hasattr(module, "qconfig"):
                converted.qconfig = module.qconfig
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return converted
