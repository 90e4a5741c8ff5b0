"""The training-loop checks on their own, in this process: collect evidence from small student-like
functions, store and reload it as the trusted re-check does, and judge it. The whole corpus runs
the same checks inside real notebooks (tests/test_grading.py); these cases pin the edge cases fast."""

import math

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
