"""Training of any registered architecture for its config's task: adam on sigmoid BCE
(classification) or mean squared error (regression), one jitted scan per epoch.

One loop serves both tasks (:func:`train_model`); only the loss and the label check
differ. :func:`train_classifier` and :func:`train_regressor` name the task at the call
site and refuse a config of the other task. How long to train is a number of optimizer
steps (:func:`training_schedule`), so a small table gets as many updates as a large one
instead of one step per epoch; an explicit ``epochs=`` count still works.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from models.architectures import module_for
from models.config import ModelConfig

DEFAULT_STEPS = 300
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSchedule:
    """Whole epochs of ``steps_per_epoch`` minibatches of ``batch_size`` rows each."""

    epochs: int
    steps_per_epoch: int
    batch_size: int

    @property
    def steps(self) -> int:
        """Optimizer steps in all: ``epochs * steps_per_epoch``."""
        return self.epochs * self.steps_per_epoch


def training_schedule(n_rows: int, *, steps: int | None = None, epochs: int | None = None,
                      batch_size: int = 256) -> TrainingSchedule:
    """The epochs and minibatches that train ``n_rows`` rows for ``steps`` optimizer steps, or for ``epochs``.

    The batch is ``min(batch_size, n_rows)`` rows and an epoch is ``n_rows // batch`` steps. Given ``steps``
    (default :data:`DEFAULT_STEPS` when neither is given), the epochs are ``ceil(steps / steps_per_epoch)``: at
    least ``steps`` steps, rounded up to whole epochs so every row is seen as often, and at least one epoch when
    ``steps > 0`` (a large table trains one full epoch even if that is more than ``steps``). Given ``epochs``,
    exactly that many (the fixed-count behaviour; ``epochs=0`` leaves the init params).

    Raises:
      ValueError: both or a negative count given, ``batch_size <= 0`` or ``n_rows <= 0``.
    """
    if n_rows <= 0:
        raise ValueError("cannot train on 0 rows")
    if steps is not None and epochs is not None:
        raise ValueError(f"give steps or epochs, not both (got {steps=}, {epochs=})")
    if batch_size <= 0 or (steps is not None and steps < 0) or (epochs is not None and epochs < 0):
        raise ValueError(f"batch_size must be > 0 and steps/epochs >= 0, got {batch_size=}, {steps=}, {epochs=}")
    batch = min(batch_size, n_rows)
    per_epoch = n_rows // batch
    if epochs is None:
        wanted = DEFAULT_STEPS if steps is None else steps
        epochs = math.ceil(wanted / per_epoch)
    return TrainingSchedule(epochs=epochs, steps_per_epoch=per_epoch, batch_size=batch)


def init_params(config: ModelConfig, seed: int = 0) -> dict[str, Any]:
    """Fresh params for the module of any registered config (``MLPConfig``,
    ``FTTransformerConfig``, ``MoEConfig``); deterministic in ``seed``.

    Returns:
      ``{"params": {...}}`` pytree of f32 arrays (the shape ``apply`` expects).
    """
    return _init_fn(config)(jax.random.PRNGKey(seed))


@functools.lru_cache(maxsize=16)
def _init_fn(config: ModelConfig):
    # One jitted init per config: eager init compiles every initializer op (mostly
    # threefry) on its own, about twice the CPU time of one program for all of them
    # (1.9 -> 1.0 s for a small MLP, 4.1 -> 2.3 s for a small FT-Transformer; values
    # bitwise equal in both). The dummy input is built inside the jitted function:
    # one built here during an outer trace (jax.eval_shape) would be cached and leak.
    from models.inputs import example_input

    model = module_for(config)
    return jax.jit(lambda key: model.init(key, example_input(config)))


def _check_xy(x: np.ndarray, y: np.ndarray, config: ModelConfig) -> None:
    if x.ndim != 2 or x.shape[1] != config.num_features:
        raise ValueError(f"x must be [n, {config.num_features}], got shape {list(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must be [{x.shape[0]}], got shape {list(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("cannot train on 0 rows")
    if config.task == "classification" and not np.isin(y, (0, 1)).all():
        raise ValueError("y must contain only 0 and 1")
    if config.task == "regression":
        if y.dtype.kind not in "biuf":
            raise ValueError(f"regression targets y must be numeric, got dtype {y.dtype}")
        if not np.isfinite(y.astype(np.float64)).all():
            raise ValueError("regression targets y contain NaN or inf")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf; encode it with feature_matrix first")


def _loss(task: str, outputs: jax.Array, y: jax.Array) -> jax.Array:
    if task == "regression":
        return optax.squared_error(outputs, y).mean()
    return optax.sigmoid_binary_cross_entropy(outputs, y).mean()


@functools.lru_cache(maxsize=16)
def _epoch_runner(config: ModelConfig, learning_rate: float):
    """(optimizer, jitted epoch fn); cached so retraining the same config (seeds,
    folds, tests) reuses the compiled program instead of recompiling."""
    model = module_for(config)
    tx = optax.adam(learning_rate)

    def loss_fn(p, xb, yb):
        out = model.apply(p, xb)
        if out.ndim == 2 and out.shape[-1] == 1:  # a user's model may return (batch, 1): one output per row
            out = out[:, 0]
        return _loss(config.task, out, yb)

    # One jit per epoch over a lax.scan of steps: per-step Python dispatch would
    # dominate on a small CPU model. Data goes in as arguments, not closed-over
    # constants, so it isn't embedded in the compiled program.
    @jax.jit
    def run_epoch(p, s, xs, ys, idx):
        def step(carry, ib):
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p, xs[ib], ys[ib])
            updates, s = tx.update(g, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (p, s), losses = jax.lax.scan(step, (p, s), idx)
        return p, s, losses

    return tx, run_epoch


def train_classifier(x: np.ndarray, y: np.ndarray, config: ModelConfig, **kw: Any) -> dict[str, Any]:
    """:func:`train_model` for a ``task="classification"`` config (sigmoid BCE; y in {0, 1})."""
    return train_model(x, y, _for_task(config, "classification"), **kw)


def train_regressor(x: np.ndarray, y: np.ndarray, config: ModelConfig, **kw: Any) -> dict[str, Any]:
    """:func:`train_model` for a ``task="regression"`` config (mean squared error; y finite floats).

    The head is linear and the targets are not rescaled, so targets of roughly unit
    scale (as most standardized or rate-like labels are) train in few epochs."""
    return train_model(x, y, _for_task(config, "regression"), **kw)


def _for_task(config: ModelConfig, task: str) -> ModelConfig:
    if config.task != task:
        other = "train_regressor" if config.task == "regression" else "train_classifier"
        raise ValueError(f"config.task is {config.task!r}, not {task!r}; use {other} (or train_model)")
    return config


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    config: ModelConfig,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the module of ``config`` (any registered architecture) with adam on the
    loss of ``config.task``: sigmoid binary cross-entropy or mean squared error.

    How long: ``steps`` optimizer steps (default :data:`DEFAULT_STEPS`), rounded up to
    whole epochs, or exactly ``epochs`` epochs; see :func:`training_schedule`. On 340
    rows with the default batch of 256 that is 300 steps (300 epochs of one step), where
    a fixed 10 epochs would be 10 steps.

    Each epoch shuffles the rows with a numpy RNG seeded by ``seed`` and runs
    ``n // batch_size`` full minibatches; the remainder rows are skipped for that
    epoch only (a different remainder every epoch), which keeps a single compiled
    shape. Deterministic given ``seed`` on a given backend.

    Args:
      x: f32[n, config.num_features] encoded features (finite).
      y: [n] labels in {0, 1} (any numeric/bool dtype) for classification; finite
        numeric targets for regression.
      config: model config.
      steps: optimizer steps to run at least (not with ``epochs``).
      epochs: passes over the data (not with ``steps``).
      batch_size: rows per step (capped at n).
      learning_rate: adam step size.
      seed: seeds both params init and shuffling.
      on_epoch: called after each epoch with (optimizer steps run so far, mean training
        loss over that epoch's steps, each taken before its update).

    Returns:
      Trained params pytree, same structure as :func:`init_params`.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    _check_xy(x, y, config)
    n = x.shape[0]
    schedule = training_schedule(n, steps=steps, epochs=epochs, batch_size=batch_size)

    tx, run_epoch = _epoch_runner(config, float(learning_rate))
    params = init_params(config, seed)
    opt_state = tx.init(params)
    per, bs = schedule.steps_per_epoch, schedule.batch_size

    xs, ys = jnp.asarray(x), jnp.asarray(y, jnp.float32)
    rng = np.random.default_rng(seed)
    for epoch in range(schedule.epochs):
        idx = rng.permutation(n)[: per * bs].reshape(per, bs).astype(np.int32)
        params, opt_state, losses = run_epoch(params, opt_state, xs, ys, idx)
        if on_epoch is not None:
            on_epoch((epoch + 1) * per, float(jnp.mean(losses)))
    log.info("trained %s on %d rows: %d steps (%d epochs x %d steps of %d rows)", type(config).__name__, n,
             schedule.steps, schedule.epochs, per, bs)
    return params
