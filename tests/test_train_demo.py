"""The training demo (perf/train_demo.py) on a few steps: the tritonlayers and torch.nn twins start from
identical outputs and, without dropout, take the same steps; the demo's randomness follows the seed; a
missing scikit-learn stops it with an install hint."""
import dataclasses
import io
import sys
from pathlib import Path

import pytest
import torch

from helpers import DEVICE, assert_close

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # perf/ is not installed: plain `pytest` needs this
from perf import train_demo  # noqa: E402
from perf.digits import INSTALL_HINT, load_digits  # noqa: E402
from perf.digits_models import twin_models  # noqa: E402
from perf.digits_training import train_side_by_side  # noqa: E402
from perf.progress import ProgressBar  # noqa: E402

STEPS, BATCH, TEST_IMAGES = 3, 8, 16


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn", reason="the demo's data set ships with scikit-learn: pip install -e '.[demo]'")
    data = load_digits(DEVICE)
    # a few test images: each epoch's accuracy runs both models over them
    return dataclasses.replace(data, test_images=data.test_images[:TEST_IMAGES],
                               test_labels=data.test_labels[:TEST_IMAGES])


def _short_run(models, digits):
    return train_side_by_side(models, digits, epochs=1, batch_size=BATCH, seed=0, max_steps=STEPS)


def test_twins_start_identical_and_step_alike_without_dropout(digits, exact_fp32):
    torch_model, ours = (model.to(DEVICE) for model in twin_models(seed=0, dropout=0.0))
    images = digits.test_images
    ours.eval(), torch_model.eval()
    assert_close(ours(images), torch_model(images), torch.float32, name="eval log-probabilities at the start")

    runs = _short_run({"tritonlayers": ours, "torch": torch_model}, digits)
    losses = {name: torch.tensor(run.step_losses, dtype=torch.float64) for name, run in runs.items()}
    assert len(losses["torch"]) == STEPS
    # step 1 from identical weights: rounding only; later steps inherit Adam's first, sign-like update
    assert_close(losses["tritonlayers"][:1], losses["torch"][:1], torch.float32, name="step 1 loss")
    assert_close(losses["tritonlayers"], losses["torch"], atol=1e-4, rtol=1e-4, name="per-step losses")
    for (name, ours_value), torch_value in zip(ours.state_dict().items(), torch_model.state_dict().values()):
        if name.endswith("num_batches_tracked"):
            assert torch.equal(ours_value, torch_value), name
        else:
            assert_close(ours_value, torch_value, atol=1e-4, rtol=1e-4, name=name)


def test_dropout_masks_follow_the_seed(digits):
    losses = []
    for _ in range(2):
        _, ours = twin_models(seed=0, dropout=0.5)
        losses.append(_short_run({"tritonlayers": ours.to(DEVICE)}, digits)["tritonlayers"].step_losses)
    assert losses[0] == losses[1]


def test_missing_scikit_learn_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "sklearn.datasets", raising=False)
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        load_digits(DEVICE)
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert train_demo.main(["--epochs", "1", "--device", DEVICE.type]) == 2
    assert INSTALL_HINT in stderr.getvalue()


def test_progress_bar_in_a_log_prints_quarters_and_the_end():
    stream = io.StringIO()  # not a terminal: no carriage returns
    bar = ProgressBar(8, "epoch 1/1", width=8, stream=stream)
    for done in range(1, 9):
        bar.update(done, f"loss {done}")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == ["2/8", "4/8", "6/8", "8/8"]
    assert lines[-1].startswith("epoch 1/1 [########]") and lines[-1].endswith("loss 8") and "\r" not in lines[-1]
