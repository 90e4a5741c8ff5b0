"""The trusted re-check: verdicts re-derived from recorded evidence, outside the student's kernel."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from grader_tests.checks import JUDGES, CheckFailed
from grader_tests.evidence import MissingEvidence, load

# Which check each graded test cell of the notebook runs.
CHECK_OF_CELL = {
    "test_mode": "mode",
    "test_model_shapes": "model",
    "test_loss": "loss",
    "test_train_one_epoch": "train_one_epoch",
    "test_evaluate": "evaluate",
    "test_fit": "fit",
    "test_forecast": "forecast",
}


@dataclass(frozen=True)
class Verdict:
    points: float
    message: str  # for the student: why points were lost, or the figures of a partial-credit check
    evidence: bool  # whether the check left evidence (False: its cell failed before the check ran)


def judge_cell(grade_id: str, evidence_dir: Path, max_points: float) -> Verdict:
    """Judge one graded cell from its evidence; a cell without evidence earns nothing."""
    check = CHECK_OF_CELL[grade_id]
    try:
        evidence = load(evidence_dir, check)
    except MissingEvidence:
        return Verdict(0.0, "the hidden check did not run (an earlier part of the cell failed)", False)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            points = JUDGES[check](evidence)
    except CheckFailed as failure:
        return Verdict(0.0, str(failure), True)
    return Verdict(max_points if points is None else float(points), printed.getvalue().strip(), True)


def recheck(evidence_dir: Path, max_points: dict[str, float]) -> dict[str, Verdict]:
    """Verdicts for every graded test cell, keyed by grade id."""
    return {grade_id: judge_cell(grade_id, Path(evidence_dir), max_points[grade_id]) for grade_id in CHECK_OF_CELL}
