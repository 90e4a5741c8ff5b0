"""The instructor notebook: its contract with the grader, its visible checks, and a real run.

grader_tests/contract.py is the only table of the graded cells, their points and the checks that
grade them; these tests compare it with the notebook's nbgrader metadata and take every id and
point from it. A graded cell holds only its hidden check; the checks students see live in the
locked, ungraded cell right after it (the contract's `visible` cell), so no student code runs in a
graded cell after its hidden check recorded the evidence. The visible checks are run against
mistaken submissions of the corpus (grader_tests/submissions/, one test per mistake), and the
source notebook is executed for real (nbclient, ipykernel, one compute thread as in grading) on
the offline data.

Helpers used by test_release.py and test_browser.py live here too.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from grader_tests.contract import (
    AUTO_POINTS, GRADED, GRADED_CELLS, MANUAL_POINTS, PROVIDED_CELLS, SOLUTION_CELLS, WRITTEN_ANSWERS,
)
from jena_weather.baselines import mae_degc, persistence
from jena_weather.pipeline import SPLITS, build_windows
from jenalab.corpus import Submission, build_notebook, parse
from jenalab.course import release_notebook, run_nbgrader, solved_cells, source_notebook

ROOT = Path(__file__).resolve().parents[1]
SOURCE = source_notebook(ROOT)
RELEASE = release_notebook(ROOT)
CORPUS = ROOT / "grader_tests" / "submissions"
THRESHOLDS = ROOT / "grader_tests" / "thresholds.json"
MAE_BOUND_DEGC = 0.75  # required of the reference solution's final_model on the test period
CELL_OF_CHECK = {cell.check: cell.grade_id for cell in GRADED_CELLS}
VISIBLE_OF_CHECK = {cell.check: cell.visible for cell in GRADED_CELLS}
VISIBLE = {cell.visible: cell for cell in GRADED_CELLS}  # the locked, ungraded cells of visible checks
SHOULD_PRINT = re.compile(r"\(should print: (.+?)\)\.?\"\"\"")
# A graded cell: a one-line comment for students (a comment, so that the cell shows no output), then
# the hidden block, and nothing else.
GRADED_SOURCE = re.compile(r'(?P<doc># [^\n]+)\n### BEGIN HIDDEN TESTS\n(?P<hidden>.*?)\n### END HIDDEN TESTS\n?', flags=re.S)
SUMMARY = re.compile(r"^\s+train\s+\d+ hourly rows ->\s+\d+ windows.*\n\s+val\s+\d+ hourly rows ->\s+\d+ windows.*\n"
                     r"\s+test\s+.*kept for grading", flags=re.M)
BAR_LINE = re.compile(r"^VALIDATION_BAR = (?P<value>[0-9.]+)$", flags=re.M)


# --- helpers (also used by test_release.py and test_browser.py) -------------------------------


def nbgrader_cells(path: Path) -> dict[str, nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in notebook.cells if "nbgrader" in c.metadata}


def kernel_env(**extra: str) -> dict[str, str]:
    """The environment of a test kernel: one compute thread, as when the notebook is graded."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def execute(notebook: nbformat.NotebookNode, workdir: Path, kernel: str = "python3", allow_errors: bool = False,
            env: dict | None = None) -> float:
    """Run a notebook in place (nbclient, working directory `workdir`); return the seconds it took."""
    client = NotebookClient(notebook, timeout=600, kernel_name=kernel, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute(env=env or kernel_env())
    return time.perf_counter() - start


def cell_text(cell) -> str:
    """Everything a code cell printed (stdout and stderr) and its plain-text results."""
    return "".join(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


def errors(notebook) -> dict[str, str]:
    """'ename: evalue' of every cell with an error output, by cell id."""
    return {c.id: f"{o.ename}: {o.evalue}" for c in notebook.cells if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"}


def stderr_in_graded_cells(notebook) -> list[str]:
    """nbgrader gives zero points to a test cell that writes to stderr."""
    return [c.id for c in notebook.cells if c.id in GRADED and c.cell_type == "code"
            for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]


def expected_prints(notebook) -> dict[str, str]:
    """What each visible check cell's docstring says it should print, by cell id."""
    found = {c.id: SHOULD_PRINT.search(c.source) for c in notebook.cells if c.id in VISIBLE}
    assert all(found.values()) and len(found) == len(VISIBLE), "every visible check cell says what it prints"
    return {cid: match.group(1) for cid, match in found.items()}


def reference_notebook(quick: bool = False) -> nbformat.NotebookNode:
    """The release with the instructor's solutions filled in, as the corpus builds it: every cell as in
    the source (reference.py), or with exploration skipped and a short final model (`quick`)."""
    submission = Submission("quick", "reference solutions, short final model") if quick else parse(CORPUS / "reference.py")
    return build_notebook(submission, ROOT)


def skip_or_fail(reason: str) -> None:
    """A missing tool skips a test on a workstation; in CI (CI set) it is an error."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


# --- the contract ---------------------------------------------------------------------------


def test_contract_matches_the_notebook_metadata():
    """grader_tests/contract.py and the source notebook's nbgrader metadata describe the same cells."""
    notebook = nbformat.read(SOURCE, as_version=4)
    cells = nbgrader_cells(SOURCE)
    order = [c.id for c in notebook.cells]
    meta = {gid: c.metadata.nbgrader for gid, c in cells.items()}
    assert all(cell.id == gid for gid, cell in cells.items()), "cell ids and grade_ids should agree"

    solutions = {gid for gid, m in meta.items() if m.get("solution") and cells[gid].cell_type == "code"}
    assert solutions == set(SOLUTION_CELLS)
    for gid, names in SOLUTION_CELLS.items():
        source = cells[gid].source
        assert "### BEGIN SOLUTION" in source and "# Hint:" in source, f"{gid} needs a hint and a solution region"
        for name in names:
            assert re.search(rf"^(class|def) {name}\b|^{name} = ", source, flags=re.M), f"{gid} should define {name}"

    graded = {gid: m["points"] for gid, m in meta.items() if m.get("grade") and cells[gid].cell_type == "code"}
    assert graded == {cell.grade_id: cell.points for cell in GRADED_CELLS}
    for cell in GRADED_CELLS:
        assert meta[cell.grade_id]["locked"] and not meta[cell.grade_id]["solution"], f"{cell.grade_id} must be read-only"
        assert order.index(cell.solution) < order.index(cell.grade_id), f"{cell.grade_id} should follow {cell.solution}"

    ids = [*GRADED, *VISIBLE, *SOLUTION_CELLS, *WRITTEN_ANSWERS, *PROVIDED_CELLS]
    assert len(set(ids)) == len(ids), "the contract names every cell once"
    for cell in GRADED_CELLS:
        assert cell.visible in cells, f"no cell {cell.visible} of visible checks for {cell.grade_id}"
        assert order.index(cell.visible) == order.index(cell.grade_id) + 1, f"{cell.visible} should come right after {cell.grade_id}"
        visible, m = cells[cell.visible], meta[cell.visible]
        assert visible.cell_type == "code" and m["locked"] and not m["grade"] and not m["solution"] and not m["task"], (
            f"{cell.visible} should be a locked code cell, neither graded nor a solution")
        assert "points" not in m and visible.metadata.get("deletable") is False and visible.metadata.get("editable") is False
        docstring = visible.source.split("\n", 1)[0]
        assert docstring.startswith('"""Check: ') and SHOULD_PRINT.search(docstring), (
            f"{cell.visible} should open with a docstring saying what it checks and prints")
        assert "assert " in visible.source and "print(" in visible.source, f"{cell.visible} needs visible checks for students"
        assert "HIDDEN TESTS" not in visible.source and "grader_tests" not in visible.source, f"{cell.visible} is all visible"

    written = {gid: m["points"] for gid, m in meta.items() if m.get("grade") and cells[gid].cell_type == "markdown"}
    assert written == WRITTEN_ANSWERS
    assert all(meta[gid]["solution"] and not meta[gid]["locked"] for gid in WRITTEN_ANSWERS)

    for gid in PROVIDED_CELLS:
        assert cells[gid].cell_type == "code" and meta[gid]["locked"], f"{gid} should be a locked code cell"
        assert not meta[gid]["grade"] and not meta[gid]["solution"], f"{gid} is provided, neither graded nor a solution"
        assert cells[gid].source.startswith("# Run this cell; do not change it."), f"{gid} should say it is provided"
    assert sum(graded.values()) == AUTO_POINTS and sum(written.values()) == MANUAL_POINTS


def test_graded_cells_hold_only_the_hidden_check():
    """Every graded cell: a one-line comment for students, then the hidden block (an import from
    grader_tests.collect and one call of the collector the contract names), nothing else. The check's call
    is the cell's last statement, so no student code runs in the cell after it recorded its evidence."""
    cells = nbgrader_cells(SOURCE)
    for cell in GRADED_CELLS:
        source = cells[cell.grade_id].source
        match = GRADED_SOURCE.fullmatch(source)
        assert match, f"{cell.grade_id} should hold a one-line comment and the hidden block, nothing else:\n{source}"
        assert "###" not in match["hidden"], f"{cell.grade_id}: one hidden block"
        assert "graded" in match["doc"] and not SHOULD_PRINT.search(source), (
            f"{cell.grade_id}'s comment tells students the cell is checked when their work is graded")
        body = ast.parse(source).body
        assert len(body) == 2, f"{cell.grade_id}: the import of the check and its call, nothing else"
        imported, call = body
        assert isinstance(imported, ast.ImportFrom) and imported.module == "grader_tests.collect" and len(imported.names) == 1
        name = imported.names[0].name
        assert name == f"collect_{cell.check}", (
            f"{cell.grade_id} should be graded by the {cell.check!r} check, as the contract says")
        assert (isinstance(call, ast.Expr) and isinstance(call.value, ast.Call) and isinstance(call.value.func, ast.Name)
                and call.value.func.id == name), f"{cell.grade_id} ends with the call of {name}"
        assert all(isinstance(arg, ast.Name) for arg in call.value.args) and not call.value.keywords, (
            f"{cell.grade_id} passes the student's names to {name} and computes nothing itself")


def test_points_the_students_read_agree_with_the_contract():
    """The overview table, the part headings and the written questions state the contract's points."""
    notebook = nbformat.read(SOURCE, as_version=4)
    by_part: dict[str, float] = {}
    part = None
    for cell in notebook.cells:
        heading = re.search(r"^## Part (\d+) — .*\((\d+) points\)$", cell.source, flags=re.M)
        if cell.cell_type == "markdown" and heading:
            part = heading.group(1)
            by_part[part] = 0
        if cell.id in GRADED:
            by_part[part] += GRADED[cell.id].points
    headings = {m.group(1): float(m.group(2)) for c in notebook.cells
                for m in re.finditer(r"^## Part (\d+) — .*\((\d+) points\)$", c.source, flags=re.M)}
    assert headings == by_part
    overview = notebook.cells[0].source
    table = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (\d+) \| [^|]+ \| (\d+) \|$", overview, flags=re.M)}
    assert table == by_part
    count, each = map(int, re.search(r"^\| written \| .* \| (\d+) x (\d+) \|$", overview, flags=re.M).groups())
    assert count == len(WRITTEN_ANSWERS) and set(WRITTEN_ANSWERS.values()) == {each}
    order = [c.id for c in notebook.cells]
    for gid, points in WRITTEN_ANSWERS.items():
        question = notebook.cells[order.index(gid) - 1].source
        assert f"Written question ({points:g} points)" in question, f"the question before {gid} should state its points"


def test_validation_bar_is_the_calibrated_one():
    """VALIDATION_BAR stands on its own line in a locked provided cell and equals thresholds.json's bar."""
    notebook = nbformat.read(SOURCE, as_version=4)
    holders = [c for c in notebook.cells if BAR_LINE.search(c.source)]
    assert len(holders) == 1 and holders[0].id in PROVIDED_CELLS, "one locked provided cell sets VALIDATION_BAR"
    assert len(BAR_LINE.findall(holders[0].source)) == 1
    bar = json.loads(THRESHOLDS.read_text())["validation_bar"]["max_ratio"]
    assert float(BAR_LINE.search(holders[0].source)["value"]) == bar, (
        "VALIDATION_BAR in the notebook differs from grader_tests/thresholds.json: recalibrate or regenerate")


def test_source_is_committed_without_outputs():
    notebook = nbformat.read(SOURCE, as_version=4)
    dirty = [c.id for c in notebook.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"clear the outputs of {dirty} before committing (they would change the release)"


def test_loss_curves_have_whole_epoch_ticks(monkeypatch, hourly_file):
    """plot_history (a provided helper) labels epochs 1, 2, 3, never 0.5 or 2.5."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = solved_cells(ROOT)
    namespace: dict = {}
    for cell in PROVIDED_CELLS:
        exec(cells[cell], namespace)  # noqa: S102 (the lab's own provided cells, in notebook order)
    monkeypatch.setattr(plt, "show", lambda: None)
    namespace["plot_history"]({"train_loss": [0.5, 0.4, 0.3], "val_loss": [0.45, 0.35, 0.3]}, "three epochs")
    axes = plt.gcf().axes[0]
    low, high = axes.get_xlim()
    assert [t for t in axes.get_xticks() if low <= t <= high] == [1, 2, 3]
    plt.close("all")


# --- the visible checks catch cheap mistakes ---------------------------------------------------


def _run_visible_check(notebook: nbformat.NotebookNode, check: str, after: tuple[str, ...] = ()) -> str | None:
    """Run the released notebook's code up to the visible check cell of `check` in this process
    (provided, solution and exploration cells; no graded cell, no other visible check but those of the
    checks `after`, whose failures are left as a student would leave them; the final model only for the
    forecast check), then that cell; return the assertion message it fails with, or None."""
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    target = VISIBLE_OF_CHECK[check]
    earlier = {VISIBLE_OF_CHECK[name] for name in after}
    namespace: dict = {"display": print}
    for cell in notebook.cells:
        if cell.cell_type != "code" or cell.id in GRADED or (cell.id in set(VISIBLE) - earlier and cell.id != target):
            continue
        if cell.id in earlier:
            with contextlib.suppress(AssertionError):
                exec(cell.source, namespace)  # noqa: S102 (a visible check that may fail, as a student runs it)
            continue
        if cell.id == GRADED[CELL_OF_CHECK["forecast"]].solution and check != "forecast":
            continue
        if cell.id == target:
            try:
                exec(cell.source, namespace)  # noqa: S102 (the released cell of visible checks)
            except AssertionError as failure:
                return str(failure)
            finally:
                plt.close("all")
            return None
        exec(cell.source, namespace)  # noqa: S102 (provided and solution cells)
    raise AssertionError(f"no cell {target} in the notebook")


@pytest.fixture(scope="module")
def quick_reference():
    return reference_notebook(quick=True)


@pytest.mark.parametrize("check", [c.check for c in GRADED_CELLS if c.check != "forecast"])
def test_reference_passes_every_visible_check(quick_reference, check, hourly_file):
    assert _run_visible_check(quick_reference, check) is None


MISTAKES = {  # corpus submission: (the check whose visible cell must catch it, what its message must say)
    "wrong_no_batch_first": ("model", [r"forecast alone should equal its forecast inside a batch",
                                       r"found a difference of \d", r"reads its input time first",
                                       r"documentation shows how to give it batch-first input"]),
    "wrong_first_time_step": ("model", [r"Changing the last 3 hours of the input should change the forecast",
                                        r"left the forecast unchanged", r"output after the last time step"]),
    "wrong_no_zero_grad": ("train_one_epoch", [r"Two identical epochs with a learning rate of 0 left different gradients",
                                               r"grew from \d", r"clear the old ones before each backward pass"]),
    "wrong_cross_entropy": ("loss", [r"should return a loss for real-valued targets",
                                     r"found CrossEntropyLoss\(\), a classification loss",
                                     r"scores the probabilities a model gives to classes"]),
    "wrong_fit_no_restore": ("fit", [r"should have the weights of the best epoch \(validation loss \d+\.\d{4}\)",
                                     r"found a validation loss of \d+\.\d{4}",
                                     r"Keep a copy of the best epoch's weights"]),
    "wrong_fit_ignores_patience": ("fit", [r"With patience=2 fit should stop early", r"ran all 10 epochs"]),
    "wrong_epoch_loss_tensor": ("fit", [r"should hold Python floats, one per epoch; found Tensor",
                                         r"add up Python numbers, not tensors"]),
    "wrong_untrained_final_model": ("forecast", [
        r"validation MAE should be at most \d+\.\d{3} degC \([\d.]+ x the persistence MAE of \d+\.\d{3} degC\); "
        r"found \d+\.\d{3} degC", r"more epochs", r"learning-rate schedule", r"early stopping with patience"]),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_visible_check_names_the_mistake(name, hourly_file):
    check, fragments = MISTAKES[name]
    message = _run_visible_check(build_notebook(parse(CORPUS / f"{name}.py"), ROOT), check)
    assert message is not None, f"the visible checks of {VISIBLE_OF_CHECK[check]} let {name} pass"
    print(f"{name}: {message}")
    for fragment in fragments:
        assert re.search(fragment, message), f"{name}: {fragment!r} not in {message!r}"


def test_visible_bar_message_gives_both_figures(hourly_file):
    """The bar message's numbers are the model's and the bar's validation MAE in degC."""
    notebook = build_notebook(parse(CORPUS / "wrong_untrained_final_model.py"), ROOT)
    message = _run_visible_check(notebook, "forecast")
    bar, persistence_mae, found = map(float, re.search(
        r"at most ([\d.]+) degC \([\d.]+ x the persistence MAE of ([\d.]+) degC\); found ([\d.]+) degC", message).groups())
    ratio = json.loads(THRESHOLDS.read_text())["validation_bar"]["max_ratio"]
    assert math.isclose(bar, ratio * persistence_mae, abs_tol=2e-3) and found > bar


def test_visible_bar_message_sends_a_broken_loop_back_to_its_check(hourly_file):
    """A final model that misses the bar after a training-loop check failed is sent back to that check,
    not told to train longer."""
    notebook = build_notebook(parse(CORPUS / "wrong_no_zero_grad.py"), ROOT)
    untrained = build_notebook(parse(CORPUS / "wrong_untrained_final_model.py"), ROOT)
    final = GRADED[CELL_OF_CHECK["forecast"]].solution
    [notebook.cells[i].update(source=cell.source) for i, cell in enumerate(untrained.cells) if cell.id == final]
    message = _run_visible_check(notebook, "forecast", after=("train_one_epoch", "evaluate", "fit"))
    assert "Fix the check of train_one_epoch in Part 4 first" in message, message
    assert "more epochs" not in message


# --- the source notebook, executed -----------------------------------------------------------


@pytest.fixture(scope="module")
def executed_source(tmp_path_factory, hourly_file):
    """The instructor notebook run top to bottom in its own folder's copy; its final_model's test
    forecasts saved as a plain array."""
    work = tmp_path_factory.mktemp("source_run") / "lstm_jena"
    shutil.copytree(SOURCE.parent, work, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"))
    evidence = work / "test_predictions.npy"
    notebook = nbformat.read(SOURCE, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "from jena_weather.pipeline import SPLITS as _SPLITS, build_windows as _build\n"
        "final_model.eval()\n"
        "with torch.no_grad():\n"
        f"    np.save({str(evidence)!r}, final_model(_build(periods=_SPLITS)['test'].x).numpy())\n"))
    seconds = execute(notebook, work)
    print(f"source notebook executed in {seconds:.1f} s")
    return notebook, np.load(evidence, allow_pickle=False)


def test_source_notebook_runs_top_to_bottom(executed_source):
    notebook, _ = executed_source
    assert not errors(notebook)
    cells = {c.id: c for c in notebook.cells}
    everything = "".join(cell_text(c) for c in notebook.cells if c.cell_type == "code")
    assert SUMMARY.search(everything), "the data summary (training, validation, test kept for grading) is printed"
    for gid, line in expected_prints(notebook).items():
        assert line in cell_text(cells[gid]), f"{gid} should print {line!r}; it printed {cell_text(cells[gid])!r}"
    assert not stderr_in_graded_cells(notebook)
    figures = sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert figures >= 8, f"expected the lab's figures, found {figures}"


def test_final_model_beats_the_bound_and_earns_the_forecast_points(executed_source, hourly_records):
    from grader_tests.thresholds import forecast_fraction, load_thresholds

    _, predictions = executed_source
    windows = build_windows(hourly_records, periods=SPLITS)
    mae = mae_degc(windows, "test", predictions)
    ratio = mae / mae_degc(windows, "test", persistence(windows, "test"))
    print(f"final_model test MAE {mae:.3f} degC, ratio to persistence {ratio:.3f}")
    assert mae <= MAE_BOUND_DEGC
    assert forecast_fraction(ratio, load_thresholds()) == 1, "the reference earns the full forecast points"


def test_nbgrader_validate_passes_on_the_source(tmp_path, hourly_file):
    """`nbgrader validate` as an instructor runs it in the assignment folder, with the config shipped there."""
    folder = tmp_path / SOURCE.parent.name
    shutil.copytree(SOURCE.parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    log = run_nbgrader("validate", SOURCE.name, root=folder, env=kernel_env())
    assert "Success! Your notebook passes all the tests." in log, log[-2000:]
