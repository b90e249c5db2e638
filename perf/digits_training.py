"""Training several models side by side on the digits: the same batches in the same order for each, one
optimizer step of every model per batch, per-step losses and per-epoch test accuracy; and the comparisons
the demo prints (largest output and parameter differences)."""
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Run:
    """One model's training record."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step_losses: list = field(default_factory=list)
    epoch_losses: list = field(default_factory=list)  # mean training loss of each epoch
    accuracies: list = field(default_factory=list)  # test accuracy after each epoch
    seconds: float = 0.0  # wall-clock time spent in its training steps


def training_step(model, optimizer, images, labels):
    """One step of nll_loss on the model's log-probabilities; returns the loss tensor (not synchronized)."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.nll_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


@torch.no_grad()
def accuracy(model, images, labels):
    was_training = model.training
    model.eval()
    correct = (model(images).argmax(dim=1) == labels).sum().item()
    model.train(was_training)
    return correct / len(labels)


@torch.no_grad()
def max_output_difference(first, second, images):
    """Largest |first(images) - second(images)| with both models in eval mode."""
    modes = first.training, second.training
    first.eval()
    second.eval()
    difference = (first(images) - second(images)).abs().max().item()
    first.train(modes[0])
    second.train(modes[1])
    return difference


def max_parameter_difference(first, second):
    """(largest |difference| over all parameters, the parameter's name)."""
    second_parameters = dict(second.named_parameters())
    return max(((first_value - second_parameters[name]).abs().max().item(), name)
               for name, first_value in first.named_parameters())


def batch_orders(num_samples, batch_size, epochs, seed):
    """Per epoch, the index batches of a shuffled pass (a last partial batch dropped: BatchNorm wants full
    ones), drawn from their own generator so model randomness (dropout) does not change them."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(num_samples, generator=generator)
        yield [order[start:start + batch_size] for start in range(0, num_samples - batch_size + 1, batch_size)]


def train_side_by_side(models, data, epochs, batch_size, lr=1e-2, seed=0, max_steps=None, on_step=None,
                       on_epoch=None):
    """Train every model of `models` (name -> module) on `data` (perf.digits.Digits) with Adam: per batch, one
    step of each in turn. Returns {name: Run}.

    max_steps stops early (a short test run); on_step(epoch, step, steps_in_epoch, runs) after every batch and
    on_epoch(epoch, runs) after each epoch's test accuracy.
    """
    if not 0 < batch_size <= len(data.train_labels):
        raise ValueError(f"batch_size={batch_size} must be between 1 and the {len(data.train_labels)} training "
                         "samples")
    runs = {name: Run(model, torch.optim.Adam(model.parameters(), lr=lr)) for name, model in models.items()}
    torch.manual_seed(seed)  # dropout masks: each implementation draws its own from torch's generator
    steps_taken = 0
    for epoch, batches in enumerate(batch_orders(len(data.train_labels), batch_size, epochs, seed)):
        for run in runs.values():
            run.model.train()
        epoch_sums = dict.fromkeys(runs, 0.0)
        for step, indices in enumerate(batches):
            indices = indices.to(data.train_images.device)
            images, labels = data.train_images[indices], data.train_labels[indices]
            for name, run in runs.items():
                start = time.perf_counter()
                loss = training_step(run.model, run.optimizer, images, labels).item()
                run.seconds += time.perf_counter() - start
                run.step_losses.append(loss)
                epoch_sums[name] += loss
            steps_taken += 1
            if on_step is not None:
                on_step(epoch, step, len(batches), runs)
            if max_steps is not None and steps_taken >= max_steps:
                break
        for name, run in runs.items():
            run.epoch_losses.append(epoch_sums[name] / (step + 1))
            run.accuracies.append(accuracy(run.model, data.test_images, data.test_labels))
        if on_epoch is not None:
            on_epoch(epoch, runs)
        if max_steps is not None and steps_taken >= max_steps:
            break
    return runs
