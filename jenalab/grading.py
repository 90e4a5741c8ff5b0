"""Grade a whole class: decide what needs grading, hand it to workers, store what comes back.

For every ``submitted/<student>/lstm_jena/lstm_jena.ipynb`` a worker (``jenalab.worker``: in this
process, local Dask worker processes, or any Dask cluster given by its scheduler's address)
grades the submission in a sandbox and returns plain data; this process alone writes the course
folder (``jenalab.store``). A submission is graded again when it changed or when the grader did
(checks, thresholds, hidden cells, limits); otherwise an earlier run's ledger stands, so an
interrupted run resumes where it stopped. Infrastructure failures leave submissions ungraded and
are listed: the next run grades them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from grader_tests.contract import ASSIGNMENT, GRADED_CELLS, NOTEBOOK, NOTEBOOK_ID
from jenalab.course import (CourseError, assignment_files, check_students, course_cell_timeout, course_root,
                            generate_release, gradebook_url, release_notebook, source_notebook, students_of,
                            submission_path)
from jenalab.sandbox import SandboxLimits, active_protections, filesystem_isolated
from jenalab.results import ClassRun, Infrastructure, Outcome, Result
from jenalab.store import load_result, record, write_grades_csv
from jenalab.worker import Task, code_fingerprint, environment, grade


@dataclass
class Options:
    workers: int = 2
    scheduler: str | None = None  # address of an existing Dask scheduler; None: local processes
    worker_wait: float = 300  # seconds to wait for a Dask worker that can grade when none is connected
    cell_timeout: int | None = None  # seconds per cell; None: the course's nbgrader_config.py (Execute.timeout)
    notebook_timeout: int = 1800  # seconds for a whole notebook
    regrade: bool = False  # grade again even when a ledger for the same submission and grader exists
    strict_thresholds: bool = False  # refuse to grade with thresholds calibrated on other data
    require_isolation: bool = False  # refuse to grade without filesystem isolation of the kernel


def grade_class(root: Path | None = None, options: Options = Options(), students: list[str] | None = None,
                log=print) -> ClassRun:
    """Grade every submission (or the named students) of the course folder `root`; write grades.csv and
    the class report. `log` gets the messages (the default, print, also shows a progress bar)."""
    from grader_tests.thresholds import load_thresholds
    from jenalab.progress import Progress
    from jenalab.gradesheet import standings
    from jenalab.report import write_class_report
    from jenalab.similarity import class_similarity

    start = time.perf_counter()
    root = course_root(root)
    if students:
        check_students(root, students)
    students = students or students_of(root)
    if not students:
        raise CourseError(f"No submissions in {root / 'submitted'}: expected submitted/<student>/{ASSIGNMENT}/{NOTEBOOK}.")
    # The notebook's time budget is kept by the executor (jenalab.sealed); the kernel's wall-clock limit is a backstop.
    limits = SandboxLimits(cpu_threads=1, wall_seconds=options.notebook_timeout + 120)
    if options.require_isolation and not filesystem_isolated(limits):
        raise CourseError("Not grading: --require-isolation was given, but the grading kernel's filesystem cannot be "
                          "isolated here (" + "; ".join(p for p in active_protections(limits) if p.startswith("NO")) + ").")
    thresholds = load_thresholds(root)
    run = ClassRun(threshold_warning=threshold_warning(thresholds, options.strict_thresholds, log))
    task = make_task(root, thresholds, limits, options)
    log("Sandbox: " + "; ".join(active_protections(limits)))

    results, todo = {}, []
    for student in students:
        path = submission_path(root, student)
        data = path.read_bytes() if path.is_file() else None
        previous = load_result(root, student)
        if (not options.regrade and previous and previous.grader_version == task.grader_version
                and previous.submission_sha256 == (hashlib.sha256(data).hexdigest() if data is not None else None)):
            results[student] = previous  # graded before, and neither the submission nor the grader changed
        elif data is None:
            results[student] = record(root, _missing(student, task))
            run.graded_now.append(student)
        else:
            todo.append((student, data))
    if todo:
        where = f"scheduler {options.scheduler}" if options.scheduler else f"{options.workers} local worker(s)"
        log(f"Grading {len(todo)} submission(s) ({len(results)} graded before) with {where}")
        width = max([28, *(len(student) for student, _ in todo)])
        with Progress(len(todo)) as progress:
            for outcome in run_workers(task, todo, options, log):
                if isinstance(outcome, Infrastructure):
                    run.infrastructure.append(outcome)
                    line = f"  {outcome.student:<{width}} NOT GRADED: {outcome.message}"
                else:
                    result = record(root, outcome)
                    results[result.student] = result
                    run.graded_now.append(result.student)
                    line = (f"  {result.student:<{width}} {result.total:>5g} / {result.max_total:g}  ({result.seconds:.0f} s)"
                            + (f"  FLAGGED: {'; '.join(result.flags)}" if result.flags else ""))
                if log is print:
                    progress.done(line)
                else:
                    log(line)
    ungraded = {i.student for i in run.infrastructure}
    run.results = [results[s] for s in students if s in results and s not in ungraded]
    write_grades_csv(root, [r for r in (load_result(root, s) for s in students_of(root)) if r is not None],
                     run.threshold_warning, run.infrastructure)
    log(f"Class report: {write_class_report(root, run, time.perf_counter() - start, standings(root), class_similarity(root))}")
    if run.infrastructure:
        log(f"\n{len(run.infrastructure)} submission(s) NOT graded (the grader failed, not the student; the next run "
            "grades them):\n" + "\n".join(f"  {i.student}: {i.message}" for i in run.infrastructure))
    return run


def make_task(root: Path, thresholds: dict, limits: SandboxLimits, options: Options) -> Task:
    """What every worker needs for this run, with the environment it must match."""
    from jena_weather.data import load_jena

    source = source_notebook(root).read_bytes()
    restored = _restored_cells(source)
    changed = _restored_cells_changed(root, restored)
    if changed is None:
        generate_release(root)  # records the assignment and its hidden cells in the gradebook
    elif changed:
        raise CourseError(f"The instructor notebook's cells {', '.join(changed)} changed since the release was "
                          "generated; nbgrader would grade with the old ones. Run `jenalab release` (and give students "
                          "the new release if they need it), then grade.")
    expected = environment(load_jena().sha256)
    options = replace(options, cell_timeout=options.cell_timeout or course_cell_timeout(root))
    return Task(config=(root / "nbgrader_config.py").read_text(), gradebook=_assignment_gradebook(root),
                assignment_files=assignment_files(root), source_notebook=source,
                release_notebook=release_notebook(root).read_bytes(), thresholds=thresholds,
                grader_version=grader_version(restored, thresholds, limits, options, expected["data sha256"]),
                expected=expected, limits=limits, cell_timeout=options.cell_timeout,
                notebook_timeout=options.notebook_timeout, require_isolation=options.require_isolation)


def grader_version(restored: dict[str, str], thresholds: dict, limits: SandboxLimits, options: Options,
                   data_sha256: str) -> str:
    """Fingerprint of everything that decides a grade besides the submission: the grader's code, the
    thresholds, the cells nbgrader restores from the instructor notebook (locked and hidden), the
    limits and the data."""
    parts = [code_fingerprint(), json.dumps(thresholds, sort_keys=True), json.dumps(restored),
             json.dumps(asdict(limits), sort_keys=True), f"{options.cell_timeout}/{options.notebook_timeout}", data_sha256]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _restored_cells(source: bytes) -> dict[str, str]:
    """The code cells nbgrader restores from the gradebook when it grades (locked ones, hidden tests included)."""
    import nbformat

    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.reads(source.decode(), as_version=4).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked")}


def _restored_cells_changed(root: Path, cells: dict[str, str]) -> list[str] | None:
    """Which of these cells the gradebook holds otherwise; None when it holds no assignment yet."""
    from nbgrader.api import Gradebook, MissingEntry

    if not (root / "gradebook.db").is_file():
        return None
    with Gradebook(gradebook_url(root)) as gradebook:
        try:
            gradebook.find_notebook(NOTEBOOK_ID, ASSIGNMENT)
        except MissingEntry:
            return None
        changed = []
        for grade_id, source in cells.items():
            try:
                stored = gradebook.find_source_cell(grade_id, NOTEBOOK_ID, ASSIGNMENT).source
            except MissingEntry:
                stored = None
            if stored != source:
                changed.append(grade_id)
    return changed


def _assignment_gradebook(root: Path) -> bytes:
    """A copy of the gradebook with the assignment and no student: what a worker needs, and no grades."""
    import shutil
    import tempfile

    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "gradebook.db"
        shutil.copy(root / "gradebook.db", copy)
        with Gradebook(f"sqlite:///{copy}") as gradebook:
            for student in gradebook.students:
                gradebook.remove_student(student.id)
        return copy.read_bytes()


def _missing(student: str, task: Task) -> Outcome:
    points = {cell.grade_id: float(cell.points) for cell in GRADED_CELLS}
    return Outcome(Result(student, None, task.grader_version, scores=dict.fromkeys(points, 0.0), max_scores=points,
                          error=f"no {NOTEBOOK} in submitted/{student}/{ASSIGNMENT}/"), None)


def run_workers(task: Task, todo: list[tuple[str, bytes]], options: Options, log=print):
    """Outcomes as they finish: in this process for one local worker, else on Dask workers."""
    if options.scheduler is None and (options.workers <= 1 or len(todo) == 1):
        for student, data in todo:
            yield grade(task, student, data)
        return
    from jenalab.dispatch import grade_on_dask

    yield from grade_on_dask(task, todo, options.scheduler, min(options.workers, len(todo)), options.worker_wait, log)


def threshold_warning(thresholds: dict, strict: bool, log) -> str | None:
    """Say loudly (or refuse, when strict) if the forecast thresholds were calibrated on other data."""
    from grader_tests.verdicts import grading_windows
    from jenalab.calibration import fingerprint_mismatch

    problem = fingerprint_mismatch(thresholds.get("fingerprint"), grading_windows())
    if problem and strict:
        raise CourseError(f"Not grading: {problem}.")
    if problem:
        log(f"WARNING: forecast points may be unfair: {problem}.")
    return problem
