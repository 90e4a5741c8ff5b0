"""What grading stores in the course folder, written by one process only (the one running
``jenalab grade``): the autograded notebook and evidence, the gradebook scores, the feedback page,
then the ledger, written last so that an interrupted run resumes where it stopped; and
``grades.csv``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from grader_tests.contract import ASSIGNMENT, GRADED, NOTEBOOK, NOTEBOOK_ID
from jenalab.course import autograded_dir, feedback_page, gradebook_url

LEDGER = "grading.json"
EVIDENCE = "evidence"


@dataclass
class Result:
    """One student's grading outcome, as stored in autograded/<student>/lstm_jena/grading.json."""

    student: str
    submission_sha256: str | None
    grader_version: str = ""  # fingerprint of the checks, thresholds and hidden cells that graded it
    scores: dict[str, float] = field(default_factory=dict)  # graded test cell -> points awarded
    max_scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # graded test cell -> what the student lost points for
    kernel_scores: dict[str, float | None] = field(default_factory=dict)  # as nbgrader scored them in the kernel
    flags: list[str] = field(default_factory=list)  # reasons for an instructor to look
    error: str | None = None  # why the notebook could not be graded normally (the student's doing)
    seconds: float = 0.0
    worker: str = ""
    graded_at: str = ""

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())

    @property
    def reason(self) -> str:
        position = {cell: i for i, cell in enumerate(GRADED)}
        in_notebook_order = sorted(self.messages, key=lambda cell: position.get(cell, len(position)))
        lost = [f"{cell}: {self.messages[cell]}" for cell in in_notebook_order
                if self.scores.get(cell, 0) < self.max_scores.get(cell, 0)]
        return self.error or ("; ".join(lost) if lost else "all automatic checks passed")


@dataclass
class Outcome:
    """A graded submission as a worker returns it: plain data, nothing written anywhere yet."""

    result: Result
    notebook: str | None  # the autograded notebook (None: nothing ran)
    evidence: dict[str, bytes] = field(default_factory=dict)
    feedback: str | None = None  # the student's feedback page (HTML)


def load_result(root: Path, student: str) -> Result | None:
    path = autograded_dir(root, student) / LEDGER
    return Result(**json.loads(path.read_text())) if path.is_file() else None


def record(root: Path, outcome: Outcome) -> Result:
    """Store one graded submission; the ledger comes last (its presence means: graded)."""
    result = outcome.result
    result.graded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    target = autograded_dir(root, result.student)
    page = feedback_page(root, result.student)
    for stale in (target, page.parent):
        if stale.exists():
            shutil.rmtree(stale)
    (target / EVIDENCE).mkdir(parents=True)
    for name, data in outcome.evidence.items():
        (target / EVIDENCE / name).write_bytes(data)
    if outcome.notebook is not None:  # without it (nothing ran) the submission stays in submitted/ only
        (target / NOTEBOOK).write_text(outcome.notebook)
    save_scores(gradebook_url(root), result, outcome.notebook)
    if outcome.feedback is not None:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(outcome.feedback)
    write_ledger(target, result)
    return result


def write_ledger(folder: Path, result: Result) -> None:
    part = folder / (LEDGER + ".part")
    part.write_text(json.dumps(asdict(result), indent=1, sort_keys=True))
    part.replace(folder / LEDGER)


@contextmanager
def quiet_gradebook():
    """Without nbgrader's notices about its database sessions (harmless, and many)."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SAWarning)
        yield


def save_scores(db_url: str, result: Result, notebook_text: str | None) -> None:
    """Put the trusted scores into nbgrader's gradebook; a flagged cell waits for a manual grade."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    flagged = {flag.split(":", 1)[0] for flag in result.flags}
    with quiet_gradebook(), Gradebook(db_url) as gradebook:
        gradebook.update_or_create_student(result.student)
        gradebook.update_or_create_submission(ASSIGNMENT, result.student)
        if notebook_text is not None:
            resources = {"nbgrader": {"notebook": NOTEBOOK_ID, "assignment": ASSIGNMENT, "student": result.student,
                                      "db_url": db_url}}
            SaveAutoGrades().preprocess(nbformat.reads(notebook_text, as_version=4), resources)
        for grade_id, points in result.scores.items():
            grade = gradebook.find_grade(grade_id, NOTEBOOK_ID, ASSIGNMENT, result.student)
            grade.auto_score = points
            grade.needs_manual_grade = grade.manual_score is not None or grade_id in flagged
        gradebook.db.commit()


GRADES_COLUMNS = ("student", "auto_score", "max_auto_score")


def write_grades_csv(root: Path, results: list[Result], threshold_warning: str | None = None,
                     ungraded: list = ()) -> Path:
    """grades.csv: one row per student with the points of every graded cell, flags and reasons. A
    student the grader failed on this time has no points, only the reason (an earlier grade, if any,
    was for an earlier submission or grader)."""
    path = root / "grades.csv"
    cells = list(GRADED)
    failed = {u.student: u.message for u in ungraded}
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*GRADES_COLUMNS, *cells, "flags", "reason", "threshold_warning"])
        for r in results:
            if r.student in failed:
                writer.writerow([r.student, "", r.max_total, *([""] * len(cells)), "",
                                 f"NOT GRADED (the grader failed): {failed.pop(r.student)}", threshold_warning or ""])
            else:
                writer.writerow([r.student, r.total, r.max_total, *(r.scores.get(c, 0.0) for c in cells),
                                 " | ".join(r.flags), r.reason, threshold_warning or ""])
        for student, message in failed.items():
            writer.writerow([student, "", "", *([""] * len(cells)), "", f"NOT GRADED (the grader failed): {message}",
                             threshold_warning or ""])
    return path
