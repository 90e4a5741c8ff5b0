"""One test per graded cell: passes when the trusted verdict awards the cell's full points."""

import pytest

from grader_tests.contract import GRADED_CELLS


@pytest.mark.parametrize("cell", GRADED_CELLS, ids=lambda cell: cell.grade_id)
def test_graded_cell(cell, verdicts):
    verdict = verdicts[cell.grade_id]
    print(f"{cell.grade_id}: {verdict.points:g} / {cell.points:g} {verdict.message}")
    assert verdict.points == cell.points, verdict.message
