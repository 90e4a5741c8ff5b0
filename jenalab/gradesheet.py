"""The class's grades as they stand: automatic points, points given by hand, late penalty and total.

Read from nbgrader's gradebook, where grading stores the automatic points and the formgrader the
points given by hand, and from the ledgers beside the graded notebooks (flags, reasons). Every
student of the roster (the gradebook's students) and every submission has a row, the ones who did
not submit too. The late penalty is computed from the score as it stands (`jenalab.deadlines`) and
written back to the gradebook, so nbgrader's own pages agree with the report and the export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, GRADED, MANUAL_POINTS, NOTEBOOK_ID, WRITTEN_ANSWERS
from jenalab.course import course_config, gradebook_url, quiet_gradebook, students_of, submission_path
from jenalab.deadlines import late_plugin, submission_time
from jenalab.store import load_result

MISSING, NOT_GRADED, PENDING, COMPLETE = "missing", "not graded", "hand grading pending", "complete"


@dataclass
class Standing:
    student: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""
    status: str = MISSING
    automatic: float | None = None  # the graded test cells (a score given by hand instead counts)
    by_hand: float = 0.0  # written answers graded so far
    answers_graded: int = 0
    answers: int = len(WRITTEN_ANSWERS)
    submitted_at: dt.datetime | None = None  # naive UTC
    due: dt.datetime | None = None  # with the student's extension
    seconds_late: float = 0.0
    penalty: float = 0.0
    flags: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def total(self) -> float | None:
        return None if self.automatic is None else round(self.automatic + self.by_hand - self.penalty, 2)

    @property
    def name(self) -> str:
        return " ".join(filter(None, (self.first_name, self.last_name)))


def standings(root: Path) -> list[Standing]:
    """One row per student of the roster or with a submission, sorted by student id; late penalties brought up to date
    in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    plugin = late_plugin(course_config(root))
    rows = []
    with quiet_gradebook(), Gradebook(gradebook_url(root)) as gradebook:
        try:
            due = gradebook.find_assignment(ASSIGNMENT).duedate
        except MissingEntry:
            due = None
        roster = {s.id: s for s in gradebook.students}
        for student in sorted(set(roster) | set(students_of(root))):
            person = roster.get(student)
            row = Standing(student, *(getattr(person, key, None) or "" for key in
                                      ("first_name", "last_name", "email", "lms_user_id")), due=due)
            row.submitted_at = submission_time(root, student)
            ledger = load_result(root, student)
            if not submission_path(root, student).is_file():
                row.status = MISSING
            elif ledger is None:
                row.status, row.reason = NOT_GRADED, "not graded yet, or the grader failed (see grades.csv)"
            else:
                row.flags, row.reason = ledger.flags, ledger.reason
                notebook = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student)
                row.automatic, row.by_hand, answered = points(notebook.grades)
                row.answers_graded = len(answered)
                submission = notebook.assignment
                row.due = submission.duedate
                row.seconds_late = submission.total_seconds_late
                if row.seconds_late > 0:
                    score = row.automatic + row.by_hand
                    row.penalty = round(min(score, max(0.0, plugin.late_submission_penalty(student, score, row.seconds_late)
                                                       or 0.0)), 2)
                if notebook.late_submission_penalty != row.penalty:
                    notebook.late_submission_penalty = row.penalty
                    gradebook.db.commit()
                row.status = PENDING if row.answers_graded < row.answers else COMPLETE
            rows.append(row)
    return rows


def points(grades) -> tuple[float, float, set[str]]:
    """From nbgrader's grades of one submitted notebook: the automatic points, the points given by hand and the written
    answers graded so far (a score given by hand to a graded test cell counts as its automatic points)."""
    automatic = sum(grade.score for grade in grades if grade.name in GRADED)
    answered = {grade.name: grade.score for grade in grades if grade.name in WRITTEN_ANSWERS and grade.manual_score is not None}
    return round(automatic, 2), round(sum(answered.values()), 2), set(answered)


MAX_TOTAL = AUTO_POINTS + MANUAL_POINTS
