"""The hidden checks as the student's kernel runs them: collectors, and nothing else.

Each ``collect_*`` poses its check's problem (drawn at grading time, `grader_tests.problems`) to the
student's code and records what comes back: plain arrays, and exported models for the model checks.
It judges nothing: no reference implementation, threshold or expected answer is here. The records
leave the kernel (`grader_tests.evidence`) and a trusted process decides every point
(`grader_tests.verdicts`).

A collector raises ``CheckError`` after recording when the student's code raised, returned the
wrong kind of thing or could not be exported: that is the kernel's own verdict (the cell fails), and
the message is for the student. That a collector did not raise means nothing more than that it
could record.

This module, ``problems``, ``evidence`` and ``contract`` are all of the grader a grading kernel can
import.
"""

from __future__ import annotations

import io
import math
import traceback
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader_tests import problems
from grader_tests.evidence import npz_bytes, publish
from jena_weather.export import ExportError, export_forecaster


class CheckError(AssertionError):
    """The student's code could not be checked (it raised, returned the wrong type, or cannot be exported)."""


class _Stop(Exception):
    """Ends a collection early with a message for the student."""


@contextmanager
def _quiet():
    """Silence student code: a test cell that writes to stderr gets no points from nbgrader, and prints
    or progress bars would clutter the feedback."""
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _call(name: str, fn, *args, **kwargs):
    """Call student code quietly; its exceptions become a message that names the culprit."""
    try:
        with _quiet():
            return fn(*args, **kwargs)
    except NotImplementedError as err:
        detail = str(err).strip()
        raise _Stop(f"{name} is not implemented yet" + (f": {detail}" if detail else ".")) from None
    except Exception as err:  # the student's exception is reported, never ours
        theirs = [frame for frame in traceback.extract_tb(err.__traceback__)
                  if not any(part in frame.filename for part in ("site-packages", "/lib/python3", "grader_tests"))]
        where = f" (line {theirs[-1].lineno} of your code)" if theirs else ""
        raise _Stop(f"{name} raised {type(err).__name__}: {err}{where}") from None


def _type_name(value) -> str:
    return type(value).__name__


def _float(value, name: str) -> float:
    if type(value) is not float:
        raise _Stop(f"{name} should return the mean loss as a Python float (use loss.item()); it returned a "
                    f"{_type_name(value)}.")
    return value


def _as_array(out) -> np.ndarray:
    """A model's output as float64; anything that is not a tensor becomes an empty array."""
    if type(out) is not torch.Tensor:
        return np.zeros((0,))
    return out.detach().to(torch.float64).numpy().copy()


def _record(check: str, collect) -> None:
    """Run a collection, publish its record, then fail the cell if the student's code could not be checked
    (it raised, or the model could not be exported)."""
    files = {}
    try:
        evidence = collect(files)
    except (_Stop, problems.ProblemUnavailable) as stop:
        evidence = {"error": str(stop)}
    publish(check, {f"{check}.npz": npz_bytes(evidence), **files})
    if evidence.get("error") or evidence.get("export_error"):
        raise CheckError(evidence.get("error") or evidence["export_error"])


def _problem(check: str) -> int:
    return problems.seed_for(check)


# --- Part 1: the mode ---------------------------------------------------------------------------------


def collect_mode(mode) -> None:
    """Record MODE."""
    _record("mode", lambda files: {"type": _type_name(mode), "value": str.__str__(mode) if type(mode) is str else ""})


# --- Part 2: the model --------------------------------------------------------------------------------


def _build(model_class, n_features: int, hidden_size: int | None = None, num_layers: int | None = None) -> nn.Module:
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise _Stop(f"WeatherLSTM should be a class derived from nn.Module; found a {_type_name(model_class)}.")
    sizes = {} if hidden_size is None else {"hidden_size": hidden_size, "num_layers": num_layers}
    described = ", ".join([str(n_features), *(f"{k}={v}" for k, v in sizes.items())])
    model = _call(f"WeatherLSTM({described})", model_class, n_features, **sizes)
    if not isinstance(model, nn.Module):
        raise _Stop(f"WeatherLSTM(...) should create an nn.Module; found a {_type_name(model)}.")
    return model.eval()


def _forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = _call(f"WeatherLSTM.forward on an input of shape {tuple(x.shape)}", model, torch.from_numpy(x))
    if type(out) is not torch.Tensor:
        raise _Stop(f"forward should return a torch.Tensor; it returned a {_type_name(out)}.")
    return _as_array(out)


def _answers(model: nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """The model's own forecasts for the same windows three ways: as one batch, as one batch again, and one
    window at a time in reverse order (a model that depends on earlier calls or on other windows answers
    differently)."""
    batch, again = _forward(model, x), _forward(model, x)
    single = [_forward(model, x[i:i + 1]) for i in reversed(range(len(x)))][::-1]
    return {"live_batch": batch, "live_again": again,
            "live_single": np.concatenate(single) if all(s.ndim for s in single) else np.zeros(0)}


def _export(model: nn.Module, n_features: int, name: str, files: dict) -> str:
    """Export into files[name]; '' or why the model cannot be exported."""
    try:
        with _quiet():
            files[name] = export_forecaster(model, n_features)
    except ExportError as err:
        return str(err)
    return ""


def collect_model(model_class) -> None:
    """Record a freshly built WeatherLSTM of drawn sizes: its own forecasts, its export, other lengths and sizes."""
    def collect(files):
        case = problems.model_case(_problem("model"))
        model = _build(model_class, case.n_features, case.hidden_size, case.num_layers)
        evidence = {**_answers(model, case.inputs), "export_error": _export(model, case.n_features, "model.pt2", files)}
        try:
            other = _forward(model, np.zeros((3, case.other_steps, case.n_features), dtype=np.float32))
            evidence.update(other_steps_shape=np.array(other.shape, dtype=np.int64), other_steps_error="")
        except _Stop as stop:
            evidence.update(other_steps_shape=np.zeros(0, dtype=np.int64), other_steps_error=str(stop))
        evidence["default_hidden"] = np.array([m.hidden_size for m in _build(model_class, case.n_features).modules()
                                               if isinstance(m, (nn.LSTM, nn.LSTMCell))], dtype=np.int64)
        return evidence

    _record("model", collect)


# --- Part 3: the loss ---------------------------------------------------------------------------------


def collect_loss(choose_loss) -> None:
    """Record the loss module's type, settings and values on drawn forecasts."""
    def collect(files):
        loss = _call("choose_loss()", choose_loss)
        if not isinstance(loss, nn.Module):
            raise _Stop(f"choose_loss() should return an nn.Module instance such as nn.MSELoss(); found a {_type_name(loss)}.")
        evidence = {"type": f"{type(loss).__module__}.{type(loss).__qualname__}",
                    "reduction": str(getattr(loss, "reduction", "")),
                    "delta": float(getattr(loss, "delta", math.nan)), "beta": float(getattr(loss, "beta", math.nan))}
        values = []
        for forecast, target in problems.loss_pairs(_problem("loss")):
            try:
                value = _call("the loss of a batch", loss, torch.from_numpy(forecast), torch.from_numpy(target))
            except _Stop:  # not a loss at all: its type says so
                value = None
            values.append(float(value) if type(value) is torch.Tensor and value.numel() == 1 else math.nan)
        return {**evidence, "values": np.array(values)}

    _record("loss", collect)


# --- Part 4: the training loop ------------------------------------------------------------------------


class _Probe(nn.Module):
    """A linear model over the flattened window that records how it is called."""

    def __init__(self, weights: np.ndarray):
        super().__init__()
        self.linear = nn.Linear(problems.PROBE_STEPS * problems.PROBE_FEATURES, 1)
        _set_weights(self, weights)
        self.calls: list[tuple[bool, bool]] = []  # (training mode, autograd on) per forward

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.linear(x.flatten(1))


def _set_weights(model: nn.Module, weights: np.ndarray) -> None:
    """In place, as an optimizer changes them (a state_dict saved without a copy changes too)."""
    with torch.no_grad():
        start = 0
        for p in model.parameters():
            p.copy_(torch.as_tensor(weights[start:start + p.numel()], dtype=p.dtype).reshape(p.shape))
            start += p.numel()


def _flat(model: nn.Module, grads: bool = False) -> np.ndarray:
    parts = []
    for p in model.parameters():
        tensor = p.grad if grads else p
        parts.append(np.full(p.numel(), np.nan) if tensor is None else tensor.detach().double().reshape(-1).numpy())
    return np.concatenate(parts)


def _loader(problem: problems.Regression) -> DataLoader:
    return DataLoader(TensorDataset(torch.from_numpy(problem.x), torch.from_numpy(problem.y)), batch_size=problem.batch_size)


class _RecordingSGD(torch.optim.SGD):
    """SGD that records the weights and gradients it sees at every step."""

    def __init__(self, model: nn.Module, lr: float):
        super().__init__(model.parameters(), lr=lr)
        self.model, self.weights, self.grads = model, [], []

    def step(self, closure=None):
        self.weights.append(_flat(self.model))
        self.grads.append(_flat(self.model, grads=True))
        return super().step(closure)


def collect_train_one_epoch(train_one_epoch) -> None:
    """Record one epoch on a drawn problem step by step, and four epochs of plain SGD."""
    def collect(files):
        problem = problems.regression(_problem("train_one_epoch"), "train")
        model = _Probe(problem.weights)
        optimizer = _RecordingSGD(model, problem.lr)
        reported = _float(_call("train_one_epoch", train_one_epoch, model, _loader(problem), nn.MSELoss(), optimizer),
                          "train_one_epoch")
        size = len(problem.weights)
        fresh = _Probe(problem.weights)
        sgd = torch.optim.SGD(fresh.parameters(), lr=problem.lr)
        epochs = [_float(_call("train_one_epoch", train_one_epoch, fresh, _loader(problem), nn.MSELoss(), sgd),
                         "train_one_epoch") for _ in range(4)]
        return {"reported": reported, "weights_at_steps": np.array(optimizer.weights).reshape(-1, size),
                "grads_at_steps": np.array(optimizer.grads).reshape(-1, size),
                "training_mode": np.array([t for t, _ in model.calls], dtype=bool), "four_epochs": np.array(epochs)}

    _record("train_one_epoch", collect)


def collect_evaluate(evaluate) -> None:
    """Record evaluate on a drawn problem: how it called the model, its weights, its answer."""
    def collect(files):
        problem = problems.regression(_problem("evaluate"), "evaluate")
        model = _Probe(problem.weights).train()
        reported = _float(_call("evaluate", evaluate, model, _loader(problem), nn.L1Loss()), "evaluate")
        return {"reported": reported, "weights_after": _flat(model),
                "calls": np.array(model.calls, dtype=bool).reshape(-1, 2)}

    _record("evaluate", collect)


class _Script:
    """The state of a scripted training (`problems.FitScript`): which epoch's weights the model holds."""

    def __init__(self, script: problems.FitScript, model: nn.Module):
        self.script, self.model, self.epoch, self.steps, self.scripted_calls = script, model, 0, 0, 0
        self.batches = len(script.train.batches)

    def to_epoch(self, epoch: int) -> None:
        self.epoch = min(max(self.epoch, epoch), self.script.max_epochs)
        _set_weights(self.model, self.script.weights[self.epoch])

    def train_one_epoch(self, model, loader, loss_fn, optimizer, *args, **kwargs) -> float:
        """Stands in for the student's train_one_epoch while fit is checked: one scripted epoch."""
        self.scripted_calls += 1
        self.to_epoch(self.epoch + 1)
        return float(self.script.train_loss[self.epoch])

    def evaluate(self, model, loader, loss_fn, *args, **kwargs) -> float:
        """Stands in for the student's evaluate: the validation loss of the weights the model holds."""
        self.scripted_calls += 1
        return float(self.script.val_loss[self.epoch])


class _ScriptedOptimizer(torch.optim.SGD):
    """For a fit that trains inline: each epoch's steps leave the model with that epoch's scripted weights."""

    def __init__(self, model: nn.Module, state: _Script):
        super().__init__(model.parameters(), lr=0.0)
        self.state = state

    def step(self, closure=None):
        self.state.steps += 1
        self.state.to_epoch(math.ceil(self.state.steps / self.state.batches))


class _CountingScheduler(torch.optim.lr_scheduler.StepLR):
    def __init__(self, optimizer):
        self.calls = -1  # the base class steps once while it is set up
        super().__init__(optimizer, step_size=1, gamma=1.0)

    def step(self, *args, **kwargs):
        self.calls += 1
        return super().step(*args, **kwargs)


@contextmanager
def _stand_ins(fit, state: _Script):
    """While fit is checked, the names train_one_epoch and evaluate in its namespace mean the scripted
    epochs: fit is checked on its own logic, and a broken train_one_epoch costs its points once."""
    namespace = getattr(fit, "__globals__", {})
    saved = {name: namespace[name] for name in ("train_one_epoch", "evaluate") if name in namespace}
    namespace.update(train_one_epoch=state.train_one_epoch, evaluate=state.evaluate)
    try:
        yield
    finally:
        for name in ("train_one_epoch", "evaluate"):
            namespace.pop(name, None)
        namespace.update(saved)


def _history(value) -> dict[str, np.ndarray]:
    if type(value) is not dict or set(value) != {"train_loss", "val_loss"}:
        found = sorted(map(str, value)) if type(value) is dict else _type_name(value)
        raise _Stop(f'fit should return a dict with exactly the keys "train_loss" and "val_loss"; found {found}.')
    for key, losses in value.items():
        if type(losses) is not list or not all(type(v) is float for v in losses):
            raise _Stop(f'history["{key}"] should be a list of Python floats, one per epoch.')
    return {key: np.array(losses, dtype=np.float64) for key, losses in value.items()}


def collect_fit(fit) -> None:
    """Record fit's histories, scheduler steps and final weights on two scripted trainings."""
    def run(script, epochs, scheduler, patience):
        model = _Probe(script.weights[0])
        state = _Script(script, model)
        optimizer = _ScriptedOptimizer(model, state)
        counting = _CountingScheduler(optimizer) if scheduler else None
        with _stand_ins(fit, state):
            history = _history(_call("fit", fit, model, _loader(script.train), _loader(script.validation), nn.MSELoss(),
                                     optimizer, epochs, scheduler=counting, patience=patience))
        return history, state, counting, _flat(model)

    def collect(files):
        script = problems.fit_script(_problem("fit"))
        plain, state, counting, _ = run(script, script.epochs, True, None)
        early, early_state, _, weights = run(script, script.max_epochs, False, script.patience)
        return {"train_loss": plain["train_loss"], "val_loss": plain["val_loss"], "scheduler_steps": counting.calls,
                "epochs_trained": state.epoch, "early_train_loss": early["train_loss"], "early_val_loss": early["val_loss"],
                "early_epochs_trained": early_state.epoch, "early_final_weights": weights}

    _record("fit", collect)


# --- Part 5: the final model --------------------------------------------------------------------------


def collect_forecast(final_model, n_features: int) -> None:
    """Record the final model's export (made before any test input exists anywhere) and its own
    forecasts for drawn windows; it is scored outside the kernel."""
    def collect(files):
        if not isinstance(final_model, nn.Module):
            raise _Stop(f"final_model should be your trained WeatherLSTM; found a {_type_name(final_model)}.")
        final_model.eval()
        answers = _answers(final_model, problems.forecast_probe(_problem("forecast"), n_features))
        return {**answers, "export_error": _export(final_model, n_features, "forecast.pt2", files)}

    _record("forecast", collect)
