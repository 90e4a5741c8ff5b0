"""One test per graded cell: passes when the trusted re-check awards the cell's full points."""

import pytest

from grader_tests.contract import GRADED_CELLS
from grader_tests.recheck import judge_cell


@pytest.mark.parametrize("cell", GRADED_CELLS, ids=lambda cell: cell.grade_id)
def test_graded_cell(cell, evidence_dir):
    verdict = judge_cell(cell.grade_id, evidence_dir, cell.points)
    print(f"{cell.grade_id}: {verdict.points:g} / {cell.points:g} {verdict.message}")
    assert verdict.points == cell.points, verdict.message
