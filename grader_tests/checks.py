"""The lab's grading checks.

Every check has two halves:

* ``collect_*`` runs the student's code on grader-chosen inputs and returns *evidence*: plain
  numbers, strings and arrays (outputs, losses, weights). It runs inside the student's kernel.
* ``judge_*`` turns evidence into a verdict using only the evidence and data the grader builds
  itself. It raises ``CheckFailed`` with a message for the student (what was expected, what was
  found, a hint), or returns the points of a partial-credit check.

The hidden notebook cells call ``check_*`` = record the evidence, then judge it; the trusted
re-check (``grader_tests.recheck``) judges the recorded evidence again in a process that is not
the student's kernel. The forecast is judged there only: the test targets never enter a grading
kernel. Messages never reveal hidden inputs or threshold sources. Only exact types are trusted
(``type(x) is float``): a subclass can lie in ``__eq__``.

This module and ``evidence`` are all of the grader a grading kernel can import.
"""

from __future__ import annotations

import io
import math
import os
import traceback
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader_tests.contract import POINTS_OF_CHECK
from grader_tests.evidence import ENV_INBOX, TEST_INPUTS, record

MODES = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
REGRESSION_LOSSES = {f"torch.nn.modules.loss.{name}" for name in ("L1Loss", "MSELoss", "HuberLoss", "SmoothL1Loss")}
CLASSIFICATION_LOSSES = {f"torch.nn.modules.loss.{name}" for name in
                         ("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss")}
# (n_features, hidden_size, num_layers, batch, steps): several sizes so nothing can be hard-coded
MODEL_CASES = ((10, 64, 1, 32, 12), (19, 16, 2, 5, 12), (7, 128, 1, 1, 3), (10, 32, 3, 64, 30))
PROBE_FEATURES, PROBE_STEPS = (10, 32, 1), (8, 12)  # (F, H, layers) and (B, T) of the behaviour probes
FORECAST_BATCHES = (1024, 61)  # batch sizes of the two forecast passes
# The second pass adds this much noise to every input (normalised units; 1e-4 is under 0.001 degC):
# an honest model's forecasts move by well under the tolerance (measured: at most 4e-4), while a
# model that looks windows up, or remembers earlier calls, no longer finds them.
FORECAST_NOISE = 1e-4
CONSISTENCY_TOLERANCE = 0.01  # normalised units, about 0.08 degC


class CheckFailed(AssertionError):
    """A grading check failed; the message is written for the student, the flag (if any) for an
    instructor, who should look at the submission."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


@dataclass(frozen=True)
class Partial:
    """A partial-credit verdict: the fraction of the points, the figures for the student and a
    reason for an instructor to look (or None)."""

    fraction: float
    message: str
    flag: str | None = None


class _Collected(Exception):
    """Stops a collector early with a message (student code raised or returned nonsense)."""


def fail(message: str, flag: str | None = None) -> None:
    raise CheckFailed(message, flag)


@contextmanager
def quiet():
    """Silence student code: nbgrader gives zero points to a test cell that writes to stderr,
    and prints or progress bars would clutter the feedback."""
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _type_name(value) -> str:
    return type(value).__name__


def _qualified(value) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _call(name: str, fn, *args, **kwargs):
    """Call student code quietly; turn its exceptions into a message that names the culprit."""
    try:
        with quiet():
            return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise _Collected(f"{name} is not implemented yet ({err}).") from None
    except Exception as err:  # the student's exception is reported, never ours
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise _Collected(f"{name} raised {type(err).__name__}: {err} (line {where.lineno} of your code)") from None


def _collect(collector, *args) -> dict:
    try:
        return collector(*args)
    except _Collected as stop:
        return {"error": str(stop)}


def _raise_collected(evidence: dict) -> None:
    if evidence.get("error"):
        fail(evidence["error"])


def _run(check: str, evidence: dict):
    record(check, evidence)
    return JUDGES[check](evidence)


# --- Part 1: mode of operation ----------------------------------------------------------


def collect_mode(mode) -> dict:
    return {"type": _type_name(mode), "is_str": type(mode) is str, "value": str.__str__(mode) if type(mode) is str else ""}


def judge_mode(evidence: dict) -> None:
    if not evidence["is_str"]:
        fail(f'MODE should be a string such as "one-to-one", but it is a {evidence["type"]}.')
    answer = evidence["value"].strip().lower()
    if answer not in MODES:
        fail(f"MODE should be one of {', '.join(MODES)}; found {evidence['value']!r}.")
    if answer != "many-to-one":
        fail(f"MODE is {evidence['value']!r}, which is not the mode of this task. Count the inputs the network "
             "reads (how many hourly records?) and the outputs it produces (how many forecasts?).")


def check_mode(mode) -> None:
    """MODE names the many-to-one mode."""
    _run("mode", collect_mode(mode))


# --- Part 2: the model ------------------------------------------------------------------


def _build(model_class, n_features: int, hidden_size: int, num_layers: int) -> nn.Module:
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise _Collected(f"WeatherLSTM should be a class derived from nn.Module; found a {_type_name(model_class)}.")
    model = _call(f"WeatherLSTM({n_features}, hidden_size={hidden_size}, num_layers={num_layers})",
                  model_class, n_features, hidden_size=hidden_size, num_layers=num_layers)
    if not isinstance(model, nn.Module):
        raise _Collected(f"WeatherLSTM(...) should create an nn.Module; found a {_type_name(model)}.")
    return model.eval()


def _forward(model: nn.Module, x: torch.Tensor):
    with torch.no_grad():
        return _call(f"WeatherLSTM.forward on an input of shape {tuple(x.shape)}", model, x)


def _as_array(out) -> np.ndarray:
    return out.detach().to(torch.float64).numpy() if type(out) is torch.Tensor else np.full((1, 1), np.nan)


def collect_model(model_class) -> dict:
    evidence = {}
    for i, (n_features, hidden, layers, batch, steps) in enumerate(MODEL_CASES):
        model = _build(model_class, n_features, hidden, layers)
        torch.manual_seed(100 + i)
        out = _forward(model, torch.randn(batch, steps, n_features))
        evidence[f"case{i}_type"] = _qualified(out)
        evidence[f"case{i}_shape"] = np.array(tuple(out.shape) if type(out) is torch.Tensor else (), dtype=np.int64)
        evidence[f"case{i}_dtype"] = str(out.dtype) if type(out) is torch.Tensor else ""
    n_features, hidden, layers = PROBE_FEATURES
    batch, steps = PROBE_STEPS
    model = _build(model_class, n_features, hidden, layers)
    lstms = [m for m in model.modules() if isinstance(m, nn.LSTM)]
    evidence["lstm_hidden"] = np.array([m.hidden_size for m in lstms], dtype=np.int64)
    evidence["linear_count"] = sum(isinstance(m, nn.Linear) for m in model.modules())
    torch.manual_seed(2)
    x = torch.randn(batch, steps, n_features)
    late, early = x.clone(), x.clone()
    late[:, -3:] = torch.randn(batch, 3, n_features)
    early[:, :3] = torch.randn(batch, 3, n_features)
    evidence["out"] = _as_array(_forward(model, x))
    evidence["out_other_input"] = _as_array(_forward(model, torch.randn(batch, steps, n_features)))
    evidence["out_late_changed"] = _as_array(_forward(model, late))
    evidence["out_early_changed"] = _as_array(_forward(model, early))
    evidence["out_one_by_one"] = np.concatenate([_as_array(_forward(model, x[i : i + 1])) for i in range(batch)])
    evidence["lstm_gradient"] = _lstm_gradient(model, lstms, x)
    return evidence


def _lstm_gradient(model: nn.Module, lstms: list[nn.Module], x: torch.Tensor) -> float:
    """Size of the gradient that the forecast sends back to the LSTM's weights."""
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = _call(f"WeatherLSTM.forward on an input of shape {tuple(x.shape)}", model, x)
        if type(out) is not torch.Tensor or not out.requires_grad:
            return 0.0
        out.sum().backward()
    grads = [p.grad for lstm in lstms for p in lstm.parameters() if p.grad is not None]
    return float(sum(g.double().abs().sum() for g in grads)) if grads else 0.0


def judge_model(evidence: dict) -> None:
    _raise_collected(evidence)
    for i, (n_features, hidden, layers, batch, steps) in enumerate(MODEL_CASES):
        if evidence[f"case{i}_type"] != "torch.Tensor":
            fail(f"forward should return a torch.Tensor; it returned a {evidence[f'case{i}_type'].rsplit('.', 1)[-1]}.")
        shape = tuple(int(n) for n in evidence[f"case{i}_shape"])
        if shape != (batch, 1):
            hint = (" Did you keep the last dimension (shape (batch, 1), not (batch,))?" if len(shape) == 1 else
                    " Did you take the last time step of the LSTM output before the linear layer?" if len(shape) == 3 else "")
            fail(f"For an input of shape ({batch}, {steps}, {n_features}) with hidden_size={hidden} and num_layers={layers}, "
                 f"forward should return shape ({batch}, 1); it returned {shape}.{hint}")
        if evidence[f"case{i}_dtype"] != "torch.float32":
            fail(f"forward should return float32 values; it returned {evidence[f'case{i}_dtype']}.")
    hidden = PROBE_FEATURES[1]
    if len(evidence["lstm_hidden"]) == 0:
        fail("WeatherLSTM should contain an nn.LSTM layer (self.lstm = nn.LSTM(...)); none was found.")
    if int(evidence["lstm_hidden"][0]) != hidden:
        fail(f"WeatherLSTM(..., hidden_size={hidden}) built an nn.LSTM with hidden_size={int(evidence['lstm_hidden'][0])}; "
             "pass the hidden_size argument on instead of a fixed number.")
    if evidence["linear_count"] == 0:
        fail("WeatherLSTM should map the LSTM's hidden state to the forecast with nn.Linear; no nn.Linear was found.")
    out = evidence["out"]
    if np.allclose(out, evidence["out_other_input"]):
        fail("WeatherLSTM gives the same forecast for different inputs: the output must depend on the input sequence.")
    if np.allclose(out, evidence["out_late_changed"]):
        fail("Changing the last hours of the input does not change the forecast. "
             "Did you take the last time step of the LSTM output (out[:, -1])?")
    if not np.allclose(out, evidence["out_one_by_one"], atol=1e-5):
        fail("The forecast for one sequence changes with the other sequences in the batch. "
             "Did you create the LSTM with batch_first=True (inputs are (batch, time, features))?")
    if np.array_equal(out, evidence["out_early_changed"]):
        fail("Changing the first hours of the input does not change the forecast: every hour of the window "
             "should reach it. Feed the whole sequence to the LSTM and read its state after the last step.")
    if not evidence["lstm_gradient"] > 0:
        fail("The forecast does not depend on the LSTM's weights (no gradient reaches them): compute it from "
             "the LSTM's output after the last step, e.g. self.head(out[:, -1]).")


def check_model(model_class) -> None:
    """WeatherLSTM follows the shapes for any size and forecasts from the LSTM's state after every hour."""
    _run("model", _collect(collect_model, model_class))


# --- Part 3: the loss -------------------------------------------------------------------


def collect_loss(choose_loss) -> dict:
    loss = _call("choose_loss()", choose_loss)
    return {"type": _qualified(loss), "reduction": str(getattr(loss, "reduction", ""))}


def judge_loss(evidence: dict) -> None:
    _raise_collected(evidence)
    name = evidence["type"].rsplit(".", 1)[-1]
    if evidence["type"] in CLASSIFICATION_LOSSES:
        fail(f"choose_loss returned {name}, a classification loss. The target is a temperature "
             "(a real number), not a class: pick a regression loss such as nn.L1Loss or nn.MSELoss.")
    if evidence["type"] not in REGRESSION_LOSSES:
        names = ", ".join(f"nn.{n.rsplit('.', 1)[-1]}()" for n in sorted(REGRESSION_LOSSES))
        fail(f"choose_loss should return a regression loss instance, one of {names}; found a {name}.")
    if evidence["reduction"] != "mean":
        fail(f"The loss should average over the batch (reduction='mean'); it uses reduction={evidence['reduction']!r}.")


def check_loss(choose_loss) -> None:
    """choose_loss() returns a mean-reduced regression loss module."""
    _run("loss", _collect(collect_loss, choose_loss))


# --- Part 4: the training loop ----------------------------------------------------------
# A small fixed problem with a grader-owned linear model, so that a broken WeatherLSTM does not
# cost the training-loop points twice. Its data and first weights are reproducible anywhere.


class _Probe(nn.Module):
    """Linear model over the flattened window that records how it was called."""

    def __init__(self, steps: int = 6, n_features: int = 3):
        super().__init__()
        self.linear = nn.Linear(steps * n_features, 1)
        self.calls: list[tuple[bool, bool]] = []  # (training mode, grad enabled) per forward

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.linear(x.flatten(1))


def _fresh_probe() -> _Probe:
    torch.manual_seed(0)
    return _Probe()


def _flat(model: nn.Module, grads: bool = False) -> np.ndarray:
    parts = []
    for p in model.parameters():
        tensor = p.grad if grads else p
        parts.append(np.full(p.numel(), np.nan) if tensor is None else tensor.detach().double().reshape(-1).numpy())
    return np.concatenate(parts)


def _probe_with(weights: np.ndarray) -> _Probe:
    model = _Probe()
    torch.nn.utils.vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), model.parameters())
    return model


def _problem(seed: int, n: int = 100, steps: int = 6, n_features: int = 3, flip: bool = False):
    """A learnable linear problem: y is a fixed linear function of the window plus noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, n_features, generator=gen)
    w = torch.linspace(-1, 1, steps * n_features).reshape(-1, 1)
    y = x.flatten(1) @ w / 3 + 0.05 * torch.randn(n, 1, generator=gen)
    return TensorDataset(x, -y if flip else y)


TRAIN_PROBLEM = dict(seed=3, batch_size=32, lr=0.05)  # 100 samples: batches 32, 32, 32, 4
EVAL_PROBLEM = dict(seed=4, batch_size=32)
FIT_PROBLEM = dict(train_seed=5, val_seed=6, train_batch=25, val_batch=50, lr=0.05, epochs=4, patience=2, max_epochs=12)


def _batches(seed: int, batch_size: int, flip: bool = False):
    return DataLoader(_problem(seed, flip=flip), batch_size=batch_size)


def _loss_with(weights: np.ndarray, loader, loss_fn) -> float:
    """Mean loss per sample of the probe with these weights (grader code, no student code)."""
    model = _probe_with(weights)
    with torch.no_grad():
        losses = [(loss_fn(model(x), y).item(), len(x)) for x, y in loader]
    return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)


class _RecordingSGD(torch.optim.SGD):
    """SGD that records the weights and gradients it sees at every step."""

    def __init__(self, model: nn.Module, lr: float):
        super().__init__(model.parameters(), lr=lr)
        self.model = model
        self.weights: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []

    def step(self, closure=None):
        self.weights.append(_flat(self.model))
        self.grads.append(_flat(self.model, grads=True))
        return super().step(closure)


def _float_result(value, name: str) -> float:
    if type(value) is not float:
        raise _Collected(f"{name} should return the mean loss as a Python float (use loss.item()); "
                         f"it returned a {_type_name(value)}.")
    return value


def collect_train_one_epoch(train_one_epoch) -> dict:
    model = _fresh_probe()
    loader = _batches(TRAIN_PROBLEM["seed"], TRAIN_PROBLEM["batch_size"])
    optimizer = _RecordingSGD(model, lr=TRAIN_PROBLEM["lr"])
    reported = _float_result(_call("train_one_epoch", train_one_epoch, model, loader, nn.MSELoss(), optimizer), "train_one_epoch")
    shape = (len(optimizer.weights), _flat(model).size)  # also when step() never ran
    fresh = _fresh_probe()
    sgd = torch.optim.SGD(fresh.parameters(), lr=TRAIN_PROBLEM["lr"])
    losses = [_float_result(_call("train_one_epoch", train_one_epoch, fresh, loader, nn.MSELoss(), sgd), "train_one_epoch")
              for _ in range(4)]
    return {
        "reported": reported,
        "weights_at_steps": np.array(optimizer.weights).reshape(shape),
        "grads_at_steps": np.array(optimizer.grads).reshape(shape),
        "training_mode": np.array([t for t, _ in model.calls], dtype=bool),
        "four_epochs": np.array(losses),
    }


def _gradient(weights: np.ndarray, x, y, loss_fn) -> np.ndarray:
    model = _probe_with(weights)
    loss_fn(model(x), y).backward()
    return _flat(model, grads=True)


def _is_batch_gradient(grads: np.ndarray, expected: np.ndarray) -> bool:
    """The batch's own gradient, possibly clipped: by norm (a uniform scale <= 1) or by value (every
    component limited to [-c, c]). Gradients accumulated over earlier batches match neither."""
    scale = float(grads @ expected) / float(expected @ expected)
    by_norm = 0 < scale <= 1 + 1e-4 and np.allclose(grads, scale * expected, rtol=1e-4, atol=1e-7)
    limit = float(np.abs(grads).max())
    by_value = np.allclose(grads, np.clip(expected, -limit, limit), rtol=1e-4, atol=1e-7)
    return by_norm or by_value


def judge_train_one_epoch(evidence: dict) -> None:
    _raise_collected(evidence)
    loss_fn = nn.MSELoss()
    batches = list(_batches(TRAIN_PROBLEM["seed"], TRAIN_PROBLEM["batch_size"]))
    steps = len(evidence["weights_at_steps"])
    if steps != len(batches):
        fail(f"train_one_epoch should call optimizer.step() once per batch ({len(batches)} batches); it was called {steps} times.")
    for k, (x, y) in enumerate(batches):
        grads = evidence["grads_at_steps"][k]
        if np.isnan(grads).any() or not np.abs(grads).sum() > 0:
            fail("In train_one_epoch no gradients were computed before optimizer.step(). Did you call loss.backward()?")
        if not _is_batch_gradient(grads, _gradient(evidence["weights_at_steps"][k], x, y, loss_fn)):
            fail("In train_one_epoch the gradients at optimizer.step() include earlier batches. "
                 "Did you call optimizer.zero_grad() before loss.backward()?")
    modes = evidence["training_mode"]
    if len(modes) == 0 or not modes.all():
        fail("train_one_epoch should put the model in training mode (model.train()) before the forward passes.")
    total = sum(_loss_with(evidence["weights_at_steps"][k], [(x, y)], loss_fn) * len(x) for k, (x, y) in enumerate(batches))
    expected = total / sum(len(x) for x, _ in batches)
    if not math.isclose(evidence["reported"], expected, rel_tol=1e-3, abs_tol=1e-6):
        fail(f"train_one_epoch should return the mean loss per sample over the epoch; it returned {evidence['reported']:.5f}, "
             f"expected {expected:.5f}. Weight each batch's loss by its size and divide by the number of samples.")
    losses = evidence["four_epochs"]
    if not np.isfinite(losses).all() or not (np.diff(losses) < 0).all():
        went = " -> ".join(f"{loss:.4f}" for loss in losses)
        fail(f"Over 4 epochs on an easy problem the training loss should fall every epoch; it went {went}.")


def check_train_one_epoch(train_one_epoch) -> None:
    """One pass in train mode: zero grad, forward, loss, backward, step; mean loss per sample."""
    _run("train_one_epoch", _collect(collect_train_one_epoch, train_one_epoch))


def collect_evaluate(evaluate) -> dict:
    model = _fresh_probe().train()
    before = _flat(model)
    loader = _batches(EVAL_PROBLEM["seed"], EVAL_PROBLEM["batch_size"])
    reported = _float_result(_call("evaluate", evaluate, model, loader, nn.L1Loss()), "evaluate")
    return {
        "reported": reported,
        "weights_before": before,
        "weights_after": _flat(model),
        "calls": np.array(model.calls, dtype=bool).reshape(-1, 2),
    }


def judge_evaluate(evidence: dict) -> None:
    _raise_collected(evidence)
    calls = evidence["calls"]
    if len(calls) == 0:
        fail("evaluate should run the model on every batch of the loader; the model was never called.")
    if calls[:, 1].any():
        fail("evaluate should not build an autograd graph: wrap the loop in torch.no_grad().")
    if calls[:, 0].any():
        fail("evaluate should put the model in evaluation mode (model.eval()) before the forward passes.")
    if not np.array_equal(evidence["weights_before"], evidence["weights_after"]):
        fail("evaluate changed the model's weights; it should only measure the loss.")
    loader = _batches(EVAL_PROBLEM["seed"], EVAL_PROBLEM["batch_size"])
    expected = _loss_with(evidence["weights_before"], loader, nn.L1Loss())
    if not math.isclose(evidence["reported"], expected, rel_tol=1e-4, abs_tol=1e-6):
        fail(f"evaluate should return the mean loss per sample; it returned {evidence['reported']:.5f}, expected {expected:.5f}. "
             "Weight each batch's loss by its size and divide by the number of samples.")


def check_evaluate(evaluate) -> None:
    """Eval mode, no autograd graph, weights untouched, mean loss per sample."""
    _run("evaluate", _collect(collect_evaluate, evaluate))


class _CountingScheduler(torch.optim.lr_scheduler.StepLR):
    def __init__(self, optimizer):
        super().__init__(optimizer, step_size=1, gamma=0.9)  # its initial step() counts as -1 + 1 = 0

    def step(self, *args, **kwargs):
        self.calls = getattr(self, "calls", -1) + 1
        return super().step(*args, **kwargs)


def _history(value) -> dict[str, np.ndarray]:
    if type(value) is not dict or set(value) != {"train_loss", "val_loss"}:
        found = sorted(value) if type(value) is dict else _type_name(value)
        raise _Collected(f'fit should return a dict with exactly the keys "train_loss" and "val_loss"; found {found}.')
    for key, losses in value.items():
        if type(losses) is not list or not all(type(v) is float for v in losses):
            raise _Collected(f'history["{key}"] should be a list of Python floats, one per epoch.')
    if len(value["train_loss"]) != len(value["val_loss"]):
        raise _Collected("history should hold one train and one validation loss per epoch; the lists differ in length.")
    return {key: np.array(losses, dtype=np.float64) for key, losses in value.items()}


def _reference_train_one_epoch(model, loader, loss_fn, optimizer) -> float:
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return total / len(loader.dataset)


def _reference_evaluate(model, loader, loss_fn) -> float:
    model.eval()
    with torch.no_grad():
        return sum(loss_fn(model(x), y).item() * len(x) for x, y in loader) / len(loader.dataset)


@contextmanager
def _reference_epochs(fit):
    """While fit is checked, the names train_one_epoch and evaluate in the student's namespace mean
    reference versions: fit is graded on its own logic, and a broken train_one_epoch costs its
    points once. A fit that trains inline is unaffected."""
    namespace = getattr(fit, "__globals__", {})
    saved = {name: namespace[name] for name in ("train_one_epoch", "evaluate") if name in namespace}
    namespace.update(train_one_epoch=_reference_train_one_epoch, evaluate=_reference_evaluate)
    try:
        yield
    finally:
        for name in ("train_one_epoch", "evaluate"):
            namespace.pop(name, None)
        namespace.update(saved)


def collect_fit(fit) -> dict:
    with _reference_epochs(fit):
        return _collect_fit(fit)


def _collect_fit(fit) -> dict:
    p = FIT_PROBLEM
    train = _batches(p["train_seed"], p["train_batch"])
    model = _fresh_probe()
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"])
    scheduler = _CountingScheduler(optimizer)
    plain = _history(_call("fit", fit, model, train, _batches(p["val_seed"], p["val_batch"]), nn.MSELoss(), optimizer,
                           p["epochs"], scheduler=scheduler, patience=None))
    # Validation targets are the negated training targets: the better the fit, the worse validation.
    model = _fresh_probe()
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"])
    early = _history(_call("fit", fit, model, train, _batches(p["train_seed"], p["val_batch"], flip=True), nn.MSELoss(),
                           optimizer, p["max_epochs"], scheduler=None, patience=p["patience"]))
    return {
        "train_loss": plain["train_loss"], "val_loss": plain["val_loss"], "scheduler_steps": scheduler.calls,
        "early_val_loss": early["val_loss"], "early_final_weights": _flat(model),
    }


def judge_fit(evidence: dict) -> None:
    _raise_collected(evidence)
    p = FIT_PROBLEM
    train_loss = evidence["train_loss"]
    if len(train_loss) != p["epochs"]:
        fail(f"fit(..., epochs={p['epochs']}) without patience should run {p['epochs']} epochs; history has {len(train_loss)}.")
    if evidence["scheduler_steps"] != p["epochs"]:
        fail(f"fit should call scheduler.step() once per epoch ({p['epochs']} times for {p['epochs']} epochs); "
             f"it was called {evidence['scheduler_steps']} times.")
    if not train_loss[-1] < train_loss[0]:
        fail(f"fit should train the model: the training loss went {train_loss[0]:.4f} -> {train_loss[-1]:.4f}.")
    val = evidence["early_val_loss"]
    best_epoch, patience = int(np.argmin(val)), p["patience"]
    if len(val) >= p["max_epochs"] or len(val) > best_epoch + patience + 2:
        fail(f"With patience={patience} fit should stop after {patience} epochs without a better validation loss; "
             f"it ran {len(val)} of {p['max_epochs']} epochs while the best epoch was number {best_epoch + 1}.")
    restored = _loss_with(evidence["early_final_weights"], _batches(p["train_seed"], p["val_batch"], flip=True), nn.MSELoss())
    if not math.isclose(restored, float(val[best_epoch]), rel_tol=1e-3, abs_tol=1e-6):
        fail(f"After early stopping fit should restore the weights of the best epoch (validation loss {val[best_epoch]:.4f}); "
             f"the model's validation loss is {restored:.4f}. Keep a copy of model.state_dict() at the best epoch.")


def check_fit(fit) -> None:
    """History per epoch, one scheduler step per epoch, early stopping with best weights restored."""
    _run("fit", _collect(collect_fit, fit))


# --- Part 5: the forecast ---------------------------------------------------------------
# The test targets never enter a grading kernel: the grader hands over the test inputs (shuffled)
# when the forecast cell starts; the model predicts them twice, the second time in another order
# and batching and with imperceptible noise; the trusted re-check scores the first pass after
# checking that both agree (each forecast must be a function of its own window).


@lru_cache(maxsize=1)
def grading_windows():
    """All three periods of the data this process finds itself (never the notebook's objects)."""
    from jena_weather.pipeline import SPLITS, build_windows

    return build_windows(periods=SPLITS)


def test_inputs() -> torch.Tensor:
    """The windows to forecast: handed over by a grading run, else the test period of this machine's data."""
    inbox = os.environ.get(ENV_INBOX)
    if not inbox:
        return grading_windows()["test"].x
    path = Path(inbox) / TEST_INPUTS
    if not path.is_file():
        raise _Collected("the grader's test inputs were not available to the forecast check.")
    return torch.from_numpy(np.load(path, allow_pickle=False))


def _predict(model: nn.Module, x: torch.Tensor, order: np.ndarray, batch_size: int) -> np.ndarray:
    """Forecasts of every window, fed in this order and batch size, returned in the windows' order."""
    out = np.empty((len(x), 1))
    for start in range(0, len(x), batch_size):
        rows = torch.from_numpy(order[start : start + batch_size])
        result = _forward(model, x[rows])
        if type(result) is not torch.Tensor or tuple(result.shape) != (len(rows), 1):
            raise _Collected(f"final_model should return a ({len(rows)}, 1) tensor for {len(rows)} windows; "
                             f"it returned {tuple(result.shape) if type(result) is torch.Tensor else _type_name(result)}.")
        out[rows.numpy()] = _as_array(result)
    return out


def collect_forecast(final_model) -> dict:
    if not isinstance(final_model, nn.Module):
        raise _Collected(f"final_model should be your trained WeatherLSTM; found a {_type_name(final_model)}.")
    x = test_inputs()
    final_model.eval()
    first = _predict(final_model, x, np.arange(len(x)), FORECAST_BATCHES[0])
    rng = np.random.default_rng()
    noisy = x + torch.from_numpy(rng.normal(0.0, FORECAST_NOISE, x.shape).astype(np.float32))
    again = _predict(final_model, noisy, rng.permutation(len(x)), FORECAST_BATCHES[1])
    return {"predictions": first, "predictions_again": again}


def judge_forecast(evidence: dict, thresholds: dict | None = None) -> Partial:
    """Points for the test-period MAE relative to persistence.

    ``evidence["order"]``, added by the grader, gives the test window of each forecast (a grading
    run hands the inputs over shuffled); without it the forecasts are in time order.
    """
    from grader_tests.thresholds import forecast_fraction, load_thresholds
    from jena_weather.baselines import mae_degc, persistence

    _raise_collected(evidence)
    thresholds = thresholds or load_thresholds()
    windows = grading_windows()
    n = len(windows["test"])
    first, again = evidence["predictions"], evidence["predictions_again"]
    if first.shape != (n, 1) or again.shape != (n, 1):
        fail(f"Expected one forecast per test window, ({n}, 1) twice; found {first.shape} and {again.shape}.")
    if not np.isfinite(first).all():
        fail("final_model's forecasts contain NaN or infinite values; check the training loss for divergence.")
    order = evidence.get("order")
    predictions = first if order is None else _in_time_order(first, order)
    mae = mae_degc(windows, "test", predictions)
    reference = mae_degc(windows, "test", persistence(windows, "test"))
    ratio = mae / reference
    fraction = forecast_fraction(ratio, thresholds)
    message = (f"Test-period MAE of final_model: {mae:.3f} degC (persistence: {reference:.3f} degC, "
               f"ratio {ratio:.3f}) -> {fraction:.0%} of the forecast points")
    worst = float(np.max(np.abs(first - again)))
    if fraction > 0 and not worst <= CONSISTENCY_TOLERANCE:  # a forecast that earns nothing needs no suspicion
        fail("final_model's forecast for a window changed when the same windows came again in another order and "
             "batch size: each forecast must depend on its own window only. An nn.LSTM created without "
             "batch_first=True mixes the windows of a batch; so does a model that keeps state between calls.",
             flag=f"forecast depends on other windows or earlier calls (a forecast moved by {worst:.3g} between two "
                  f"passes; honest models move by less than {CONSISTENCY_TOLERANCE:g}): no batch_first=True, or "
                  "an attempt to look up other windows")
    bound = thresholds.get("implausible_below")
    flag = (f"implausibly good forecast: MAE ratio {ratio:.3f} is below {bound:.3f}, far better than the reference "
            f"solution over {thresholds['reference']['seeds']} seeds (best {thresholds['reference']['min']:.3f})"
            if bound is not None and ratio < bound else None)
    return Partial(fraction, message, flag)


def _in_time_order(predictions: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Forecast i was made for test window order[i]; put them back in time order."""
    if sorted(order.tolist()) != list(range(len(predictions))):
        raise ValueError("the forecast order is not a permutation of the test windows")
    restored = np.empty_like(predictions)
    restored[order] = predictions
    return restored


def forecast_points(final_model) -> float | None:
    """Record final_model's test forecasts; outside a grading run also score and print them."""
    evidence = _collect(collect_forecast, final_model)
    record("forecast", evidence)
    if os.environ.get(ENV_INBOX):
        _raise_collected(evidence)
        print(f"final_model forecast {len(evidence['predictions'])} test windows; they are scored outside this notebook.")
        return None
    verdict = judge_forecast(evidence)
    print(verdict.message)
    return round(verdict.fraction * POINTS_OF_CHECK["forecast"], 2)


JUDGES = {"mode": judge_mode, "model": judge_model, "loss": judge_loss, "train_one_epoch": judge_train_one_epoch,
          "evaluate": judge_evaluate, "fit": judge_fit, "forecast": judge_forecast}
