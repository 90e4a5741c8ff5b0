"""One test per graded cell: passes when the trusted re-check awards the cell's full points."""

import nbformat
import pytest

from grader_tests.recheck import CHECK_OF_CELL, judge_cell
from jenalab.course import ASSIGNMENT, COURSE_ROOT, NOTEBOOK

SOURCE = nbformat.read(COURSE_ROOT / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
POINTS = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in SOURCE.cells
          if c.metadata.get("nbgrader", {}).get("grade_id") in CHECK_OF_CELL}


@pytest.mark.parametrize("grade_id", list(CHECK_OF_CELL))
def test_graded_cell(grade_id, evidence_dir):
    verdict = judge_cell(grade_id, evidence_dir, POINTS[grade_id])
    print(f"{grade_id}: {verdict.points:g} / {POINTS[grade_id]} {verdict.message}")
    assert verdict.points == POINTS[grade_id], verdict.message
