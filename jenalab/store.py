"""What grading stores in the course folder, written by one process only (the one running
``jenalab grade``): the autograded notebook and evidence, the gradebook scores, the feedback page,
then the ledger, written last so that an interrupted run resumes where it stopped; and
``grades.csv``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import nbformat

from grader_tests.contract import ASSIGNMENT, GRADED, NOTEBOOK, NOTEBOOK_ID
from jenalab.results import Outcome, Result
from jenalab.course import autograded_dir, feedback_page, gradebook_url, quiet_gradebook
from jenalab.deadlines import submission_time

LEDGER = "grading.json"
EVIDENCE = "evidence"


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
    save_scores(gradebook_url(root), result, outcome.notebook, submission_time(root, result.student))
    if outcome.feedback is not None:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(outcome.feedback)
    write_ledger(target, result)
    return result


def write_ledger(folder: Path, result: Result) -> None:
    part = folder / (LEDGER + ".part")
    part.write_text(json.dumps(asdict(result), indent=1, sort_keys=True))
    part.replace(folder / LEDGER)


def save_scores(db_url: str, result: Result, notebook_text: str | None, submitted_at=None) -> None:
    """Put the trusted scores into nbgrader's gradebook, and the submission time when known; a flagged cell waits
    for a manual grade."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    flagged = {flag.split(":", 1)[0] for flag in result.flags}
    with quiet_gradebook(), Gradebook(db_url) as gradebook:
        gradebook.update_or_create_student(result.student)
        gradebook.update_or_create_submission(ASSIGNMENT, result.student,
                                              **({"timestamp": submitted_at} if submitted_at else {}))
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
