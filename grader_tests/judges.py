"""The judges: what a check's record says about the student's code, decided outside the kernel.

Each judge rebuilds its check's problem from the seed the grader drew (`grader_tests.problems`),
computes what the right answer is with reference computations of its own, and compares it with
what the student's code produced. It raises ``CheckFailed`` with a message for the student (what was
expected, what was found, a hint), raises ``Unusable`` when the record is not what the collector
makes, or returns. The model and forecast judges live in `grader_tests.probes`.

Only the trusted process imports this module; a grading kernel cannot.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from grader_tests import problems
from grader_tests.outcomes import CheckFailed, Unusable

MODES = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
REGRESSION_LOSSES = {"L1Loss", "MSELoss", "HuberLoss", "SmoothL1Loss"}
CLASSIFICATION_LOSSES = {"CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"}
LOSS_MODULE = "torch.nn.modules.loss."


def fail(message: str, flag: str | None = None):
    raise CheckFailed(message, flag)


class Record:
    """A check's arrays, read with the types and shapes its collector gives them."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def _get(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise Unusable(f"the record has no {key}")
        return self.arrays[key]

    def error(self) -> str:
        """The collector's message when the student's code could not be checked ('' otherwise)."""
        return self.text("error") if "error" in self.arrays else ""

    def text(self, key: str) -> str:
        value = self._get(key)
        if value.ndim != 0 or value.dtype.kind != "U":
            raise Unusable(f"{key} is not a text")
        return str(value)

    def number(self, key: str) -> float:
        value = self._get(key)
        if value.ndim != 0 or value.dtype.kind not in "biuf":
            raise Unusable(f"{key} is not a number")
        return float(value)

    def floats(self, key: str) -> np.ndarray:
        """A numeric array of any shape, as float64 (a model's output, whose shape is the student's)."""
        value = self._get(key)
        if value.dtype.kind not in "biuf":
            raise Unusable(f"{key} is not numeric")
        return value.astype(np.float64)

    def array(self, key: str, ndim: int, width: int | None = None, kind: str = "f") -> np.ndarray:
        """A numeric array of this many dimensions (and, for 2-d, this many columns)."""
        value = self._get(key)
        if value.ndim != ndim or value.dtype.kind not in kind or (width is not None and value.shape[-1] != width):
            raise Unusable(f"{key} is not a {ndim}-d array" + (f" of width {width}" if width else ""))
        return value.astype(np.float64) if kind == "f" else value

    def fail_on_error(self) -> None:
        if message := self.error():
            fail(message)

    def failed(self) -> bool:
        """Whether the collector found the student's code could not be checked (the kernel's cell fails then);
        a record too odd to tell counts as failed (its judge says why)."""
        try:
            return bool(self.error() or ("export_error" in self.arrays and self.text("export_error")))
        except Unusable:
            return True


# --- Part 1: the mode ---------------------------------------------------------------------------------


def judge_mode(record: Record, seed: int) -> None:
    record.fail_on_error()
    found = record.text("type")
    if found != "str":
        fail(f'MODE should be a string such as "one-to-one", but it is a {found}.')
    value = record.text("value")
    answer = value.strip().lower()
    if answer not in MODES:
        fail(f"MODE should be one of {', '.join(MODES)}; found {value!r}.")
    if answer != "many-to-one":
        fail(f"MODE is {value!r}, which is not the mode of this task. Count the inputs the network reads (how many "
             "hourly records?) and the outputs it produces (how many forecasts?).")


# --- Part 3: the loss ---------------------------------------------------------------------------------


def _expected_loss(name: str, forecast: torch.Tensor, target: torch.Tensor, delta: float, beta: float) -> float:
    if name == "L1Loss":
        return functional.l1_loss(forecast, target).item()
    if name == "MSELoss":
        return functional.mse_loss(forecast, target).item()
    if name == "HuberLoss":
        return functional.huber_loss(forecast, target, delta=delta).item()
    return functional.smooth_l1_loss(forecast, target, beta=beta).item()


def judge_loss(record: Record, seed: int) -> None:
    record.fail_on_error()
    kind = record.text("type")
    name = kind.rsplit(".", 1)[-1]
    if kind.startswith(LOSS_MODULE) and name in CLASSIFICATION_LOSSES:
        fail(f"choose_loss returned {name}, a classification loss. The target is a temperature (a real number), not "
             "a class: pick a regression loss.")
    if not (kind.startswith(LOSS_MODULE) and name in REGRESSION_LOSSES):
        names = ", ".join(f"nn.{n}()" for n in sorted(REGRESSION_LOSSES))
        fail(f"choose_loss should return a regression loss instance, one of {names}; found a {name}.")
    reduction = record.text("reduction")
    if reduction != "mean":
        fail(f"The loss should average over the batch (reduction='mean'); it uses reduction={reduction!r}.")
    values = record.array("values", 1)
    pairs = problems.loss_pairs(seed)
    if len(values) != len(pairs):
        raise Unusable("the loss values do not match the problem")
    delta, beta = record.number("delta"), record.number("beta")
    for value, (forecast, target) in zip(values, pairs):
        expected = _expected_loss(name, torch.from_numpy(forecast), torch.from_numpy(target), delta, beta)
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-6):
            fail(f"choose_loss() returned a {name} that does not compute a {name}: for a batch of {len(forecast)} "
                 f"forecasts it gave {value:.5g}, where {name} gives {expected:.5g}.",
                 flag=f"the loss module claims to be {name} but computes something else")


# --- Part 4: the training loop --------------------------------------------------------------------


def _probe(weights: np.ndarray) -> nn.Linear:
    """The collectors' linear model over the flattened window, with these weights (no student code)."""
    size = problems.PROBE_STEPS * problems.PROBE_FEATURES
    model = nn.Linear(size, 1)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(weights[:size], dtype=torch.float32).reshape(1, size))
        model.bias.copy_(torch.as_tensor(weights[size:], dtype=torch.float32))
    return model


def _loss_with(weights: np.ndarray, batches, loss_fn) -> float:
    """Mean loss per sample of the linear model with these weights."""
    model = _probe(weights)
    with torch.no_grad():
        losses = [(loss_fn(model(torch.from_numpy(x).flatten(1)), torch.from_numpy(y)).item(), len(x)) for x, y in batches]
    return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)


def _gradient(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = _probe(weights)
    functional.mse_loss(model(torch.from_numpy(x).flatten(1)), torch.from_numpy(y)).backward()
    return np.concatenate([model.weight.grad.double().reshape(-1).numpy(), model.bias.grad.double().numpy()])


def _is_batch_gradient(grads: np.ndarray, expected: np.ndarray) -> bool:
    """The batch's own gradient, possibly clipped: by norm (a uniform scale <= 1) or by value (every
    component limited to [-c, c]). Gradients accumulated over earlier batches match neither."""
    scale = float(grads @ expected) / float(expected @ expected)
    by_norm = 0 < scale <= 1 + 1e-4 and np.allclose(grads, scale * expected, rtol=1e-4, atol=1e-7)
    limit = float(np.abs(grads).max())
    by_value = np.allclose(grads, np.clip(expected, -limit, limit), rtol=1e-4, atol=1e-7)
    return by_norm or by_value


def judge_train_one_epoch(record: Record, seed: int) -> None:
    record.fail_on_error()
    problem = problems.regression(seed, "train")
    batches, size = problem.batches, len(problem.weights)
    weights = record.array("weights_at_steps", 2, width=size)
    grads = record.array("grads_at_steps", 2, width=size)
    if len(weights) != len(grads):
        raise Unusable("weights and gradients of different steps")
    if len(weights) != len(batches):
        fail(f"train_one_epoch should call optimizer.step() once per batch ({len(batches)} batches); it was called "
             f"{len(weights)} times.")
    for k, (x, y) in enumerate(batches):
        if np.isnan(grads[k]).any() or not np.abs(grads[k]).sum() > 0:
            fail("In train_one_epoch no gradients were computed before optimizer.step(). Did you call loss.backward()?")
        if not _is_batch_gradient(grads[k], _gradient(weights[k], x, y)):
            fail("In train_one_epoch the gradients at optimizer.step() are not those of the batch just seen: they "
                 "include earlier batches. Did you call optimizer.zero_grad() before loss.backward()?")
    modes = record.array("training_mode", 1, kind="b")
    if len(modes) == 0 or not modes.all():
        fail("train_one_epoch should put the model in training mode (model.train()) before the forward passes.")
    expected = sum(_loss_with(weights[k], [(x, y)], nn.MSELoss()) * len(x)
                   for k, (x, y) in enumerate(batches)) / len(problem.x)
    reported = record.number("reported")
    if not math.isclose(reported, expected, rel_tol=1e-3, abs_tol=1e-6):
        fail(f"train_one_epoch should return the mean loss per sample over the epoch; it returned {reported:.5f}, "
             f"expected {expected:.5f}. Weight each batch's loss by its size and divide by the number of samples.")
    epochs = record.array("four_epochs", 1)
    if len(epochs) != 4:
        raise Unusable("four_epochs does not hold four losses")
    if not np.isfinite(epochs).all() or not (np.diff(epochs) < 0).all():
        went = " -> ".join(f"{loss:.4f}" for loss in epochs)
        fail(f"Over 4 epochs on an easy problem the training loss should fall every epoch; it went {went}.")


def judge_evaluate(record: Record, seed: int) -> None:
    record.fail_on_error()
    problem = problems.regression(seed, "evaluate")
    calls = record.array("calls", 2, width=2, kind="b")
    if len(calls) == 0:
        fail("evaluate should run the model on every batch of the loader; the model was never called.")
    if calls[:, 1].any():
        fail("evaluate should not build an autograd graph: wrap the loop in torch.no_grad().")
    if calls[:, 0].any():
        fail("evaluate should put the model in evaluation mode (model.eval()) before the forward passes.")
    after = record.array("weights_after", 1)
    if after.shape != problem.weights.shape or not np.array_equal(after, problem.weights.astype(np.float64)):
        fail("evaluate changed the model's weights; it should only measure the loss.")
    expected = _loss_with(problem.weights, problem.batches, nn.L1Loss())
    reported = record.number("reported")
    if not math.isclose(reported, expected, rel_tol=1e-4, abs_tol=1e-6):
        fail(f"evaluate should return the mean loss per sample; it returned {reported:.5f}, expected {expected:.5f}. "
             "Weight each batch's loss by its size and divide by the number of samples.")


def _history(record: Record, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    train, val = record.array(f"{prefix}train_loss", 1), record.array(f"{prefix}val_loss", 1)
    if len(train) != len(val):
        fail("history should hold one train and one validation loss per epoch; the two lists differ in length.")
    return train, val


def _listed(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def judge_fit(record: Record, seed: int) -> None:
    record.fail_on_error()
    script = problems.fit_script(seed)
    train, val = _history(record, "")
    epochs = script.epochs
    if len(train) != epochs:
        fail(f"fit(..., epochs={epochs}) without patience should run {epochs} epochs; its history has {len(train)}.")
    steps = record.number("scheduler_steps")
    if steps != epochs:
        fail(f"fit should call scheduler.step() once per epoch ({epochs} times for {epochs} epochs); it was called "
             f"{steps:g} times.")
    trained = record.number("epochs_trained")
    if trained != epochs:
        fail(f"fit should train the model once per epoch (with train_one_epoch); in {epochs} epochs it trained "
             f"{trained:g} times.")
    if not np.allclose(val, script.val_loss[1:epochs + 1], rtol=1e-3, atol=1e-6):
        fail(f"fit should record the validation loss after each epoch's training; history['val_loss'] was "
             f"{_listed(val)} while the model's validation loss after each epoch was "
             f"{_listed(script.val_loss[1:epochs + 1])}.")
    _, early_val = _history(record, "early_")
    best, patience = script.best_epoch, script.patience
    if not best + patience <= len(early_val) <= best + patience + 1 or len(early_val) >= script.max_epochs:
        fail(f"With patience={patience} fit should stop after {patience} epochs without a better validation loss; "
             f"it ran {len(early_val)} of {script.max_epochs} epochs while the best epoch was number {best}.")
    if record.number("early_epochs_trained") != len(early_val) or not np.allclose(
            early_val, script.val_loss[1:len(early_val) + 1], rtol=1e-3, atol=1e-6):
        fail("With patience, fit should still train once and record the validation loss once per epoch.")
    weights = record.array("early_final_weights", 1)
    if weights.shape != script.weights[best].shape or not np.allclose(weights, script.weights[best], atol=1e-6):
        held = [k for k, w in enumerate(script.weights) if weights.shape == w.shape and np.allclose(weights, w, atol=1e-6)]
        found = f"those of epoch {held[-1]}" if held else "other weights"
        fail(f"After early stopping fit should restore the weights of the best epoch (epoch {best}, validation loss "
             f"{script.val_loss[best]:.4f}); the model holds {found}. Keep a copy of model.state_dict() at the best "
             "epoch (copy the tensors: they change in place) and load it back.")
