"""The student release (release/lstm_jena/): in sync with the source, free of grader code and
solutions, complete, and runnable in a student's environment that has only requirements.txt.

The student environment is /work/main/.venv-student (`make .venv-student/.installed`): without
it the test that needs it is skipped, or fails when CI is set.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import textwrap
import tokenize
from pathlib import Path

import nbformat
import pytest

from grader_tests.contract import GRADED, GRADED_CELLS, PROVIDED_CELLS, SOLUTION_CELLS, WRITTEN_ANSWERS
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


# --- the release gives no answer away ------------------------------------------------------------
# Every solution line of the instructor notebook and every model answer is compared, by runs of tokens,
# with everything a student reads before handing in: the markdown, the provided and exploration code, the
# stubs (their hints and docstrings) and the visible checks, whose source students read before any fails.
# Tokens are the meaningful ones: names, numbers, and the words of strings and comments (Python tokenize for
# code), words for text; punctuation is dropped, so reformatting does not hide a copy. Names keep their case,
# as Python's do; model answers are compared as lower-case words.

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:e-?\d+)?")
LINE_TOKENS = 5  # a solution line this long (not `torch.manual_seed(SEED)`, `model.eval()`) must not appear whole
RUN_TOKENS = 10  # nor any run of this many tokens of a solution
ANSWER_WORDS = 8  # nor any run of this many words (two letters or more) of a model answer
ASSIGNMENT = {"=", "+=", "-=", "*=", "/=", "return"}  # a line's right-hand side is checked on its own as well
PART_HEADING = re.compile(r"^## Part (\d+) ", flags=re.M)
MODES = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
# The graded answers, however written: where the release may not state them at all ...
ANSWERS_NOWHERE = {
    "the input layout of the LSTM": re.compile(r"batch_first", flags=re.I),
    "the last-time-step indexing": re.compile(r"\[\s*:\s*,\s*-\s*1\s*[\],]|h_n\s*\[\s*-\s*1\s*\]"),
    "the model's head": re.compile(r"Linear[^\n]{0,40}ReLU[^\n]{0,40}Linear"),
    "the mode as a statement about the lab": re.compile(
        r"many[\s-]+to[\s-]+one\s+(network|model|forecaster|lstm|task|problem|architecture)"
        r"|\b(our|this)\s+(task|model|lab|network|forecaster)\b[^.\n]{0,40}\bis\b[^.\n]{0,25}many[\s-]+to[\s-]+one", flags=re.I),
    "code of the training loop": re.compile(r"zero_grad|state_dict|\.item\(\)|\.backward\(|\.clone\("),
}
# ... and where they may not be given as a suggestion (the training-loop checks use a loss as their own tool).
LOSS_SUGGESTION = re.compile(r"\b(L1|MSE|Huber|SmoothL1)Loss\b")
LAST_STEP = re.compile(r"\blast\s+(time\s+)?step", flags=re.I)  # the idea, named by checks only after a failure


def _tokens(source: str, comments: bool = True) -> list[str]:
    """Names and numbers of Python code and the words of its strings (and comments); plain words where the
    code is a fragment that does not tokenize (without what follows a # when comments are not wanted)."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline):
            if token.type in (tokenize.NAME, tokenize.NUMBER):
                found.append(token.string)
            elif token.type == tokenize.STRING or (token.type == tokenize.COMMENT and comments):
                found += WORD.findall(token.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return WORD.findall(source if comments else re.sub(r"#.*", "", source))
    return found


def _line_candidates(line: str) -> list[list[str]]:
    """A solution line's code (no comment), and its right-hand side when it assigns or returns."""
    candidates = [_tokens(line, comments=False)]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return candidates
    depth = 0
    for i, token in enumerate(tokens):
        depth += token.string in "([{" and token.type == tokenize.OP
        depth -= token.string in ")]}" and token.type == tokenize.OP
        if depth == 0 and token.string in ASSIGNMENT and token.type in (tokenize.OP, tokenize.NAME):
            rest = line[len("".join(line.splitlines(keepends=True)[:token.end[0] - 1])) + token.end[1]:]
            candidates.append(_tokens(rest.strip(), comments=False))
            break
    return candidates


def _runs(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def _contains(tokens: list[str], run: tuple[str, ...]) -> bool:
    return any(tuple(tokens[i:i + len(run)]) == run for i in range(len(tokens) - len(run) + 1))


def _read(cell) -> list[str]:
    return WORD.findall(cell.source) if cell.cell_type == "markdown" else _tokens(cell.source)


def _solutions() -> dict[str, tuple[list[str], list[list[str]]]]:
    """Each solution cell's solution regions: (all their tokens, the candidate token runs of each line), by cell id."""
    found = {}
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        regions = [m.group(1) for m in re.finditer(r"### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION", cell.source, flags=re.S)]
        if cell.cell_type == "code" and regions:
            code = "\n".join(textwrap.dedent(region) for region in regions)
            found[cell.id] = (_tokens(code), [c for line in code.splitlines() for c in _line_candidates(line.strip())])
    return found


def _leaks(read: dict[str, list[str]]) -> list[str]:
    """Where the released cells (their tokens by id) hold runs of a solution or a model answer."""
    released = {c.id: c.source for c in nbformat.read(RELEASE, as_version=4).cells}
    found = []
    for cell, (tokens, lines) in _solutions().items():
        shared = _tokens(released[cell], comments=False)  # the stub's own code: signatures may be shared
        candidates = {tuple(line) for line in lines if len(line) >= LINE_TOKENS} | _runs(tokens, RUN_TOKENS)
        for run in sorted(candidates):
            if not _contains(shared, run):
                found += [f"{cell}'s solution {' '.join(run)!r} in {where}" for where, text in read.items() if _contains(text, run)]
    source = {c.id: c.source for c in nbformat.read(SOURCE, as_version=4).cells}
    for answer in WRITTEN_ANSWERS:
        words = [w.lower() for w in WORD.findall(source[answer]) if len(w) > 1]
        for run in sorted(_runs(words, ANSWER_WORDS)):
            found += [f"the model answer {answer} ({' '.join(run)!r}) in {where}" for where, text in read.items()
                      if _contains([w.lower() for w in text if len(w) > 1], run)]
    return found


def _stated_answers(cells: list) -> list[str]:
    """Graded answers stated where a student reads them before handing in."""
    loop_checks = {cell.visible for cell in GRADED_CELLS if cell.solution == "training_loop"}
    stubs = {cell.solution for cell in GRADED_CELLS}
    found, part = [], None
    for cell in cells:
        if cell.cell_type == "markdown" and (heading := PART_HEADING.search(cell.source)):
            part = heading.group(1)
        text = cell.source
        found += [f"{what} in {cell.id}: {m.group(0)!r}" for what, pattern in ANSWERS_NOWHERE.items()
                  for m in pattern.finditer(text)]
        if re.search(r"many[\s-]+to[\s-]+one", text, flags=re.I) and not (
                part == "1" and all(re.search(mode.replace("-", r"[\s-]+"), text, flags=re.I) for mode in MODES)):
            found.append(f"the mode many-to-one outside Part 1's list of the four modes, in {cell.id}")
        if cell.id not in loop_checks:
            found += [f"a loss suggested in {cell.id}: {m.group(0)!r}" for m in LOSS_SUGGESTION.finditer(text)]
        if cell.cell_type == "markdown" or cell.id in stubs:
            found += [f"the last time step named in {cell.id}: {m.group(0)!r}"
                      for m in LAST_STEP.finditer(re.sub(r"[*_`]", "", text))]
    return found


# What releases gave away before this test existed (the issue "The notebook teaches the whole lab and gives
# no answer away"), planted in cells of their own: each must be caught.
GIVE_AWAYS = {
    "part 2's text": ("markdown", "Complete `WeatherLSTM`, a many-to-one network built from `nn.LSTM`, `nn.Linear` and "
                      "`nn.ReLU`: an `nn.LSTM(n_features, hidden_size,\n  num_layers=num_layers, batch_first=True)` and a "
                      "small head `Linear(H, H) -> ReLU -> Linear(H, 1)`; keep the **last** time step `(B, H)`."),
    "the model's stub": ("code", 'class WeatherLSTM(nn.Module):\n    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1)."""\n\n'
                         "    def forward(self, x):\n        # Hint: out, _ = self.lstm(x) gives (B, T, H); which time step?\n"
                         "        raise NotImplementedError()"),
    "the model check": ("code", 'assert changed, "Forecast from the LSTM output after the last step, out[:, -1] (not out[:, 0])."'),
    "the loss check": ("code", 'assert ok, f"choose_loss() should return a regression loss such as nn.L1Loss() or nn.MSELoss()"'),
    "part 4's text": ("markdown", "weight each batch's loss by its size: `total += loss.item() * len(x)`, then divide"),
    "fit's stub": ("code", "def fit(model):\n    # Hint: keep a copy of model.state_dict() ({k: v.clone() for k, v in ...})\n"
                   "    raise NotImplementedError()"),
    "a model answer": ("markdown", "Cross-entropy compares a predicted probability distribution over *classes* with the "
                       "true class."),
}


def test_the_leak_checks_catch_the_known_give_aways():
    """The checks below catch every give-away the issue names, planted in cells of their own."""
    planted = [nbformat.v4.new_markdown_cell(text, id=f"planted-{i}") if kind == "markdown" else
               nbformat.v4.new_code_cell(text, id=f"planted-{i}") for i, (kind, text) in enumerate(GIVE_AWAYS.values())]
    stated = "\n".join(_stated_answers(planted))
    leaks = "\n".join(_leaks({cell.id: _read(cell) for cell in planted}))
    caught = stated + "\n" + leaks
    for what in (*ANSWERS_NOWHERE, "outside Part 1", "a loss suggested", "the last time step named"):
        assert what in stated, f"{what!r} not caught in the planted give-aways:\n{stated}"
    for where in ("model_definition's solution 'nn LSTM n_features hidden_size num_layers num_layers batch_first True'",
                  "model_definition's solution 'out _ self lstm x'", "training_loop's solution 'total loss item len x'",
                  "the model answer answer_cross_entropy"):
        assert where in leaks, f"{where} copied into the planted cells, not caught:\n{leaks}"
    missed = [name for i, name in enumerate(GIVE_AWAYS) if f"planted-{i}" not in caught]
    assert not missed, f"give-aways not caught: {missed}"


def test_release_gives_no_solution_and_no_graded_answer_away():
    """No solution line (or run of RUN_TOKENS tokens of a solution) and no run of ANSWER_WORDS words of a
    model answer appears in anything the release shows; the graded answers (the mode of this lab's model,
    the LSTM's input layout, the last-step indexing, the head, the loss, the training loop's code) are not
    stated outside Part 1's list of the four modes, and the checks name ideas, not code."""
    released = nbformat.read(RELEASE, as_version=4).cells
    leaks = _leaks({cell.id: _read(cell) for cell in released})
    assert not leaks, "the release gives solutions away:\n" + "\n".join(leaks[:20])
    stated = _stated_answers(released)
    assert not stated, "the release states graded answers:\n" + "\n".join(stated)


def test_stubs_end_where_students_write():
    """A stub's `raise NotImplementedError(...)` is the last line of its function or cell: no provided line
    after it that students would have to keep around the line they are told to delete."""
    for cell in nbformat.read(RELEASE, as_version=4).cells:
        if cell.id not in SOLUTION_CELLS or cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if "raise NotImplementedError" not in line:
                continue
            indent = len(line) - len(line.lstrip())
            after = next((later for later in lines[i + 1:] if later.strip()), None)
            assert after is None or (len(after) - len(after.lstrip()) < indent and after.lstrip().startswith(("def ", "class "))), (
                f"{cell.id}: {after!r} follows the line students delete")
