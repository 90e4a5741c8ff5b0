"""The notebook contract: the only place that names the assignment's cells and their points.

A test compares this table with the instructor notebook's nbgrader metadata; the grader, the
verdicts, calibration and the corpus read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

ASSIGNMENT = "lstm_jena"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
NOTEBOOK_ID = ASSIGNMENT  # nbgrader names a notebook by its file name without .ipynb


@dataclass(frozen=True)
class GradedCell:
    """A locked test cell that holds only its hidden check (no code a student's functions could run in
    after the check recorded its evidence), followed by a locked, ungraded cell of visible checks."""

    grade_id: str  # the graded test cell
    check: str  # its collector is grader_tests.collect.collect_<check>; its record is <check>.npz
    points: float
    solution: str  # the solution cell whose work it grades
    visible: str  # the locked cell right after it: the checks students see and run themselves


GRADED_CELLS = (
    GradedCell("test_mode", "mode", 5, "mode_answer", "check_mode"),
    GradedCell("test_model_shapes", "model", 15, "model_definition", "check_model_shapes"),
    GradedCell("test_loss", "loss", 10, "loss_selection", "check_loss"),
    GradedCell("test_train_one_epoch", "train_one_epoch", 10, "training_loop", "check_train_one_epoch"),
    GradedCell("test_evaluate", "evaluate", 4, "training_loop", "check_evaluate"),
    GradedCell("test_fit", "fit", 6, "training_loop", "check_fit"),
    GradedCell("test_forecast", "forecast", 30, "final_model", "check_forecast"),
)
GRADED = {cell.grade_id: cell for cell in GRADED_CELLS}
POINTS_OF_CHECK = {cell.check: cell.points for cell in GRADED_CELLS}
CELL_OF_CHECK = {cell.check: cell.grade_id for cell in GRADED_CELLS}

# Solution cells and the names each must define (the student contract).
SOLUTION_CELLS = {
    "mode_answer": ("MODE",),
    "model_definition": ("WeatherLSTM",),
    "loss_selection": ("choose_loss",),
    "training_loop": ("train_one_epoch", "evaluate", "fit"),
    "final_model": ("final_model",),
}
# Written answers, graded by hand.
WRITTEN_ANSWERS = {"answer_cross_entropy": 5, "answer_vanishing": 5, "answer_gates": 5, "answer_hyperparameters": 5}
# Provided cells every later cell relies on (locked, identical for students and graders).
PROVIDED_CELLS = ("setup_imports", "load_data", "small_problem", "forecast_helper")

AUTO_POINTS = sum(cell.points for cell in GRADED_CELLS)
MANUAL_POINTS = sum(WRITTEN_ANSWERS.values())
