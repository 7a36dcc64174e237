"""Training length in optimizer steps: the schedule, the steps that actually ran, and what they buy on a small table."""

import numpy as np
import pytest

from models.config import MLPConfig
from models.export import predict_proba
from models.train import DEFAULT_STEPS, train_classifier, train_regressor, training_schedule

CONFIG = MLPConfig(num_features=6, hidden_sizes=(8, 4))


@pytest.mark.parametrize("n, kw, epochs, per_epoch, batch", [
    (340, {}, DEFAULT_STEPS, 1, 256),                      # the default: 300 steps, not 10 epochs of one step
    (340, {"steps": 50, "batch_size": 32}, 5, 10, 32),
    (340, {"steps": 25, "batch_size": 32}, 3, 10, 32),     # rounded up to whole epochs: 30 steps
    (100_000, {"steps": 300}, 1, 390, 256),                # a large table: at least one full epoch
    (10, {"steps": 7, "batch_size": 4096}, 7, 1, 10),      # batch capped at the rows
    (340, {"epochs": 10}, 10, 1, 256),                     # an explicit epoch count as before
    (340, {"steps": 0}, 0, 1, 256),
])
def test_training_schedule(n, kw, epochs, per_epoch, batch):
    s = training_schedule(n, **kw)
    assert (s.epochs, s.steps_per_epoch, s.batch_size, s.steps) == (epochs, per_epoch, batch, epochs * per_epoch)


@pytest.mark.parametrize("kw, message", [
    ({"steps": 10, "epochs": 2}, "steps or epochs, not both"),
    ({"steps": -1}, "steps/epochs >= 0"),
    ({"epochs": -1}, "steps/epochs >= 0"),
    ({"batch_size": 0}, "batch_size must be > 0"),
])
def test_training_schedule_refuses(kw, message):
    with pytest.raises(ValueError, match=message):
        training_schedule(340, **kw)


def _counted(train, x, y, config, **kw):
    seen = []
    params = train(x, y, config, on_epoch=lambda steps, loss: seen.append((steps, loss)), **kw)
    return params, seen


def test_a_340_row_training_runs_the_requested_steps(make_data):
    x, y = make_data(340)
    _, seen = _counted(train_classifier, x, y, CONFIG)
    assert len(seen) == DEFAULT_STEPS and seen[-1][0] == DEFAULT_STEPS  # 300 epochs of one 256-row step
    _, seen = _counted(train_classifier, x, y, CONFIG, steps=120, batch_size=32)
    assert [s for s, _ in seen] == [10 * (i + 1) for i in range(12)]  # 12 epochs of 10 steps
    _, seen = _counted(train_regressor, x, y.astype(np.float32), CONFIG.replace(task="regression"), epochs=3,
                       batch_size=64)
    assert [s for s, _ in seen] == [5, 10, 15]  # an explicit epoch count still works
    assert all(np.isfinite(loss) for _, loss in seen)


def test_steps_train_a_small_table_better_than_one_step_per_epoch(make_data):
    x, y = make_data(340)

    def bce(params):
        p = np.clip(np.asarray(predict_proba(CONFIG, params, x), np.float64), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    by_steps, seen = _counted(train_classifier, x, y, CONFIG)
    fixed_epochs = train_classifier(x, y, CONFIG, epochs=10)  # the old default: 10 epochs = 10 steps here
    assert bce(by_steps) < 0.5 * bce(fixed_epochs)
    assert seen[-1][1] < 0.5 * seen[0][1]  # the training loss fell along the way
