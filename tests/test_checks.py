"""The training-loop checks on their own, in this process: collect evidence from small student-like
functions, store and reload it as the trusted re-check does, and judge it. The whole corpus runs
the same checks inside real notebooks (tests/test_grading.py); these cases pin the edge cases fast."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from grader_tests import checks
from grader_tests.evidence import ENV_EVIDENCE_DIR, load


def train_one_epoch_like(*, zero_grad=True, backward=True, step=True, clip=None):
    """A student's train_one_epoch, with one step left out or a gradient clipping added."""
    def train_one_epoch(model, loader, loss_fn, optimizer):
        model.train()
        total = 0.0
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
            total += loss.item() * len(x)
        return total / len(loader.dataset)
    return train_one_epoch


def judged(check, student_code, tmp_path, monkeypatch):
    """Run a check's collector, reload its evidence from disk (no pickles) and judge it."""
    monkeypatch.setenv(ENV_EVIDENCE_DIR, str(tmp_path))
    getattr(checks, f"check_{check}")(student_code)
    return checks.JUDGES[check](load(tmp_path, check))


@pytest.mark.parametrize("clip", [None, lambda p: nn.utils.clip_grad_norm_(p, max_norm=1.0),
                                  lambda p: nn.utils.clip_grad_value_(p, clip_value=0.5)],
                         ids=["plain", "norm_clipping", "value_clipping"])
def test_a_correct_train_one_epoch_passes_with_or_without_clipping(clip, tmp_path, monkeypatch):
    judged("train_one_epoch", train_one_epoch_like(clip=clip), tmp_path, monkeypatch)


@pytest.mark.parametrize("mistake, hint", [
    (dict(zero_grad=False), "Did you call optimizer.zero_grad() before loss.backward()?"),
    (dict(zero_grad=False, clip=lambda p: nn.utils.clip_grad_value_(p, clip_value=0.5)), "optimizer.zero_grad()"),
    (dict(backward=False), "Did you call loss.backward()?"),
    (dict(step=False), "should call optimizer.step() once per batch (4 batches); it was called 0 times"),
], ids=["no_zero_grad", "no_zero_grad_value_clipped", "no_backward", "no_step"])
def test_a_broken_train_one_epoch_gets_the_specific_hint(mistake, hint, tmp_path, monkeypatch):
    with pytest.raises(checks.CheckFailed, match=hint.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        judged("train_one_epoch", train_one_epoch_like(**mistake), tmp_path, monkeypatch)


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


def student_namespace(source: str) -> dict:
    """The functions of a training-loop cell, defined in a namespace of their own like a notebook's."""
    namespace = {"math": math, "torch": torch}
    exec(source, namespace)
    return namespace


def test_fit_is_graded_on_its_own_logic_and_the_namespace_is_restored(tmp_path, monkeypatch):
    namespace = student_namespace(FIT)
    unfinished = namespace["train_one_epoch"]
    judged("fit", namespace["fit"], tmp_path, monkeypatch)  # passes although train_one_epoch is unfinished
    assert namespace["train_one_epoch"] is unfinished and "evaluate" not in namespace


def test_a_fit_that_keeps_the_last_weights_still_fails(tmp_path, monkeypatch):
    namespace = student_namespace(FIT.replace("        model.load_state_dict(best_state)", "        pass"))
    with pytest.raises(checks.CheckFailed, match="restore the weights of the best epoch"):
        judged("fit", namespace["fit"], tmp_path, monkeypatch)


# --- the model: every hour reaches the forecast through the LSTM ------------------------------------


class Reference(nn.Module):
    def __init__(self, n_features, hidden_size=64, num_layers=1, batch_first=True, dropout=0.0):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=batch_first,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class TimeMajor(Reference):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers, batch_first=False)

    def forward(self, x):
        out, _ = self.lstm(x.permute(1, 0, 2))
        return self.head(out[-1])


class LastHidden(Reference):
    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


class Dropout(Reference):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__(n_features, hidden_size, num_layers, dropout=0.3)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(hidden_size, 1))


class LastHourOnly(nn.Module):
    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(n_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        return self.head(x[:, -1])


class LstmTimesZero(Reference):
    """The LSTM's output enters the forecast times zero; the forecast sums the inputs directly."""

    def forward(self, x):
        out, _ = self.lstm(x)
        return 0 * self.head(out[:, -1]) + x.sum(dim=(1, 2)).unsqueeze(1)


@pytest.mark.parametrize("model_class", [Reference, TimeMajor, LastHidden, Dropout],
                         ids=["reference", "time_major_permute", "h_n_last_layer", "dropout_single_linear"])
def test_legitimate_models_pass_the_model_check(model_class, tmp_path, monkeypatch):
    judged("model", model_class, tmp_path, monkeypatch)


@pytest.mark.parametrize("model_class, hint", [
    (LastHourOnly, "Changing the first hours of the input does not change the forecast"),
    (LstmTimesZero, "no gradient reaches them"),
], ids=["last_hour_mlp", "lstm_multiplied_by_zero"])
def test_a_model_that_bypasses_its_lstm_loses_the_model_points(model_class, hint, tmp_path, monkeypatch):
    with pytest.raises(checks.CheckFailed, match=hint):
        judged("model", model_class, tmp_path, monkeypatch)


# --- the forecast: each forecast a function of its own window --------------------------------------


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


class BatchLookup(nn.Module):
    """Answers a window with the last temperature of the batch's window that starts two hours later."""

    def __init__(self, honest, t_index):
        super().__init__()
        self.honest, self.t = honest, t_index

    def forward(self, x):
        honest = self.honest(x)
        later = {w[9].numpy().tobytes(): float(w[-1, self.t]) for w in x}
        return torch.tensor([[later.get(w[-1].numpy().tobytes(), float(h))] for w, h in zip(x, honest)])


class Memo(BatchLookup):
    """Remembers every window across calls and repeats its first answer for a window seen before."""

    def __init__(self, honest, t_index):
        super().__init__(honest, t_index)
        self.later, self.answered = {}, {}

    def forward(self, x):
        honest = self.honest(x)
        for w in x:
            self.later[w[9].numpy().tobytes()] = float(w[-1, self.t])
        for w, h in zip(x, honest):
            self.answered.setdefault(w.numpy().tobytes(), self.later.get(w[-1].numpy().tobytes(), float(h)))
        return torch.tensor([[self.answered[w.numpy().tobytes()]] for w in x])


def test_an_honest_model_is_scored_from_its_forecasts(trained, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_EVIDENCE_DIR, str(tmp_path))
    checks.forecast_points(trained)
    verdict = checks.judge_forecast(load(tmp_path, "forecast"))
    assert verdict.flag is None and "Test-period MAE of final_model" in verdict.message
    evidence = load(tmp_path, "forecast")
    assert abs(evidence["predictions"] - evidence["predictions_again"]).max() < checks.CONSISTENCY_TOLERANCE / 10


@pytest.mark.parametrize("cheat", [BatchLookup, Memo], ids=["lookup_in_the_batch", "memory_across_calls"])
def test_a_forecast_that_looks_at_other_windows_earns_nothing_and_is_flagged(cheat, trained, windows, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv(ENV_EVIDENCE_DIR, str(tmp_path))
    with pytest.raises(checks.CheckFailed, match="must depend on its own window only"):
        checks.forecast_points(cheat(trained, windows.target_index))  # judged in this process
    with pytest.raises(checks.CheckFailed, match="must depend on its own window only") as failure:
        checks.judge_forecast(load(tmp_path, "forecast"))  # and again from the recorded evidence
    assert "forecast depends on other windows or earlier calls" in failure.value.flag


def test_shuffled_forecasts_are_put_back_in_time_order_and_implausible_ones_flagged(windows):
    from grader_tests.thresholds import load_thresholds

    truth = windows["test"].y.numpy().astype(np.float64)
    order = np.random.default_rng(0).permutation(len(truth))
    evidence = {"predictions": truth[order], "predictions_again": truth[order], "order": order}
    verdict = checks.judge_forecast(evidence)
    assert verdict.fraction == 1.0 and "MAE of final_model: 0.000 degC" in verdict.message
    assert verdict.flag and verdict.flag.startswith("implausibly good forecast")
    assert load_thresholds()["implausible_below"] < load_thresholds()["reference"]["min"]
    unshuffled = checks.judge_forecast(dict(evidence, order=None))
    assert unshuffled.fraction == 0.0  # read in the wrong order the same forecasts are worthless
