"""Grade one submission wherever this runs: in the instructor's process, a local worker process or
any Dask worker of a cluster.

A ``Task`` carries what grading needs from the course folder (configuration, gradebook, the files
shipped beside the notebook, thresholds, limits) and the environment the instructor's side
expects. The worker checks its own environment against it, builds a private scratch course, runs
the real ``nbgrader autograde`` in the sandboxed kernel (its kernelspec written into the scratch
course's own Jupyter path), re-derives every verdict from the evidence outside the kernel, renders
the feedback page and returns plain data (``store.Outcome``). It never writes the course folder.

Only what the student's notebook did becomes a score. A failure of the grading machinery (a
worker that lacks something, a kernel that cannot start, nbgrader failing or a provided cell
failing before any student code ran) is returned as ``Infrastructure``: no score at all.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import nbformat

from grader_tests.contract import ASSIGNMENT, GRADED_CELLS, NOTEBOOK, PROVIDED_CELLS
from grader_tests.verdicts import SEEDS
from jenalab.course import autograded_dir, course_config, feedback_page, gradebook_url, nbgrader_api, quiet_gradebook
from jenalab.sandbox import KERNEL_NAME, Mount, SandboxLimits, filesystem_isolated, install_kernelspec
from jenalab.sealed import SealedFolder
from jenalab.results import Infrastructure, Outcome, Result
from jenalab.store import save_scores, write_ledger

# Where the kernel finds its inputs inside the sandbox.
KERNEL_DATA = "/grading/data/jena_trainval.zip"
KERNEL_INBOX = "/grading/inbox"
KERNEL_LIB = "/grading/lib"
# The part of the grader the hidden cells import in the kernel: collectors only (no judge, reference, threshold,
# data or corpus).
KERNEL_MODULES = ("__init__.py", "collect.py", "problems.py", "evidence.py", "contract.py")
KERNEL_PRELOAD = ("grader_tests.collect",)  # imported before any cell: nothing a cell writes can replace it

# Patterns in a student's cells that an instructor should look at (never an automatic penalty).
SUSPICIOUS = {
    "touches the grader's code or evidence": re.compile(r"grader_tests|JENALAB|evidence|/grading\b"),
    "patches modules or builtins": re.compile(
        r"sys\.modules|builtins|(?<![\w.])(torch|np|numpy|nn|math)\.[\w.]+\s*=[^=]|setattr\(\s*(torch|np|numpy|nn)\b"),
    "reads the data file itself": re.compile(r"jena_climate|load_jena|read_records|read_csv|JENA_DATA|\.zip\b"),
    "defines comparison overrides": re.compile(r"def __(eq|ne|lt|le|gt|ge|float|bool)__"),
    "inspects code, frames or the IPython history": re.compile(
        r"(?<![\w.])(In|Out)\s*\[|\b_i[hi]?\b|_oh\b|\binspect\b|getsource|__code__|get_ipython|%history|HistoryManager"
        r"|_getframe|f_locals|f_back|gc\.get_objects|get_referrers"),
    "runs code it builds at run time": re.compile(r"__import__|importlib|(?<![\w.])(exec|eval|compile)\("),
    "reads or writes files, or runs programs": re.compile(
        r"\bopen\(|os\.(listdir|scandir|walk|system|popen|mkdir|makedirs|rename|replace|symlink|remove|unlink)"
        r"|\bglob\b|(read|write)_(text|bytes)|subprocess|shutil|np\.(save|load)|torch\.(save|load)"),
    "starts threads or processes": re.compile(r"threading|_thread|multiprocessing|os\.fork|concurrent\.futures"),
    "uses the network": re.compile(r"\bsocket\b|urllib|requests|http\.client"),
}


@dataclass(frozen=True)
class Task:
    """Everything a worker needs from the course folder, for every submission of one run."""

    config: str  # the course's nbgrader_config.py
    gradebook: bytes  # a copy: nbgrader restores hidden and locked cells from it
    assignment_files: dict[str, bytes]  # source/lstm_jena/ without notebooks (shipped beside the notebook)
    source_notebook: bytes  # for the leak check of the feedback (never visible to the kernel)
    release_notebook: bytes
    thresholds: dict
    grader_version: str
    expected: dict  # the environment the instructor's side has (see ``environment``)
    limits: SandboxLimits
    cell_timeout: int  # seconds per cell
    notebook_timeout: int  # seconds for the whole notebook
    require_isolation: bool


class _GraderFailure(Exception):
    pass


# --- the worker's environment -------------------------------------------------------------------


@lru_cache(maxsize=1)  # of the code this process loaded, even if the files change under it later
def code_fingerprint() -> str:
    """sha256 of the installed code: every module of jena_weather and grader_tests (what decides a
    grade) and of jenalab (how grading runs)."""
    import grader_tests
    import jena_weather
    import jenalab

    digest = hashlib.sha256()
    for package in (jena_weather, grader_tests, jenalab):
        folder = Path(package.__file__).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{package.__name__}/{path.name}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def environment(data_sha256: str | None) -> dict:
    """What grading depends on here: versions, the grader's code and the data file."""
    import nbgrader
    import torch

    return {
        "Python": ".".join(platform.python_version_tuple()[:2]),
        "torch": torch.__version__.split("+")[0],
        "nbgrader": nbgrader.__version__,
        "jena-lstm-lab": metadata.version("jena-lstm-lab"),
        "grader code": code_fingerprint(),
        "data sha256": data_sha256,
    }


def check_environment(task: Task) -> str | None:
    """What this worker lacks to grade like the instructor's side, or None."""
    from jena_weather.data import JenaDataError

    try:
        records = _records()
    except JenaDataError as err:
        return f"has no usable Jena data file ({str(err).splitlines()[0]})"
    mine = environment(records.sha256)
    different = [f"{key} {mine[key]!s:.16} (expected {value!s:.16})" for key, value in task.expected.items()
                 if mine.get(key) != value]
    if different:
        return "differs from the instructor's side: " + "; ".join(different)
    if task.require_isolation and not filesystem_isolated(task.limits):
        return "cannot isolate the grading kernel's filesystem (is bubblewrap installed and allowed to start?)"
    return None


def worker_problem(task: Task) -> str | None:
    """`check_environment` as a Dask worker runs it for the instructor's side before grading starts."""
    _sweep()
    return check_environment(task)


def worker_name() -> str:
    try:
        from distributed import get_worker

        return f"{get_worker().address} on {socket.gethostname()}"
    except (ImportError, ValueError):
        return f"process {os.getpid()} on {socket.gethostname()}"


@lru_cache(maxsize=1)
def _records():
    from jena_weather.data import load_jena

    return load_jena()


def _private_folder(prefix: str) -> Path:
    """A folder of this process, readable by the kernel's uid, removed when the process ends (or, if
    it is killed, by the next worker on this machine: see ``_sweep``)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _sweep() -> None:
    """Remove what killed workers left behind: folders and control groups named after a process that no
    longer runs."""
    from jenalab import cgroups

    cgroups.sweep()
    for folder in Path(tempfile.gettempdir()).glob("jenalab-[gle]*-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not _running(pid):
            _kill_processes_in(folder)  # a kernel its launcher started just before the worker died
            shutil.rmtree(folder, ignore_errors=True)


def _kill_processes_in(folder: Path) -> None:
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd).startswith(f"{folder}/"):
                os.kill(int(cwd.parent.name), signal.SIGKILL)
        except OSError:
            pass


def _running(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (OSError, IndexError):
        return False


@lru_cache(maxsize=1)
def _extract() -> Path:
    """The training and validation periods of this worker's data, the only data a kernel sees."""
    from jena_weather.data import write_extract
    from jena_weather.pipeline import hourly, split_bounds

    rows = hourly(_records().frame)
    bounds = split_bounds(len(rows))
    folder = _private_folder("jenalab-extract-")
    path = write_extract(folder / "jena_trainval.zip", rows.iloc[: bounds["val"].stop],
                         {"train": bounds["train"].stop, "val": bounds["val"].stop - bounds["val"].start})
    path.chmod(0o644)
    return path


@lru_cache(maxsize=1)
def _kernel_lib() -> Path:
    """The grader modules a hidden cell imports, copied from this worker's installation."""
    import grader_tests

    folder = _private_folder("jenalab-lib-")
    (folder / "grader_tests").mkdir()
    for name in KERNEL_MODULES:
        shutil.copy(Path(grader_tests.__file__).with_name(name), folder / "grader_tests" / name)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


# --- grading one submission -----------------------------------------------------------------------


def grade(task: Task, student: str, notebook: bytes) -> Outcome | Infrastructure:
    """Grade one submission. Never raises: the grader's own failures come back as Infrastructure."""
    start = time.perf_counter()
    worker = worker_name()
    try:
        _sweep()
        problem = check_environment(task)
        if problem:
            return Infrastructure(student, f"worker {worker} {problem}", worker)
        outcome = _grade(task, student, notebook, worker)
    except _GraderFailure as failure:
        return Infrastructure(student, f"worker {worker}: {failure}", worker)
    except Exception as err:  # a bug or a broken machine, never the student's doing
        where = traceback.extract_tb(err.__traceback__)[-1]
        return Infrastructure(student, f"worker {worker}: {type(err).__name__}: {err} "
                                       f"({Path(where.filename).name}:{where.lineno})", worker)
    outcome.result.seconds = round(time.perf_counter() - start, 1)
    return outcome


def _grade(task: Task, student: str, notebook: bytes, worker: str) -> Outcome:
    result = Result(student, hashlib.sha256(notebook).hexdigest(), task.grader_version, worker=worker,
                    max_scores={cell.grade_id: float(cell.points) for cell in GRADED_CELLS})
    result.scores = dict.fromkeys(result.max_scores, 0.0)
    try:
        nbformat.reads(notebook.decode(), as_version=4)
    except Exception:
        result.error = "the submitted file is not a readable notebook"
        return Outcome(result, None)
    scratch = Path(tempfile.mkdtemp(prefix=f"jenalab-grade-{os.getpid()}-"))
    try:
        scratch.chmod(0o711)  # without a mount namespace the kernel must still reach its folders
        course = _scratch_course(scratch / "course", task, student, notebook)
        sealed = SealedFolder(scratch / "sealed")
        sealed.prepare()
        seeds = _pending_problems(sealed)
        install_kernelspec(sealed.root, task.limits, _mounts(sealed), _kernel_env(), preload=KERNEL_PRELOAD)
        api = _nbgrader(course, task)
        run = _autograde(api, student, sealed)
        graded = autograded_dir(course, student) / NOTEBOOK
        text = graded.read_text() if graded.is_file() else None
        executed = nbformat.reads(text, as_version=4) if text else None
        if executed is not None and (failed := _provided_cell_failure(executed)):
            raise _GraderFailure(failed)
        (sealed.evidence / SEEDS).write_text(json.dumps(seeds))
        result.events = _run_events(run)
        _judge(result, sealed.evidence, executed, task, course, run)
        result.flags += suspicious_code(notebook, task.release_notebook)
        if run["stray_records"]:
            result.flags.append(f"the notebook published {run['stray_records']} grader record(s) outside the hidden checks")
        evidence = {p.name: p.read_bytes() for p in sorted(sealed.evidence.iterdir())}
        feedback = _feedback(api, course, result) if text else None
        return Outcome(result, text, evidence, feedback)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_course(course: Path, task: Task, student: str, notebook: bytes) -> Path:
    folder = course / "source" / ASSIGNMENT
    for relative, data in task.assignment_files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    secrets = {
        folder / NOTEBOOK: task.source_notebook,
        course / "release" / ASSIGNMENT / NOTEBOOK: task.release_notebook,
        course / "gradebook.db": task.gradebook,
        course / "nbgrader_config.py": task.config.encode() + _sealed_config(course.parent / "sealed", task).encode(),
    }
    for path, data in secrets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o600)
    submitted = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
    submitted.parent.mkdir(parents=True)
    submitted.write_bytes(notebook)
    return course


def _sealed_config(sealed: Path, task: Task) -> str:
    return f"""

# Added by the grading worker for this submission (jenalab.worker).
from jenalab.sealed import autograde_preprocessors
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.SealedExecute.sealed_dir = {str(sealed)!r}
c.SealedExecute.notebook_timeout = {task.notebook_timeout}
"""


def _pending_problems(sealed: SealedFolder) -> dict[str, int]:
    """A fresh seed for each check's problem; the kernel gets a check's seed when its cell starts."""
    from grader_tests.problems import PROBLEM_FILE

    seeds = {cell.check: secrets.randbits(62) for cell in GRADED_CELLS}
    for check, seed in seeds.items():
        (sealed.pending / check).mkdir()
        (sealed.pending / check / PROBLEM_FILE).write_text(json.dumps({"check": check, "seed": seed}))
    return seeds


def _mounts(sealed: SealedFolder) -> list[Mount]:
    return [Mount(str(_extract()), KERNEL_DATA), Mount(str(sealed.inbox), KERNEL_INBOX), Mount(str(_kernel_lib()), KERNEL_LIB)]


def _kernel_env() -> dict[str, str]:
    from grader_tests.evidence import ENV_GRADING, ENV_INBOX
    from jena_weather.data import ENV_DIR, ENV_FILE, ENV_NO_DOWNLOAD

    return {ENV_FILE: KERNEL_DATA, ENV_NO_DOWNLOAD: "1", ENV_DIR: "/tmp/jena_data", ENV_GRADING: "1",
            ENV_INBOX: KERNEL_INBOX, "PYTHONPATH": KERNEL_LIB}


def _nbgrader(course: Path, task: Task):
    """nbgrader, in this process, on the scratch course with its configuration and the sandbox kernel."""
    try:  # nbgrader would go on with its defaults (an unsandboxed kernel) if its configuration failed to load
        config = course_config(course)
    except Exception as err:
        raise _GraderFailure(f"the course's nbgrader_config.py does not load: {type(err).__name__}: {err}") from None
    config.Execute.kernel_name = KERNEL_NAME  # set last: no course configuration can choose another kernel
    config.Execute.timeout = task.cell_timeout
    return nbgrader_api(course, config)


def _autograde(api, student: str, sealed: SealedFolder) -> dict:
    """Run nbgrader autograde; return how the notebook's run went (``SealedFolder.run_record``). Whatever
    the notebook does ends in a graded notebook; nbgrader failing, or a kernel that never started, is the
    grader's failure."""
    with quiet_gradebook():
        report = api.autograde(ASSIGNMENT, student)
    run = sealed.read_run()
    if report["success"] and run.get("kernel_started"):
        return run
    log = "\n".join(filter(None, (report.get("log"), report.get("error"))))
    if not run.get("kernel_started"):
        raise _GraderFailure(f"the grading kernel did not start: {_last_error(log)}")
    raise _GraderFailure(f"nbgrader failed: {_last_error(log)}")


def _run_events(run: dict) -> list[str]:
    """What happened to the notebook's run, in the student's words."""
    events = [f"cell '{cell}' ran past its time limit and was interrupted" for cell in dict.fromkeys(run["timeouts"])]
    if run["stopped"]:
        events.append(f"{run['stopped']}; " + (f"{len(run['not_run'])} later cell(s) did not run"
                                               if run["not_run"] else "no cell was left to run"))
    return events


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Error" in line]
    return (errors or lines or ["no output"])[-1][:300]


def _provided_cell_failure(notebook) -> str | None:
    """A provided cell that failed before any other code cell ran: the grader's fault (nothing of the
    student's could have caused it)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id not in PROVIDED_CELLS:
            return None
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return f"the provided cell '{grade_id}' failed: {output.ename}: {output.evalue}"[:500]
    return None


def _judge(result: Result, evidence: Path, executed, task: Task, course: Path, run: dict) -> None:
    """The trusted verdicts (`grader_tests.verdicts`), with what the student sees when a check left no record."""
    from grader_tests.verdicts import judge_submission
    from jenalab.evaluator import evaluate
    from jenalab.leaks import Redactor

    redactor = Redactor(course, course / "submitted" / result.student / ASSIGNMENT / NOTEBOOK)
    cell_errors = _cell_errors(executed) if executed is not None else {}
    result.kernel_scores = _kernel_scores(executed) if executed is not None else {}
    verdicts = judge_submission(evidence, task.thresholds, evaluate, result.kernel_scores)
    for cell in GRADED_CELLS:
        verdict = verdicts[cell.grade_id]
        result.scores[cell.grade_id] = verdict.points
        message = verdict.message if verdict.recorded else _no_record(cell, run, cell_errors.get(cell.grade_id))
        status = run["records"].get(cell.check, "missing")
        if status not in ("ok", "missing"):
            result.flags.append(f"{cell.grade_id}: the hidden check's record was not as the check makes it ({status})")
        if message:
            result.messages[cell.grade_id] = redactor.clean(message)
        if verdict.flag:
            result.flags.append(f"{cell.grade_id}: {verdict.flag}")


def _no_record(cell, run: dict, error: str | None) -> str:
    """Why a hidden check left nothing to judge, in the student's words."""
    if cell.grade_id in run["not_run"]:
        return f"the hidden check did not run: {run['stopped']}"
    if cell.grade_id in run["timeouts"]:
        return "the hidden check did not finish: this cell ran past its time limit"
    if cell.grade_id == run["died_in"]:
        return "the hidden check did not finish: the kernel stopped while it ran"
    return error or "the hidden check recorded nothing"


def _cell_errors(notebook) -> dict[str, str]:
    """The error a student sees under each failed graded cell: 'ErrorType: message'."""
    return {cell.metadata.nbgrader["grade_id"]: f"{output.ename}: {output.evalue}"
            for cell in notebook.cells if cell.cell_type == "code" and "grade_id" in cell.metadata.get("nbgrader", {})
            for output in cell.get("outputs", []) if output.output_type == "error"}


def _kernel_scores(notebook) -> dict[str, float | None]:
    from nbgrader.utils import determine_grade, is_grade

    return {cell.metadata.nbgrader["grade_id"]: determine_grade(cell)[0]
            for cell in notebook.cells if is_grade(cell) and cell.cell_type == "code"}


def suspicious_code(notebook: bytes, release: bytes) -> list[str]:
    """Flags for the student's code (every code cell that is not word for word a locked cell of the
    release, whatever its metadata claims) that reads, patches or inspects what is not theirs."""
    try:
        cells = nbformat.reads(notebook.decode(), as_version=4).cells
    except Exception:
        return []
    provided = {c.source for c in nbformat.reads(release.decode(), as_version=4).cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked")}
    code = "\n".join(c.source for c in cells if c.cell_type == "code" and c.source not in provided)
    return [f"suspicious code: {what}" for what, pattern in SUSPICIOUS.items() if pattern.search(code)]


def _feedback(api, course: Path, result: Result) -> str:
    """The student's feedback page, rendered by nbgrader with the course's feedback preprocessors."""
    write_ledger(autograded_dir(course, result.student), result)  # the verdicts the page shows
    save_scores(gradebook_url(course), result, None)
    with quiet_gradebook():
        report = api.generate_feedback(ASSIGNMENT, result.student)
    page = feedback_page(course, result.student)
    if not report["success"] or not page.is_file():
        raise _GraderFailure("nbgrader could not render the feedback page: "
                             + _last_error(report.get("error") or report.get("log") or ""))
    return page.read_text()


if __name__ == "__main__":  # a worker's self-check: `python -m jenalab.worker`
    print(environment(_records().sha256))
    sys.exit(0)
