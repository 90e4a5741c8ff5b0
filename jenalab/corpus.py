"""The submissions corpus: small files of cell sources, built into notebooks from the release.

The corpus lives in the course repository (``grader_tests/submissions/``). A corpus file
``grader_tests/submissions/<name>.py`` looks like::

    \"\"\"One line: what this submission does.\"\"\"
    # expect: test_model_shapes=0 "Did you take the last time step"
    # %% model_definition
    class WeatherLSTM(nn.Module):
        ...

* ``# %% <cell id>`` starts the source of one released code cell (a solution cell or an ungraded
  exploration cell) or written answer; ``# %% <cell id> +`` instead adds code after the base's source of that cell
  (to redefine one function of a cell that defines several). Cells a file does not give come
  from its base:

  - ``# base: reference`` (the default): the instructor's solutions; to keep corpus grading fast
    the ungraded exploration cells (plots, first run, sweep) are skipped and the final model
    trains for 4 epochs instead of 10 (``QUICK_FINAL_MODEL``);
  - ``# base: full``: the instructor's solutions and every exploration cell, as in the source;
  - ``# base: blank``: the untouched release.
* ``# expect: <grade id>=<points> "<message fragment>"`` lists every graded cell that must lose
  points, with a fragment of the message the student must see. Unlisted graded cells must get
  full points. ``# expect: <grade id><<points>`` bounds partial credit from above.
* ``# flag: <fragment>`` names a reason for review the grader must give (a fragment of one flag).
* ``# reason: <fragment>`` is a fragment the submission's reason must hold (what stopped or cut its run).
* ``# cell timeout: <seconds>`` grades the file with this time limit per cell (a short one, for the files
  that run past it on purpose) in a run of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader_tests.contract import ASSIGNMENT, GRADED, NOTEBOOK, WRITTEN_ANSWERS
from jenalab.course import release_notebook, solved_cells, students_of

SUBMISSIONS = Path("grader_tests") / "submissions"  # in the course repository
CORPUS_REPORT = Path("grader_tests") / "calibration" / "corpus.md"
DEMO_SUBMISSIONS = ("reference", "blank", "wrong_first_time_step", "wrong_no_zero_grad")  # graded by `jenalab demo`
_EXPECT = re.compile(r'^# expect: (?P<grade_id>\w+)\s*(?P<op>=|<)\s*(?P<points>[\d.]+)(?:\s+"(?P<message>[^"]*)")?\s*$')
WRITTEN_ANSWER = "A short written answer (graded by hand)."
EXPLORATION_CELLS = ("explore_data", "task_picture", "try_the_blocks", "follow_the_shapes", "shuffle_experiment",
                     "first_training_run", "baseline_comparison", "hyperparameter_sweep", "final_model_plots")
SKIPPED = "# (exploration skipped in this corpus submission)\n"
# The notebook's final model with 4 epochs instead of 10: a test-period ratio to persistence of about
# 0.52, inside the full-credit tier (see thresholds.json), in less than half the training time.
QUICK_FINAL_MODEL = """EPOCHS = 4
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
final_history = fit(final_model, train_loader, val_loader, choose_loss(), optimizer, EPOCHS, scheduler=scheduler)
"""
BASES = ("reference", "full", "blank")


@dataclass
class Expectation:
    points: float
    below: bool = False  # "<": any score strictly below `points`
    message: str = ""


@dataclass
class Submission:
    name: str
    description: str
    base: str = "reference"  # or "blank"
    cells: dict[str, str] = field(default_factory=dict)
    appended: set[str] = field(default_factory=set)  # cells whose source follows the base's source
    expect: dict[str, Expectation] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # fragments of flags the grader must raise
    reasons: list[str] = field(default_factory=list)  # fragments the reason must hold
    cell_timeout: int | None = None  # graded with this time limit per cell


def parse(path: Path) -> Submission:
    text = path.read_text()
    doc = re.match(r'\s*"""(.*?)"""', text, flags=re.S)
    if not doc:
        raise ValueError(f"{path}: a corpus file starts with a one-line docstring saying what it does")
    submission = Submission(name=path.stem, description=doc.group(1).strip())
    current = None
    for line in text[doc.end():].splitlines(keepends=True):
        if line.startswith("# %% "):
            current, plus, _ = line[5:].strip().partition(" +")
            submission.cells[current] = ""
            if plus:
                submission.appended.add(current)
        elif current is not None:
            submission.cells[current] += line
        elif line.startswith("# flag: "):
            submission.flags.append(line[8:].strip())
        elif line.startswith("# reason: "):
            submission.reasons.append(line[10:].strip())
        elif line.startswith("# cell timeout: "):
            submission.cell_timeout = int(line[16:])
        elif line.startswith("# base: "):
            submission.base = line[8:].strip()
        elif line.startswith("# expect: "):
            match = _EXPECT.match(line.rstrip("\n"))
            if not match:
                raise ValueError(f"{path}: cannot read expectation {line.strip()!r}")
            submission.expect[match["grade_id"]] = Expectation(
                float(match["points"]), match["op"] == "<", match["message"] or "")
    submission.cells = {cell: source.strip("\n") + "\n" for cell, source in submission.cells.items()}
    if submission.base not in BASES:
        raise ValueError(f"{path}: base {submission.base!r} is not one of {BASES}")
    return submission


def load_corpus(course: Path) -> list[Submission]:
    return [parse(path) for path in sorted((course / SUBMISSIONS).glob("*.py"))]


def build_notebook(submission: Submission, course: Path) -> nbformat.NotebookNode:
    """The released notebook with the submission's cells filled in, as a student would hand it in."""
    notebook = nbformat.read(release_notebook(course), as_version=4)
    cells = {} if submission.base == "blank" else solved_cells(course, solutions_only=True)
    if submission.base == "reference":
        cells.update(dict.fromkeys(EXPLORATION_CELLS, SKIPPED), final_model=QUICK_FINAL_MODEL)
    for cell, source in submission.cells.items():
        cells[cell] = cells.get(cell, "").rstrip("\n") + "\n\n\n" + source if cell in submission.appended else source
    ids = {cell.id for cell in notebook.cells}
    unknown = set(cells) - ids
    if unknown:
        raise ValueError(f"{submission.name}: no released cell with id {sorted(unknown)}")
    for cell in notebook.cells:
        if cell.id in cells and (cell.cell_type == "code" or cell.id in WRITTEN_ANSWERS):
            cell.source = cells[cell.id].rstrip("\n")
        elif submission.base != "blank" and cell.cell_type == "markdown" and cell.id in WRITTEN_ANSWERS:
            cell.source = WRITTEN_ANSWER
    return notebook


def write_submission(submission: Submission, course: Path, root: Path, student: str | None = None) -> Path:
    """Write the submission (built from `course`) into course folder `root` as nbgrader expects it:
    submitted/<student>/lstm_jena/lstm_jena.ipynb."""
    target = root / "submitted" / (student or submission.name) / ASSIGNMENT / NOTEBOOK
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build_notebook(submission, course), target)
    return target


def scratch_course(course: Path, root: Path) -> Path:
    """A course folder `root` with `course`'s source, configuration and thresholds, its release and a
    fresh gradebook."""
    import shutil

    from jenalab.course import generate_release

    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(course / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(course / "nbgrader_config.py", root)
    (root / "grader_tests").mkdir(exist_ok=True)
    shutil.copy(course / "grader_tests" / "thresholds.json", root / "grader_tests")
    generate_release(root)
    return root


def grade_corpus(course: Path, root: Path, workers: int = 2, log=print, special: bool = True):
    """Grade the whole corpus of `course` in a scratch course folder `root`; returns the grading results (the
    files with a cell time limit of their own are graded in a run of their own each).

    With `special`, two unusable submissions are added: a folder without a notebook and a file
    that is not JSON.
    """
    from jenalab.grading import Options, grade_class
    from jenalab.results import ClassRun
    from jenalab.gradesheet import standings
    from jenalab.report import write_class_report
    from jenalab.similarity import class_similarity

    scratch_course(course, root)
    corpus = load_corpus(course)
    for submission in corpus:
        write_submission(submission, course, root)
    if special:
        (root / "submitted" / "no_notebook" / ASSIGNMENT).mkdir(parents=True)
        (root / "submitted" / "no_notebook" / ASSIGNMENT / "notes.txt").write_text("forgot the notebook")
        (root / "submitted" / "not_json" / ASSIGNMENT).mkdir(parents=True)
        (root / "submitted" / "not_json" / ASSIGNMENT / NOTEBOOK).write_text('{"cells": [ truncated')
    timeouts = sorted({s.cell_timeout for s in corpus if s.cell_timeout})
    short = {s.name for s in corpus if s.cell_timeout}
    runs = [grade_class(root, Options(workers=workers), students=[s for s in students_of(root) if s not in short], log=log)]
    runs += [grade_class(root, Options(workers=workers, cell_timeout=limit), log=log,
                         students=[s.name for s in corpus if s.cell_timeout == limit]) for limit in timeouts]
    combined = ClassRun(results=[r for run in runs for r in run.results], graded_now=[s for run in runs for s in run.graded_now],
                        infrastructure=[i for run in runs for i in run.infrastructure])
    # the whole corpus, not the last run only
    write_class_report(root, combined, standings=standings(root), similar=class_similarity(root))
    return combined


def matrix_markdown(course: Path, results, command: str) -> str:
    """The corpus as graded: points per graded cell and whether each file's expectations held."""
    expectations = {s.name: s for s in load_corpus(course)}
    cells = list(GRADED)  # in notebook order, however the ledgers stored them
    lines = ["# Submissions corpus, graded", "", f"Produced by `{command}` (sandboxed autograde, trusted re-check).", "",
             "| submission | " + " | ".join(c.removeprefix("test_") for c in cells) + " | total | as expected |",
             "|---|" + "---|" * (len(cells) + 2)]
    for r in results:
        submission = expectations.get(r.student)
        ok = "" if submission is None else ("yes" if not mismatches(submission, r) else "NO")
        lines.append(f"| {r.student} | " + " | ".join(f"{r.scores[c]:g}" for c in cells) + f" | {r.total:g} | {ok} |")
    return "\n".join(lines) + "\n"


def mismatches(submission: Submission, result) -> list[str]:
    """Where a graded result departs from the file's expectations (empty when it matches)."""
    problems = []
    for cell, max_points in result.max_scores.items():
        expected = submission.expect.get(cell)
        points, message = result.scores[cell], result.messages.get(cell, "")
        if expected is None and points != max_points:
            problems.append(f"{cell}: {points:g} of {max_points:g} ({message})")
        elif expected is not None and expected.below and not points < expected.points:
            problems.append(f"{cell}: {points:g}, expected below {expected.points:g}")
        elif expected is not None and not expected.below and points != expected.points:
            problems.append(f"{cell}: {points:g}, expected {expected.points:g} ({message})")
        if expected is not None and expected.message and expected.message not in message:
            problems.append(f"{cell}: message {message!r} lacks {expected.message!r}")
    for fragment in submission.flags:
        if not any(fragment in flag for flag in result.flags):
            problems.append(f"no flag says {fragment!r} (flags: {result.flags})")
    for fragment in submission.reasons:
        if fragment not in result.reason:
            problems.append(f"the reason lacks {fragment!r} ({result.reason[:300]})")
    return problems
