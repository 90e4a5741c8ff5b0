"""Judging the model and the forecast from exported models: what the evaluator runs, what its outputs say.

A model is judged on its export, run outside the kernel (by the sandboxed evaluator,
`jenalab.evaluator`) on inputs the trusted side makes: shapes for another batch size, whether a
window's forecast depends on the other windows of its batch, whether the last and the first hours
reach the forecast, and the LSTM switched off: with every LSTM weight zero no input may reach the
forecast around it, and with only its recurrent weights zero the forecast must move (an LSTM carries
information from hour to hour). What the student's model answered in the kernel for the same
windows, as one batch, one at a time and again, must agree with itself and with its export: a model
that keeps state between calls exports as a clean graph, and is caught here. The final model is
scored on the test windows, which never enter the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader_tests import problems
from grader_tests.archive import Program, lookup_operations
from grader_tests.judges import Record, fail
from grader_tests.outcomes import Partial

HOURS_CHANGED = 3  # the last (and the first) hours replaced to see whether the forecast moves
AGREEMENT = 1e-5  # normalised units (0.0001 degC): the same windows must get the same forecasts
CONSTANT = 1e-6  # float32 rounds a batch's rows differently: forecasts this close together do not depend on the input
MATERIAL = 0.01  # zeroing the recurrent weights must move the forecast by this share of its spread, at least
ODD_BATCH = 7
FORECAST_BATCH = 1024
LINEAR = {"linear.default", "addmm.default", "mm.default", "matmul.default", "bmm.default"}
LARGE_MODEL = 5_000_000  # weights: far more than a WeatherLSTM needs, so a person should look


@dataclass(frozen=True)
class Run:
    """One evaluation: a program on an input (split into batches), its LSTM possibly switched off."""

    id: str
    program: str
    input: str
    batch: int
    ablation: str | None = None  # "zero_all" or "zero_recurrent"


def probe_inputs(program: str, windows: np.ndarray, seed: int) -> tuple[dict[str, np.ndarray], list[Run]]:
    """Inputs and runs that probe an exported forecaster with these windows."""
    rng = np.random.default_rng([seed, 7])
    late, early = windows.copy(), windows.copy()
    late[:, -HOURS_CHANGED:] = rng.normal(0, 1, late[:, -HOURS_CHANGED:].shape)
    early[:, :HOURS_CHANGED] = rng.normal(0, 1, early[:, :HOURS_CHANGED].shape)
    inputs = {f"{program}:x": windows, f"{program}:late": late, f"{program}:early": early,
              f"{program}:odd": windows[:ODD_BATCH]}
    size = len(windows)
    runs = [Run(f"{program}:batch", program, f"{program}:x", size), Run(f"{program}:single", program, f"{program}:x", 1),
            Run(f"{program}:late", program, f"{program}:late", size),
            Run(f"{program}:early", program, f"{program}:early", size),
            Run(f"{program}:odd", program, f"{program}:odd", ODD_BATCH),
            Run(f"{program}:zero_all", program, f"{program}:x", size, "zero_all"),
            Run(f"{program}:zero_recurrent", program, f"{program}:x", size, "zero_recurrent")]
    return inputs, runs


def forecast_inputs(test_windows: np.ndarray) -> tuple[dict[str, np.ndarray], list[Run]]:
    return {"forecast:test": test_windows}, [Run("forecast:test", "forecast", "forecast:test", FORECAST_BATCH)]


def _output(results: dict, run: str, rows: int, what: str) -> np.ndarray:
    """A run's forecasts, one per window, or the check fails saying what the exported model did."""
    out = results.get(run, "it was not run")
    if isinstance(out, str):
        fail(f"The exported model failed on {what}: {out}")
    if out.shape != (rows, 1):
        fail(f"The exported model returned shape {out.shape} for {what}; it should return ({rows}, 1).")
    if not np.isfinite(out).all():
        fail(f"The exported model's forecasts for {what} contain NaN or infinite values.")
    return out


def _shape_hint(shape: tuple) -> str:
    return (" Did you keep the last dimension (shape (batch, 1), not (batch,))?" if len(shape) == 1 else
            " Did you take the last time step of the LSTM output before the linear layer?" if len(shape) == 3 else "")


def _agrees(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=AGREEMENT, atol=AGREEMENT))


def _live(record: Record, rows: int, described: str) -> np.ndarray:
    """The student's model's own forecasts in the kernel, checked to agree with themselves."""
    batch = record.floats("live_batch")
    if batch.shape != (rows, 1):
        fail(f"For an input of shape {described} forward should return shape ({rows}, 1); it returned "
             f"{batch.shape}.{_shape_hint(batch.shape)}")
    if not _agrees(record.floats("live_again"), batch):
        fail("forward gave other forecasts for the same windows when called again: a forecast must depend on its "
             "window only, with no state kept from one call to the next.",
             flag="the model's forecasts depend on earlier calls")
    if not _agrees(record.floats("live_single"), batch):
        fail("The forecast for one window changes with the other windows in the batch. Did you create the LSTM with "
             "batch_first=True (inputs are (batch, time, features))?")
    if export_error := record.text("export_error"):
        fail(export_error)
    return batch


def _structure(program: Program, head: bool = True) -> list[tuple[int, int]]:
    """The LSTM layers of the export; fails without an LSTM, or (`head`) without a linear layer."""
    layers = program.recurrent_layers()
    if not layers:
        fail("The model contains no nn.LSTM: its export has no LSTM operation. Build the model from nn.LSTM, nn.Linear "
             "and nn.ReLU.")
    if head and not program.operations & LINEAR:
        fail("The model should map the LSTM's state to the forecast with nn.Linear; its export has no linear layer.")
    return layers


def _behaviour(results: dict, program: str, rows: int, live: np.ndarray, lstm_only: bool = True) -> np.ndarray:
    """What the export does on the probes; fails at the first thing a forecaster must not do."""
    out = _output(results, f"{program}:batch", rows, f"a batch of {rows} windows")
    if not _agrees(out, live):
        fail("The exported model does not compute what your model computed in the notebook for the same windows: "
             "a model must not keep state between calls or change itself while it forecasts.",
             flag="the export's forecasts differ from the model's own in the kernel")
    _output(results, f"{program}:odd", ODD_BATCH, f"a batch of {ODD_BATCH} windows")
    if not _agrees(_output(results, f"{program}:single", rows, "windows one at a time"), out):
        fail("The forecast for one window changes with the other windows in the batch. Did you create the LSTM with "
             "batch_first=True (inputs are (batch, time, features))?")
    spread = float(out.max() - out.min())
    if spread <= CONSTANT * (1 + float(np.abs(out).max())):
        fail("The model gives the same forecast for different inputs: the output must depend on the input sequence.")
    switched_off = _output(results, f"{program}:zero_all", rows, "windows with the LSTM's weights set to zero")
    if lstm_only and float(switched_off.max() - switched_off.min()) > 1e-7 + 1e-6 * spread:
        fail("With the LSTM switched off (all its weights zero) the forecast still depends on the input: part of the "
             "input reaches the forecast around the LSTM. Compute the forecast from the LSTM's output after the last "
             "step only.")
    return out


def judge_model(record: Record, seed: int, program: Program | None, results: dict) -> None:
    record.fail_on_error()
    case = problems.model_case(seed)
    rows = len(case.inputs)
    described = f"({rows}, 12, {case.n_features}) with hidden_size={case.hidden_size} and num_layers={case.num_layers}"
    live = _live(record, rows, described)
    layers = _structure(program)
    sizes = sorted({hidden for hidden, _ in layers})
    if sizes != [case.hidden_size]:
        fail(f"WeatherLSTM(..., hidden_size={case.hidden_size}) built an LSTM of hidden size "
             f"{', '.join(map(str, sizes))}: pass the hidden_size argument on instead of a fixed number.")
    if max(count for _, count in layers) != case.num_layers and sum(count for _, count in layers) != case.num_layers:
        fail(f"WeatherLSTM(..., num_layers={case.num_layers}) built an LSTM of "
             f"{max(count for _, count in layers)} layer(s): pass the num_layers argument on.")
    out = _behaviour(results, "model", rows, live)
    if np.allclose(out, _output(results, "model:late", rows, "windows with other last hours")):
        fail("Changing the last hours of the input does not change the forecast. Forecast from the LSTM's output after "
             "the last time step.")
    if np.array_equal(out, _output(results, "model:early", rows, "windows with other first hours")):
        fail("Changing the first hours of the input does not change the forecast: every hour of the window should "
             "reach it. Feed the whole sequence to the LSTM and read its state after the last step.")
    recurrent_off = _output(results, "model:zero_recurrent", rows, "windows with the LSTM's recurrent weights at zero")
    if float(np.abs(recurrent_off - out).mean()) < MATERIAL * float(out.std()):
        fail("The LSTM's recurrent weights make no difference to the forecast, so nothing is carried from hour to "
             "hour. Feed the window to the LSTM as a sequence of 12 steps.")
    other = tuple(int(n) for n in record.array("other_steps_shape", 1, kind="iu"))
    if other != (3, 1):
        found = record.text("other_steps_error") or f"it returned {other}.{_shape_hint(other)}"
        fail(f"For an input of shape (3, {case.other_steps}, {case.n_features}) forward should return shape (3, 1): "
             f"the model must work for any sequence length. {found}")
    default = record.array("default_hidden", 1, kind="iu")
    if len(default) and int(default[0]) != 64:
        fail(f"WeatherLSTM(n_features) should have hidden_size=64 by default; it built an LSTM of hidden size "
             f"{int(default[0])}.")


def judge_forecast(record: Record, seed: int, program: Program | None, results: dict, windows, thresholds: dict) -> Partial:
    """Points for the test-period MAE relative to persistence, from the exported final model."""
    from grader_tests.thresholds import forecast_fraction
    from jena_weather.baselines import mae_degc, persistence

    record.fail_on_error()
    probe = problems.forecast_probe(seed, windows.n_features)
    live = _live(record, len(probe), f"({len(probe)}, 12, {windows.n_features})")
    _structure(program, head=False)  # the head is the model check's; here: a forecast that comes from an LSTM
    _behaviour(results, "forecast", len(probe), live)
    n = len(windows["test"])
    predictions = _output(results, "forecast:test", n, f"the {n} test windows")
    mae = mae_degc(windows, "test", predictions)
    reference = mae_degc(windows, "test", persistence(windows, "test"))
    ratio = mae / reference
    fraction = forecast_fraction(ratio, thresholds)
    message = (f"Test-period MAE of final_model: {mae:.3f} degC (persistence: {reference:.3f} degC, ratio {ratio:.3f}) "
               f"-> {fraction:.0%} of the forecast points")
    flags = []
    bound = thresholds.get("implausible_below")
    if bound is not None and ratio < bound:
        flags.append(f"implausibly good forecast: MAE ratio {ratio:.3f} is below {bound:.3f}, far better than the "
                     f"reference solution over {thresholds['reference']['seeds']} seeds (best "
                     f"{thresholds['reference']['min']:.3f})")
    if program.weight_count() > LARGE_MODEL:
        flags.append(f"the final model holds {program.weight_count():,} numbers, far more than a WeatherLSTM needs")
    if lookup := lookup_operations(program):
        flags.append(f"the final model uses operations that can pick values out of stored data ({', '.join(sorted(lookup))})")
    return Partial(fraction, message, "; ".join(flags) or None)
