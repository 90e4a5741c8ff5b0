"""The student release (release/lstm_jena/): in sync with the source, free of grader code and
solutions, complete, and runnable in a student's environment that has only requirements.txt.

The student environment is /work/main/.venv-student (`make .venv-student/.installed`): without
it the test that needs it is skipped, or fails when CI is set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from grader_tests.contract import GRADED, GRADED_CELLS, PROVIDED_CELLS, WRITTEN_ANSWERS
from jena_weather.data import ENV_MIRROR, ENV_NO_DOWNLOAD
from jenalab.corpus import scratch_course
from jenalab.course import assignment_files, generate_release, run_nbgrader
from test_notebook import (
    GRADED_SOURCE, RELEASE, ROOT, SOURCE, SUMMARY, VISIBLE, cell_text, errors, execute, expected_prints, kernel_env,
    reference_notebook, skip_or_fail, stderr_in_graded_cells,
)

FOLDER = RELEASE.parent
STUDENT_VENV = ROOT / ".venv-student"
STUDENT_PYTHON = STUDENT_VENV / "bin" / "python"
SECRET_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n.*?### END (SOLUTION|HIDDEN TESTS)", flags=re.S)
FORBIDDEN = ("grader_tests", "jenalab", "BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")
NEVER_SHIPPED = ("__pycache__", ".ipynb_checkpoints", "jena_data", "gradebook.db")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) > 8}


def _secret_lines() -> set[str]:
    """Lines of the source's solutions, hidden tests and model answers that appear nowhere else in it."""
    secret, elsewhere = set(), set()
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.id in WRITTEN_ANSWERS:
            secret |= _lines(cell.source)
            continue
        for region in SECRET_REGION.finditer(cell.source):
            secret |= _lines(region.group(0))
        elsewhere |= _lines(SECRET_REGION.sub("", cell.source))
    return secret - elsewhere


# --- what the release holds ------------------------------------------------------------------


def test_release_is_in_sync_and_reproducible(tmp_path):
    """nbgrader regenerates release/ from source/ byte for byte, every time."""
    course = scratch_course(ROOT, tmp_path / "course")
    fresh = course / "release" / FOLDER.name
    committed = _tree(FOLDER)
    regenerated = _tree(fresh)
    assert sorted(regenerated) == sorted(committed), "release/ lists other files than a fresh release: run `make release`"
    stale = [name for name in regenerated if regenerated[name] != committed[name]]
    assert not stale, f"release/{FOLDER.name}/{stale[0]} is out of date with source/: run `make release` and commit release/"
    generate_release(course)
    assert _tree(fresh) == regenerated, "generating the release twice must give the same bytes"


def test_release_ships_the_helper_package_and_requirements():
    """The notebook, jena_weather/, requirements.txt and nbgrader_config.py: the source folder's files,
    without caches, data or checkpoints."""
    shipped = set(_tree(FOLDER))
    assert shipped == {RELEASE.name, *assignment_files(ROOT)}
    assert [name for name in shipped if name.endswith(".ipynb")] == [RELEASE.name], "one notebook, no executed copies"
    assert {"jena_weather/__init__.py", "jena_weather/data.py", "jena_weather/pipeline.py", "jena_weather/baselines.py",
            "requirements.txt", "nbgrader_config.py"} <= shipped
    assert not [name for name in shipped for part in Path(name).parts if part in NEVER_SHIPPED or part.endswith(".pyc")]
    requirements = {re.split(r"[<>=\[ ]", line)[0].lower()
                    for line in (FOLDER / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert {"torch", "numpy", "pandas", "matplotlib", "tqdm", "jupyterlab"} <= requirements
    assert not requirements & {"nbgrader", "jena-lstm-lab", "dask"}, "students install only what the notebook needs"


def test_release_holds_no_grader_code_and_no_solution():
    """No file of the release names the grader or holds a line of a solution, hidden test or model answer."""
    secret = _secret_lines()
    assert len(secret) > 40, "the leak check must see the solutions it guards"
    for name, data in _tree(FOLDER).items():
        text = data.decode()
        for marker in FORBIDDEN:
            assert marker not in text, f"{marker!r} appears in release/{FOLDER.name}/{name}"
        leaked = sorted(secret & _lines(text))
        assert not leaked, f"solution or hidden-test lines in release/{FOLDER.name}/{name}: {leaked[:5]}"


def test_release_notebook_keeps_the_contract_cells():
    """Every cell the grader relies on is in the release. A graded cell holds only its comment (its
    hidden check removed); the locked cell of visible checks right after it is the source's, unchanged."""
    released = nbformat.read(RELEASE, as_version=4).cells
    cells, order = {c.id: c for c in released}, [c.id for c in released]
    source = {c.id: c for c in nbformat.read(SOURCE, as_version=4).cells}
    for cell in GRADED_CELLS:
        assert cell.grade_id in cells and cell.solution in cells
        assert "raise NotImplementedError" in cells[cell.solution].source, f"{cell.solution} should be a stub"
        comment = GRADED_SOURCE.fullmatch(source[cell.grade_id].source)["doc"]
        assert cells[cell.grade_id].source == comment, f"released {cell.grade_id} should hold only its comment"
        assert cells[cell.grade_id].metadata.nbgrader["grade"] and cells[cell.grade_id].metadata.nbgrader["locked"]
        assert order.index(cell.visible) == order.index(cell.grade_id) + 1, f"{cell.visible} should follow {cell.grade_id}"
        visible = cells[cell.visible]
        assert visible.source == source[cell.visible].source, f"{cell.visible} is released as written"
        assert visible.metadata.nbgrader["locked"] and not visible.metadata.nbgrader["grade"], f"{cell.visible} is locked, ungraded"
        assert "checksum" in visible.metadata.nbgrader, f"nbgrader guards the locked {cell.visible} with a checksum"
    assert set(PROVIDED_CELLS) <= set(cells) and set(WRITTEN_ANSWERS) <= set(cells)


# --- running it --------------------------------------------------------------------------------


def test_blank_release_runs_without_killing_the_kernel(tmp_path, hourly_file):
    """Unsolved, the provided cells still run, every cell of visible checks fails with a plain hint, and
    the graded cells (only a comment in the release) run quietly."""
    folder = tmp_path / FOLDER.name
    shutil.copytree(FOLDER, folder)
    notebook = nbformat.read(RELEASE, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("print('kernel alive')"))
    execute(notebook, folder, allow_errors=True)
    assert "kernel alive" in cell_text(notebook.cells[-1])
    failed = errors(notebook)
    assert set(VISIBLE) <= set(failed), "every cell of visible checks fails on the blank release"
    assert not set(GRADED) & set(failed), {c: failed[c] for c in GRADED if c in failed}
    assert not set(PROVIDED_CELLS) & set(failed), {c: failed[c] for c in PROVIDED_CELLS if c in failed}
    assert {message.split(":")[0] for message in failed.values()} <= {"NotImplementedError", "NameError"}, failed


def _failed_cells(log: str) -> list[str]:
    """The first source line of every cell `nbgrader validate` reports as failed."""
    return [block.strip().splitlines()[0].strip() for block in log.split("The following cell failed:")[1:]]


def test_nbgrader_validate_fails_the_blank_release(tmp_path, hourly_file):
    """`nbgrader validate` on the blank release, with the configuration shipped beside it (every cell is
    validated, as the checks students can run sit in cells of their own): every cell of visible checks
    is reported, and no released graded cell (they hold no code) is."""
    folder = tmp_path / FOLDER.name
    shutil.copytree(FOLDER, folder)
    log = run_nbgrader("validate", RELEASE.name, root=folder, env=kernel_env())
    assert "Success!" not in log
    failed = _failed_cells(log)
    released = {c.id: c for c in nbformat.read(RELEASE, as_version=4).cells}

    def reported(cell: str) -> bool:  # nbgrader shortens long lines: compare their beginnings
        return any(line[:60] == released[cell].source[:60] for line in failed)

    missing = [cell for cell in VISIBLE if not reported(cell)]
    assert not missing, f"validate_all should report {missing} as failed:\n{log[-3000:]}"
    assert not any(reported(cell) for cell in GRADED), "the released graded cells cannot fail"


@pytest.fixture(scope="module")
def student_python() -> Path:
    if not (STUDENT_PYTHON.exists() and (STUDENT_VENV / ".installed").exists()):
        skip_or_fail(f"no student environment at {STUDENT_VENV} (build it with `make .venv-student/.installed`)")
    probe = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
             "for m in ('jenalab', 'grader_tests', 'jena_weather', 'torch', 'ipykernel')}))")
    found = json.loads(subprocess.run([str(STUDENT_PYTHON), "-c", probe], cwd="/", capture_output=True, text=True,
                                      check=True, env={"PATH": "/usr/bin:/bin"}).stdout)
    assert found == {"jenalab": False, "grader_tests": False, "jena_weather": False, "torch": True, "ipykernel": True}, (
        f"the student environment must have the lab's requirements and nothing of this repository: {found}")
    return STUDENT_PYTHON


def test_release_runs_in_a_student_environment(student_python, tmp_path, monkeypatch, hourly_file):
    """The release, solved with the reference solutions, runs in an environment with only requirements.txt
    (no jenalab, no grader_tests; jena_weather from the folder beside the notebook) on the offline data."""
    kernels = tmp_path / "jupyter" / "kernels" / "lstm-student"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(student_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (student environment)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    folder = tmp_path / FOLDER.name
    shutil.copytree(FOLDER, folder)
    notebook = reference_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import importlib.util, json, sys, jena_weather\n"
        "print(json.dumps({'python': sys.executable, 'jena_weather': jena_weather.__file__,\n"
        "                  'grader': [m for m in ('jenalab', 'grader_tests') if importlib.util.find_spec(m)]}))"))
    env = kernel_env(**{ENV_MIRROR: str(hourly_file.parent), ENV_NO_DOWNLOAD: "1"})
    env.pop("PYTHONPATH", None)
    seconds = execute(notebook, folder, kernel="lstm-student", env=env)
    print(f"release with reference solutions executed in the student environment in {seconds:.1f} s")

    where = json.loads(cell_text(notebook.cells[-1]))
    assert Path(where["python"]).parent == student_python.parent
    assert Path(where["jena_weather"]).resolve().is_relative_to(folder.resolve())
    assert where["grader"] == []
    assert not errors(notebook), errors(notebook)
    everything = "".join(cell_text(c) for c in notebook.cells if c.cell_type == "code")
    assert SUMMARY.search(everything), "the data summary is printed"
    cells = {c.id: c for c in notebook.cells}
    for gid, line in expected_prints(notebook).items():
        assert line in cell_text(cells[gid]), f"{gid} should print {line!r}; it printed {cell_text(cells[gid])!r}"
    assert "shapes OK" in everything
    assert not stderr_in_graded_cells(notebook), "a graded cell wrote to stderr (progress bars without ipywidgets?)"
