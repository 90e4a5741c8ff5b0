"""The checks on their own, in this process: the collectors record what small student-like functions do
on drawn problems, exactly as in a grading kernel; the records are stored as the grader stores them and
judged by the trusted verdicts, exported models through the real sandboxed evaluator. The corpus runs
the same checks inside real notebooks (tests/test_grading.py); these cases pin the edge cases fast."""

from __future__ import annotations

import copy
import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from grader_tests import collect, problems
from grader_tests.archive import Refused, read_program
from grader_tests.contract import CELL_OF_CHECK, GRADED_CELLS
from grader_tests.thresholds import load_thresholds
from grader_tests.verdicts import SEEDS, judge_submission
from jena_weather.export import ExportError, export_forecaster
from jenalab.evaluator import evaluate

SEED = 20261206
ONE_LAYER = next(s for s in range(SEED, SEED + 100) if problems.model_case(s).num_layers == 1)
TWO_LAYERS = next(s for s in range(SEED, SEED + 100) if problems.model_case(s).num_layers == 2)


def record(tmp_path, monkeypatch, seed: int = SEED, **calls) -> dict[str, bytes]:
    """Run collectors on student code as a grading kernel does (seeds handed over, records published); store
    the records as the grader does. calls: check -> the arguments of its collector."""
    published = {}
    monkeypatch.setattr(problems, "seed_for", lambda check: seed)
    monkeypatch.setattr(collect, "publish", lambda check, files: published.update(files))
    for check, args in calls.items():
        try:
            getattr(collect, f"collect_{check}")(*args)
        except collect.CheckError:
            pass  # the kernel's own verdict: the cell fails; the record tells the same
    for name, data in published.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / SEEDS).write_text(json.dumps({cell.check: seed for cell in GRADED_CELLS}))
    return published


def judged(tmp_path, monkeypatch, seed: int = SEED, windows=None, **calls):
    """The trusted verdict of each check recorded (by check name)."""
    record(tmp_path, monkeypatch, seed, **calls)
    verdicts = judge_submission(tmp_path, load_thresholds(), evaluate, windows=windows)
    return {cell.check: verdicts[cell.grade_id] for cell in GRADED_CELLS if cell.check in calls}


def full(verdict, cell_points):
    return verdict.points == cell_points


POINTS = {cell.check: cell.points for cell in GRADED_CELLS}


# --- the training loop ----------------------------------------------------------------------------------


def train_one_epoch_like(*, zero_grad=True, backward=True, step=True, clip=None, unweighted=False):
    """A student's train_one_epoch, with one step left out or a gradient clipping added."""
    def train_one_epoch(model, loader, loss_fn, optimizer):
        model.train()
        total, batches = 0.0, 0
        for x, y in loader:
            if zero_grad:
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            if backward:
                loss.backward()
            if clip:
                clip(model.parameters())
            if step:
                optimizer.step()
            total += loss.item() * (1 if unweighted else len(x))
            batches += 1
        return total / (batches if unweighted else len(loader.dataset))
    return train_one_epoch


@pytest.mark.parametrize("clip", [None, lambda p: nn.utils.clip_grad_norm_(p, max_norm=1.0),
                                  lambda p: nn.utils.clip_grad_value_(p, clip_value=0.5)],
                         ids=["plain", "norm_clipping", "value_clipping"])
def test_a_correct_train_one_epoch_passes_with_or_without_clipping(clip, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, train_one_epoch=(train_one_epoch_like(clip=clip),))["train_one_epoch"]
    assert full(verdict, POINTS["train_one_epoch"]), verdict.message


def test_the_drawn_training_problems_are_easy_for_a_correct_loop():
    """The training loss of a correct train_one_epoch falls every epoch on the problems drawn (so a loss that does not
    fall is the student's doing), by 5% at least, on 300 seeds."""
    loop = train_one_epoch_like()
    for seed in range(300):
        problem = problems.regression(seed, "train")
        model = collect._Probe(problem.weights)
        optimizer = torch.optim.SGD(model.parameters(), lr=problem.lr)
        losses = np.array([loop(model, collect._loader(problem), nn.MSELoss(), optimizer) for _ in range(4)])
        assert (np.diff(losses) < -0.05 * losses[:-1]).all(), (seed, losses)


@pytest.mark.parametrize("mistake, hint", [
    (dict(zero_grad=False), "Did you call optimizer.zero_grad() before loss.backward()?"),
    (dict(zero_grad=False, clip=lambda p: nn.utils.clip_grad_value_(p, clip_value=0.5)), "optimizer.zero_grad()"),
    (dict(backward=False), "Did you call loss.backward()?"),
    (dict(step=False), "should call optimizer.step() once per batch"),
    (dict(unweighted=True), "Weight each batch's loss by its size"),
], ids=["no_zero_grad", "no_zero_grad_value_clipped", "no_backward", "no_step", "unweighted_mean"])
def test_a_broken_train_one_epoch_gets_the_specific_hint(mistake, hint, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, train_one_epoch=(train_one_epoch_like(**mistake),))["train_one_epoch"]
    assert verdict.points == 0 and hint in verdict.message


def evaluate_like(*, no_grad=True, eval_mode=True, unweighted=False):
    def evaluate(model, loader, loss_fn):
        if eval_mode:
            model.eval()
        total, batches = 0.0, 0
        with torch.set_grad_enabled(not no_grad):
            for x, y in loader:
                total += loss_fn(model(x), y).item() * (1 if unweighted else len(x))
                batches += 1
        return total / (batches if unweighted else len(loader.dataset))
    return evaluate


@pytest.mark.parametrize("variant, hint", [
    (dict(), None),
    (dict(no_grad=False), "torch.no_grad()"),
    (dict(eval_mode=False), "model.eval()"),
    (dict(unweighted=True), "mean loss per sample"),
], ids=["correct", "with_grad", "train_mode", "unweighted_mean"])
def test_evaluate_is_judged_by_how_it_called_the_model_and_what_it_returned(variant, hint, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, evaluate=(evaluate_like(**variant),))["evaluate"]
    assert (full(verdict, POINTS["evaluate"]) if hint is None else verdict.points == 0 and hint in verdict.message), \
        verdict.message


FIT = """
def train_one_epoch(model, loader, loss_fn, optimizer):
    raise NotImplementedError("Replace this line with your code")


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    history = {"train_loss": [], "val_loss": []}
    best, best_state, waited = math.inf, None, 0
    for _ in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        history["val_loss"].append(evaluate(model, val_loader, loss_fn))
        if scheduler is not None:
            scheduler.step()
        if history["val_loss"][-1] < best:
            best, waited = history["val_loss"][-1], 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
"""

# A fit that trains and validates inline, without the two other functions.
INLINE_FIT = """
def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    history = {"train_loss": [], "val_loss": []}
    best, best_state, waited = math.inf, None, 0
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        history["train_loss"].append(total / len(train_loader.dataset))
        model.eval()
        with torch.no_grad():
            val = sum(loss_fn(model(x), y).item() * len(x) for x, y in val_loader) / len(val_loader.dataset)
        history["val_loss"].append(val)
        if scheduler:
            scheduler.step()
        if val < best:
            best, best_state, waited = val, copy.deepcopy(model.state_dict()), 0
        elif patience is not None:
            waited += 1
            if waited > patience - 1:
                break
    if patience is not None:
        model.load_state_dict(best_state)
    return history
"""


def student_namespace(source: str) -> dict:
    """The functions of a training-loop cell, defined in a namespace of their own like a notebook's."""
    namespace = {"math": math, "torch": torch, "copy": copy}
    exec(source, namespace)
    return namespace


def test_fit_is_graded_on_its_own_logic_and_the_namespace_is_restored(tmp_path, monkeypatch):
    namespace = student_namespace(FIT)
    unfinished = namespace["train_one_epoch"]
    verdict = judged(tmp_path, monkeypatch, fit=(namespace["fit"],))["fit"]
    assert full(verdict, POINTS["fit"]), verdict.message  # although train_one_epoch is unfinished
    assert namespace["train_one_epoch"] is unfinished and "evaluate" not in namespace


def test_a_fit_that_trains_and_validates_inline_passes(tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, fit=(student_namespace(INLINE_FIT)["fit"],))["fit"]
    assert full(verdict, POINTS["fit"]), verdict.message


@pytest.mark.parametrize("change, hint", [
    (("        model.load_state_dict(best_state)", "        pass"), "restore the weights of the best epoch"),
    (("{k: v.clone() for k, v in model.state_dict().items()}", "model.state_dict()"), "copy the tensors"),
    (("if patience is not None and waited >= patience", "if False"), "should stop after"),
    (("            scheduler.step()", "            pass"), "scheduler.step() once per epoch"),
], ids=["keeps_the_last_weights", "state_dict_not_copied", "ignores_patience", "no_scheduler_step"])
def test_a_broken_fit_gets_the_specific_hint(change, hint, tmp_path, monkeypatch):
    namespace = student_namespace(FIT.replace(*change))
    verdict = judged(tmp_path, monkeypatch, fit=(namespace["fit"],))["fit"]
    assert verdict.points == 0 and hint in verdict.message, verdict.message


def test_an_empty_history_is_the_students_zero_not_the_graders_failure(tmp_path, monkeypatch):
    namespace = student_namespace("def fit(*args, **kwargs):\n    return {'train_loss': [], 'val_loss': []}")
    verdict = judged(tmp_path, monkeypatch, fit=(namespace["fit"],))["fit"]
    assert verdict.points == 0 and "epochs" in verdict.message


# --- the mode and the loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, hint", [("many-to-one", None), (" Many-To-One ", None), ("many-to-many", "not the mode"),
                                        (3, "should be a string"), ("sequence", "should be one of")])
def test_mode(mode, hint, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, mode=(mode,))["mode"]
    assert (full(verdict, POINTS["mode"]) if hint is None else verdict.points == 0 and hint in verdict.message)


class LyingL1(nn.L1Loss):
    """Calls itself an L1 loss and squares the errors."""

    def forward(self, forecast, target):
        return ((forecast - target) ** 2).mean()


LyingL1.__module__, LyingL1.__qualname__ = "torch.nn.modules.loss", "L1Loss"


@pytest.mark.parametrize("loss, hint", [
    (nn.L1Loss(), None), (nn.MSELoss(), None), (nn.HuberLoss(delta=0.5), None), (nn.SmoothL1Loss(beta=2.0), None),
    (nn.CrossEntropyLoss(), "classification loss"), (nn.L1Loss(reduction="sum"), "reduction='mean'"),
    (LyingL1(), "does not compute a L1Loss"), (nn.Linear(1, 1), "regression loss instance"),
], ids=["l1", "mse", "huber", "smooth_l1", "cross_entropy", "sum", "lying_l1", "not_a_loss"])
def test_loss_is_judged_by_its_values_on_drawn_forecasts(loss, hint, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, loss=(lambda: loss,))["loss"]
    assert (full(verdict, POINTS["loss"]) if hint is None else verdict.points == 0 and hint in verdict.message), \
        verdict.message


# --- the model: judged on its export, run outside ----------------------------------------------------


class Reference(nn.Module):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)  # (B, T, H)
        return self.head(out[:, -1])


class TimeMajor(Reference):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers)
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers)

    def forward(self, x):
        out, _ = self.lstm(x.permute(1, 0, 2))
        return self.head(out[-1])


class LastHidden(Reference):
    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


class ExplicitState(Reference):
    def forward(self, x):
        h0 = torch.zeros(self.lstm.num_layers, x.size(0), self.lstm.hidden_size)
        out, _ = self.lstm(x, (h0, torch.zeros_like(h0)))
        return self.head(out[:, -1, :])


class DropoutNormSingleLinear(nn.Module):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=0.3 if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.LayerNorm(hidden_size), nn.Dropout(0.2), nn.Linear(hidden_size, 1))

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


LEGITIMATE = {"batch_first": Reference, "time_major": TimeMajor, "h_n_last_layer": LastHidden,
              "explicit_h0_c0": ExplicitState, "dropout_layernorm_single_linear": DropoutNormSingleLinear}


@pytest.mark.parametrize("seed", [ONE_LAYER, TWO_LAYERS], ids=["one_layer", "two_layers"])
@pytest.mark.parametrize("style", LEGITIMATE)
def test_ordinary_model_styles_export_and_pass_the_model_check(style, seed, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, seed, model=(LEGITIMATE[style],))["model"]
    assert full(verdict, POINTS["model"]), verdict.message


class FirstStep(Reference):
    def forward(self, x):
        return self.head(self.lstm(x)[0][:, 0])


class NotBatchFirst(Reference):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers)
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


class Squeezed(Reference):
    def forward(self, x):
        return super().forward(x).squeeze(1)


class FixedHidden(Reference):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, 32, num_layers)


class FixedLength(Reference):
    def forward(self, x):
        return super().forward(x.reshape(x.shape[0], 12, -1))


class LastHourOnly(Reference):
    def forward(self, x):
        return self.head[-1](torch.zeros(x.shape[0], self.head[-1].in_features)) + x[:, -1].sum(1, keepdim=True)


class Bypass(Reference):
    """Forecast = a linear read of the last hour + a linear map of the mean over hours + 1e-6 x the LSTM path."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers)
        self.last, self.mean = nn.Linear(n_features, 1), nn.Linear(n_features, 1)

    def forward(self, x):
        return self.last(x[:, -1]) + self.mean(x.mean(dim=1)) + 1e-6 * super().forward(x)


class OneStep(Reference):
    """The LSTM reads the whole window as a single step: nothing is carried from hour to hour."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers)
        self.lstm = nn.LSTM(12 * n_features, hidden_size, num_layers=num_layers, batch_first=True)

    def forward(self, x):
        return self.head(self.lstm(x.reshape(x.shape[0], 1, -1))[0][:, -1])


class Stateful(Reference):
    """Carries its LSTM state from one call to the next (a classic mistake): its export is stateless."""

    def forward(self, x):
        state = getattr(self, "state", None)
        out, (h, c) = self.lstm(x, state if state is not None and state[0].shape[1] == x.shape[0] else None)
        self.state = (h.detach(), c.detach())
        return self.head(out[:, -1])


class PythonLists(Reference):
    """Goes through Python lists: nothing an export can hold."""

    def forward(self, x):
        return torch.tensor([[value] for value, in super().forward(x).tolist()])


MISTAKES = {
    "first_time_step": (FirstStep, "Changing the last hours of the input does not change the forecast"),
    "no_batch_first": (NotBatchFirst, "other windows in the batch"),
    "squeezed_output": (Squeezed, "Did you keep the last dimension"),
    "fixed_hidden_size": (FixedHidden, "pass the hidden_size argument on"),
    "fixed_sequence_length": (FixedLength, "must work for any sequence length"),
    "last_hour_only": (LastHourOnly, "contains no nn.LSTM"),
    "lstm_path_scaled_down": (Bypass, "With the LSTM switched off"),
    "lstm_reads_one_step": (OneStep, "recurrent weights make no difference"),
    "state_between_calls": (Stateful, "called again"),
    "python_lists": (PythonLists, "torch.export could not export the model"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_model_mistake_loses_the_model_points_with_its_hint(mistake, tmp_path, monkeypatch):
    model_class, hint = MISTAKES[mistake]
    verdict = judged(tmp_path, monkeypatch, ONE_LAYER, model=(model_class,))["model"]
    assert verdict.points == 0 and hint in verdict.message, verdict.message


# --- the forecast: the export run on the test windows, which never enter the kernel -------------------


@pytest.fixture(scope="module")
def trained(windows):
    """A reference model trained briefly (1 epoch on a fifth of the training period)."""
    torch.manual_seed(0)
    model = Reference(windows.n_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = windows["train"]
    n = len(train) // 5
    for x, y in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train.x[:n], train.y[:n]), batch_size=256):
        optimizer.zero_grad()
        nn.L1Loss()(model(x), y).backward()
        optimizer.step()
    return model.eval()


def test_an_honest_model_is_scored_on_the_test_windows_from_its_export(trained, windows, tmp_path, monkeypatch):
    verdict = judged(tmp_path, monkeypatch, windows=windows, forecast=(trained, windows.n_features))["forecast"]
    from jena_weather.baselines import mae_degc

    with torch.no_grad():
        own = mae_degc(windows, "test", trained(windows["test"].x).numpy())
    assert f"Test-period MAE of final_model: {own:.3f} degC" in verdict.message and verdict.flag is None


def test_a_final_model_that_keeps_state_between_calls_earns_nothing_and_is_flagged(trained, windows, tmp_path,
                                                                                 monkeypatch):
    stateful = Stateful(windows.n_features)
    stateful.load_state_dict(trained.state_dict())
    verdict = judged(tmp_path, monkeypatch, windows=windows, forecast=(stateful.eval(), windows.n_features))["forecast"]
    assert verdict.points == 0 and "called again" in verdict.message and "earlier calls" in verdict.flag


def test_a_final_model_that_cannot_be_exported_earns_nothing_and_is_told_why(trained, windows, tmp_path, monkeypatch):
    reader = PythonLists(windows.n_features)
    reader.load_state_dict(trained.state_dict())
    verdict = judged(tmp_path, monkeypatch, windows=windows, forecast=(reader, windows.n_features))["forecast"]
    assert verdict.points == 0 and "could not export the model" in verdict.message
    with pytest.raises(ExportError, match="could not export the model"):
        export_forecaster(reader, windows.n_features)  # the visible check tells the student before grading


# --- exported archives are read, never loaded ---------------------------------------------------------


def rewritten(archive: bytes, change) -> bytes:
    """The archive with models/model.json (or another member) changed by change(name, bytes) -> bytes."""
    source, out = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, change(info.filename, source.read(info.filename)))
    return out.getvalue()


def edit_json(member: str, edit):
    def change(name, data):
        if not name.endswith(member):
            return data
        document = json.loads(data)
        edit(document)
        return json.dumps(document).encode()
    return change


def test_an_archive_with_pickles_code_or_other_operations_is_refused_before_anything_runs(tmp_path):
    archive = export_forecaster(Reference(5, 8), 5)
    read_program(archive)

    def pickled(document):
        next(iter(document["config"].values()))["use_pickle"] = True

    def foreign_op(document):
        document["graph_module"]["graph"]["nodes"][-1]["target"] = "torch.ops.aten.from_file.default"

    for change, refusal in [(edit_json("model_weights_config.json", pickled), "pickle"),
                            (edit_json("models/model.json", foreign_op), "aten.from_file"),
                            (lambda name, data: data if "weight_0" not in name else data[:-4], "bytes where its shape")]:
        with pytest.raises(Refused, match=refusal):
            read_program(rewritten(archive, change))
    with pytest.raises(Refused, match="zip"):
        read_program(b"not a zip file")


def test_code_in_an_archive_never_runs(tmp_path, monkeypatch):
    """Guard code and symbolic expressions that torch's own loader would execute are never looked at."""
    canary = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(canary)!r}).write_text('x')"

    def booby_trap(document):
        document["guards_code"] = [payload]
        for value in document["graph_module"]["graph"]["sym_int_values"].values():
            value["as_expr"]["expr_str"] = payload

    archive = rewritten(export_forecaster(Reference(5, 8), 5), edit_json("models/model.json", booby_trap))
    program = read_program(archive)
    out = evaluate({"model": program}, {"x": np.zeros((3, 12, 5), np.float32)},
                   [collect_run()])
    assert out["run"].shape == (3, 1) and not canary.exists()


def collect_run():
    from grader_tests.probes import Run

    return Run("run", "model", "x", 3)


# --- odd records end in a grade, never in a grader failure ---------------------------------------------


def honest_records(tmp_path, monkeypatch, trained, windows) -> dict[str, bytes]:
    return record(tmp_path, monkeypatch, ONE_LAYER, mode=("many-to-one",), model=(Reference,), loss=(nn.L1Loss,),
                  train_one_epoch=(train_one_epoch_like(),), evaluate=(evaluate_like(),),
                  fit=(student_namespace(FIT)["fit"],), forecast=(trained, windows.n_features))


def mutations(data: bytes):
    """Ways a record's arrays can be other than the collector made them."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        original = {k: arrays[k] for k in arrays.files}
    for key in original:
        for name, value in (("dropped", None), ("text", np.array("x")), ("empty", np.zeros((0,))),
                            ("nan", np.full(original[key].shape, np.nan)), ("matrix", np.ones((2, 3)))):
            changed = {k: v for k, v in original.items() if k != key}
            if value is not None:
                changed[key] = value
            buffer = io.BytesIO()
            np.savez(buffer, **changed)
            yield f"{key} {name}", buffer.getvalue()


def test_every_odd_record_ends_in_a_verdict(trained, windows, tmp_path, monkeypatch):
    files = honest_records(tmp_path, monkeypatch, trained, windows)
    thresholds = load_thresholds()
    honest = judge_submission(tmp_path, thresholds, evaluate, windows=windows)
    assert all(v.points == cell.points for cell, v in zip(GRADED_CELLS, honest.values()) if cell.check != "forecast")
    assert "Test-period MAE" in honest[CELL_OF_CHECK["forecast"]].message  # a short training: some points
    outcomes = 0
    for cell in GRADED_CELLS:
        name = f"{cell.check}.npz"
        for what, data in [("not a zip", b"junk"), *mutations(files[name])]:
            (tmp_path / name).write_bytes(data)
            verdict = judge_submission(tmp_path, thresholds, lambda *a: {}, windows=windows)[cell.grade_id]
            assert verdict.points <= cell.points, (name, what)
            outcomes += 1
        (tmp_path / name).write_bytes(files[name])
    assert outcomes > 100
    (tmp_path / "model.npz").unlink()
    (tmp_path / "forecast.npz").unlink()
    (tmp_path / "forecast.npz").mkdir()  # a folder where a record goes
    verdicts = judge_submission(tmp_path, thresholds, evaluate, windows=windows)
    assert verdicts[CELL_OF_CHECK["model"]].points == 0 and not verdicts[CELL_OF_CHECK["model"]].recorded
    assert verdicts[CELL_OF_CHECK["forecast"]].points == 0


def test_a_kernel_whose_result_contradicts_the_record_is_flagged_either_way(trained, windows, tmp_path, monkeypatch):
    honest_records(tmp_path, monkeypatch, trained, windows)
    passed = {cell.grade_id: float(cell.points) for cell in GRADED_CELLS}
    failed_in_kernel = {**passed, CELL_OF_CHECK["mode"]: 0.0}
    verdicts = judge_submission(tmp_path, load_thresholds(), evaluate, failed_in_kernel, windows=windows)
    assert verdicts[CELL_OF_CHECK["mode"]].points == 5 and "kernel's own check failed" in verdicts[CELL_OF_CHECK["mode"]].flag
    assert not any(v.flag for gid, v in verdicts.items() if gid != CELL_OF_CHECK["mode"])

    def raising(model, loader, loss_fn):
        raise ValueError("not yet")

    record(tmp_path, monkeypatch, ONE_LAYER, evaluate=(raising,))  # the record says: could not check the code
    verdicts = judge_submission(tmp_path, load_thresholds(), evaluate, passed, windows=windows)
    assert verdicts[CELL_OF_CHECK["evaluate"]].points == 0 and "not yet" in verdicts[CELL_OF_CHECK["evaluate"]].message
    assert "kernel's own check passed" in verdicts[CELL_OF_CHECK["evaluate"]].flag
