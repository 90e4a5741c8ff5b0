"""Reference forecasts every model is compared with. Errors are MAE in degC."""

from __future__ import annotations

import numpy as np

from jena_weather.pipeline import JenaWindows

RIDGE_ALPHA = 1.0  # L2 penalty on normalised inputs; the test MAE is flat for 0.01..100


def mae_degc(windows: JenaWindows, split: str, predictions) -> float:
    """Mean absolute error in degC of normalised predictions against the split's targets."""
    truth = windows.to_degc(windows[split].y)
    predicted = windows.to_degc(predictions)
    if predicted.shape != truth.shape:
        raise ValueError(f"Expected {truth.shape[0]} predictions for the {split} split, got {predicted.shape[0]}.")
    return float(np.mean(np.abs(predicted - truth)))


def persistence(windows: JenaWindows, split: str) -> np.ndarray:
    """Forecast 'the temperature stays as it is now': the last input row's temperature."""
    return windows[split].x[:, -1, windows.target_index].numpy()


class Ridge:
    """Ridge regression on the flattened window (T * F inputs + bias), closed form."""

    def __init__(self, windows: JenaWindows, alpha: float = RIDGE_ALPHA):
        train = windows["train"]
        inputs = self._design(train.x.numpy())
        gram = inputs.T @ inputs
        penalty = alpha * np.eye(gram.shape[0])
        penalty[-1, -1] = 0.0  # the bias is not penalised
        self.weights = np.linalg.solve(gram + penalty, inputs.T @ train.y.numpy().astype(np.float64))
        self.windows = windows

    @staticmethod
    def _design(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        return np.hstack([flat, np.ones((len(x), 1))])

    def predict(self, split: str) -> np.ndarray:
        return (self._design(self.windows[split].x.numpy()) @ self.weights).reshape(-1)


def baseline_errors(windows: JenaWindows, splits=("val", "test")) -> dict[str, dict[str, float]]:
    """MAE in degC of persistence and ridge on each split: {"persistence": {"val": ..}, ...}."""
    ridge = Ridge(windows)
    return {
        "persistence": {s: mae_degc(windows, s, persistence(windows, s)) for s in splits},
        "ridge": {s: mae_degc(windows, s, ridge.predict(s)) for s in splits},
    }
