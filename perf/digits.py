"""scikit-learn's 8x8 handwritten digits (1797 images that ship inside the scikit-learn package: no download),
split into a fixed train and test set and normalized with the training set's mean and std."""
from dataclasses import dataclass

import torch

INSTALL_HINT = ("the training demo needs scikit-learn for its data set (sklearn.datasets.load_digits, which ships "
                "inside the package): install it with `pip install scikit-learn` or `pip install -e '.[demo]'` "
                "(`make demo` does this)")
TEST_FRACTION = 0.2


@dataclass
class Digits:
    train_images: torch.Tensor  # (N, 1, 8, 8) float32
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_digits(device, seed=0):
    """The digits as (N, 1, 8, 8) images on `device`, split by a permutation drawn from `seed`."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(INSTALL_HINT) from error
    data = sklearn_load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(images) * TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return Digits(images[train].to(device), labels[train].to(device), images[test].to(device),
                  labels[test].to(device))
