"""`jenalab export`: the final grades as an LMS takes them.

Two files in ``exports/``:

* ``lstm_jena_grades.csv``: one row per student of the roster and per submission: automatic points
  (of 80), points given by hand (of 20) and how many written answers are graded, the late penalty,
  the total (of 100), when it was submitted and due, and the status (missing, not graded, hand
  grading pending, complete);
* ``lstm_jena_canvas.csv``: Canvas's gradebook import layout (Student, ID, SIS User ID, SIS Login ID,
  Section, then the assignment's column, after a "Points Possible" row). Given Canvas's own
  gradebook export (``--canvas gradebook.csv``), its rows and columns are kept and only the
  assignment's column is filled; otherwise the rows come from nbgrader's roster. A student without a
  submission gets 0; a submission that is not graded yet or waits for hand grading is left empty
  (Canvas keeps what it had) and is listed, so that nothing incomplete is imported by mistake.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, MANUAL_POINTS
from jenalab.course import CourseError
from jenalab.gradesheet import COMPLETE, MAX_TOTAL, MISSING, Standing, standings

GENERIC = ("student", "first_name", "last_name", "email", "lms_user_id", "status", f"automatic_of_{AUTO_POINTS:g}",
           f"by_hand_of_{MANUAL_POINTS:g}", "answers_graded", "late_penalty", f"total_of_{MAX_TOTAL:g}", "submitted_at_utc",
           "due_utc", "hours_late", "flags")
CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


@dataclass
class Export:
    generic: Path
    canvas: Path
    left_empty: list[str] = field(default_factory=list)  # students whose Canvas cell stays empty, with why
    not_in_canvas: list[str] = field(default_factory=list)  # our students with no row in the Canvas file


def _time(value) -> str:
    return value.isoformat(sep=" ", timespec="minutes") if value else ""


def _canvas_score(row: Standing) -> str | None:
    if row.status == MISSING:
        return "0"
    if row.status == COMPLETE:
        return f"{row.total:g}"
    return None


def export(root: Path, canvas_file: Path | None = None, column: str | None = None) -> Export:
    rows = standings(root)
    folder = root / "exports"
    folder.mkdir(exist_ok=True)
    done = Export(folder / f"{ASSIGNMENT}_grades.csv", folder / f"{ASSIGNMENT}_canvas.csv")
    with open(done.generic, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(GENERIC)
        for r in rows:
            writer.writerow([r.student, r.first_name, r.last_name, r.email, r.lms_user_id, r.status,
                             "" if r.automatic is None else f"{r.automatic:g}", f"{r.by_hand:g}",
                             f"{r.answers_graded}/{r.answers}", f"{r.penalty:g}", "" if r.total is None else f"{r.total:g}",
                             _time(r.submitted_at), _time(r.due), f"{r.seconds_late / 3600:.1f}" if r.seconds_late else "",
                             " | ".join(r.flags)])
    by_student = {r.student: r for r in rows}
    if canvas_file is None:
        header = [*CANVAS, column or ASSIGNMENT]
        table = [["Points Possible", "", "", "", "", f"{MAX_TOTAL:g}"]]
        table += [[f"{r.last_name}, {r.first_name}".strip(", ") or r.student, r.lms_user_id, "", r.student, ""]
                  + [""] for r in rows]
        matched = {r.student: i + 1 for i, r in enumerate(rows)}
    else:
        header, table, matched = _canvas_rows(canvas_file, column, rows)
        done.not_in_canvas = sorted(set(by_student) - set(matched))
    target = header.index(column or ASSIGNMENT) if canvas_file is not None else len(header) - 1
    for student, index in matched.items():
        score = _canvas_score(by_student[student])
        if score is None:
            done.left_empty.append(f"{student}: {by_student[student].status}")
        else:
            table[index][target] = score
    with open(done.canvas, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(table)
    return done


def _canvas_rows(path: Path, column: str | None, rows: list[Standing]):
    """Canvas's own export: its header, its rows (the assignment's column found or added) and which row is whose."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        table = list(csv.reader(fh))
    if not table or table[0][:len(CANVAS)] != list(CANVAS):
        raise CourseError(f"{path} is not a Canvas gradebook export: its first columns should be {', '.join(CANVAS)}")
    header, body = table[0], table[1:]
    name = column or next((h for h in header if h.split(" (")[0] == ASSIGNMENT), None)
    if name is None:
        raise CourseError(f"{path} has no column for {ASSIGNMENT}: give the column's header with --canvas-column "
                         "(as Canvas writes it, for example 'LSTM lab (123456)')")
    if name not in header:
        header.append(name)
        for line in body:
            line.append("")
    for line in body:
        line.extend([""] * (len(header) - len(line)))
    keys = {}
    for r in rows:
        for key in (("login", r.student), ("id", r.lms_user_id), ("name", f"{r.last_name}, {r.first_name}".lower())):
            if key[1] and key[1] != ", ":
                keys.setdefault(key, r.student)
    matched = {}
    for i, line in enumerate(body):
        for key in (("login", line[3]), ("id", line[1]), ("name", line[0].lower())):
            if key in keys and keys[key] not in matched:
                matched[keys[key]] = i
                break
    return header, body, matched
