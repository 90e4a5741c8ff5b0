"""Grade a whole class: sandboxed `nbgrader autograde`, trusted re-check, gradebook, feedback.

For every ``submitted/<student>/lstm_jena/lstm_jena.ipynb``:

1. a worker (a Dask worker process; ``LocalCluster`` by default, any scheduler address to
   scale out) runs the real ``nbgrader autograde`` in a private scratch course that holds a copy
   of the gradebook: hidden and locked cells are restored from it and the notebook runs in the
   sandboxed kernel. Hidden cells record evidence (plain arrays) for step 2.
2. the same worker, a process that is not the student's kernel, re-derives every verdict from
   that evidence (``grader_tests.recheck``). Workers return plain data and never write the
   gradebook.
3. this process alone writes: the autograded notebook, the scores in nbgrader's gradebook (the
   trusted verdict wins; a kernel score above it is flagged for review), and a ledger file per student
   written last, so an interrupted run resumes where it stopped.

Then feedback HTML (messages, no hidden-check code) and ``grades.csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from jenalab.course import ASSIGNMENT, COURSE_ROOT, NOTEBOOK, NbgraderError, generate_release, run_nbgrader

NOTEBOOK_ID = NOTEBOOK.removesuffix(".ipynb")
LEDGER = "grading.json"
EVIDENCE = "evidence"
# Patterns in solution cells that a grader should look at (never an automatic penalty).
SUSPICIOUS = {
    "touches the grader's code": re.compile(r"grader_tests|JENALAB_EVIDENCE|evidence\.npz"),
    "patches modules or builtins": re.compile(
        r"sys\.modules|builtins|(?<![\w.])(torch|np|numpy|nn|math)\.[\w.]+\s*=[^=]|setattr\(\s*(torch|np|numpy|nn)\b"),
    "reads the data file itself": re.compile(r"jena_climate|load_jena|read_records|read_csv|JENA_DATA"),
    "defines comparison overrides": re.compile(r"def __(eq|ne|lt|le|gt|ge|float|bool)__"),
}


@dataclass
class Options:
    workers: int = 2
    scheduler: str | None = None  # address of an existing Dask scheduler; None: a LocalCluster
    cell_timeout: int = 600  # seconds per cell
    notebook_timeout: int = 1800  # seconds for a whole notebook
    kernel: str = "jenalab-sandbox"
    regrade: bool = False  # grade again even when a ledger for the same submission exists
    strict_thresholds: bool = False  # refuse to grade with thresholds calibrated on other data


@dataclass
class Result:
    """One student's grading outcome, as stored in autograded/<student>/lstm_jena/grading.json."""

    student: str
    submission_sha256: str | None
    scores: dict[str, float] = field(default_factory=dict)  # graded test cell -> points awarded
    max_scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # graded test cell -> what the student lost points for
    kernel_scores: dict[str, float | None] = field(default_factory=dict)  # as nbgrader scored them in the kernel
    flags: list[str] = field(default_factory=list)  # reasons for an instructor to look
    error: str | None = None  # why the notebook could not be graded normally
    seconds: float = 0.0
    graded_at: str = ""

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())

    @property
    def reason(self) -> str:
        lost = [f"{cell}: {msg}" for cell, msg in self.messages.items() if self.scores.get(cell, 0) < self.max_scores.get(cell, 0)]
        return self.error or ("; ".join(lost) if lost else "all automatic checks passed")


# --- paths -----------------------------------------------------------------------------------


def submission_path(root: Path, student: str) -> Path:
    return root / "submitted" / student / ASSIGNMENT / NOTEBOOK


def autograded_dir(root: Path, student: str) -> Path:
    return root / "autograded" / student / ASSIGNMENT


def gradebook_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def students_of(root: Path) -> list[str]:
    submitted = root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the worker: runs anywhere, gets bytes, returns plain data ----------------------------------


def autograde_submission(student: str, notebook: bytes, gradebook: bytes, config: str, max_scores: dict[str, float],
                         options: dict) -> dict:
    """Autograde one submission in a scratch course and re-check it. Never raises."""
    from grader_tests.evidence import ENV_EVIDENCE_DIR
    from grader_tests.recheck import recheck

    start = time.perf_counter()
    result = Result(student, _sha256(notebook), max_scores=dict(max_scores))
    scratch = Path(tempfile.mkdtemp(prefix=f"jenalab-grade-{student}-"))
    try:
        (scratch / "nbgrader_config.py").write_text(config)
        (scratch / "gradebook.db").write_bytes(gradebook)
        submitted = scratch / "submitted" / student / ASSIGNMENT
        submitted.mkdir(parents=True)
        (submitted / NOTEBOOK).write_bytes(notebook)
        evidence = scratch / EVIDENCE
        evidence.mkdir()
        evidence.chmod(0o777)  # the sandboxed kernel runs as an unprivileged user
        env = {**os.environ, ENV_EVIDENCE_DIR: str(evidence)}
        try:
            run_nbgrader("autograde", ASSIGNMENT, "--student", student, "--force",
                         f"--Execute.kernel_name={options['kernel']}", f"--Execute.timeout={options['cell_timeout']}",
                         root=scratch, env=env, timeout=options["notebook_timeout"])
        except (NbgraderError, OSError) as err:
            result.error = _autograde_failure(str(err))
        graded = scratch / "autograded" / student / ASSIGNMENT / NOTEBOOK
        text = graded.read_text() if graded.is_file() else None
        cell_errors = {}
        if text:
            notebook = nbformat.reads(text, as_version=4)
            result.kernel_scores = _kernel_scores(notebook)
            cell_errors = _cell_errors(notebook)
        for grade_id, verdict in recheck(evidence, max_scores).items():
            result.scores[grade_id] = verdict.points
            message = verdict.message if verdict.evidence else cell_errors.get(grade_id, verdict.message)
            if message:
                result.messages[grade_id] = message
        return {"result": asdict(result), "notebook": text, "seconds": time.perf_counter() - start,
                "evidence": {p.name: p.read_bytes() for p in evidence.glob("*.npz")}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _autograde_failure(log: str) -> str:
    if "did not finish within" in log:
        return log.splitlines()[0]
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log.lower():
        return "the notebook crashed its kernel (a cell exited Python, ran out of memory or hit a limit)"
    if "Timeout" in log or "timed out" in log:
        return "a cell ran past the time limit"
    if "NotJSONError" in log or "Notebook does not appear to be JSON" in log or "Unreadable Notebook" in log:
        return "the submitted file is not a readable notebook"
    last = [line for line in log.splitlines() if "ERROR" in line]
    return "nbgrader could not autograde the notebook: " + (last[-1] if last else log.splitlines()[-1])


def _cell_errors(notebook) -> dict[str, str]:
    """The error a student sees under each failed graded cell: 'ErrorType: message'."""
    return {cell.metadata.nbgrader["grade_id"]: f"{output.ename}: {output.evalue}"
            for cell in notebook.cells if cell.cell_type == "code" and "nbgrader" in cell.metadata
            for output in cell.get("outputs", []) if output.output_type == "error"}


def _kernel_scores(notebook) -> dict[str, float | None]:
    from nbgrader.utils import determine_grade, is_grade

    return {cell.metadata.nbgrader["grade_id"]: determine_grade(cell)[0]
            for cell in notebook.cells if is_grade(cell) and cell.cell_type == "code"}


# --- the writer: this process only ------------------------------------------------------------


def record(root: Path, outcome: dict, submitted: bytes) -> Result:
    """Store one outcome: autograded notebook, evidence, gradebook scores, then the ledger."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades
    from sqlalchemy.exc import SAWarning

    result = Result(**outcome["result"])
    result.seconds = round(outcome["seconds"], 1)
    result.graded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result.flags += suspicious_code(submitted)
    target = autograded_dir(root, result.student)
    for stale in (target, root / "feedback" / result.student / ASSIGNMENT):
        if stale.exists():
            shutil.rmtree(stale)
    (target / EVIDENCE).mkdir(parents=True)
    for name, data in outcome["evidence"].items():
        (target / EVIDENCE / name).write_bytes(data)
    notebook_text = outcome["notebook"]
    if notebook_text is not None:  # without it (nothing ran) the submission stays in submitted/ only
        (target / NOTEBOOK).write_text(notebook_text)

    with warnings.catch_warnings(), Gradebook(gradebook_url(root)) as gradebook:
        warnings.simplefilter("ignore", category=SAWarning)  # nbgrader's own autoflush notices
        gradebook.update_or_create_student(result.student)
        gradebook.update_or_create_submission(ASSIGNMENT, result.student)
        if notebook_text is not None:
            resources = {"nbgrader": {"notebook": NOTEBOOK_ID, "assignment": ASSIGNMENT, "student": result.student,
                                      "db_url": gradebook_url(root)}}
            SaveAutoGrades().preprocess(nbformat.reads(notebook_text, as_version=4), resources)
        for grade_id, points in result.scores.items():
            grade = gradebook.find_grade(grade_id, NOTEBOOK_ID, ASSIGNMENT, result.student)
            # More points in the student's kernel than in the re-check means the in-kernel check was
            # tampered with or fooled. Fewer is benign: a visible check that failed after the hidden one.
            kernel = result.kernel_scores.get(grade_id)
            inflated = notebook_text is not None and kernel is not None and kernel > points
            if inflated:
                result.flags.append(f"{grade_id}: the kernel's result ({kernel}) differs from the trusted re-check "
                                    f"({points}); the trusted one counts")
            grade.auto_score = points
            grade.needs_manual_grade = grade.manual_score is not None or inflated
        gradebook.db.commit()
    if result.error:
        result.flags.append(result.error)
    _write_atomic(target / LEDGER, json.dumps(asdict(result), indent=1, sort_keys=True))
    return result


def suspicious_code(notebook: bytes) -> list[str]:
    """Flags for solution cells that patch libraries, read the data file or touch grader files."""
    try:
        cells = nbformat.reads(notebook.decode(), as_version=4).cells
    except Exception:
        return []
    code = "\n".join(c.source for c in cells if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    return [f"suspicious code: {what}" for what, pattern in SUSPICIOUS.items() if pattern.search(code)]


def _write_atomic(path: Path, text: str) -> None:
    part = path.with_suffix(".part")
    part.write_text(text)
    part.replace(path)


def load_result(root: Path, student: str) -> Result | None:
    path = autograded_dir(root, student) / LEDGER
    return Result(**json.loads(path.read_text())) if path.is_file() else None


# --- the whole class --------------------------------------------------------------------------


def max_scores(root: Path) -> dict[str, float]:
    """Points of every graded test cell, from the gradebook (created from the source if missing)."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader_tests.recheck import CHECK_OF_CELL

    with Gradebook(gradebook_url(root)) as gradebook:
        try:
            cells = {c.name: c.max_score for c in gradebook.find_notebook(NOTEBOOK_ID, ASSIGNMENT).grade_cells}
        except MissingEntry:
            cells = None
    if cells is None:
        generate_release(root)  # records the assignment and its hidden cells in the gradebook
        return max_scores(root)
    return {grade_id: float(cells[grade_id]) for grade_id in CHECK_OF_CELL}


def grade_class(root: Path = COURSE_ROOT, options: Options = Options(), students: list[str] | None = None,
                log=print) -> list[Result]:
    """Grade every submission (or the named students), resuming an interrupted run."""
    from jenalab.sandbox import SandboxLimits, active_protections, install_kernelspec

    root = Path(root)
    warning = threshold_warning(options.strict_thresholds, log)
    points = max_scores(root)
    # One compute thread per kernel: workers share the cores without oversubscription (which
    # slows OpenMP several-fold), and a grade never depends on how many workers ran.
    limits = SandboxLimits(cpu_threads=1, wall_seconds=options.notebook_timeout)
    install_kernelspec(limits=limits)
    log("Sandbox: " + "; ".join(active_protections(limits)))
    students = students or students_of(root)
    if not students:
        raise NbgraderError(f"No submissions in {root / 'submitted'}: expected submitted/<student>/{ASSIGNMENT}/{NOTEBOOK}.")
    results, todo = {}, []
    for student in students:
        path = submission_path(root, student)
        data = path.read_bytes() if path.is_file() else b""
        previous = load_result(root, student)
        sha = _sha256(data) if data else None  # a missing notebook is recorded without a hash
        if previous and previous.submission_sha256 == sha and not options.regrade:
            results[student] = previous  # graded before, unchanged since: resume
        else:
            todo.append((student, data))
    if todo:
        log(f"Grading {len(todo)} submission(s) ({len(results)} already graded) with "
            f"{'scheduler ' + options.scheduler if options.scheduler else f'{options.workers} local worker(s)'}")
        for result in _run_workers(root, todo, points, options):
            results[result.student] = result
            log(f"  {result.student:<28} {result.total:>5g} / {result.max_total:g}  ({result.seconds:.0f} s)"
                + (f"  FLAGGED: {'; '.join(result.flags)}" if result.flags else ""))
    ordered = [results[s] for s in students]
    write_grades_csv(root, ordered, warning)
    generate_feedback(root, log)
    return ordered


def _run_workers(root: Path, todo, points, options: Options):
    from dask.distributed import Client, LocalCluster, as_completed

    config = (root / "nbgrader_config.py").read_text()
    gradebook = (root / "gradebook.db").read_bytes()
    worker_options = {"kernel": options.kernel, "cell_timeout": options.cell_timeout,
                      "notebook_timeout": options.notebook_timeout}
    cluster = None
    if options.scheduler:
        client = Client(options.scheduler)
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit=0)
        client = Client(cluster)
    try:
        submitted = {}
        futures = []
        for student, data in todo:
            if not data:  # nothing to run: record the reason straight away
                yield _missing(root, student, points)
                continue
            submitted[student] = data
            futures.append(client.submit(autograde_submission, student, data, gradebook, config, points, worker_options,
                                         key=f"grade-{student}-{_sha256(data)[:12]}", pure=False))
        for future in as_completed(futures):
            student = _student_of(future.key)
            try:
                outcome = future.result()
            except Exception as err:  # a worker died: the submission is still graded, with a reason
                outcome = {"result": asdict(Result(student, _sha256(submitted[student]), scores=dict.fromkeys(points, 0.0),
                                                   max_scores=points, error=f"the grading worker failed: {err}")),
                           "notebook": None, "seconds": 0.0, "evidence": {}}
            yield record(root, outcome, submitted[student])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _student_of(key: str) -> str:
    return key.removeprefix("grade-").rsplit("-", 1)[0]


def _missing(root: Path, student: str, points: dict[str, float]) -> Result:
    error = f"no {NOTEBOOK} in submitted/{student}/{ASSIGNMENT}/"
    outcome = {"result": asdict(Result(student, None, scores=dict.fromkeys(points, 0.0), max_scores=points, error=error)),
               "notebook": None, "seconds": 0.0, "evidence": {}}
    return record(root, outcome, b"")


GRADES_COLUMNS = ("student", "auto_score", "max_auto_score")


def threshold_warning(strict: bool, log) -> str | None:
    """Say loudly (or refuse, when strict) if the forecast thresholds were calibrated on other data."""
    from grader_tests.checks import THRESHOLDS_FILE, grading_windows
    from jenalab.calibration import fingerprint_mismatch

    problem = fingerprint_mismatch(json.loads(THRESHOLDS_FILE.read_text()).get("fingerprint"), grading_windows())
    if problem and strict:
        raise NbgraderError(f"Not grading: {problem}.")
    if problem:
        log(f"WARNING: forecast points may be unfair: {problem}.")
    return problem


def write_grades_csv(root: Path, results: list[Result], threshold_warning: str | None = None) -> Path:
    """grades.csv: one row per student with the points of every graded cell, flags and reasons."""
    path = root / "grades.csv"
    cells = list(results[0].max_scores) if results else []
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*GRADES_COLUMNS, *cells, "flags", "reason", "threshold_warning"])
        for r in results:
            writer.writerow([r.student, r.total, r.max_total, *(r.scores.get(c, 0.0) for c in cells),
                             " | ".join(r.flags), r.reason, threshold_warning or ""])
    return path


def generate_feedback(root: Path, log=print) -> None:
    """Per-student feedback HTML in feedback/<student>/lstm_jena/: messages, no hidden-check code.

    Only missing pages are written (``record`` removes a regraded student's page), so a run costs
    time for the submissions it graded, not for the whole class. Grades are stored before this
    runs: a failure here is reported, not fatal."""
    try:
        run_nbgrader("generate_feedback", ASSIGNMENT, root=root)
    except NbgraderError as err:
        log(f"WARNING: feedback could not be generated for every student; grades are saved.\n{err}")
