"""The trusted re-check: verdicts re-derived from recorded evidence, outside the student's kernel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader_tests.checks import JUDGES, CheckFailed, Partial
from grader_tests.contract import GRADED_CELLS
from grader_tests.evidence import MalformedEvidence, MissingEvidence, load

FORECAST_ORDER = "forecast_order.npy"  # written by the grader beside the evidence: test window of each forecast


@dataclass(frozen=True)
class Verdict:
    points: float
    message: str  # for the student: why points were lost, or the figures of a partial-credit check
    evidence: bool  # whether the check left evidence (False: its cell failed before the check ran)
    flag: str | None = None  # for the instructor: why this submission deserves a look


def judge_cell(grade_id: str, evidence_dir: Path, max_points: float, thresholds: dict | None = None) -> Verdict:
    """Judge one graded cell from its evidence; a cell without evidence earns nothing."""
    check = next(cell.check for cell in GRADED_CELLS if cell.grade_id == grade_id)
    try:
        evidence = load(evidence_dir, check)
        if check == "forecast":
            order = Path(evidence_dir) / FORECAST_ORDER
            evidence["order"] = np.load(order, allow_pickle=False) if order.is_file() else None
            outcome = JUDGES[check](evidence, thresholds)
        else:
            outcome = JUDGES[check](evidence)
    except MissingEvidence:
        return Verdict(0.0, "the hidden check did not run (an earlier part of the cell failed)", False)
    except CheckFailed as failure:
        return Verdict(0.0, str(failure), True, failure.flag)
    except (MalformedEvidence, KeyError) as err:
        # Unreadable, or without what the check records: someone else wrote it. (Any other error of a
        # judge is the grader's and leaves the submission ungraded.)
        return Verdict(0.0, "the hidden check's record is unreadable, so this cell earns nothing", True,
                       f"malformed evidence for {check} ({type(err).__name__}: {str(err)[:200]}): written by the notebook?")
    if isinstance(outcome, Partial):
        return Verdict(round(max_points * outcome.fraction, 2), outcome.message, True, outcome.flag)
    return Verdict(float(max_points), "", True)


def recheck(evidence_dir: Path, thresholds: dict | None = None) -> dict[str, Verdict]:
    """Verdicts for every graded test cell, keyed by grade id."""
    return {cell.grade_id: judge_cell(cell.grade_id, Path(evidence_dir), cell.points, thresholds) for cell in GRADED_CELLS}
