"""The instructor notebook, its student release, and nbgrader's view of both.

The source notebook is executed for real (nbclient, ipykernel) on the offline data, and the
forecast of its final_model is scored outside the notebook by library code.
"""

import re
import shutil
import time

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from jenalab.baselines import mae_degc, persistence
from grader_tests.corpus import scratch_course
from jenalab.course import ASSIGNMENT, COURSE_ROOT, NOTEBOOK, generate_release, run_nbgrader

SOURCE = COURSE_ROOT / "source" / ASSIGNMENT / NOTEBOOK
RELEASE = COURSE_ROOT / "release" / ASSIGNMENT / NOTEBOOK
MAE_BOUND_DEGC = 0.75  # required of the reference solution's final_model on the test period
CONTRACT_SOLUTIONS = {"mode_answer", "model_definition", "loss_selection", "training_loop", "final_model"}
MANUAL_ANSWERS = {"answer_cross_entropy", "answer_vanishing", "answer_gates", "answer_hyperparameters"}
TESTS = {"test_mode": 5, "test_model_shapes": 15, "test_loss": 10, "test_train_one_epoch": 10, "test_evaluate": 4,
         "test_fit": 6, "test_forecast": 30}


def _nbgrader_cells(path):
    notebook = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in notebook.cells if "nbgrader" in c.metadata}


# --- structure and release ---------------------------------------------------------------


def test_source_follows_the_student_contract():
    cells = _nbgrader_cells(SOURCE)
    solutions = {gid for gid, c in cells.items() if c.metadata.nbgrader.get("solution") and c.cell_type == "code"}
    assert solutions == CONTRACT_SOLUTIONS
    manual = {gid for gid, c in cells.items() if c.cell_type == "markdown" and c.metadata.nbgrader.get("grade")}
    assert manual == MANUAL_ANSWERS
    tests = {gid: c.metadata.nbgrader["points"] for gid, c in cells.items()
             if c.cell_type == "code" and c.metadata.nbgrader.get("grade")}
    assert tests == TESTS and sum(tests.values()) == 80
    assert sum(cells[g].metadata.nbgrader["points"] for g in MANUAL_ANSWERS) == 20
    for gid in TESTS:
        assert cells[gid].metadata.nbgrader["locked"], f"{gid} must be read-only"
        assert "### BEGIN HIDDEN TESTS" in cells[gid].source and "grader_tests.checks" in cells[gid].source
    for gid in CONTRACT_SOLUTIONS:
        assert "### BEGIN SOLUTION" in cells[gid].source and "# Hint:" in cells[gid].source, f"{gid} needs a hint"
    assert cells["setup_imports"].metadata.nbgrader["locked"] and cells["load_data"].metadata.nbgrader["locked"]


def test_source_is_committed_without_outputs():
    notebook = nbformat.read(SOURCE, as_version=4)
    dirty = [c.id for c in notebook.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"clear the outputs of {dirty} before committing (they would change the release)"


@pytest.fixture(scope="module")
def regenerated_release(tmp_path_factory):
    """The release regenerated from the committed source in a scratch course directory."""
    return scratch_course(tmp_path_factory.mktemp("course")) / "release" / ASSIGNMENT / NOTEBOOK


def test_release_is_in_sync_and_reproducible(regenerated_release):
    fresh, committed = regenerated_release.parent, RELEASE.parent
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in committed.iterdir())
    for path in fresh.iterdir():
        assert path.read_bytes() == (committed / path.name).read_bytes(), (
            f"release/{ASSIGNMENT}/{path.name} is out of date with source/: run `make release` and commit release/"
        )
    first = regenerated_release.read_bytes()
    generate_release(regenerated_release.parents[2])
    assert regenerated_release.read_bytes() == first, "generating the release twice must give the same bytes"


SECRET_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n.*?### END (SOLUTION|HIDDEN TESTS)", flags=re.S)


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) > 8}


def test_release_contains_no_solution_and_no_hidden_test():
    secret, elsewhere = set(), set()
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            secret |= _lines(cell.source)  # a model answer to a written question
            continue
        for region in SECRET_REGION.finditer(cell.source):
            secret |= _lines(region.group(0))
        elsewhere |= _lines(SECRET_REGION.sub("", cell.source))
    secret -= elsewhere  # a line that also stands outside the secret regions may stay
    assert len(secret) > 40, "the leak check must see the solutions it guards"
    release = nbformat.read(RELEASE, as_version=4)
    released = set().union(*(_lines(cell.source) for cell in release.cells))
    leaked = sorted(secret & released)
    assert not leaked, f"solution or hidden-test lines in the release: {leaked[:5]}"
    text = RELEASE.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "grader_tests"):
        assert marker not in text, f"{marker!r} appears in the release"


# --- execution -----------------------------------------------------------------------------


def _execute(path, tmp_path, extra_cell: str | None = None, allow_errors: bool = False):
    notebook = nbformat.read(path, as_version=4)
    if extra_cell:
        notebook.cells.append(nbformat.v4.new_code_cell(extra_cell))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - start


@pytest.fixture(scope="module")
def executed_source(tmp_path_factory):
    """The instructor notebook run top to bottom; its final_model's test forecasts saved as a plain array."""
    work = tmp_path_factory.mktemp("source_run")
    evidence = work / "test_predictions.npy"
    save = (
        "from jenalab.pipeline import build_windows as _build\n"
        "final_model.eval()\n"
        "with torch.no_grad():\n"
        f"    np.save({str(evidence)!r}, final_model(_build()['test'].x).numpy())\n"
    )
    notebook, seconds = _execute(SOURCE, work, extra_cell=save)
    print(f"source notebook executed in {seconds:.1f} s")
    return notebook, np.load(evidence, allow_pickle=False)


def test_source_notebook_runs_top_to_bottom(executed_source):
    notebook, _ = executed_source
    outputs = {c.id: c.outputs for c in notebook.cells if c.cell_type == "code"}
    text = {cid: "".join(o.get("text", "") for o in outs) for cid, outs in outputs.items()}
    assert "shapes OK" in text["test_model_shapes"] and "loss OK" in text["test_loss"]
    assert "fit OK" in text["test_fit"] and "final_model OK" in text["test_forecast"]
    points = [o for o in outputs["test_forecast"] if o.output_type == "execute_result"]
    assert points and float(points[0].data["text/plain"]) == 30.0
    assert not any(o.output_type == "stream" and o.name == "stderr" for gid in TESTS for o in outputs[gid]), (
        "nbgrader gives zero points to a test cell that writes to stderr"
    )


def test_final_model_beats_the_bound_on_the_test_period(executed_source, windows):
    _, predictions = executed_source
    mae = mae_degc(windows, "test", predictions)
    print(f"final_model test MAE {mae:.3f} degC (persistence {mae_degc(windows, 'test', persistence(windows, 'test')):.3f})")
    assert mae <= MAE_BOUND_DEGC


def test_release_runs_without_killing_the_kernel(tmp_path):
    notebook, _ = _execute(RELEASE, tmp_path, extra_cell="print('kernel alive')", allow_errors=True)
    assert "kernel alive" in notebook.cells[-1].outputs[0]["text"]
    errors = {c.metadata.get("nbgrader", {}).get("grade_id", c.id): o.ename for c in notebook.cells
              if c.cell_type == "code" for o in c.outputs if o.output_type == "error"}
    stubs_called = {"mode_answer", "final_model", "test_model_shapes", "test_loss", "test_train_one_epoch"}
    assert {gid for gid, name in errors.items() if name == "NotImplementedError"} >= stubs_called
    assert set(errors.values()) <= {"NotImplementedError", "NameError"}, errors
    assert "load_data" not in errors and "setup_imports" not in errors


# --- nbgrader validate ---------------------------------------------------------------------


def _validate(path, tmp_path) -> str:
    """`nbgrader validate` as a student runs it: in the assignment folder, with the config shipped there."""
    shutil.copy(path, tmp_path / NOTEBOOK)
    shutil.copy(path.with_name("nbgrader_config.py"), tmp_path)
    return run_nbgrader("validate", NOTEBOOK, root=tmp_path)


def test_nbgrader_validate_passes_on_the_source(tmp_path):
    assert "Success! Your notebook passes all the tests." in _validate(SOURCE, tmp_path)


def test_nbgrader_validate_fails_every_graded_cell_of_the_release(tmp_path):
    log = _validate(RELEASE, tmp_path)
    failed = len(TESTS) + len(MANUAL_ANSWERS)
    assert f"VALIDATION FAILED ON {failed} CELL(S)" in log, log[-2000:]
