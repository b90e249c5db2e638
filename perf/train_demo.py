"""The main job: train a small CNN on scikit-learn's 8x8 digits twice, side by side, from the same initial
weights and the same batches: once built from tritonlayers.nn, once from torch.nn.

    python -m perf.train_demo [--epochs N] [--batch-size B] [--device cuda|cpu] [--dropout P] ...

Prints a progress bar, each epoch's training loss and test accuracy of both models, the largest difference
of their outputs before training (identical weights, eval mode: rounding only) and of their parameters after
it, and on a GPU the time of one training step of each and of torch.compile(torch model). On a CPU the
kernels run through Triton's interpreter; the defaults finish in a few minutes on two cores. Exits 1 when
the outputs differ at the start or a model does not learn.
"""
import argparse
import copy
import os
import sys
import time

import torch

START_TOLERANCE = 1e-4  # largest |difference| of the log-probabilities from identical weights (fp32 rounding)
LEARNED = 0.8  # test accuracy both models must reach (chance is 0.1)
CHECK_BATCH = 64  # test images of the start comparison


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m perf.train_demo",
                                     description="train a CNN on the 8x8 digits with tritonlayers and with torch.nn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is a GPU)")
    parser.add_argument("--width", type=int, default=32, help="channels after the patch embedding")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout probability (0 keeps the twins close)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: at least 1")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout {args.dropout}: a probability in [0, 1)")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU")
    if args.device.type not in ("cuda", "cpu"):
        parser.error(f"--device {args.device}: tritonlayers runs on cuda, or on cpu through Triton's interpreter")
    return args


def step_milliseconds(model, images, labels, lr):
    """Median time of one training step (forward, backward, Adam) after warm-up (tuning, compilation)."""
    import triton.testing

    from .digits_training import training_step
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(3):
        training_step(model, optimizer, images, labels)
    return triton.testing.do_bench(lambda: training_step(model, optimizer, images, labels), warmup=25, rep=200,
                                   return_mode="median")


def print_step_times(models, data, batch_size, lr):
    images, labels = data.train_images[:batch_size], data.train_labels[:batch_size]
    candidates = {name: copy.deepcopy(model) for name, model in models.items()}  # the trained ones stay as they are
    candidates["torch.compile(torch)"] = torch.compile(copy.deepcopy(models["torch"]))
    print(f"\ntime per training step (batch {batch_size}, forward + backward + Adam, median):")
    for name, model in candidates.items():
        print(f"  {name:<22} {step_milliseconds(model, images, labels, lr):8.3f} ms", flush=True)


class Progress:
    """The training callbacks: a progress bar through each epoch, then the epoch's losses and accuracies."""

    def __init__(self, epochs):
        self.epochs, self.bar = epochs, None

    def step(self, epoch, step, steps, runs):
        from .progress import ProgressBar
        if self.bar is None:
            self.bar = ProgressBar(steps, f"epoch {epoch + 1}/{self.epochs}")
        self.bar.update(step + 1, "loss " + "  ".join(f"{name} {run.step_losses[-1]:.3f}"
                                                      for name, run in runs.items()))

    def epoch(self, epoch, runs):
        self.bar.close()
        self.bar = None
        print("  train loss " + "  ".join(f"{name} {run.epoch_losses[-1]:.4f}" for name, run in runs.items()) +
              "   test accuracy " + "  ".join(f"{name} {run.accuracies[-1]:.1%}" for name, run in runs.items()),
              flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.device.type == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # before tritonlayers (and so triton) is imported
    from .digits import load_digits
    from .digits_models import twin_models
    from .digits_training import max_output_difference, max_parameter_difference, train_side_by_side

    try:
        data = load_digits(args.device, args.seed)
    except ModuleNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.device.type == "cpu":
        torch.set_num_threads(1)  # tiny tensors: a second thread only waits, on the interpreter's core
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # exact fp32 on both sides
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False  # same run for the same seed
    torch_model, ours = twin_models(args.seed, args.width, args.dropout)
    models = {"tritonlayers": ours.to(args.device), "torch": torch_model.to(args.device)}

    where = (f"GPU {torch.cuda.get_device_name(args.device)}" if args.device.type == "cuda"
             else "CPU, kernels through Triton's interpreter")
    print(f"Training demo on {where}: scikit-learn's 8x8 digits, {len(data.train_labels)} training and "
          f"{len(data.test_labels)} test images")
    print("model: [image, 3x3 avg pool, 3x3 max pool] -> 4x4 patches -> 1x1 conv, BatchNorm+ReLU -> global avg "
          "pool -> dropout -> linear + log_softmax, NLL loss")
    print(f"       {sum(p.numel() for p in ours.parameters())} parameters; tritonlayers.nn and torch.nn twins "
          f"from the same initial weights, trained on the same batches (Adam lr {args.lr}, batch "
          f"{args.batch_size}, seed {args.seed})")
    if args.dropout > 0:
        print(f"dropout p={args.dropout}: each implementation draws its own masks, so the twins drift apart "
              "(run with --dropout 0 to see them stay close)")
    start_difference = max_output_difference(ours, torch_model, data.test_images[:CHECK_BATCH])
    print(f"\nbefore training, eval mode: largest |output difference| on {CHECK_BATCH} test images = "
          f"{start_difference:.2e} ({'ok' if start_difference <= START_TOLERANCE else 'TOO LARGE'}, "
          f"tolerance {START_TOLERANCE:.0e})\n")

    started = time.perf_counter()
    progress = Progress(args.epochs)
    runs = train_side_by_side(models, data, args.epochs, args.batch_size, args.lr, args.seed,
                              on_step=progress.step, on_epoch=progress.epoch)
    difference, name = max_parameter_difference(ours, torch_model)
    print(f"\nafter training: largest |parameter difference| = {difference:.2e} (in {name})")
    steps = len(runs["torch"].step_losses)
    print(f"wall clock {time.perf_counter() - started:.0f}s for {steps} steps; per step: " +
          "  ".join(f"{name} {run.seconds / steps * 1e3:.1f} ms" for name, run in runs.items()) +
          ("" if args.device.type == "cuda" else "  (the interpreter runs the kernels in Python: not a speed)"))
    if args.device.type == "cuda":
        print_step_times(models, data, args.batch_size, args.lr)

    learned = all(run.accuracies[-1] >= LEARNED for run in runs.values())
    print(f"\nboth models reach {LEARNED:.0%} test accuracy: {'yes' if learned else 'NO'}")
    return 0 if learned and start_difference <= START_TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
