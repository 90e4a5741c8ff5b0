"""The nbgrader course folder and the nbgrader commands run in it.

The course folder is where the instructor runs ``jenalab`` (or ``--course DIR``): it holds
``nbgrader_config.py``, ``source/lstm_jena/`` and, once grading starts, ``submitted/``,
``autograded/``, ``feedback/`` and ``gradebook.db``. The installed package is never assumed
to live there.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from grader_tests.contract import ASSIGNMENT, NOTEBOOK

SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|\Z)", flags=re.M)


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds the end of its log."""


class CourseError(RuntimeError):
    """The instructor asked for something the course folder does not have (a typo, a wrong folder)."""


def course_root(root: str | os.PathLike | None = None) -> Path:
    """The course folder (the working directory by default), checked to be one."""
    path = Path(root if root is not None else Path.cwd()).resolve()
    missing = [name for name in ("nbgrader_config.py", f"source/{ASSIGNMENT}/{NOTEBOOK}") if not (path / name).is_file()]
    if missing:
        raise CourseError(f"{path} is not a course folder: {' and '.join(missing)} missing. Run jenalab in the folder "
                          "that holds nbgrader_config.py and source/, or give it with --course DIR.")
    return path


def source_notebook(root: Path) -> Path:
    return root / "source" / ASSIGNMENT / NOTEBOOK


def release_notebook(root: Path) -> Path:
    return root / "release" / ASSIGNMENT / NOTEBOOK


def submission_path(root: Path, student: str) -> Path:
    return root / "submitted" / student / ASSIGNMENT / NOTEBOOK


def autograded_dir(root: Path, student: str) -> Path:
    return root / "autograded" / student / ASSIGNMENT


def feedback_page(root: Path, student: str) -> Path:
    return root / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")


def gradebook_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def course_config(root: Path):
    """The course's nbgrader configuration, loaded as nbgrader loads it."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def course_cell_timeout(root: Path) -> int:
    """Seconds a cell may run, as the course configures nbgrader (Execute.timeout; nbgrader's 30 s if unset)."""
    from nbgrader.preprocessors import Execute

    return int(course_config(root).Execute.get("timeout", Execute.class_traits()["timeout"].default_value))


def students_of(root: Path) -> list[str]:
    submitted = root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []


def check_students(root: Path, wanted: list[str]) -> None:
    """Refuse names with no folder in submitted/, suggesting the closest known students."""
    known = students_of(root)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        hints = [f"'{name}'" + (f" (did you mean {', '.join(repr(c) for c in close)}?)"
                                if (close := difflib.get_close_matches(name, known, n=3)) else "")
                 for name in unknown]
        raise CourseError(f"No submission folder submitted/<student>/ for {', '.join(hints)} in {root}. "
                          f"{len(known)} student(s) have one" + (f": {', '.join(known[:10])}" if known else "") +
                          ("..." if len(known) > 10 else "") + ".")


def assignment_files(root: Path) -> dict[str, bytes]:
    """The files nbgrader ships beside the notebook (``source/lstm_jena/`` without notebooks and caches)."""
    folder = root / "source" / ASSIGNMENT
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix not in (".ipynb", ".pyc") and "__pycache__" not in path.parts
            and ".ipynb_checkpoints" not in path.parts}


def run_nbgrader(*args: str, root: Path, env: dict | None = None) -> str:
    """Run `nbgrader ARGS` in the course root and return its log; raise NbgraderError on failure."""
    env = dict(os.environ if env is None else env)
    # nbgrader calls helper programs (alembic) by name: they live next to this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = f"nbgrader {' '.join(args)}"
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    if done.returncode != 0 or "| ERROR]" in done.stdout:
        tail = "\n".join(done.stdout.strip().splitlines()[-25:])
        raise NbgraderError(f"`{command}` failed in {root} (exit {done.returncode}):\n{tail}")
    return done.stdout


def generate_release(root: Path) -> Path:
    """Write the student version release/lstm_jena/ from source/lstm_jena/ (solutions and hidden tests removed)."""
    source = source_notebook(root)
    if not source.is_file():
        raise NbgraderError(f"The instructor notebook {source} is missing; restore it from git (git checkout -- {source.relative_to(root)}).")
    run_nbgrader("generate_assignment", ASSIGNMENT, "--force", root=root)
    return release_notebook(root)


def nbgrader_api(root: Path, config=None):
    """nbgrader's API on the course folder, in this process (an nbgrader started in the course folder could import
    its grader_tests/ folder, which holds only the thresholds there, in place of the installed package)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = config or course_config(root)
    return NbGraderAPI(CourseDirectory(config=config, root=str(root)), config=config)


@contextmanager
def quiet_gradebook():
    """Without nbgrader's notices about its database sessions (harmless, and many)."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SAWarning)
        yield


def regenerate_feedback(root: Path, students: list[str]) -> list[str]:
    """Render the feedback pages of these graded students again (after hand grading); the students it failed for."""
    api, failed = nbgrader_api(root), []
    for student in students:
        with quiet_gradebook():
            if not api.generate_feedback(ASSIGNMENT, student, force=True)["success"]:
                failed.append(student)
    return failed


def solved_cells(root: Path, solutions_only: bool = False) -> dict[str, str]:
    """The instructor notebook's code cells by id, as they run: solution markers removed."""
    import nbformat

    source = nbformat.read(source_notebook(root), as_version=4)
    return {cell.id: SOLUTION_MARKERS.sub("", cell.source) for cell in source.cells if cell.cell_type == "code"
            and (not solutions_only or cell.metadata.get("nbgrader", {}).get("solution"))}
