"""The problems the hidden checks pose, drawn at grading time.

Each check's problem (sizes, data, weights, learning rate, a scripted validation curve) is a pure
function of a seed. In a grading run the grader draws a fresh seed for every check and hands it
over only when the check's cell starts, so no notebook can know the problem in advance or carry
answers recorded elsewhere; the trusted side rebuilds the same problem from the same seed and
computes what the right answer is. Nothing here is a solution: these are questions.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import numpy as np

from grader_tests.evidence import grading, inbox

PROBLEM_FILE = "problem.json"  # in the inbox while a hidden check runs: {"check": ..., "seed": ...}
INPUT_STEPS = 12  # hours per window, as in the lab
PROBE_STEPS, PROBE_FEATURES = 6, 3  # windows of the training-loop problems (a small linear model reads them)


class ProblemUnavailable(RuntimeError):
    """A grading run did not hand this check its problem."""


def seed_for(check: str) -> int:
    """This check's seed: the grader's in a grading run, else a fresh one."""
    if not grading():
        return secrets.randbits(62)
    try:
        handed = json.loads((inbox() / PROBLEM_FILE).read_text())
    except (OSError, ValueError, TypeError):
        raise ProblemUnavailable(f"the grader's problem for the {check} check was not available") from None
    if handed.get("check") != check or type(handed.get("seed")) is not int:
        raise ProblemUnavailable(f"the grader's problem for the {check} check was not available")
    return handed["seed"]


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, *part.encode()])


# --- the loss -------------------------------------------------------------------------------------


def loss_pairs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forecast, target) batches of shape (B, 1), float32, some with outliers."""
    rng = _rng(seed, "loss")
    pairs = []
    for batch in rng.integers(3, 40, size=4):
        target = rng.normal(0, 1, (batch, 1))
        forecast = target + rng.normal(0, rng.uniform(0.1, 2.0), (batch, 1))
        forecast[rng.integers(batch)] += rng.choice([-1, 1]) * rng.uniform(3, 8)  # an outlier
        pairs.append((forecast.astype(np.float32), target.astype(np.float32)))
    return pairs


# --- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCase:
    n_features: int
    hidden_size: int
    num_layers: int
    inputs: np.ndarray  # (B, 12, F) float32: the windows the model is probed with
    other_steps: int  # another sequence length the model must accept


def model_case(seed: int) -> ModelCase:
    rng = _rng(seed, "model")
    n_features = int(rng.integers(5, 24))
    hidden = int(rng.choice([h for h in range(8, 41, 2) if h != 64]))
    steps = int(rng.choice([t for t in range(3, 31) if t != INPUT_STEPS]))
    inputs = rng.normal(0, 1, (int(rng.integers(12, 25)), INPUT_STEPS, n_features)).astype(np.float32)
    return ModelCase(n_features, hidden, int(rng.integers(1, 3)), inputs, steps)


def forecast_probe(seed: int, n_features: int) -> np.ndarray:
    """Windows (B, 12, F), float32, on which a final model's own answers are recorded in the kernel."""
    rng = _rng(seed, "forecast")
    return rng.normal(0, 1, (int(rng.integers(40, 81)), INPUT_STEPS, n_features)).astype(np.float32)


# --- the training loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Regression:
    """A learnable linear problem on small windows: y = x . w + noise, and a linear model's first weights."""

    x: np.ndarray  # (N, PROBE_STEPS, PROBE_FEATURES) float32
    y: np.ndarray  # (N, 1) float32
    batch_size: int
    lr: float
    weights: np.ndarray  # the model's first weights, flat: linear weight then bias, float32

    @property
    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The batches a DataLoader without shuffling gives, in order (the last one may be smaller)."""
        return [(self.x[i:i + self.batch_size], self.y[i:i + self.batch_size])
                for i in range(0, len(self.x), self.batch_size)]


def regression(seed: int, part: str) -> Regression:
    rng = _rng(seed, part)
    n, batch = int(rng.integers(70, 131)), int(rng.integers(16, 41))
    if n % batch == 0:
        n += 1  # a smaller last batch: a mean over batches then differs from the mean over samples
    size = PROBE_STEPS * PROBE_FEATURES
    x = rng.normal(0, 1, (n, PROBE_STEPS, PROBE_FEATURES))
    w = rng.normal(0, 1 / np.sqrt(size), size)
    y = x.reshape(n, -1) @ w + rng.normal(0, 0.05, n) + rng.normal(0, 0.5)
    weights = rng.uniform(-1 / np.sqrt(size), 1 / np.sqrt(size), size + 1)
    # A learning rate at which plain SGD lowers the epoch's mean loss every epoch, by 9% at least (measured over
    # 2000 seeds; tests/test_checks.py keeps it so): a loss that does not fall is the student's.
    return Regression(x.astype(np.float32), y.reshape(n, 1).astype(np.float32), batch, float(rng.uniform(0.01, 0.04)),
                      weights.astype(np.float32))


@dataclass(frozen=True)
class FitScript:
    """A scripted training for checking fit on its own: after epoch k the model holds `weights[k]` and
    its validation loss on `validation` is `val_loss[k]` (k = 0 before any training).

    The weights lie on a line through the best fit of the validation data, so the true loss of each
    is known in closed form and equals `val_loss`: a fit that measures the validation loss itself gets
    the same numbers as one that calls evaluate."""

    train: Regression  # the training loader's data (its content does not matter to the script)
    validation: Regression
    weights: np.ndarray  # (max_epochs + 1, size + 1)
    val_loss: np.ndarray  # (max_epochs + 1,) mean squared error on the validation data
    train_loss: np.ndarray  # (max_epochs + 1,) what the scripted epochs report
    epochs: int  # the run without patience
    max_epochs: int  # the run with patience
    patience: int
    best_epoch: int  # 1-based epoch of the lowest validation loss in the run with patience


def fit_script(seed: int) -> FitScript:
    rng = _rng(seed, "fit")
    train, validation = regression(seed, "fit-train"), regression(seed, "fit-val")
    x = np.hstack([validation.x.reshape(len(validation.x), -1), np.ones((len(validation.x), 1))]).astype(np.float64)
    y = validation.y[:, 0].astype(np.float64)
    best, *_ = np.linalg.lstsq(x, y, rcond=None)
    direction = rng.normal(0, 1, x.shape[1])
    direction /= np.linalg.norm(direction)
    curvature = float(direction @ (x.T @ x) @ direction) / len(x)
    floor = float(np.mean((x @ best - y) ** 2))
    patience, max_epochs = int(rng.integers(2, 4)), int(rng.integers(10, 15))
    best_epoch = int(rng.integers(2, max_epochs - patience - 1))
    # Distances to the best fit: falling until the best epoch, then rising, with some wiggle.
    distance = np.empty(max_epochs + 1)
    distance[: best_epoch + 1] = np.linspace(3.0, 0.4, best_epoch + 1) + rng.uniform(0, 0.05, best_epoch + 1)
    distance[best_epoch + 1:] = 0.5 + np.cumsum(rng.uniform(0.05, 0.3, max_epochs - best_epoch))
    signs = rng.choice([-1.0, 1.0], max_epochs + 1)
    weights = (best[None, :] + (signs * distance)[:, None] * direction[None, :]).astype(np.float32)
    val_loss = floor + curvature * distance**2
    train_loss = np.sort(rng.uniform(0.1, 2.0, max_epochs + 1))[::-1]
    return FitScript(train, validation, weights, val_loss, train_loss, epochs=int(rng.integers(3, 6)),
                     max_epochs=max_epochs, patience=patience, best_epoch=best_epoch)
